"""Rendering: Vault's JSON envelope, YAML, and the table format. Data alone goes to stdout."""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMATS = ("table", "json", "yaml")


def envelope(data: dict[str, Any] | None, warnings: list[str]) -> dict[str, Any]:
    """Vault's response envelope, so `jq .data.x` pipelines written for Vault keep working."""
    return {"request_id": _uuid4(), "lease_id": "", "lease_duration": 0, "renewable": False,
            "data": data, "warnings": warnings or None}


def _uuid4() -> str:
    """A random (version 4) UUID, without importing uuid on the read path."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def dump(value: Any, fmt: str) -> str:
    if fmt == "yaml":
        import yaml  # only for -format=yaml

        return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip("\n")
    return json.dumps(value, indent=2)


def scalar(value: Any) -> str:
    """How one value prints in a table cell or with -field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "n/a"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=False)
    return str(value)


def table(data: dict[str, Any]) -> str:
    keys = sorted(data)
    width = max([len("Key")] + [len(k) for k in keys])
    lines = [f"{'Key'.ljust(width)}    Value", f"{'---'.ljust(width)}    -----"]
    for key in keys:
        value = data[key]
        if isinstance(value, dict) and value and all(isinstance(v, (dict, str)) for v in value.values()) \
                and any("\n" in json.dumps(v) or isinstance(v, dict) for v in value.values()):
            # nested maps (versions, keys): one row per entry keeps tables readable
            lines.append(f"{key.ljust(width)}    ")
            for sub, sub_value in value.items():
                text = scalar(sub_value) if not isinstance(sub_value, dict) else _inline(sub_value)
                lines.append(f"{('  ' + str(sub)).ljust(width)}    {text}")
            continue
        lines.append(f"{key.ljust(width)}    {scalar(value)}")
    return "\n".join(lines)


def _inline(value: dict[str, Any]) -> str:
    parts = []
    for k, v in value.items():
        text = scalar(v)
        if "\n" in text:
            text = text.strip().replace("\n", "\n        ")
        parts.append(f"{k}={text}")
    return "  ".join(parts)


def key_list(keys: list[str]) -> str:
    return "\n".join(["Keys", "----", *keys])


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
                default = "" if field["default"] is None else f", default {scalar(field['default'])}"
                required = ", required" if field["required"] else ""
                lines.append(f"        {name} ({field['type']}{default}{required})")
                lines.append(f"            {field['description']}")
                if field["allowed"]:
                    lines.append(f"            allowed: {', '.join(field['allowed'])}")
        lines.append("")
    return "\n".join(lines).rstrip()
