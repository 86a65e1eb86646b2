"""Field schemas: the CLI hands the engine strings and lists; each path's fields type them.

As Vault's framework does: a field has a kind (string, bool, int, key-value map, comma list,
choice), a default and a description; unknown fields are reported back as a warning. The same
schemas feed `path-help` and the shell completions, so help and validation cannot disagree.
"""

from __future__ import annotations

import re

from keymgmt_cli.errors import InvalidRequest

TYPE_CHECKING = False  # typing costs milliseconds on the read path; annotations are strings
if TYPE_CHECKING:
    from typing import Any, Callable

_TRUE = {"1", "t", "true", "T", "TRUE", "True"}
_FALSE = {"0", "f", "false", "F", "FALSE", "False"}


def _one(name: str, raw: Any) -> Any:
    """A scalar field given twice (``a=1 a=2``) is ambiguous: refuse rather than guess."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise InvalidRequest(f"field {name!r} was given {len(raw)} times; give it once")
        return raw[0]
    return raw


class Field:
    """One field of a path: kind (string | bool | int | kvmap | commalist | choice), default,
    allowed values (choices, comma-list items or kvmap keys), bounds, and a description."""

    __slots__ = ("name", "kind", "description", "default", "allowed", "required", "secret_keys",
                 "pattern", "pattern_hint", "minimum", "maximum", "check")

    def __init__(self, name: str, kind: str, description: str, default: Any = None,
                 allowed: tuple[str, ...] | None = None, required: bool = False,
                 secret_keys: tuple[str, ...] = (), pattern: str | None = None, pattern_hint: str = "",
                 minimum: int | None = None, maximum: int | None = None,
                 check: Callable[[Any], None] | None = None):
        self.name, self.kind, self.description, self.default = name, kind, description, default
        self.allowed, self.required, self.secret_keys = allowed, required, secret_keys
        self.pattern, self.pattern_hint, self.minimum, self.maximum = pattern, pattern_hint, minimum, maximum
        self.check = check

    def parse(self, raw: Any) -> Any:
        value = getattr(self, "_parse_" + self.kind)(raw)
        if self.check is not None:
            self.check(value)
        return value

    # -- kinds ---------------------------------------------------------------------------------
    def _parse_string(self, raw: Any) -> str:
        raw = _one(self.name, raw)
        if not isinstance(raw, str):
            raise InvalidRequest(f"field {self.name!r} must be a string")
        self._match(raw)
        return raw

    def _parse_choice(self, raw: Any) -> str:
        raw = _one(self.name, raw)
        if not isinstance(raw, str) or raw not in (self.allowed or ()):
            shown = raw if isinstance(raw, str) else type(raw).__name__
            raise InvalidRequest(
                f"invalid {self.name} {_short(shown)!r}; allowed: {', '.join(self.allowed or ())}")
        return raw

    def _parse_bool(self, raw: Any) -> bool:
        raw = _one(self.name, raw)
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw in _TRUE | _FALSE:
            return raw in _TRUE
        raise InvalidRequest(f"field {self.name!r} must be a boolean (true or false), got {_short(str(raw))!r}")

    def _parse_int(self, raw: Any) -> int:
        raw = _one(self.name, raw)
        if isinstance(raw, bool):
            raise InvalidRequest(f"field {self.name!r} must be an integer")
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d{1,18}", raw.strip()):
            value = int(raw)
        else:
            raise InvalidRequest(f"field {self.name!r} must be an integer, got {_short(str(raw))!r}")
        if self.minimum is not None and value < self.minimum:
            raise InvalidRequest(f"field {self.name!r} must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidRequest(f"field {self.name!r} must be at most {self.maximum}, got {value}")
        return value

    def _parse_commalist(self, raw: Any) -> list[str]:
        items = raw if isinstance(raw, list) else [raw]
        out: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise InvalidRequest(f"field {self.name!r} must be a comma-separated list of strings")
            out.extend(part.strip() for part in item.split(",") if part.strip())
        for item in out:
            if self.allowed is not None and item not in self.allowed:
                raise InvalidRequest(
                    f"invalid {self.name} value {_short(item)!r}; allowed: {', '.join(self.allowed)}")
            self._match(item)
        # keep the user's order, drop repeats
        return list(dict.fromkeys(out))

    def _parse_kvmap(self, raw: Any) -> dict[str, str]:
        if isinstance(raw, dict):
            pairs = list(raw.items())
        else:
            pairs = []
            for item in raw if isinstance(raw, list) else [raw]:
                if not isinstance(item, str) or "=" not in item:
                    raise InvalidRequest(
                        f"field {self.name!r} takes key=value pairs, as {self.name}=KEY=VALUE")
                k, v = item.split("=", 1)
                pairs.append((k, v))
        out: dict[str, str] = {}
        for k, v in pairs:
            if self.allowed is not None and k not in self.allowed:
                raise InvalidRequest(
                    f"unknown {self.name} key {_short(str(k))!r}; allowed: {', '.join(self.allowed)}")
            if not isinstance(v, str):
                raise InvalidRequest(f"{self.name} value for {k!r} must be a string")
            if k in out:
                raise InvalidRequest(f"{self.name} key {k!r} given twice")
            out[k] = v
        return out

    def _match(self, value: str) -> None:
        if self.pattern and not re.fullmatch(self.pattern, value):
            hint = f" ({self.pattern_hint})" if self.pattern_hint else ""
            raise InvalidRequest(f"invalid {self.name} {_short(value)!r}{hint}")

    def describe_type(self) -> str:
        return {"kvmap": "map<string,string>", "commalist": "comma-separated list"}.get(self.kind, self.kind)


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "..."


def parse_fields(schema: dict[str, Field], data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Type ``data`` by ``schema``. Returns (values given, ignored field names in input order)."""
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for name, raw in data.items():
        spec = schema.get(name)
        if spec is None:
            ignored.append(name)
            continue
        values[name] = spec.parse(raw)
    return values, ignored


def ignored_warning(ignored: list[str]) -> str:
    # Vault sorts the names and prints the Go slice form: [a b]
    return "Endpoint ignored these unrecognized parameters: [" + " ".join(sorted(ignored)) + "]"
