"""The console script: the fast read/list path first, the full click CLI otherwise."""

from __future__ import annotations

import sys


def main() -> None:
    from keymgmt_cli.cli import fast

    code = fast.run(sys.argv[1:])
    if code is None:
        from keymgmt_cli.cli.main import main as full

        full()
    sys.exit(code)
