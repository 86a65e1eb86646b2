"""store/docjson.py is json, byte for byte: the same values from the same text, the same canonical
text from the same document, and the same refusal (exception type and message) of whatever json
refuses; with the _json accelerator and without it."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keymgmt_cli.store import docjson

REPO = Path(__file__).resolve().parents[2]
CANONICAL = dict(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)

# Any code point, lone surrogates included (json escapes them; ensure_ascii=False writes them raw).
chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())
strings = st.text(chars, max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-2**200, max_value=2**200),
                    st.floats(allow_nan=True, allow_infinity=True), strings)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)), max_leaves=20)
finite_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), strings),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)), max_leaves=20)
# What json.dumps may also meet: keys it converts (int, float, bool, None) or refuses (tuple), keys
# it cannot sort together, tuples (written as lists), and values JSON cannot hold.
odd_keys = st.one_of(strings, st.integers(), st.floats(), st.booleans(), st.none(), st.just((1, 2)))
odd_scalars = st.one_of(scalars, st.just({1, 2}), st.just(b"bytes"), st.just(object()), st.just(1j))
odd_values = st.recursive(odd_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(odd_keys, inner, max_size=4)), max_leaves=20)


def outcome(call, *args):
    """What a call gives: ("ok", repr of the value) or (exception type, message). repr tells
    1 from 1.0 and -0.0 from 0.0, and NaN equals NaN in it."""
    try:
        return ("ok", type(value := call(*args)), repr(value))
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        details = (error.msg, error.pos, error.lineno, error.colno) if isinstance(error, json.JSONDecodeError) else ()
        return (type(error), str(error), details)


@given(json_values)
def test_canonical_is_json_dumps_of_any_document(doc):
    """The same text, or (NaN, infinities) the same refusal."""
    assert outcome(docjson.canonical, doc) == outcome(lambda d: json.dumps(d, **CANONICAL), doc)


@given(st.dictionaries(strings, finite_values, max_size=6))
def test_canonical_of_a_document_is_its_sorted_compact_ascii_text(doc):
    text = docjson.canonical(doc)
    assert text == json.dumps(doc, **CANONICAL) and text.isascii()
    assert outcome(json.loads, text) == outcome(json.loads, json.dumps(doc, sort_keys=True))


@given(odd_values)
def test_canonical_refuses_what_json_refuses_with_json_s_error(value):
    assert outcome(docjson.canonical, value) == outcome(lambda v: json.dumps(v, **CANONICAL), value)


def test_canonical_refuses_nan_and_cycles_as_json_does():
    loop: list = []
    loop.append(loop)
    for value in (float("nan"), {"a": float("inf")}, loop, {"k": {1, 2}}, {"a": 1, 2: "b"}):
        got = outcome(docjson.canonical, value)
        assert got[0] in (ValueError, TypeError) and got == outcome(lambda v: json.dumps(v, **CANONICAL), value)


def test_a_failed_encoding_leaves_nothing_behind():
    """Each call has its own circular-reference markers: a refused document does not make the
    next one look circular."""
    inner = {"x": 1}
    assert outcome(docjson.canonical, {"a": inner, "b": {1}})[0] is TypeError
    assert docjson.canonical({"a": inner, "c": inner}) == '{"a":{"x":1},"c":{"x":1}}'


@st.composite
def json_texts(draw):
    """Text json.dumps can write (every indent, separator and ASCII setting), with whitespace
    around it, sometimes damaged: a character inserted, dropped or replaced."""
    value = draw(json_values)
    text = json.dumps(value, indent=draw(st.sampled_from([None, 0, 1, 2, "\t"])),
                      ensure_ascii=draw(st.booleans()), sort_keys=draw(st.booleans()),
                      separators=draw(st.sampled_from([None, (",", ":"), (", ", ": ")])))
    ws = st.text(st.sampled_from(" \t\n\r"), max_size=3)
    text = draw(ws) + text + draw(ws)
    damage = draw(st.sampled_from(["none", "insert", "drop", "replace"]))
    if damage != "none" and text:
        at = draw(st.integers(0, len(text) - 1))
        c = draw(st.one_of(st.sampled_from(list('{}[]",:0-.eE\\ntfu \x00\ufeff')), chars))
        text = {"insert": text[:at] + c + text[at:], "drop": text[:at] + text[at + 1:],
                "replace": text[:at] + c + text[at + 1:]}[damage]
    return text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts())
def test_loads_is_json_loads_of_json_like_text(text):
    assert outcome(docjson.loads, text) == outcome(json.loads, text)


@given(st.text(chars, max_size=40))
def test_loads_is_json_loads_of_any_text(text):
    assert outcome(docjson.loads, text) == outcome(json.loads, text)


@given(st.one_of(
    st.binary(max_size=40),
    st.tuples(json_values, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
                                            "utf-32", "utf-32-le", "utf-32-be"]))
      .map(lambda ve: json.dumps(ve[0], ensure_ascii=False).encode(ve[1], "surrogatepass"))))
def test_loads_is_json_loads_of_any_bytes(data):
    """Bytes are decoded as json decodes them (UTF-8, or UTF-16/32 by json's detect_encoding)."""
    assert outcome(docjson.loads, data) == outcome(json.loads, data)
    assert outcome(docjson.loads, bytearray(data)) == outcome(json.loads, bytearray(data))


def test_loads_refuses_what_json_refuses_with_json_s_error():
    for text in ("", "  ", "\ufeff{}", " \ufeff{}", "{} x", "{", '{"a": 1,}', "[1, 2", "nul", '"\x01"', "1" * 5000,
                 "\f{}", "{}\f", "\x0b1", "1\u00a0", "\u3000[]", "[]\x00", None, 3):
        got, want = outcome(docjson.loads, text), outcome(json.loads, text)
        assert got == want and got[0] != "ok", text


def test_loads_accepts_what_json_accepts_beyond_the_spec():
    for text in ("NaN", "[Infinity, -Infinity]", ' {"a": 1, "a": 2} ', "1e400", "-0.0", "\n[]\r\n",
                 b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16")):
        assert outcome(docjson.loads, text) == outcome(json.loads, text)
        assert outcome(docjson.loads, text)[0] == "ok"


def test_without_the_accelerator_docjson_is_json():
    """A Python without _json: docjson hands everything to json's pure-Python code."""
    code = textwrap.dedent("""
        import sys
        sys.modules["_json"] = None  # import _json now raises ImportError
        import json
        from keymgmt_cli.store import docjson
        assert docjson._scan is None and docjson._make_encoder is None
        doc = {"b": [1, 2.5, None, True], "a": "\\u00e9\\ud800", "c": {"z": 1, "y": -0.0}}
        assert docjson.canonical(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":"),
                                                    ensure_ascii=True, allow_nan=False)
        text = json.dumps(doc, indent=2)
        assert docjson.loads(text) == json.loads(text) and docjson.loads(text.encode()) == doc
        try:
            docjson.loads("{")
        except json.JSONDecodeError as error:
            assert error.msg.startswith("Expecting property name")
        else:
            raise AssertionError("invalid JSON accepted")
        print("fallback ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fallback ok"


def test_docjson_does_not_import_json():
    """(json imports re; tests/store/test_store_imports.py pins what the whole read path imports.)"""
    code = textwrap.dedent("""
        import sys
        from keymgmt_cli.store import docjson
        doc = docjson.loads('{"b": [1, 2.5], "a": "x"}')
        assert docjson.canonical(doc) == '{"a":"x","b":[1,2.5]}'
        print(sorted(m for m in ("json", "json.decoder", "json.encoder", "json.scanner") if m in sys.modules))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
