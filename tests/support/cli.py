"""The one way tests run keymgmt as a real process: the console script's own entry
(``python -m keymgmt_cli``), an environment of the test's making, text in and out."""

from __future__ import annotations

import subprocess
import sys


def km(environ: dict[str, str], *args: str, input: str | bytes | None = None, timeout: float = 180,
       prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``keymgmt ARGS`` with ``environ``; ``prefix`` replaces the interpreter command (the fault
    suite's compressed-backoff launcher). Bytes in give bytes out."""
    command = (prefix or [sys.executable, "-m", "keymgmt_cli"]) + list(args)
    return subprocess.run(command, env=environ, input=input, capture_output=True,
                          text=not isinstance(input, bytes), timeout=timeout)
