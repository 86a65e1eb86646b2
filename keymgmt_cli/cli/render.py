"""The one renderer of a response to `read`, `list`, `write` and `delete`, as Vault's
``command/format.go`` (OutputSecret, OutputList, PrintRawField) and the verbs' own code
(``write.go``, ``delete.go``, ``list.go``) print it. No click, no rich: the caller passes how to
write to stdout and stderr, and whether stdout is a terminal (the -field newline).
"""

from __future__ import annotations

from keymgmt_cli.cli import output
from keymgmt_cli.cli.report import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

#: What -field NAME means besides a data field (RawField in command/util.go).
_ENVELOPE_FIELDS = ("request_id", "lease_id", "lease_duration", "renewable", "refresh_interval", "data")
EXIT_OK, EXIT_LOCAL, EXIT_ENGINE = 0, 1, 2


def raw_field(data: dict[str, Any] | None, warnings: list[str], field: str) -> Any:
    """RawField: the envelope's own fields by name, ``data`` for the whole map, else a data field."""
    if field in _ENVELOPE_FIELDS:
        env = output.envelope(data, warnings)
        if field == "refresh_interval":
            return env["lease_duration"]
        if field == "data":
            return (data or {}).get("data", env["data"])
        return env[field]
    return (data or {}).get(field)


def field_text(value: Any, fmt: str, tty: bool) -> str:
    """PrintRawField + PrintRaw: %v for table/raw, indented JSON or YAML otherwise; a newline only
    when stdout is a terminal."""
    text = output.go_value(value) if fmt in ("table", "raw") else output.dump(output.go_sorted(value), fmt)
    return text + "\n" if tty else text


def emit(verb: str, path: str, response: Any, fmt: str, field: str | None,
         out: Callable[[str], None], err: Callable[[str], None], tty: bool = False) -> int:
    """Print ``response`` of ``verb`` at the sanitised ``path``; returns the exit code.
    ``out``/``err`` receive text exactly as it is to be written (newlines included)."""
    data, warnings = response.data, list(response.warnings)
    if verb in ("write", "delete") and data is None:
        if warnings and fmt == "table":
            err(printable_block(warnings))
        if fmt == "table":  # write.go/delete.go: nothing but in the table format
            done = "Data written to" if verb == "write" else "Data deleted (if it existed) at"
            out(f"Success! {done}: {path}\n")
        return EXIT_OK
    if field is not None and verb != "list":
        value = raw_field(data, warnings, field)
        if value is None:
            err(f'Field "{printable(field)}" not present in secret\n')
            # a write that took effect never fails afterwards (a `set -e` retry would repeat it)
            return EXIT_OK if verb in ("write", "delete") else EXIT_LOCAL
        out(field_text(value, fmt, tty))
        return EXIT_OK
    if fmt == "raw":
        out(output.raw_body(data, warnings) + "\n")
        return EXIT_OK
    if verb == "list":
        keys = (data or {}).get("keys") or []
        if fmt != "table":
            out(output.dump(keys, fmt) + "\n")  # OutputList: the bare list
            return EXIT_OK
        if warnings:
            err(printable_block(warnings))
        out(output.key_list(keys) + "\n")
        return EXIT_OK
    if fmt != "table":
        out(output.dump(output.envelope(data, warnings), fmt) + "\n")
        return EXIT_OK
    if warnings:
        err(printable_block(warnings))
    if data:
        out(output.table(data) + "\n")
    return EXIT_OK


def printable_block(warnings: list[str]) -> str:
    return output.warnings_block([printable(w) for w in warnings])
