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

# strconv.ParseBool, which mapstructure's weak decoding uses for strings (and json.Number text)
_TRUE = {"1", "t", "true", "T", "TRUE", "True"}
_FALSE = {"0", "f", "false", "F", "FALSE", "False"}
_INT64 = (-(2**63), 2**63 - 1)
_GO_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)")
_GO_DIGITS = re.compile(r"[+-]?[0-9]+")


def _one(name: str, raw: Any) -> Any:
    """A scalar field given twice (``a=1 a=2``) is ambiguous: refuse rather than guess (mapstructure
    refuses to decode a list into a scalar too)."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise InvalidRequest(f"field {name!r} was given {len(raw)} times; give it once")
        return raw[0]
    return raw


def _is_json_number(raw: Any) -> bool:
    return type(raw).__name__ == "JsonNumber"  # cli.kv.JsonNumber (the engine does not import the CLI)


def go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64): sign, 0x/0o/0b prefixes, a leading 0 for octal, underscores
    between digits; no spaces. None when Go refuses."""
    if not _GO_INT.fullmatch(text) or "__" in text or text.endswith("_"):
        return None
    sign, body = (text[0], text[1:]) if text[0] in "+-" else ("", text)
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
        body = "0o" + body[1:].lstrip("_")  # Go's legacy octal
    try:
        value = int(sign + body, 0)
    except ValueError:
        return None
    return value if _INT64[0] <= value <= _INT64[1] else None


