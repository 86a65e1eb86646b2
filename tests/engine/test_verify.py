"""Drift detection: change AWS behind the tool's back and expect `verify` to name each change."""

from __future__ import annotations

import pytest

from keymgmt_cli.engine.routing import Request
from keymgmt_cli.engine.verify import verify
from keymgmt_cli.providers.memory import MemoryKms


TS = 1700000000
ALIAS = f"alias/hashicorp/k-{TS}"


@pytest.fixture
def eng(twin_engine):
    engine = twin_engine
    for path, data in [("keymgmt/kms/aws1", {"provider": "awskms", "key_collection": "us-west-1"}),
                       ("keymgmt/key/k", {"type": "ecdsa-p256"}),
                       ("keymgmt/key/k/rotate", {}),
                       ("keymgmt/kms/aws1/key/k", {"purpose": "sign,verify"})]:
        engine.handle(Request("write", path, data))
    return engine


@pytest.fixture
def kms(world):
    return MemoryKms("us-west-1", world)


def versions(eng):
    return eng.handle(Request("read", "keymgmt/kms/aws1/key/k", {})).data["versions"]


def problems(eng, path=None):
    return [(d["version"], d["problem"]) for d in verify(eng, path)["drift"]]


def test_in_sync_after_a_clean_distribution(eng):
    result = verify(eng)
    assert result == {"in_sync": True, "distributions": 1, "kms_keys": 2, "drift": [], "unchecked": [],
                      "tag_search": [{"path": "keymgmt/kms/aws1", "note": "keys tagged as ours found "
                                      "with tag:GetResources in us-west-1"}], "conflicts": []}


def test_disabled_key_is_drift(eng, kms):
    kms.disable_key(versions(eng)["2"])
    assert problems(eng) == [(2, "is Disabled, expected Enabled (min_enabled_version 0)")]


def test_repointed_and_deleted_alias(eng, kms):
    v = versions(eng)
    kms.update_alias(ALIAS, v["1"])
    assert problems(eng) == [(2, f"alias {ALIAS} points to {v['1']}, expected version 2 ({v['2']})")]
    kms.delete_alias(ALIAS)
    assert problems(eng) == [(2, f"alias {ALIAS} is missing")]


def test_scheduled_deletion_is_drift(eng, kms):
    kms.schedule_key_deletion(versions(eng)["1"], 7)
    assert problems(eng) == [(1, "is PendingDeletion in AWS but in use in the state")]


def test_missing_key_and_changed_tag(eng, kms, world):
    v = versions(eng)
    world.find("us-west-1", v["1"]).tags["keymgmt:version"] = "9"
    world._delete(world.find("us-west-1", v["2"]))
    found = problems(eng)
    assert (1, "tag keymgmt:version is '9', expected '1'") in found
    assert (2, "missing in AWS") in found


def test_stray_key_tagged_as_ours(eng, kms):
    tags = {"keymgmt:state_id": eng.state_id(), "keymgmt:mount": "keymgmt/", "keymgmt:kms": "aws1",
            "keymgmt:key_name": "ghost", "keymgmt:version": "1"}
    stray = kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="x", tags=tags)
    result = verify(eng)
    assert [(d["key_id"], d["problem"]) for d in result["drift"]] == [
        (stray, "stray key tagged as ours that the state does not know (PendingImport)")]
    assert verify(eng, "keymgmt/kms/aws1/key/k")["in_sync"], "a narrower path does not look for strays"


def test_foreign_material_is_detected_by_public_key(eng, kms, world):
    from cryptography.hazmat.primitives.asymmetric import ec

    key = world.find("us-west-1", versions(eng)["2"])
    key.material = None  # pretend AWS holds another private key for this KMS key
    other = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    der = other.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    key.material = der
    key.associated = der
    assert (2, "GetPublicKey differs from the local public key: the material in KMS is not ours") in problems(eng)


def test_verify_paths(eng):
    assert verify(eng, "keymgmt/key/k")["distributions"] == 1
    assert verify(eng, "keymgmt/kms/aws1")["distributions"] == 1
    assert verify(eng, "keymgmt/")["distributions"] == 1
    from keymgmt_cli.errors import NotFound, UnsupportedPath

    with pytest.raises(NotFound):
        verify(eng, "keymgmt/key/nope")
    with pytest.raises(UnsupportedPath):
        verify(eng, "keymgmt/key/k/rotate")


def test_a_provider_that_cannot_be_asked_is_named_and_the_others_are_still_checked(eng, world, kms):
    """Issue 16 item 1: one unreachable provider (here every call refused in eu-west-1) no longer
    stops verify; it is reported as unchecked with its cause, and drift elsewhere is still found."""
    eng.handle(Request("write", "keymgmt/kms/far", {"provider": "awskms", "key_collection": "eu-west-1"}))
    eng.handle(Request("write", "keymgmt/kms/far/key/k", {"purpose": "sign,verify"}))
    kms.disable_key(versions(eng)["2"])  # drift in the provider that can be asked
    for op in ("DescribeKey", "ListResourceTags", "ListKeys", "GetPublicKey", "ListAliases"):
        world.fail_next(op, "UnrecognizedClientException", count=50, region="eu-west-1")
    result = verify(eng)
    assert result["in_sync"] is False
    assert [(d["path"], d["version"]) for d in result["drift"]] == [("keymgmt/kms/aws1/key/k", 2)]
    [unchecked] = result["unchecked"]
    assert (unchecked["path"], unchecked["region"]) == ("keymgmt/kms/far", "eu-west-1")
    assert "UnrecognizedClientException" in unchecked["cause"]


def test_unchecked_alone_is_not_in_sync(eng, world):
    eng.handle(Request("write", "keymgmt/kms/far", {"provider": "awskms", "key_collection": "eu-west-1"}))
    eng.handle(Request("write", "keymgmt/kms/far/key/k", {"purpose": "sign,verify"}))
    world.fail_next("DescribeKey", "UnrecognizedClientException", count=50, region="eu-west-1")
    result = verify(eng)
    assert result["drift"] == [] and result["in_sync"] is False and len(result["unchecked"]) == 1
