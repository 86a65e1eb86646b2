"""Vault's DATA grammar, parsed here and nowhere else.

    key=value     split on the first '='; a repeated key becomes a list
    key=@path     the value is the file's contents
    key=-         the value is stdin (once per command)
    -             a JSON object on stdin, merged in
    @file.json    a JSON object from a file, merged in

The CLI produces only strings and lists (and what a JSON object holds); the engine's field
schemas type them. Every error quotes what the user typed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from keymgmt_cli.errors import UsageError

SEP = "="
FILE_PREFIX = "@"
STDIN = "-"
MAX_INPUT_BYTES = 4 * 1024 * 1024  # a DATA value or JSON document larger than this is refused


@dataclass(frozen=True)
class Item:
    """One DATA argument as typed, and what it means."""

    orig: str
    key: str | None  # None for a merged JSON object (- or @file.json)
    source: str  # "literal" | "file" | "stdin"
    value: str  # literal value, or the file path


def parse_item(arg: str) -> Item:
    if arg == STDIN:
        return Item(arg, None, "stdin", "")
    if arg.startswith(FILE_PREFIX) and SEP not in arg:
        return Item(arg, None, "file", arg[1:])
    key, sep, value = arg.partition(SEP)
    if not sep or not key:
        raise UsageError(f"Failed to parse K=V data: invalid key/value pair {arg!r}")
    if value == STDIN:
        return Item(arg, key, "stdin", "")
    if value.startswith(FILE_PREFIX) and len(value) > 1:
        return Item(arg, key, "file", value[1:])
    return Item(arg, key, "literal", value)


def parse_data(args: list[str] | tuple[str, ...], stdin: IO[bytes] | IO[str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    stdin_used = False

    def read_stdin(item: Item) -> str:
        nonlocal stdin_used
        if stdin_used:
            raise UsageError(f"Failed to parse K=V data: {item.orig!r}: stdin can be read only once")
        stdin_used = True
        if stdin is None:
            raise UsageError(f"Failed to parse K=V data: {item.orig!r}: no stdin")
        return _limited(stdin.read(MAX_INPUT_BYTES + 1), item.orig)

    for arg in args:
        item = parse_item(arg)
        if item.source == "literal":
            text = item.value
        elif item.source == "stdin":
            text = read_stdin(item)
        else:
            text = _read_file(item)
        if item.key is None:
            _merge(data, _json_object(text, item.orig))
            continue
        if item.source == "stdin" and text.endswith("\n"):
            text = text[:-1]  # `echo v | keymgmt write P k=-` means "v", as Vault
        _add(data, item.key, text)
    return data


def _limited(raw: bytes | str, orig: str) -> str:
    if len(raw) > MAX_INPUT_BYTES:
        raise UsageError(f"Failed to parse K=V data: {orig!r}: input larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"Failed to parse K=V data: {orig!r}: input is not UTF-8 text") from None
    return raw


def _read_file(item: Item) -> str:
    path = Path(item.value)
    try:
        with path.open("rb") as handle:
            return _limited(handle.read(MAX_INPUT_BYTES + 1), item.orig)
    except UsageError:
        raise
    except IsADirectoryError:
        raise UsageError(f"Failed to parse K=V data: {item.orig!r}: {item.value} is a directory") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(f"Failed to parse K=V data: {item.orig!r}: cannot read {item.value}: {reason}") from None


def _json_object(text: str, orig: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        detail = getattr(error, "msg", "invalid JSON")
        raise UsageError(f"Failed to parse K=V data: {orig!r}: not a JSON object ({detail})") from None
    if not isinstance(value, dict):
        raise UsageError(f"Failed to parse K=V data: {orig!r}: JSON input must be an object")
    return value


def _merge(data: dict[str, Any], obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        _add(data, key, value)


def _add(data: dict[str, Any], key: str, value: Any) -> None:
    if key not in data:
        data[key] = value
    elif isinstance(data[key], list):
        data[key].append(value)
    else:
        data[key] = [data[key], value]
