"""The fast path for `read` and `list`: the same engine and output, without importing click.

`read` and `list` are what scripts call in loops; click alone costs about as much as starting
Python. Anything this parser does not recognise (help, yaml, unknown flags, other verbs) returns
None and the full click CLI handles it, so behaviour never depends on which path ran.
"""

from __future__ import annotations

import os
import sys

_FLAGS = {"-format": "format", "--format": "format", "-field": "field", "--field": "field"}


def parse(argv: list[str]) -> tuple[str, str, str | None, str | None] | None:
    """(verb, path, format, field) for a plain read/list invocation, else None."""
    if not argv or argv[0] not in ("read", "list"):
        return None
    verb, rest = argv[0], argv[1:]
    opts: dict[str, str] = {}
    path = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            key = _FLAGS.get(name)
            if key is None or key in opts:
                return None
            if not eq:
                if i + 1 >= len(rest):
                    return None
                i += 1
                value = rest[i]
            opts[key] = value
        elif path is None:
            path = arg
        else:
            return None
        i += 1
    if path is None or (verb == "list" and "field" in opts):
        return None
    fmt = (opts.get("format") or os.environ.get("KEYMGMT_FORMAT") or "table").lower()
    if fmt not in ("table", "json"):
        return None  # yaml and invalid values: the full CLI renders or reports them
    return verb, path, fmt, opts.get("field")


def run(argv: list[str]) -> int | None:
    parsed = parse(argv)
    if parsed is None:
        return None
    verb, path, fmt, field = parsed
    from keymgmt_cli.cli import render, report
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.engine.routing import Request
    from keymgmt_cli.errors import KeymgmtError
    from keymgmt_cli.store import open_store

    out: list[str] = []
    try:
        response = Engine(open_store(os.environ)).handle(Request(verb, path, {}))
        render.emit(verb, path, response, fmt, field, out.append,
                    lambda line: sys.stderr.write(line + "\n"))
    except KeymgmtError as error:
        sys.stderr.write("\n".join(report.describe(argv, error)) + "\n")
        return report.exit_code_for(error)
    try:
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return report.EXIT_OK
