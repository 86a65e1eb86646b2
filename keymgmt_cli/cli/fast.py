"""The command's click-free path: `read`, `list`, `write` and `delete` (cli/verbs.py).

Scripts call these in loops, and click alone costs about as much as starting Python. Reads and
lists get an engine without a secret box or AWS provider (they need neither); help (-h) and shell
completion return None and go to the click CLI.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERBS = ("read", "list", "write", "delete")


def parse(argv: list[str]) -> str | None:
    """The verb when this path serves ``argv`` (help aside), else None."""
    return argv[0] if argv and argv[0] in VERBS and "_KEYMGMT_COMPLETE" not in os.environ else None


def run(argv: list[str], environ: Any = None) -> int | None:
    if parse(argv) is None:
        return None
    from keymgmt_cli.app import PROGRESS, engine_for
    from keymgmt_cli.cli import report, verbs

    environ = os.environ if environ is None else environ
    try:
        return report.guarded(lambda: verbs.run(argv, environ, lambda verb: engine_for(environ, verb)))
    finally:
        PROGRESS.close()
