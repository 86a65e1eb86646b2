"""The local KMS double is the oracle keymgmt's AWS code is tested against: it keeps its own copy of
AWS's rules and must not import keymgmt's (``keymgmt_cli.transfer`` and the rest of the product)."""

from __future__ import annotations

import ast
from pathlib import Path

import keymgmt_cli.localkms as localkms

PACKAGE = Path(localkms.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_double_imports_nothing_of_keymgmt_outside_localkms():
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 5  # the split modules are all looked at
    offenders = {p.name: sorted(n for n in _imports(p)
                                if n.startswith("keymgmt_cli") and not n.startswith("keymgmt_cli.localkms"))
                 for p in modules}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_modules_stay_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 420} == {}
