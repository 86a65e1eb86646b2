"""The console script: the fast read/list path first, the full click CLI otherwise."""

from __future__ import annotations

import sys


def main() -> None:
    import os

    from keymgmt_cli.cli import fast

    # shell completion goes through click, whatever the verb
    code = None if "_KEYMGMT_COMPLETE" in os.environ else fast.run(sys.argv[1:])
    if code is None:
        from keymgmt_cli.cli.main import main as full

        full()
    sys.exit(code)
