"""Rendering as Vault's command/format.go does: the JSON envelope, YAML, tables of Go's %v values,
the warnings block. Data alone goes to stdout. No click, no rich; json only for -format=json/raw
(imported there: json imports re, which a table read would otherwise pay for at start-up)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMATS = ("table", "json", "yaml")
#: What -format and VAULT_FORMAT accept, as Vault's Formatters (format.go) plus "raw" (read.go);
#: "yml" is yaml, "pretty" renders as a table here (Vault's pretty formatter has no secret form).
ACCEPTED = {"table": "table", "json": "json", "yaml": "yaml", "yml": "yaml", "pretty": "table", "raw": "raw"}
MAX_LINE = 78  # Vault's maxLineLength (command/base.go)
#: The one spelling of a warning line, Vault's (its commands' ``UI.Warn("WARNING! ...")``).
WARNING_PREFIX = "WARNING! "


def warning_line(text: str) -> str:
    """One warning line as Vault's commands print theirs (no newline)."""
    return WARNING_PREFIX + text


def envelope(data: dict[str, Any] | None, warnings: list[str]) -> dict[str, Any]:
    """Vault's api.Secret as json.MarshalIndent writes it: fields in struct order, omitempty
    auth/wrap_info left out, mount_type last; maps inside ``data`` sorted as Go's encoder sorts them."""
    return {"request_id": _uuid4(), "lease_id": "", "lease_duration": 0, "renewable": False,
            "data": go_sorted(data), "warnings": list(warnings) or None, "mount_type": "keymgmt"}


