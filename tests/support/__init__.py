"""Test-only helpers shared by several test folders (importable as ``support.*``: pytest puts
``tests/`` on sys.path, see ``[tool.pytest.ini_options] pythonpath``)."""
