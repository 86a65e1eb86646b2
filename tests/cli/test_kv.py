"""Vault's DATA grammar, tested directly as a table of cases (no CLI)."""

from __future__ import annotations

import io
import json

import pytest

from keymgmt_cli.cli.kv import MAX_INPUT_BYTES, parse_data
from keymgmt_cli.errors import UsageError


@pytest.fixture
def files(tmp_path):
    (tmp_path / "value.txt").write_text("from-file\n")
    (tmp_path / "obj.json").write_text(json.dumps({"type": "aes256-gcm96", "n": 3}))
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    return tmp_path


CASES = [
    # (args, stdin, expected)
    (["a=b"], None, {"a": "b"}),
    (["a=b=c"], None, {"a": "b=c"}),  # split on the first '='
    (["a="], None, {"a": ""}),
    (["credentials=access_key=AK", "credentials=secret_key=SK"], None,
     {"credentials": ["access_key=AK", "secret_key=SK"]}),
    (["a=1", "a=2", "a=3"], None, {"a": ["1", "2", "3"]}),
    (["purpose=encrypt,decrypt"], None, {"purpose": "encrypt,decrypt"}),
    (["a=-"], b"piped\n", {"a": "piped\n"}),  # kv-builder keeps stdin as given
    (["", "a=b", ""], None, {"a": "b"}),  # empty arguments (an unset "$OPT") are ignored
    (["a=\\@x"], None, {"a": "@x"}),  # \@ escapes a leading @
    (["=v"], None, {"": "v"}),  # kv-builder accepts an empty key (the engine then ignores it)
    (["-"], b'{"type": "rsa-2048", "deletion_allowed": true}', {"type": "rsa-2048", "deletion_allowed": True}),
    (["x=1", "-"], b'{"x": "2"}', {"x": "2"}),  # a JSON object overwrites earlier keys
    (["-", "x=1"], b'{"x": "2"}', {"x": ["2", "1"]}),  # and a later key=value appends
    (["email=me@example.com"], None, {"email": "me@example.com"}),
]


@pytest.mark.parametrize("args,stdin,expected", CASES)
def test_grammar(args, stdin, expected):
    assert parse_data(args, io.BytesIO(stdin) if stdin is not None else None) == expected


def test_file_value_and_json_file(files):
    data = parse_data([f"v=@{files / 'value.txt'}", f"@{files / 'obj.json'}"], None)
    assert data == {"v": "from-file\n", "type": "aes256-gcm96", "n": "3"}  # JSON numbers as text


ERRORS = [
    (["novalue"], None, "Failed to parse K=V data: invalid key/value pair (argument 1): format must be key=value"),
    (["a=@"], None, "error reading file (empty name)"),  # as kv-builder: "@" reads the file ""
    (["a=-", "b=-"], b"x", "('b'): stdin already consumed"),
    (["a=-", "-"], b"x", "stdin already consumed"),
    (["-"], b"[1,2]", "stdin must hold a JSON object"),
    (["-"], b"null", "stdin must hold a JSON object"),
    (["-"], b"{bad", "not a JSON object"),
    (["a=-"], b"\xff\xfe", "not UTF-8"),
    (["a=-"], b"x" * (MAX_INPUT_BYTES + 1), "larger than 4 MiB"),
]


@pytest.mark.parametrize("args,stdin,message", ERRORS)
def test_grammar_errors(args, stdin, message):
    with pytest.raises(UsageError) as info:
        parse_data(args, io.BytesIO(stdin) if stdin is not None else None)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("item,message", [
    ("v=@{d}/missing.txt", "error reading file"),
    ("@{d}/list.json", "must hold a JSON object"),
    ("@{d}/bad.json", "not a JSON object"),
    ("v=@{d}", "is a directory"),
    ("v=@{d}/bin", "not UTF-8"),
])
def test_file_errors_quote_what_was_typed(files, item, message):
    typed = item.format(d=files)
    with pytest.raises(UsageError) as info:
        parse_data([typed], None)
    assert message in str(info.value)
    assert str(files) in str(info.value)  # the file is named; what was typed after '=' is not echoed
