"""State documents as JSON, parsed and canonically encoded through ``_json`` without importing ``json``.

Why: every ``read`` and ``list`` parses a few state documents and, with the master key at hand,
encodes them canonically to check their MACs; ``import json`` costs about four fifths of a bare
interpreter start-up (bench/README.md), nearly all of it because ``json.decoder`` and
``json.encoder`` import ``re`` (with ``enum``, ``functools``, ``collections``, ...) to compile
patterns that only their pure-Python fallbacks use. The work itself is done by CPython's C
accelerator ``_json`` in either case: ``json.loads`` runs the scanner
``_json.make_scanner(decoder)`` and ``json.dumps`` with ``indent=None`` runs
``_json.make_encoder(...)``; this module calls the same two objects with the arguments ``json``
gives them (a private module, but the very one ``json`` uses; where it is missing, ``json`` does
everything).

So the results are ``json``'s, byte for byte: ``loads(text) == json.loads(text)`` and
``canonical(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
allow_nan=False)``. Whatever ``json`` refuses is handed to ``json`` itself (imported then), so the
error is its own exception with its own message: invalid JSON is ``json.JSONDecodeError``, a
value JSON cannot hold a ``TypeError`` or ``ValueError``. ``tests/store/test_docjson.py`` checks
both against ``json`` on arbitrary documents and arbitrary text, with and without ``_json``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    from _json import encode_basestring_ascii as _encode_string
    from _json import make_encoder as _make_encoder
    from _json import make_scanner as _make_scanner
except ImportError:  # a Python without the accelerator: json's pure-Python code does it all
    _make_scanner = _make_encoder = _encode_string = None

_WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE: what may surround the document


class _DecoderSettings:
    """What the C scanner reads from ``json.JSONDecoder()`` (``scanner_new`` in ``_json.c``), as
    ``json.loads`` sets it: strict strings, plain dicts, ``float``/``int``, and ``NaN``,
    ``Infinity``, ``-Infinity`` accepted as ``json.decoder._CONSTANTS`` maps them."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _make_scanner(_DecoderSettings) if _make_scanner is not None else None


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``."""
    if _scan is None:
        return _json_loads(text)
    if not isinstance(text, str):
        if not isinstance(text, (bytes, bytearray)) or _not_plain_utf8(text):
            return _json_loads(text)  # json's detect_encoding (UTF-16/32, a BOM) or its TypeError
        text = text.decode("utf-8", "surrogatepass")  # what json.loads does with UTF-8 bytes
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:  # no value here (a BOM included): json says "Expecting value" or names the BOM
        return _json_loads(text)
    if text[end:].strip(_WHITESPACE):
        return _json_loads(text)  # "Extra data"
    return value


def _not_plain_utf8(data: bytes | bytearray) -> bool:
    """True unless json's ``detect_encoding`` surely says UTF-8: a BOM or a NUL among the first
    four bytes is UTF-16/32 (or UTF-8 with a BOM) to json, which then decodes it itself."""
    return b"\x00" in data[:4] or data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"))


def canonical(doc: Any) -> str:
    """``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    allow_nan=False)``: the text a document's MAC covers."""
    if _make_encoder is None:
        return _json_dumps_canonical(doc)
    if isinstance(doc, str):
        return _encode_string(doc)  # JSONEncoder.encode's shortcut for a bare string
    # JSONEncoder.iterencode(_one_shot=True) with these settings: a fresh markers dict per call
    # (check_circular), the encoder that refuses what JSON cannot hold, no indent, ":" and ",",
    # sort_keys, no skipkeys, no NaN
    encode = _make_encoder({}, _unserializable, _encode_string, None, ":", ",", True, False, False)
    try:
        return "".join(encode(doc, 0))
    except Exception:  # noqa: BLE001 - not JSON (a set, NaN, a cycle, ...): json raises its own error
        return _json_dumps_canonical(doc)


def _unserializable(value: Any) -> Any:
    """``JSONEncoder.default``: a value JSON cannot hold (``canonical`` then asks json for its error)."""
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _json_loads(text: Any) -> Any:
    import json

    return json.loads(text)


def _json_dumps_canonical(doc: Any) -> str:
    import json

    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
