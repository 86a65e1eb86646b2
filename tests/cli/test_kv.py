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
    (["a=-"], b"piped\n", {"a": "piped"}),
    (["-"], b'{"type": "rsa-2048", "deletion_allowed": true}', {"type": "rsa-2048", "deletion_allowed": True}),
    (["x=1", "-"], b'{"x": "2"}', {"x": ["1", "2"]}),
    (["a=@"], None, {"a": "@"}),  # a bare @ is a literal
    (["email=me@example.com"], None, {"email": "me@example.com"}),
]


@pytest.mark.parametrize("args,stdin,expected", CASES)
def test_grammar(args, stdin, expected):
    assert parse_data(args, io.BytesIO(stdin) if stdin is not None else None) == expected


def test_file_value_and_json_file(files):
    data = parse_data([f"v=@{files / 'value.txt'}", f"@{files / 'obj.json'}"], None)
    assert data == {"v": "from-file\n", "type": "aes256-gcm96", "n": 3}


ERRORS = [
    (["novalue"], None, "Failed to parse K=V data: invalid key/value pair 'novalue'"),
    (["=value"], None, "invalid key/value pair '=value'"),
    (["a=-", "b=-"], b"x", "'b=-': stdin can be read only once"),
    (["a=-", "-"], b"x", "stdin can be read only once"),
    (["-"], b"[1,2]", "JSON input must be an object"),
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
    ("v=@{d}/missing.txt", "cannot read"),
    ("@{d}/list.json", "JSON input must be an object"),
    ("@{d}/bad.json", "not a JSON object"),
    ("v=@{d}", "is a directory"),
    ("v=@{d}/bin", "not UTF-8"),
])
def test_file_errors_quote_what_was_typed(files, item, message):
    typed = item.format(d=files)
    with pytest.raises(UsageError) as info:
        parse_data([typed], None)
    assert message in str(info.value)
    assert repr(typed) in str(info.value)
