"""The one renderer of a response: what `read`, `list`, `write` and `delete` print, whichever path
(the click CLI or the fast read/list path) ran them. No click and no rich here: the caller passes
how to write a line to stdout and stderr and, on a terminal, how to draw a key/value table.
"""

from __future__ import annotations

from keymgmt_cli.cli import output
from keymgmt_cli.cli.report import printable
from keymgmt_cli.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


def emit(verb: str, path: str, response: Any, fmt: str, field: str | None,
         out: Callable[[str], None], err: Callable[[str], None],
         kv_table: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Print ``response`` of ``verb`` at ``path``: warnings to ``err``, data to ``out`` (one call
    per line block). ``kv_table`` draws a table on a terminal; plain text otherwise."""
    for warning in response.warnings:
        err(printable(f"WARNING: {warning}"))
    data = response.data
    if field is not None:
        if not data or field not in data:
            raise UsageError(f'Field "{field}" not present in secret')
        out(output.scalar(data[field]))
        return
    if fmt != "table":
        if data is None and verb in ("write", "delete"):
            return  # as Vault: nothing to print
        if verb == "list":
            out(output.dump(data["keys"], fmt))  # as Vault: the bare list
            return
        out(output.dump(output.envelope(data, response.warnings), fmt))
        return
    if verb == "write" and data is None:
        out(f"Success! Data written to: {path}")
    elif verb == "delete":
        out(f"Success! Data deleted (if it existed) at: {path}")
    elif verb == "list":
        out(output.key_list(data["keys"]))
    elif data:
        if kv_table is not None:
            kv_table(data)
        else:
            out(output.table(data))
