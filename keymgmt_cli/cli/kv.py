"""Vault's DATA grammar, as go-secure-stdlib's kv-builder (builder.go) parses it; here and nowhere else.

    ""            an empty argument (an unset "$OPT") is ignored
    key=value     split on the first '='; a repeated key becomes a list
    key=@path     the value is the file's contents (``key=\\@x`` is the literal "@x")
    key=-         the value is stdin, exactly as given (once per command)
    -             a JSON object on stdin; its keys overwrite earlier ones
    @file.json    a JSON object from a file; its keys overwrite earlier ones

JSON numbers stay numbers as text (``JsonNumber``, Go's ``json.Number`` under ``UseNumber``), so
the engine's field schemas decode them as Vault's framework does. Errors name the argument and
the file, never a value or a file's contents (they may be secrets).
"""

from __future__ import annotations

import json
import re

from keymgmt_cli.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

SEP = "="
FILE_PREFIX = "@"
STDIN = "-"
MAX_INPUT_BYTES = 4 * 1024 * 1024  # a DATA value or JSON document larger than this is refused
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class JsonNumber(str):
    """A JSON number kept as its text, as Go's json.Number."""


def parse_data(args: list[str] | tuple[str, ...], stdin: IO[bytes] | IO[str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    stdin_used = False

    def read_stdin(what: str) -> str:
        nonlocal stdin_used
        if stdin is None:
            raise _error(what, "stdin is not supported")
        if stdin_used:
            raise _error(what, "stdin already consumed")
        stdin_used = True
        return _limited(stdin.read(MAX_INPUT_BYTES + 1), what, "stdin")

    for n, raw in enumerate(args, 1):
        if raw == "":
            continue  # builder.go: "Empty strings are fine, just ignored"
        key, sep, value = raw.partition(SEP)
        if not sep:
            what = f"argument {n}"
            if raw == STDIN:
                data.update(_json_object(read_stdin(what), what, "stdin"))
                continue
            if raw.startswith(FILE_PREFIX):
                data.update(_json_object(_read_file(raw[1:], what), what, raw[1:]))
                continue
            raise _error(what, "format must be key=value")
        what = f"{key!r}" if _PLAIN_KEY.fullmatch(key) else f"argument {n}"
        if value.startswith(FILE_PREFIX):
            value = _read_file(value[1:], what)
        elif value.startswith("\\@"):
            value = value[1:]
        elif value == STDIN:
            value = read_stdin(what)
        _add(data, key, value)
    return data


def _error(what: str, reason: str) -> UsageError:
    return UsageError(f"Failed to parse K=V data: invalid key/value pair ({what}): {reason}")


def _limited(raw: bytes | str, what: str, source: str) -> str:
    if len(raw) > MAX_INPUT_BYTES:
        raise _error(what, f"{source} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _error(what, f"{source} is not UTF-8 text") from None
    return raw


def _read_file(path: str, what: str) -> str:
    shown = path.encode("unicode_escape").decode("ascii") if not path.isprintable() else path  # one line
    try:
        with open(path, "rb") as handle:
            return _limited(handle.read(MAX_INPUT_BYTES + 1), what, shown)
    except UsageError:
        raise
    except IsADirectoryError:
        raise _error(what, f"error reading file {shown}: is a directory") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise _error(what, f"error reading file {shown or '(empty name)'}: {reason}") from None


def _json_object(text: str, what: str, source: str) -> dict[str, Any]:
    """The first JSON value of ``text`` (Go's Decoder.Decode ignores what follows), an object."""
    try:
        value, _end = json.JSONDecoder(parse_int=JsonNumber, parse_float=JsonNumber).raw_decode(
            text.lstrip(" \t\r\n"))
    except (ValueError, RecursionError) as error:
        detail = getattr(error, "msg", "invalid JSON")
        raise _error(what, f"{source} is not a JSON object ({detail})") from None
    if not isinstance(value, dict):
        raise _error(what, f"{source} must hold a JSON object")
    return value


def _add(data: dict[str, Any], key: str, value: str) -> None:
    """A repeated key becomes a list (mapstructure.WeakDecode lifts the first value into one)."""
    if key not in data:
        data[key] = value
    elif isinstance(data[key], list):
        data[key].append(value)
    elif data[key] is None:
        data[key] = [value]
    else:
        data[key] = [data[key], value]
