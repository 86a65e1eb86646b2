"""Rough edges of issue 16 item 12 in the engine: articles before key types, the missing-purpose
hint that suggests only what the key type can take, and a removal that says when AWS deletes the
keys (ScheduleKeyDeletion's DeletionDate, here from the twin's clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keymgmt_cli.engine.keytypes import KEY_TYPES, missing_purpose, purpose_choices, with_article
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import InvalidRequest


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


@pytest.mark.parametrize("name,expected", [
    ("ecdsa-p384", "an ecdsa-p384"), ("rsa-2048", "an rsa-2048"), ("aes256-gcm96", "an aes256-gcm96"),
    ("hmac", "an hmac"), ("p-256", "a p-256"), ("", "a "),
])
def test_articles_follow_the_sound(name, expected):
    assert with_article(name) == expected


def test_refused_purpose_reads_an_ecdsa(aws1_engine):
    w(aws1_engine, "keymgmt/key/ec", type="ecdsa-p384")
    with pytest.raises(InvalidRequest) as caught:
        w(aws1_engine, "keymgmt/kms/aws1/key/ec", purpose="encrypt")
    assert str(caught.value) == "AWS KMS cannot honour purpose encrypt for an ecdsa-p384 key; allowed: sign,verify"


@pytest.mark.parametrize("key_type,hint", [
    ("ecdsa-p256", "give purpose=sign,verify for an ecdsa-p256 key"),
    ("aes256-gcm96", "give purpose=encrypt,decrypt for an aes256-gcm96 key"),
    ("rsa-3072", "give purpose=encrypt,decrypt or purpose=sign,verify for an rsa-3072 key"),
])
def test_the_missing_purpose_hint_suggests_what_the_key_can_take(aws1_engine, world, key_type, hint):
    w(aws1_engine, "keymgmt/key/k", type=key_type)
    world.calls.clear()
    with pytest.raises(InvalidRequest) as caught:
        w(aws1_engine, "keymgmt/kms/aws1/key/k", protection="hsm")
    assert str(caught.value) == f"missing required field 'purpose' ({hint})"
    assert world.calls == []
    for choice in purpose_choices(key_type):  # and every suggestion is accepted
        w(aws1_engine, "keymgmt/kms/aws1/key/k", purpose=choice)
        aws1_engine.handle(Request("delete", "keymgmt/kms/aws1/key/k"))


def test_the_hint_for_a_key_that_does_not_exist_lists_every_choice():
    assert missing_purpose(None) == "missing required field 'purpose' (give purpose=encrypt,decrypt or purpose=sign,verify)"
    assert set(purpose_choices(None)) == {c for t in KEY_TYPES for c in purpose_choices(t)}


def test_a_removal_says_when_aws_deletes_the_keys(aws1_engine, world):
    w(aws1_engine, "keymgmt/key/k", type="aes256-gcm96")
    w(aws1_engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", pending_window_days="9")
    aws1_engine.handle(Request("write", "keymgmt/key/k/rotate", {}))
    now = world.now()
    response = aws1_engine.handle(Request("delete", "keymgmt/kms/aws1/key/k"))
    [warning] = response.warnings
    when = (now + timedelta(days=9)).replace(microsecond=0)
    assert warning.startswith("AWS KMS deletes the 2 KMS key(s) on ")
    stamp = warning.split(" on ", 1)[1].split(" ", 1)[0]
    from keymgmt_cli.engine.durations import parse_time

    assert abs((parse_time(stamp) - when).total_seconds()) <= 2  # the twin's DeletionDate, 9 days out
    assert "(pending_window_days=9); until then 'aws kms cancel-key-deletion' can undo it" in warning
    assert aws1_engine.handle(Request("delete", "keymgmt/kms/aws1/key/k")).warnings == []  # re-run: nothing new


def test_a_multi_region_removal_says_the_primary_waits_for_its_replicas(aws1_engine, world):
    w(aws1_engine, "keymgmt/key/m", type="aes256-gcm96", replica_regions="us-east-1")
    w(aws1_engine, "keymgmt/kms/aws1/key/m", purpose="encrypt,decrypt", pending_window_days="7")
    aws1_engine.handle(Request("write", "keymgmt/kms/aws1/key/m/replicate", {}))
    [warning] = aws1_engine.handle(Request("delete", "keymgmt/kms/aws1/key/m")).warnings
    assert warning.startswith("AWS KMS deletes the 2 KMS key(s) from ")
    assert "each multi-Region primary 7 days after its last replica is gone" in warning