class Field:
    """One field of a path: kind (string | bool | int | kvmap | commalist | choice), default,
    allowed values (choices, comma-list items or kvmap keys), bounds, and a description.

    Values are decoded weakly, as Vault's framework (sdk/framework/field_data.go) decodes them with
    mapstructure.WeakDecode: "" is false or 0, bools and numbers become strings, JSON numbers work
    where their text does. The keymgmt plugin's own rules beyond the framework's are not public;
    where they are unknown the framework's apply. Errors name the field and what it takes, never
    the value given (it may have come from a file, and files may hold secrets).
    """

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
    def _string(self, raw: Any) -> str:
        """mapstructure's weak string: bools as "1"/"0", numbers as their text."""
        raw = _one(self.name, raw)
        if isinstance(raw, bool):
            return "1" if raw else "0"
        if isinstance(raw, int):
            return str(raw)
        if not isinstance(raw, str):
            raise InvalidRequest(f"field {self.name!r} must be a string")
        return str(raw)

    def _parse_string(self, raw: Any) -> str:
        value = self._string(raw)
        self._match(value)
        return value

    def _parse_choice(self, raw: Any) -> str:
        value = self._string(raw)
        if value not in (self.allowed or ()):
            raise InvalidRequest(f"invalid {self.name}; allowed: {', '.join(self.allowed or ())}")
        return value

    def _parse_bool(self, raw: Any) -> bool:
        """Weak bool: strconv.ParseBool of a string or JSON number's text, "" as false, ints as != 0."""
        raw = _one(self.name, raw)
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int):
            return raw != 0
        if isinstance(raw, str):
            if raw in _TRUE or raw in _FALSE:
                return raw in _TRUE
            if raw == "" and not _is_json_number(raw):
                return False
        raise InvalidRequest(f"field {self.name!r} must be a boolean (true, false, 1, 0 or empty)")

    def _parse_int(self, raw: Any) -> int:
        """Weak int: strconv.ParseInt(s, 0, 64) of a string ("" is 0), a JSON number's digits, a
        bool as 1/0."""
        raw = _one(self.name, raw)
        value: int | None = None
        if isinstance(raw, bool):
            value = int(raw)
        elif isinstance(raw, int):
            value = raw
        elif _is_json_number(raw):
            value = int(raw) if _GO_DIGITS.fullmatch(raw) else None  # json.Number.Int64: base 10
        elif isinstance(raw, str):
            value = 0 if raw == "" else go_parse_int(raw)
        if value is None or not _INT64[0] <= value <= _INT64[1]:
            raise InvalidRequest(f"field {self.name!r} must be an integer")
        if self.minimum is not None and value < self.minimum:
            raise InvalidRequest(f"field {self.name!r} must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidRequest(f"field {self.name!r} must be at most {self.maximum}, got {value}")
        return value

    def _parse_duration(self, raw: Any) -> int:
        """Seconds, as the framework's TypeDurationSecond: an integer or a duration such as 90d."""
        raw = _one(self.name, raw)
        if isinstance(raw, bool):
            raise InvalidRequest(f"field {self.name!r} must be a duration such as 90d")
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, str):
            from keymgmt_cli.engine.durations import parse_duration

            value = parse_duration(raw, f"field {self.name!r}")
        else:
            raise InvalidRequest(f"field {self.name!r} must be a duration such as 90d")
        from keymgmt_cli.engine.durations import MAX_DURATION

        if value < 0 or value > MAX_DURATION:
            raise InvalidRequest(f"field {self.name!r} must be between 0 and 100 years")
        return value

    def _parse_commalist(self, raw: Any) -> list[str]:
        """TypeCommaStringSlice (parseutil.ParseCommaStringSlice): a string split at commas, or a
        list of strings, items trimmed. Empty items and repeats are dropped (keymgmt's purposes)."""
        items = raw if isinstance(raw, list) else [raw]
        out: list[str] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise InvalidRequest(f"field {self.name!r} must be a comma-separated list of strings")
            out.extend(part.strip() for part in str(item).split(",") if part.strip())
        for item in out:
            if self.allowed is not None and item not in self.allowed:
                raise InvalidRequest(f"invalid {self.name} item; allowed: {', '.join(self.allowed)}")
            self._match(item)
        return list(dict.fromkeys(out))  # keep the user's order, drop repeats

    def _parse_kvmap(self, raw: Any) -> dict[str, str]:
        """A map, a list of KEY=VALUE strings (TypeKVPairs), or (keymgmt's addition, for
        ``credentials=@creds.json``) a string holding a JSON object."""
        if isinstance(raw, str) and raw.lstrip().startswith("{"):
            import json

            try:
                raw = json.loads(raw)
            except ValueError:
                raise InvalidRequest(f"field {self.name!r}: the JSON object given is not valid JSON") from None
            if not isinstance(raw, dict):
                raise InvalidRequest(f"field {self.name!r} takes a JSON object")
        if isinstance(raw, dict):
            pairs = list(raw.items())
        else:
            pairs = []
            for item in raw if isinstance(raw, list) else [raw]:
                if not isinstance(item, str) or "=" not in item or item.startswith("="):
                    raise InvalidRequest(
                        f"field {self.name!r} takes key=value pairs, as {self.name}=KEY=VALUE")
                k, v = item.split("=", 1)
                pairs.append((k, v))
        out: dict[str, str] = {}
        for k, v in pairs:
            if self.allowed is not None and k not in self.allowed:
                # the key is not echoed: a credential typed as the key would be shown (a known
                # name it is near to is safe to show)
                meant = near_miss(str(k), self.allowed)
                raise InvalidRequest(f"unknown {self.name} key; allowed: {', '.join(self.allowed)}",
                                     hint=f'did you mean "{meant}"?' if meant else None)
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise InvalidRequest(f"{self.name} value for {k!r} must be a string")
            v = str(v)
            if v == "-" or v.startswith("@"):
                raise InvalidRequest(
                    f"{self.name} value for {k!r} would be stored as the literal text {'-' if v == '-' else '@...'}: "
                    f"{self.name}={k}=- does not read stdin nor {self.name}={k}=@FILE a file (only a whole "
                    "value does, as in Vault)",
                    hint=f"pass {self.name} as JSON: {self.name}=@creds.json, or a JSON object on stdin "
                         f"with '-' ({{\"{self.name}\": {{\"{k}\": \"...\"}}}})")
            if k in out:
                raise InvalidRequest(f"{self.name} key {k!r} given twice")
            out[k] = v
        return out

    def _match(self, value: str) -> None:
        if self.pattern and not re.fullmatch(self.pattern, value):
            hint = f" ({self.pattern_hint})" if self.pattern_hint else ""
            raise InvalidRequest(f"invalid {self.name}{hint}")

    def describe_type(self) -> str:
        return {"kvmap": "map<string,string>", "commalist": "comma-separated list"}.get(self.kind, self.kind)


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and transpositions
    of two adjacent characters (``tpye`` is one edit from ``type``) each cost 1."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def near_miss(name: str, known: Any) -> str | None:
    """The one known name ``name`` is most likely a misspelling of, or None. A near miss is at most
    one edit away (two for names of 8 characters or more), ignoring case and ``-``/``_``; when two
    known names are equally near, neither is suggested (a guess could be the wrong one)."""
    def norm(text: str) -> str:
        return text.lower().replace("-", "_")

    given = norm(name)
    limit = 2 if len(given) >= 8 else 1
    best: list[tuple[int, str]] = sorted((edit_distance(given, norm(k)), k) for k in known)
    best = [(d, k) for d, k in best if d <= limit]
    if not best or (len(best) > 1 and best[0][0] == best[1][0]):
        return None
    return best[0][1]


def parse_fields(schema: dict[str, Field], data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Type ``data`` by ``schema``. Returns (values given, ignored field names in input order).

    An unknown field is ignored with Vault's warning, unless it is a near miss of one of this
    path's fields (``tpye=aes256-gcm96``): that one is refused, before anything changes, because
    Vault's warning comes after the damage (a key created as rsa-2048 whose type can never change).
    A deliberate difference from Vault (README)."""
    values: dict[str, Any] = {}
    ignored: list[str] = []
    if "" in data:  # Vault would ignore it with a warning naming "[]"; surely a mistake (=value)
        raise InvalidRequest("a DATA item has an empty field name (as in =value); give key=value")
    for name in data:
        if name not in schema:
            meant = near_miss(name, schema)
            if meant is not None:
                raise InvalidRequest(f"unknown field {name[:64]!r}: did you mean \"{meant}\"?")
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