def raw_body(data: dict[str, Any] | None, warnings: list[str]) -> str:
    """The HTTP response body Vault's server sends (logical.HTTPResponse), compact, for -format=raw."""
    import json

    body = {"request_id": _uuid4(), "lease_id": "", "renewable": False, "lease_duration": 0,
            "data": go_sorted(data), "wrap_info": None, "warnings": list(warnings) or None, "auth": None,
            "mount_type": "keymgmt"}
    return _go_escape(json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def _uuid4() -> str:
    """A random (version 4) UUID, without importing uuid on the read path."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def go_sorted(value: Any) -> Any:
    """Maps with their keys sorted, recursively: the order Go's encoders write a map in."""
    if isinstance(value, dict):
        return {k: go_sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [go_sorted(v) for v in value]
    return value


def _go_escape(text: str) -> str:
    """encoding/json's HTML-safe escaping (<, >, & and U+2028/U+2029), which Go applies by default."""
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def dump(value: Any, fmt: str) -> str:
    """json.MarshalIndent(value, "", "  ") or ghodss/yaml (keys sorted at every level), no final newline."""
    if fmt == "yaml":
        text = _yaml_dump(value)
        if text.endswith("\n...\n"):
            text = text[:-4]  # PyYAML's end-of-document marker after a bare scalar
        return text[:-1] if text.endswith("\n") else text  # one: a |+ block keeps its blank lines
    import json

    return _go_escape(json.dumps(value, indent=2, ensure_ascii=False))


def _yaml_dump(value: Any) -> str:
    """yaml.v2 (under ghodss/yaml) writes a string holding a newline as a literal block (``|``),
    line by line; PyYAML's default quotes it and doubles every line break, so a PEM public key came
    out with a blank line between its lines. Same document, Vault's layout."""
    import yaml  # only for -format=yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: Any, data: str) -> Any:
        # yaml.v2's rule: newlines give a literal block; a string a block cannot hold exactly
        # (trailing spaces on a line, control characters) stays quoted, as PyYAML decides.
        style = "|" if "\n" in data and not any(line != line.rstrip() for line in data.split("\n")) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(value, Dumper=Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True)


def go_value(value: Any) -> str:
    """Go's %v of a decoded JSON value: map[k:v ...] (keys sorted), [a b], <nil>, true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


def columnize(rows: list[list[str]], glue: str = "    ", empty: str = "n/a") -> str:
    """ryanuber/columnize as Vault configures it: cells trimmed, empty cells "n/a", every column but
    the last padded to its widest cell, joined by four spaces."""
    rows = [[cell.strip() or empty for cell in row] for row in rows]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in rows:
        parts = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append(glue.join(parts))
    return "\n".join(lines)


def looks_like_duration(key: str) -> bool:
    """Vault's looksLikeDuration (command/format.go): fields its table prints as durations."""
    return (key in ("period", "ttl", "duration", "lease_max", "ttl_max")
            or key.endswith(("_period", "_ttl", "_duration")))


def human_duration(seconds: int) -> str:
    """Vault's humanDurationInt: Go's time.Duration.String of whole seconds, without the zero
    minutes and seconds (``2160h``, ``1h30m``, ``1h5s``, ``45s``, ``0s``)."""
    sign, n = ("-", -seconds) if seconds < 0 else ("", seconds)
    h, m, s = n // 3600, n // 60 % 60, n % 60
    text = f"{h}h{m}m{s}s" if h else (f"{m}m{s}s" if m else f"{s}s")
    if text.endswith("m0s"):
        text = text[:-2]
    at = text.find("h0m")
    if at > 0:
        text = text[:at + 1] + text[at + 3:]
    return sign + text


def table(data: dict[str, Any]) -> str:
    """TableFormatter.OutputSecret: a Key/Value header, then one row per field, sorted, value as %v
    (maps and lists as Go prints them, never wrapped: Vault's table does not wrap values) and a
    whole number in a field that looks like a duration as one (``auto_rotate_period  2160h``)."""
    rows = [["Key", "Value"], ["---", "-----"]]
    for key in sorted(data):
        value = data[key]
        if looks_like_duration(key) and isinstance(value, int) and not isinstance(value, bool):
            value = human_duration(value)
        rows.append([key, go_value(value)])
    return columnize(rows)


def key_list(keys: list[str]) -> str:
    """TableFormatter.OutputList: the header Keys, then the names sorted. One column: columnize
    pads nothing, so this is its result without building a row per name (a list of thousands)."""
    return "\n".join(["Keys", "----", *[k.strip() or "n/a" for k in sorted(keys)]])


def wrap(text: str, limit: int) -> list[str]:
    """kr/text.Wrap: words split at single spaces, broken into lines of minimum raggedness."""
    words = text.strip().replace("\n", " ").split(" ")
    n = len(words)
    if n == 0:
        return [""]
    length = [[0] * n for _ in range(n)]
    for i in range(n):
        length[i][i] = len(words[i])
        for j in range(i + 1, n):
            length[i][j] = length[i][j - 1] + 1 + len(words[j])
    cost = [2**31 - 1] * n
    nbrk = [n] * n
    for i in range(n - 1, -1, -1):
        if length[i][n - 1] <= limit or i == n - 1:
            cost[i], nbrk[i] = 0, n
            continue
        for j in range(i + 1, n):
            d = limit - length[i][j - 1]
            c = d * d + cost[j]
            if length[i][j - 1] > limit:
                c += 100000  # too-long lines get a worse penalty
            if c < cost[i]:
                cost[i], nbrk[i] = c, j
    lines, i = [], 0
    while i < n:
        lines.append(" ".join(words[i:nbrk[i]]))
        i = nbrk[i]
    return lines


def warnings_block(warnings: list[str]) -> str:
    """TableFormatter.printWarnings, with keymgmt named where Vault names itself (to stderr)."""
    out = ["WARNING! The following warnings were returned from keymgmt:", ""]
    for warning in warnings:
        out += ["  " + line for line in wrap(f"* {warning}", MAX_LINE - 2)] + [""]
    return "\n".join(out) + "\n"


def rows(headers: list[str], body: list[list[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    out = ["    ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
           "    ".join(("-" * len(h)).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    out += ["    ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join(out)


def path_help_text(doc: dict[str, Any]) -> str:
    """vault path-help's layout: synopsis, then each operation with its fields."""
    if "paths" in doc:
        lines = [f"## DESCRIPTION\n\n{doc['synopsis']}\n", "## PATHS\n"]
        for entry in doc["paths"]:
            lines.append(f"    {entry['route']}  ({', '.join(entry['operations'])})")
            lines.append(f"        {entry['synopsis']}\n")
        return "\n".join(lines).rstrip()
    lines = [f"Request:        {doc['path']}", f"Matching Route: {doc['route']}", "", doc["synopsis"], ""]
    for verb, op in doc["operations"].items():
        lines.append(f"## {verb.upper()}")
        lines.append(f"    {op['summary']}")
        if op["example"]:
            lines.append(f"    example: {op['example']}")
        if op["fields"]:
            lines.append("")
            lines.append("    PARAMETERS")
            for name, field in op["fields"].items():
                default = "" if field["default"] is None else f", default {go_value(field['default'])}"
                required = ", required" if field["required"] else ""
                lines.append(f"        {name} ({field['type']}{default}{required})")
                lines.append(f"            {field['description']}")
                if field["allowed"]:
                    lines.append(f"            allowed: {', '.join(field['allowed'])}")
        lines.append("")
    return "\n".join(lines).rstrip()
