"""How errors reach the user: one stderr line (plus a hint), exit codes, the last-resort guard.

The four verbs word their errors and choose their exit codes as Vault does (cli/verbs.py); the
other commands use describe() and exit_code_for(). No click here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from keymgmt_cli.errors import KeymgmtError, NoValue, StoreError, UsageError

EXIT_OK, EXIT_LOCAL, EXIT_ENGINE = 0, 1, 2


def exit_code_for(error: BaseException) -> int:
    """For the commands other than the verbs: 1 for usage and the local state, 2 for anything the
    engine or AWS reports. An error may carry its own (a lease held by another runner is a
    refusal, exit 2, though it comes from the store)."""
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
    """The lines to print on stderr for the commands other than the four verbs (cli/verbs.py words
    those as Vault does): the error, then the hint if any."""
    message = " ".join(str(error).split())
    lines = [message if isinstance(error, NoValue) else f"Error: {message}"]
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
