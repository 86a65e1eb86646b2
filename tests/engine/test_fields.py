"""Field kinds (fields.py) on clear-cut inputs: bool, int, comma list, key=value map, choice and
string, plus ``parse_fields`` and the ignored-fields warning. Borderline decoding (whitespace,
weak typing) is left to the tests of the change that defines it."""

from __future__ import annotations

import pytest

from keymgmt_cli.engine.fields import Field, ignored_warning, parse_fields
from keymgmt_cli.engine.schemas import DIST_FIELDS, KEY_FIELDS, KMS_FIELDS
from keymgmt_cli.errors import InvalidRequest


@pytest.mark.parametrize("raw,value", [
    ("true", True), ("false", False), ("1", True), ("0", False), ("True", True), ("FALSE", False),
    (True, True), (False, False), (["true"], True),
])
def test_bool(raw, value):
    assert Field("b", "bool", "").parse(raw) is value


# Vault's framework decodes weakly: "" is false, JSON 1/0 are true/false (cli/ conformance tests cite it)
@pytest.mark.parametrize("raw,value", [("", False), (1, True), (0, False)])
def test_bool_weak_decoding(raw, value):
    assert Field("b", "bool", "").parse(raw) is value


@pytest.mark.parametrize("raw", ["yes", "no", "2", "on", None])
def test_bool_refusals(raw):
    with pytest.raises(InvalidRequest, match="field 'b' must be a boolean"):
        Field("b", "bool", "").parse(raw)


@pytest.mark.parametrize("raw,value", [("5", 5), ("0", 0), ("-3", -3), (7, 7), (["12"], 12)])
def test_int(raw, value):
    assert Field("n", "int", "").parse(raw) == value


# Weakly, as the framework: "" is 0, Go's ParseInt base 0 ("0x10" is 16), bools are 1/0
@pytest.mark.parametrize("raw,value", [("", 0), ("0x10", 16), (True, 1), (False, 0)])
def test_int_weak_decoding(raw, value):
    assert Field("n", "int", "").parse(raw) == value


@pytest.mark.parametrize("raw", ["5.0", "abc", "1e3", 1.5, "9" * 19])
def test_int_refusals(raw):
    with pytest.raises(InvalidRequest, match="field 'n' must be an integer"):
        Field("n", "int", "").parse(raw)


def test_int_bounds():
    field = Field("days", "int", "", minimum=7, maximum=30)
    assert (field.parse("7"), field.parse("30")) == (7, 30)
    with pytest.raises(InvalidRequest, match="field 'days' must be at least 7, got 6"):
        field.parse("6")
    with pytest.raises(InvalidRequest, match="field 'days' must be at most 30, got 31"):
        field.parse(31)


def test_a_scalar_given_twice_is_refused_not_guessed():
    for kind, raw in (("int", ["1", "2"]), ("bool", ["true", "false"]), ("string", ["a", "b"]),
                      ("choice", ["x", "x"])):
        with pytest.raises(InvalidRequest, match="was given 2 times; give it once"):
            Field("f", kind, "", allowed=("x",)).parse(raw)
    with pytest.raises(InvalidRequest, match="was given 0 times"):
        Field("f", "string", "").parse([])


@pytest.mark.parametrize("raw,value", [
    ("encrypt,decrypt", ["encrypt", "decrypt"]),
    (["decrypt", "encrypt"], ["decrypt", "encrypt"]),        # the user's order
    (["encrypt,decrypt", "encrypt"], ["encrypt", "decrypt"]),  # repeats dropped
    ("encrypt,,decrypt,", ["encrypt", "decrypt"]),            # empty items dropped
    ("", []),
])
def test_commalist(raw, value):
    assert DIST_FIELDS["purpose"].parse(raw) == value


def test_commalist_refusals():
    # errors name the field and what was expected, never the value (it may come from an @file)
    with pytest.raises(InvalidRequest, match="invalid purpose item; allowed: encrypt, decrypt") as caught:
        DIST_FIELDS["purpose"].parse("encrypt,sing")
    assert "sing" not in str(caught.value)
    with pytest.raises(InvalidRequest, match="invalid replica_regions \\(an AWS region") as caught:
        KEY_FIELDS["replica_regions"].parse("us-east-1,Mars-1")
    assert "Mars" not in str(caught.value)
    assert Field("l", "commalist", "").parse([1]) == ["1"]  # a JSON number is taken as its text


