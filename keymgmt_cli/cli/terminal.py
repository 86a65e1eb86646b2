"""Everything that only happens on a terminal: rich tables (secrets list, status) and the progress spinners.

The only module that imports rich, and only when stdout (tables) or stderr (progress) is a TTY:
pipes, CI logs and scripts get plain text and no progress. NO_COLOR turns colour off.
"""

from __future__ import annotations

import os
import sys
import threading
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
        table.add_column(header, no_wrap=True)
    for row in body:
        table.add_row(*(Text(cell) for cell in row))
    console = _console()
    # never wrapped or cut to the terminal's width (a wrapped path reads as two rows): as Vault's
    # columnized tables, a long row is one line, which the terminal itself may fold
    natural = console.measure(table, options=console.options.update_width(10**4)).maximum
    console.width = max(console.width, natural)
    console.print(table)


class Progress:
    """Spinners on stderr for long work (RSA-4096 generation, imports, replication): one line per
    KMS provider (the engine's messages are ``"<provider>: <what>"``, and distributions to several
    providers run in parallel threads, which on one spinner line flipped between them), one line
    for work of no provider. Only on a terminal: never in pipes, with TERM=dumb, or under CI.

    The lines are transient and go away before anything else is written: while they show,
    sys.stdout and sys.stderr are stand-ins whose first write stops the display (erasing its lines)
    and puts the real streams back, so the result never lands on a spinner's line (issue 16's
    ``⠸ paced: importing version 4Success! ...``) whichever code prints it."""

    def __init__(self, stream: Any = None, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self._stream = stream or sys.stderr
        self.enabled = wants_rich(self._stream, environ) and not environ.get("CI")
        self._no_color = bool(environ.get("NO_COLOR"))
        self._lock = threading.RLock()
        self._live: Any = None
        self._lanes: dict[str, Any] = {}
        self._saved: tuple[Any, Any] | None = None

    @staticmethod
    def lane(message: str) -> tuple[str, str]:
        """(provider, what) of a message; provider "" when the message names none."""
        head, sep, rest = message.partition(": ")
        if sep and head and not any(c.isspace() for c in head):
            return head, rest
        return "", message

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        lane, _what = self.lane(message)
        with self._lock:
            if self._live is None:
                self._start()
            task = self._lanes.get(lane)
            if task is None:
                self._lanes[lane] = self._live.add_task(message)
            else:
                self._live.update(task, description=message)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import Progress as Bars, SpinnerColumn, TextColumn

        console = Console(file=self._stream, no_color=self._no_color, highlight=False, soft_wrap=False)
        # redirect_*: rich would print what others write *above* the display, stdout's text onto
        # stderr among it; instead the first write ends the display (_CloseFirst)
        self._live = Bars(SpinnerColumn(), TextColumn("{task.description}", markup=False), console=console,
                          transient=True, redirect_stdout=False, redirect_stderr=False)
        self._live.start()
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = _CloseFirst(sys.stdout, self.close)
        sys.stderr = _CloseFirst(sys.stderr, self.close)

    def close(self) -> None:
        with self._lock:
            if self._saved is not None:
                out, err = self._saved
                if isinstance(sys.stdout, _CloseFirst):
                    sys.stdout = out
                if isinstance(sys.stderr, _CloseFirst):
                    sys.stderr = err
                self._saved = None
            if self._live is not None:
                self._live.stop()  # transient: the spinner lines are erased, the cursor back at their start
                self._live = None
                self._lanes = {}


class _CloseFirst:
    """A stream that ends the progress display before its first write (then writes through)."""

    def __init__(self, stream: Any, close: Any):
        self._stream, self._close = stream, close

    def write(self, text: Any) -> Any:
        self._close()
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        self._close()
        self._stream.writelines(lines)

    @property
    def buffer(self) -> Any:  # a binary write ends the display as well
        self._close()
        return self._stream.buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
