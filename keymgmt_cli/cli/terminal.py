"""Everything that only happens on a terminal: rich tables and the progress spinner.

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


def print_kv_table(data: dict[str, Any], scalar: Any) -> None:
    """Key/Value as Vault prints it, with nested maps (versions) one row per entry."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("Key", style="cyan", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for key in sorted(data):
        value = data[key]
        if isinstance(value, dict) and value and all(isinstance(v, (dict, str)) for v in value.values()):
            table.add_row(Text(key), Text(""))
            for sub, sub_value in value.items():
                if isinstance(sub_value, dict):
                    text = "\n".join(f"{k}: {scalar(v).strip()}" for k, v in sub_value.items())
                else:
                    text = scalar(sub_value)
                table.add_row(Text(f"  {sub}"), Text(text))
        else:
            table.add_row(Text(key), Text(scalar(value)))  # Text: user data is never parsed as markup
    _console().print(table)


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