def test_kvmap():
    creds = KMS_FIELDS["credentials"]
    assert creds.parse(["access_key=A", "secret_key=b=c="]) == {"access_key": "A", "secret_key": "b=c="}
    assert creds.parse("endpoint=http://127.0.0.1:4566") == {"endpoint": "http://127.0.0.1:4566"}
    assert creds.parse({"access_key": "A"}) == {"access_key": "A"}
    assert creds.parse("access_key=") == {"access_key": ""}


@pytest.mark.parametrize("raw,message", [
    ("access_key", "takes key=value pairs, as credentials=KEY=VALUE"),
    (["access_key=A", "access_key=B"], "credentials key 'access_key' given twice"),
    ("region=us-east-1", "unknown credentials key; allowed: access_key, secret_key"),
    ([3], "takes key=value pairs"),
])
def test_kvmap_refusals(raw, message):
    with pytest.raises(InvalidRequest, match=message):
        KMS_FIELDS["credentials"].parse(raw)


def test_kvmap_errors_never_echo_a_value():
    with pytest.raises(InvalidRequest) as caught:
        KMS_FIELDS["credentials"].parse(["secret_key=s3cr3tVALUE", "secret_key=s3cr3tVALUE"])
    assert "s3cr3tVALUE" not in str(caught.value)


def test_choice():
    assert KEY_FIELDS["type"].parse("ecdsa-p384") == "ecdsa-p384"
    with pytest.raises(InvalidRequest, match="invalid type; allowed: aes256-gcm96, rsa-2048"):
        KEY_FIELDS["type"].parse("aes")
    with pytest.raises(InvalidRequest, match="invalid type; allowed"):
        KEY_FIELDS["type"].parse(5)


def test_messages_show_control_characters_escaped_and_long_values_cut():
    with pytest.raises(InvalidRequest) as caught:
        KEY_FIELDS["type"].parse("rsa-2048\n\x1b[2J")
    assert str(caught.value).isprintable() and "\x1b" not in str(caught.value)  # one line, no escape codes
    with pytest.raises(InvalidRequest) as caught:
        KEY_FIELDS["type"].parse("x" * 500)
    assert "xxxx" not in str(caught.value)  # the value is never echoed


def test_string_and_its_pattern():
    region = KMS_FIELDS["key_collection"]
    assert region.parse("us-gov-west-1") == "us-gov-west-1"
    for bad in ("us-west", "us_west_1", "us-west-1\n", "../us-west-1"):
        with pytest.raises(InvalidRequest, match="invalid key_collection .*an AWS region such as us-west-1"):
            region.parse(bad)
    with pytest.raises(InvalidRequest, match="invalid key_collection"):
        region.parse(5)  # weakly decoded to "5", which is no region


def test_a_check_runs_after_the_kind():
    seen = []
    field = Field("n", "int", "", check=seen.append)
    field.parse("4")
    assert seen == [4]
    with pytest.raises(InvalidRequest, match="valid_to needs a time zone"):
        DIST_FIELDS["valid_to"].parse("2099-01-01T00:00:00")
    with pytest.raises(InvalidRequest, match="must be in the future"):
        DIST_FIELDS["valid_to"].parse("2020-01-01T00:00:00Z")
    with pytest.raises(InvalidRequest, match="is neither a duration such as 90d nor an RFC 3339 time"):
        DIST_FIELDS["valid_to"].parse("tomorrow")


def test_parse_fields_types_what_it_knows_and_lists_the_rest_in_order():
    values, ignored = parse_fields(KEY_FIELDS, {"zeta": "1", "type": "aes256-gcm96", "alpha": "2",
                                                "deletion_allowed": "true", "min_enabled_version": "1"})
    assert values == {"type": "aes256-gcm96", "deletion_allowed": True, "min_enabled_version": 1}
    assert sorted(ignored) == ["alpha", "zeta"]
    assert ignored_warning(ignored) == "Endpoint ignored these unrecognized parameters: [alpha zeta]"  # sorted, as Vault
    assert parse_fields(KEY_FIELDS, {}) == ({}, [])  # defaults are the handlers', not filled in here


def test_describe_type():
    assert [Field("f", kind, "").describe_type() for kind in ("kvmap", "commalist", "int", "bool", "choice")] == \
        ["map<string,string>", "comma-separated list", "int", "bool", "choice"]


def test_an_empty_field_name_is_refused():
    with pytest.raises(InvalidRequest, match="empty field name"):
        parse_fields(KEY_FIELDS, {"": "x", "type": "aes256-gcm96"})
