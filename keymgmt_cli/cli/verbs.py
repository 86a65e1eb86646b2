"""`read`, `list`, `write` and `delete` as Vault's command/read.go, list.go, write.go and delete.go
run them: Go's flag grammar (goflags), the DATA grammar (kv), the engine, the one renderer, and
Vault's exit codes: 1 for what is wrong before the request (flags, arity, DATA, -field absent on a
read), 2 for every failure of the request itself (the engine, AWS and the local state alike).

No click: scripts call read/list in loops, and click alone costs about as much as starting Python.
Help (-h) returns None so that click prints it.
"""

from __future__ import annotations

import os
import sys

from keymgmt_cli.cli import goflags, output, render
from keymgmt_cli.cli.report import printable
from keymgmt_cli.errors import KeymgmtError, NoValue, NotFound, UnsupportedPath, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

VERBS = ("read", "list", "write", "delete")
_OWN = {
    "read": {"format": goflags.STRING, "field": goflags.STRING},
    "list": {"format": goflags.STRING, "detailed": goflags.BOOL},
    "write": {"format": goflags.STRING, "field": goflags.STRING, "force": goflags.BOOL, "dry-run": goflags.BOOL},
    "delete": {"format": goflags.STRING, "dry-run": goflags.BOOL, "forget": goflags.BOOL, "force": goflags.BOOL},
}
_ALIASES = {"write": {"f": "force"}}
_VERBING = {"read": "reading", "list": "listing", "write": "writing data to", "delete": "deleting"}
EXIT_OK, EXIT_LOCAL, EXIT_ENGINE = 0, 1, 2


def resolve_format(argv: list[str], environ: Any) -> str:
    """main.go: -format anywhere, else KEYMGMT_FORMAT, else VAULT_FORMAT, else table; lower-cased."""
    chosen = goflags.scan_format(argv) or environ.get("KEYMGMT_FORMAT") or environ.get("VAULT_FORMAT") or "table"
    fmt = output.ACCEPTED.get(chosen.lower())
    if fmt is None:
        raise UsageError(f"Invalid output format: {chosen}")
    return fmt


def sanitize(path: str) -> str:
    """sanitizePath (base_helpers.go): surrounding spaces and slashes go."""
    return path.strip().strip("/").strip()


class Io:
    """Where a verb writes: sys.stdout/sys.stderr as they are at call time (tests swap them)."""

    def out(self, text: str) -> None:
        sys.stdout.write(text)

    def err(self, text: str) -> None:
        sys.stderr.write(text)

    def tty(self) -> bool:
        """fatih/color's test, which PrintRaw follows: a terminal, TERM not dumb, NO_COLOR unset."""
        isatty = getattr(sys.stdout, "isatty", None)
        return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb" and not os.environ.get("NO_COLOR")


def run(argv: list[str], environ: Any, engine: Callable[[str], Any], io: Io | None = None) -> int | None:
    """Run ``argv`` (verb first); the exit code, or None when click should answer (help)."""
    io = io or Io()
    verb, rest = argv[0], argv[1:]
    try:
        parsed = goflags.parse(rest, {**_OWN[verb], **goflags.HTTP_FLAGS}, _ALIASES.get(verb))
        if parsed.help:
            return None
        fmt = resolve_format(rest, environ)
        if fmt == "raw" and verb != "read":
            raise UsageError("This command does not support the -format=raw option.")
        warning = goflags.trailing_flag_warning(parsed.args)
        if warning and fmt == "table":
            io.err(printable(warning) + "\n")
        ignored = goflags.meaningless(parsed.flags)
        if verb == "list" and parsed.flags.get("detailed"):
            ignored.append("-detailed")
        if ignored:
            io.err(output.warning_line(f"keymgmt has no server; ignoring {', '.join(ignored)}") + "\n")
        args = parsed.args
        if not args:
            raise UsageError("Not enough arguments (expected 1, got 0)")
        if verb == "list" and len(args) > 1:
            raise UsageError(f"Too many arguments (expected 1, got {len(args)})")
        if verb == "write" and len(args) == 1 and not parsed.flags.get("force"):
            raise UsageError("Must supply data or use -force")
        path = sanitize(args[0])
        data: dict[str, Any] = {}
        if len(args) > 1:
            from keymgmt_cli.cli.kv import parse_data

            data = parse_data(args[1:], getattr(sys.stdin, "buffer", sys.stdin))
    except UsageError as error:
        io.err(printable(str(error)) + "\n")
        return EXIT_LOCAL
    shown = path + "/" if verb == "list" else path
    field = parsed.flags.get("field")
    try:
        from keymgmt_cli.engine.routing import Request

        if verb == "delete" and parsed.flags.get("force") and not parsed.flags.get("forget"):
            raise UsageError("-force goes with -forget (delete has no other confirmation to skip)")
        if verb == "delete" and parsed.flags.get("forget"):  # drop a record AWS cannot be asked about
            from keymgmt_cli.cli import forget

            return forget.run(shown, parsed.flags, fmt, _Env(engine(verb), environ), io)
        if verb in ("write", "delete"):  # audit records around every change; -dry-run plans instead
            from keymgmt_cli.store.retired import check_writable  # a migrated-away state refuses changes

            changing = engine(verb)
            check_writable(changing.store)
            if parsed.flags.get("dry-run"):
                from keymgmt_cli.cli.evidence import run_request  # prints the plan (click)

                run_request(_Env(changing, environ), verb, shown, data, dry_run=True, fmt=fmt)
                return EXIT_OK  # the plan was printed; nothing changed
            # evidence.run_request's audited branch, called directly: importing evidence.py (it
            # also holds the click commands) cost every write ~30-50 ms of CPU for click alone
            from keymgmt_cli.audit.session import audited

            request = Request(verb, shown, data)
            response = audited(changing, environ, verb, shown, data, lambda: changing.handle(request))
        else:
            response = engine(verb).handle(Request(verb, shown, data))
    except UsageError as error:  # found before the engine was asked (the audit settings, say): exit 1
        io.err(printable(str(error)) + "\n" + (printable(f"hint: {error.hint}") + "\n" if error.hint else ""))
        return EXIT_LOCAL
    except KeymgmtError as error:
        if verb == "list" and fmt != "table" and isinstance(error, (NoValue, NotFound, UnsupportedPath)):
            io.out("{}\n")  # list.go: nothing to list prints an empty object, so jq gets its input
        else:
            io.err(failure(verb, shown, error))
        return EXIT_ENGINE
    return render.emit(verb, shown, response, fmt, field if isinstance(field, str) else None,
                       io.out, io.err, io.tty())


class _Env:
    """What the audit hook needs of a command's world: the engine and the environment."""

    __slots__ = ("engine", "environ")

    def __init__(self, engine: Any, environ: Any):
        self.engine, self.environ = engine, environ


def failure(verb: str, path: str, error: KeymgmtError) -> str:
    """The lines Vault prints for a failed request: "No value found at P" for what a 404 means
    (an empty list, a missing entry, an unknown path on read/list), else "Error <verbing> P: msg"."""
    if verb in ("read", "list") and isinstance(error, (NoValue, NotFound, UnsupportedPath)):
        lines = [f"No value found at {path}"]
    else:
        lines = [f"Error {_VERBING[verb]} {path}: {' '.join(str(error).split())}"]
    if error.hint:
        lines.append(f"hint: {error.hint}")
    return "".join(printable(line) + "\n" for line in lines)
