"""Vault's flag grammar, as Go's ``flag`` package parses it (Vault's ``command/base_flags.go``).

- ``-name`` and ``--name`` are the same flag; a value follows ``=`` or is the next argument.
- A bool flag takes no next argument: ``-f``, ``-f=true``, ``-force=false`` (strconv.ParseBool).
- Parsing stops at the first positional argument, at ``-`` (a positional: stdin) and after ``--``.
- Flags after a positional are positionals; a warning says so (``generateFlagWarnings`` in
  ``command/base_helpers.go``), except for the global flags that ``main.go`` honours anywhere
  (``-format``).
No click here: the fast read/list path uses it too.
"""

from __future__ import annotations

from keymgmt_cli.errors import UsageError

BOOL, STRING, MULTI = "bool", "string", "multi"

#: Vault's HTTP flags (``FlagSetHTTP`` in base.go). keymgmt has no server, so most mean nothing here.
HTTP_FLAGS = {
    "address": STRING, "agent-address": STRING, "ca-cert": STRING, "ca-path": STRING,
    "client-cert": STRING, "client-key": STRING, "tls-server-name": STRING, "tls-skip-verify": BOOL,
    "disable-redirects": BOOL, "namespace": STRING, "ns": STRING, "header": MULTI, "mfa": MULTI,
    "wrap-ttl": STRING, "policy-override": BOOL, "non-interactive": BOOL, "unlock-key": STRING,
    "output-curl-string": BOOL, "output-policy": BOOL,
}
#: Flags that change what the command does in a way keymgmt cannot honour safely: refused.
REFUSED = {
    "output-curl-string": "keymgmt has no HTTP API to print a cURL command for; the command was not run",
    "output-policy": "keymgmt has no Vault policy to print; the command was not run",
}
#: Honoured as they are: keymgmt never prompts.
HONOURED = {"non-interactive"}
#: Flags main.go reads wherever they stand (no trailing-flag warning for them).
GLOBAL_FLAGS = ("format",)
HELP = ("h", "help")

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool; None when it refuses."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


class Parsed:
    __slots__ = ("flags", "args", "help")

    def __init__(self) -> None:
        self.flags: dict[str, object] = {}
        self.args: list[str] = []
        self.help = False


def parse(argv: list[str], spec: dict[str, str], aliases: dict[str, str] | None = None) -> Parsed:
    """Parse ``argv`` (after the verb) by ``spec`` (name → BOOL | STRING | MULTI), as Go's flag.Parse."""
    aliases = aliases or {}
    out = Parsed()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        dashes = 2 if arg[1] == "-" else 1
        if dashes == 2 and len(arg) == 2:
            i += 1  # "--" ends the flags and is consumed
            break
        body = arg[dashes:]
        if not body or body[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, eq, value = body.partition("=")
        if name in HELP:
            out.help = True
            i += 1
            continue
        typed, name = name, aliases.get(name, name)
        kind = spec.get(name)
        if kind is None:
            raise UsageError(f"flag provided but not defined: -{typed}")
        if kind == BOOL:
            if eq:
                parsed = parse_bool(value)
                if parsed is None:
                    raise UsageError(f"invalid boolean value for -{typed}: parse error (true, false, 1, 0, t, f)")
                out.flags[name] = parsed
            else:
                out.flags[name] = True
        else:
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"flag needs an argument: -{typed}")
                i += 1
                value = argv[i]
            if kind == MULTI:
                out.flags.setdefault(name, [])
                out.flags[name].append(value)  # type: ignore[union-attr]
            else:
                out.flags[name] = value
        i += 1
    out.args = argv[i:]
    return out


def trailing_flag_warning(args: list[str]) -> str | None:
    """Vault's warning for flags given after a positional argument (they are not parsed as flags)."""
    trailing = []
    for arg in args:
        if not arg.startswith("-") or arg == "-":
            continue
        if arg.lstrip("-").partition("=")[0] in GLOBAL_FLAGS:
            continue
        trailing.append(arg)
    if not trailing:
        return None
    return ("Command flags must be provided before positional arguments. "
            f"The following arguments will not be parsed as flags: [{','.join(trailing)}]")


def scan_format(argv: list[str]) -> str | None:
    """The -format value wherever it stands (before ``--``), as Vault's main.go scans for it."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in ("-format", "--format"):
            if i + 1 < len(argv):
                found = argv[i + 1]
        elif arg.startswith("-format=") or arg.startswith("--format="):
            found = arg.partition("=")[2]
    return found


def meaningless(flags: dict[str, object]) -> list[str]:
    """The HTTP flags given that keymgmt ignores (refused ones raise), for one warning line."""
    ignored = []
    for name in flags:
        if name not in HTTP_FLAGS or name in HONOURED:
            continue
        if name in REFUSED:
            if flags[name]:
                raise UsageError(f"-{name} is not supported: {REFUSED[name]}")
            continue
        ignored.append(f"-{name}")
    return ignored
