"""How errors reach the user: one stderr line (plus a hint), and the one table of exit codes.

Shared by the click commands and the fast read/list path, so both report alike. No click here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from keymgmt_cli.errors import EngineError, KeymgmtError, NoValue, StoreError, UsageError

EXIT_OK, EXIT_LOCAL, EXIT_ENGINE = 0, 1, 2
_VERBING = {"read": "reading", "list": "listing", "write": "writing data to", "delete": "deleting"}


def exit_code_for(error: BaseException) -> int:
    """Vault's rule: 1 for what is found before the engine is called (and the local state),
    2 for anything the engine or AWS reports. An error may carry its own (a lease held by another
    runner is a refusal, exit 2, though it comes from the store)."""
    code = getattr(error, "exit_code", None)
    if code is not None:
        return code
    if isinstance(error, (UsageError, StoreError)):
        return EXIT_LOCAL
    return EXIT_ENGINE


def printable(text: str) -> str:
    """User text (paths, names, values) can hold control characters; escape them so that an error
    stays one line and cannot move a terminal's cursor (\x1e, \r and the like)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe(args: list[str], error: KeymgmtError) -> list[str]:
    """The lines to print on stderr: the error, then the hint if any."""
    message = " ".join(str(error).split())
    lines = []
    if isinstance(error, NoValue):
        lines.append(message)
    else:
        verb = next((a for a in args if a in _VERBING), None)
        path = None
        if verb is not None:
            after = args[args.index(verb) + 1:]
            path = next((a for a in after if not a.startswith("-") and "=" not in a), None)
        if verb and path and isinstance(error, EngineError):
            lines.append(f"Error {_VERBING[verb]} {path}: {message}")
        else:
            lines.append(f"Error: {message}")
    if error.hint:
        lines.append(f"hint: {error.hint}")
    return [printable(line) for line in lines]


def guarded(call: Any) -> int | None:
    """Run ``call``; what escapes it becomes one stderr line and an exit code, never a traceback."""
    import os
    import sys

    try:
        return call()
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted; what was done is recorded, re-run the command to finish\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug: one line, never a traceback (KEYMGMT_DEBUG=1 shows it)
        if os.environ.get("KEYMGMT_DEBUG"):
            raise
        sys.stderr.write(f"Error: internal error ({type(error).__name__}); please report it "
                         "(KEYMGMT_DEBUG=1 shows the traceback)\n")
        return EXIT_ENGINE
