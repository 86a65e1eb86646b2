"""The `keymgmt` command's entry (bin/keymgmt and `python -m keymgmt_cli` call main): no core dumps,
then the click-free verbs, the full click CLI otherwise."""

from __future__ import annotations

import sys


def no_core_dumps() -> None:
    """RLIMIT_CORE 0: a crash of a process that holds the master key or key material must not
    leave them in a core file (the hard limit too, so the process cannot raise it again)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):  # not on this platform, or not permitted: nothing to lower
        pass


def main() -> None:
    no_core_dumps()
    from keymgmt_cli.cli import fast

    code = fast.run(sys.argv[1:])
    if code is None:
        from keymgmt_cli.cli.main import main as full

        full()
    sys.exit(code)
