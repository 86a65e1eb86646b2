"""Everything that only happens on a terminal: rich tables (secrets list, status) and the progress spinner.

The only module that imports rich, and only when stdout (tables) or stderr (progress) is a TTY:
pipes, CI logs and scripts get plain text and no progress. NO_COLOR turns colour off.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping


def wants_rich(stream: Any, environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and environ.get("TERM") != "dumb"


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False,
                   soft_wrap=False)


def print_rows(headers: list[str], body: list[list[str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for header in headers:
        table.add_column(header)
    for row in body:
        table.add_row(*(Text(cell) for cell in row))
    _console().print(table)


class Progress:
    """A spinner on stderr for long work (RSA-4096 generation, imports, replication): only on a
    terminal, never in pipes or CI logs (CI set)."""

    def __init__(self, stream: Any = None, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.enabled = wants_rich(stream or sys.stderr, environ) and not environ.get("CI")
        self._status: Any = None

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        if self._status is None:
            self._status = _console(stderr=True).status(message)
            self._status.start()
        else:
            self._status.update(message)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
