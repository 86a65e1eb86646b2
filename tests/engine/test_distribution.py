"""Distribution, rotation, min_enabled_version, removal and replication on the in-memory twins.

The KMS twin really unwraps what the engine wraps and checks material against the key spec, so
these tests also prove that each version's KMS key holds that version's material.
"""

from __future__ import annotations

import pytest

from keymgmt_cli.engine.sealing import unseal_material
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import EngineError, InvalidRequest, PreconditionFailed, ProviderError
from keymgmt_cli.providers.memory import MemoryKms


TS = 1700000000


@pytest.fixture
def eng(twin_engine):
    engine = twin_engine
    engine.handle(Request("write", "keymgmt/kms/aws1", {"provider": "awskms", "key_collection": "us-west-1"}))
    return engine


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def r(engine, path):
    return engine.handle(Request("read", path, {})).data


def kms_key(world, region, key_id):
    return world.find(region, key_id)


def test_distribute_makes_three_calls_per_version_and_one_alias(eng, world):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    assert world.calls == ["CreateKey", "GetParametersForImport", "ImportKeyMaterial", "CreateAlias"]
    data = r(eng, "keymgmt/kms/aws1/key/k")
    assert data["name"] == f"k-{TS}" and data["purpose"] == "encrypt,decrypt" and data["protection"] == "hsm"
    key_id = data["versions"]["1"]
    key = kms_key(world, "us-west-1", key_id)
    assert key.state == "Enabled" and key.key_spec == "SYMMETRIC_DEFAULT" and key.key_usage == "ENCRYPT_DECRYPT"
    assert key.origin == "EXTERNAL"
    assert key.tags["keymgmt:key_name"] == "k" and key.tags["keymgmt:version"] == "1"
    assert key.tags["keymgmt:kms"] == "aws1" and key.tags["keymgmt:mount"] == "keymgmt/"
    assert world.region("us-west-1").aliases == {f"alias/hashicorp/k-{TS}": key_id}
    mount, _ = eng.resolve("keymgmt/key/k")
    doc = eng.store.get(mount.doc("keys", "k"))
    assert key.material == unseal_material(eng, mount, "k", doc, 1)


def test_distribute_several_versions_with_min_enabled(eng, world):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/key/k", min_enabled_version="2")
    w(eng, "keymgmt/kms/aws1/key/k", purpose=["encrypt", "decrypt"])
    assert world.calls == ["CreateKey", "GetParametersForImport", "ImportKeyMaterial"] * 3 + \
        ["CreateAlias", "DisableKey"]
    versions = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    states = {v: kms_key(world, "us-west-1", k).state for v, k in versions.items()}
    assert states == {"1": "Disabled", "2": "Enabled", "3": "Enabled"}
    materials = {kms_key(world, "us-west-1", k).material for k in versions.values()}
    assert len(materials) == 3


def test_rotate_imports_new_key_and_repoints_alias(eng, world):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    world.calls.clear()
    w(eng, "keymgmt/key/k/rotate")
    assert world.calls == ["CreateKey", "GetParametersForImport", "ImportKeyMaterial", "UpdateAlias"]
    versions = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    assert world.region("us-west-1").aliases[f"alias/hashicorp/k-{TS}"] == versions["2"]
    assert kms_key(world, "us-west-1", versions["1"]).state == "Enabled"  # old versions still decrypt
    assert r(eng, "keymgmt/key/k")["latest_version"] == 2


def test_min_enabled_version_disables_and_enables(eng, world):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    versions = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    world.calls.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    # then the converging reads (engine/converge.py): nothing else to write
    assert [c for c in world.calls if c not in ("DescribeKey", "ListResourceTags", "ListAliases")] == ["DisableKey"]
    assert kms_key(world, "us-west-1", versions["1"]).state == "Disabled"
    world.calls.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=2)  # no change: reads only (it converges), no write
    assert set(world.calls) == {"DescribeKey", "ListResourceTags", "ListAliases"}
    world.calls.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=0)
    assert [c for c in world.calls if c not in ("DescribeKey", "ListResourceTags", "ListAliases")] == ["EnableKey"]
    assert kms_key(world, "us-west-1", versions["1"]).state == "Enabled"


@pytest.mark.parametrize("key_type,purpose", [
    ("aes256-gcm96", "sign"), ("aes256-gcm96", "encrypt,sign"), ("ecdsa-p256", "encrypt"),
    ("rsa-2048", "encrypt,sign"), ("rsa-2048", "wrap"), ("aes256-gcm96", "unwrap"),
])
def test_purposes_aws_cannot_honour_are_refused_before_any_call(eng, world, key_type, purpose):
    w(eng, "keymgmt/key/k", type=key_type)
    with pytest.raises(InvalidRequest, match="AWS KMS cannot honour purpose"):
        w(eng, "keymgmt/kms/aws1/key/k", purpose=purpose)
    assert world.calls == []
    assert eng.store.list(eng.resolve("keymgmt/key")[0].doc("dist", "aws1")) == []


@pytest.mark.parametrize("key_type,purpose,spec,usage", [
    ("rsa-2048", "sign,verify", "RSA_2048", "SIGN_VERIFY"),
    ("rsa-3072", "encrypt,decrypt", "RSA_3072", "ENCRYPT_DECRYPT"),
    ("ecdsa-p384", "sign", "ECC_NIST_P384", "SIGN_VERIFY"),
    ("ecdsa-p521", "sign,verify", "ECC_NIST_P521", "SIGN_VERIFY"),
])
def test_asymmetric_distribution_imports_the_private_key(eng, world, key_type, purpose, spec, usage):
    w(eng, "keymgmt/key/k", type=key_type)
    w(eng, "keymgmt/kms/aws1/key/k", purpose=purpose)
    key_id = r(eng, "keymgmt/kms/aws1/key/k")["versions"]["1"]
    key = kms_key(world, "us-west-1", key_id)
    assert (key.key_spec, key.key_usage, key.state) == (spec, usage, "Enabled")
    from cryptography.hazmat.primitives import serialization

    public_pem = r(eng, "keymgmt/key/k")["keys"]["1"]["public_key"]
    local = serialization.load_pem_public_key(public_pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert MemoryKms("us-west-1", world).get_public_key(key_id) == local


def test_remove_deletes_alias_and_schedules_deletion_then_redistribute(eng, world):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    old = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    world.calls.clear()
    eng.handle(Request("delete", "keymgmt/kms/aws1/key/k", {"pending_window_days": "7"}))
    assert world.calls == ["DeleteAlias", "ScheduleKeyDeletion", "ScheduleKeyDeletion"]
    assert all(kms_key(world, "us-west-1", k).state == "PendingDeletion" for k in old.values())
    assert all(kms_key(world, "us-west-1", k).pending_window == 7 for k in old.values())
    assert world.region("us-west-1").aliases == {}
    assert r(eng, "keymgmt/key/k")["latest_version"] == 2  # still in keymgmt
    eng.handle(Request("delete", "keymgmt/kms/aws1/key/k", {}))  # re-running is safe
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    new = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    assert set(new.values()).isdisjoint(old.values())


def test_preconditions_around_distribution(eng, world):
    w(eng, "keymgmt/key/k", type="aes256-gcm96", deletion_allowed="true")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    with pytest.raises(PreconditionFailed, match="still distributed"):
        eng.handle(Request("delete", "keymgmt/key/k", {}))
    with pytest.raises(PreconditionFailed, match="still holds distributed keys: k"):
        eng.handle(Request("delete", "keymgmt/kms/aws1", {}))
    with pytest.raises(PreconditionFailed, match="cannot be changed after distribution"):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert eng.handle(Request("list", "keymgmt/key/k/kms", {})).data == {"keys": ["aws1"]}
    assert eng.handle(Request("list", "keymgmt/kms/aws1/key", {})).data == {"keys": ["k"]}
    eng.handle(Request("delete", "keymgmt/kms/aws1/key/k", {}))
    eng.handle(Request("delete", "keymgmt/key/k", {}))
    eng.handle(Request("delete", "keymgmt/kms/aws1", {}))


# -- failures halfway ------------------------------------------------------------------------------


@pytest.mark.parametrize("position", range(8))
@pytest.mark.parametrize("code", ["KMSInternalException", "ThrottlingException"])
def test_failure_at_any_call_then_rerun_ends_like_a_clean_run(eng, world, position, code):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    # a clean run's call sequence: 2 versions, alias, DisableKey v1
    clean = ["CreateKey", "GetParametersForImport", "ImportKeyMaterial"] * 2 + ["CreateAlias", "DisableKey"]
    operation = clean[position]
    nth = clean[:position + 1].count(operation)
    # fail the nth occurrence: let the earlier ones through
    original = getattr(MemoryKms, _method(operation))
    seen = {"n": 0}

    def failing(self, *args, **kwargs):
        seen["n"] += 1
        if seen["n"] == nth:
            raise ProviderError(f"AWS KMS {operation} failed: {code}", code=code)
        return original(self, *args, **kwargs)

    setattr(MemoryKms, _method(operation), failing)
    try:
        with pytest.raises(ProviderError):
            w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    finally:
        setattr(MemoryKms, _method(operation), original)
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")  # the re-run finishes the job
    versions = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    keys = world.all_keys()
    assert len(keys) == 2, "no orphaned or duplicate KMS keys"
    assert {k.key_id for k in keys} == set(versions.values())
    assert {v: kms_key(world, "us-west-1", k).state for v, k in versions.items()} == \
        {"1": "Disabled", "2": "Enabled"}
    assert world.region("us-west-1").aliases == {f"alias/hashicorp/k-{TS}": versions["2"]}
    assert eng.status()["unfinished"] == []


def _method(operation: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def test_interrupted_rotation_is_finished_by_the_rerun_not_repeated(eng, world):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    world.fail_next("ImportKeyMaterial", "KMSInternalException")
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/key/k/rotate")
    [entry] = eng.status()["unfinished"]
    assert (entry["operation"], entry["version"], entry["path"]) == ("rotate", 2, "keymgmt/key/k")
    assert entry["finish"] == "keymgmt write -f keymgmt/key/k/rotate"
    assert entry["abandon"] == "keymgmt delete keymgmt/key/k/rotate" and entry["since"]
    response = w(eng, "keymgmt/key/k/rotate")
    assert "finished the interrupted rotation to version 2" in response.warnings[0]
    assert r(eng, "keymgmt/key/k")["latest_version"] == 2
    assert len(world.all_keys()) == 2
    assert eng.status()["unfinished"] == []


def test_rotation_reaches_every_provider(eng, world):
    for n, region in enumerate(["us-east-1", "eu-west-1", "ap-south-1"]):
        w(eng, f"keymgmt/kms/p{n}", provider="awskms", key_collection=region)
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    for kms in ["aws1", "p0", "p1", "p2"]:
        w(eng, f"keymgmt/kms/{kms}/key/k", purpose="encrypt,decrypt")
    world.calls.clear()
    w(eng, "keymgmt/key/k/rotate")
    assert sorted(world.calls) == sorted(["CreateKey", "GetParametersForImport", "ImportKeyMaterial",
                                          "UpdateAlias"] * 4)
    for kms, region in [("aws1", "us-west-1"), ("p0", "us-east-1"), ("p1", "eu-west-1"), ("p2", "ap-south-1")]:
        versions = r(eng, f"keymgmt/kms/{kms}/key/k")["versions"]
        assert world.region(region).aliases[f"alias/hashicorp/k-{TS}"] == versions["2"]


def test_one_provider_failing_leaves_the_others_done_and_rerun_finishes(eng, world):
    w(eng, "keymgmt/kms/p2", provider="awskms", key_collection="eu-west-1")
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    w(eng, "keymgmt/kms/p2/key/k", purpose="encrypt,decrypt")
    world.fail_next("CreateKey", "AccessDeniedException", region="eu-west-1")
    with pytest.raises(EngineError, match="1 of 2 distributions did not finish"):
        w(eng, "keymgmt/key/k/rotate")
    assert "2" in r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    w(eng, "keymgmt/key/k/rotate")
    assert "2" in r(eng, "keymgmt/kms/p2/key/k")["versions"]
    assert len(world.all_keys()) == 4


# -- multi-Region ----------------------------------------------------------------------------------
def test_replicate_imports_same_material_into_replicas_and_removal_deletes_replicas_first(eng, world):
    w(eng, "keymgmt/key/mr", type="aes256-gcm96", replica_regions="us-east-1,eu-west-1")
    w(eng, "keymgmt/kms/aws1/key/mr", purpose="encrypt,decrypt")
    key_id = r(eng, "keymgmt/kms/aws1/key/mr")["versions"]["1"]
    assert kms_key(world, "us-west-1", key_id).multi_region
    w(eng, "keymgmt/kms/aws1/key/mr/replicate")
    for region in ("us-east-1", "eu-west-1"):
        replica = kms_key(world, region, key_id)
        assert replica.state == "Enabled"
        assert replica.material == kms_key(world, "us-west-1", key_id).material
        assert world.region(region).aliases[f"alias/hashicorp/mr-{TS}"] == key_id
    w(eng, "keymgmt/key/mr/rotate")  # rotation covers the replicas
    v2 = r(eng, "keymgmt/kms/aws1/key/mr")["versions"]["2"]
    assert all(kms_key(world, region, v2).state == "Enabled" for region in ("us-east-1", "eu-west-1"))
    world.call_log.clear()
    eng.handle(Request("delete", "keymgmt/kms/aws1/key/mr", {}))
    deletions = [region for region, op in world.call_log if op == "ScheduleKeyDeletion"]
    assert deletions[-2:] == ["us-west-1", "us-west-1"] and len(deletions) == 6


def test_replicate_preconditions(eng, world):
    w(eng, "keymgmt/key/plain", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/plain", purpose="encrypt")
    with pytest.raises(PreconditionFailed, match="no replica_regions"):
        w(eng, "keymgmt/kms/aws1/key/plain/replicate")
    w(eng, "keymgmt/key/mr", type="aes256-gcm96", replica_regions="us-east-1")
    with pytest.raises(PreconditionFailed, match="not distributed"):
        w(eng, "keymgmt/kms/aws1/key/mr/replicate")
    with pytest.raises(InvalidRequest, match="only for aes256-gcm96"):
        w(eng, "keymgmt/key/rsa", type="rsa-2048", replica_regions="us-east-1")
    with pytest.raises(InvalidRequest, match="cannot be changed"):
        w(eng, "keymgmt/key/mr", replica_regions="eu-west-1")


class Died(BaseException):
    """The process died: nothing after this point ran (not even except-handlers for Exception)."""


@pytest.mark.parametrize("version_to_lose", [1, 2])
def test_create_key_served_but_never_recorded_is_found_by_its_tag_not_duplicated(eng, world, version_to_lose):
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/key/k/rotate")
    original = MemoryKms.create_key
    seen = {"n": 0}

    def create_then_die(self, **kwargs):
        key_id = original(self, **kwargs)
        seen["n"] += 1
        if seen["n"] == version_to_lose:
            raise Died()  # AWS created the key; the id never reached the state
        return key_id

    MemoryKms.create_key = create_then_die
    try:
        with pytest.raises(Died):
            w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    finally:
        MemoryKms.create_key = original
    assert len(world.all_keys()) == version_to_lose
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    versions = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    assert {k.key_id for k in world.all_keys()} == set(versions.values()), "no orphan, no duplicate"
    assert all(kms_key(world, "us-west-1", k).state == "Enabled" for k in versions.values())


def test_abandon_an_interrupted_rotation(eng, world):
    w(eng, "keymgmt/kms/p2", provider="awskms", key_collection="eu-west-1")
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    w(eng, "keymgmt/kms/p2/key/k", purpose="encrypt,decrypt")
    v1 = {kms: r(eng, f"keymgmt/kms/{kms}/key/k")["versions"]["1"] for kms in ("aws1", "p2")}
    world.fail_next("ImportKeyMaterial", "KMSInternalException", region="eu-west-1")
    with pytest.raises(EngineError):
        w(eng, "keymgmt/key/k/rotate")
    created = {k.key_id for k in world.all_keys()} - set(v1.values())
    assert len(created) == 2  # v2 in both regions; us-west-1's alias already moved to it
    response = eng.handle(Request("delete", "keymgmt/key/k/rotate", {}))
    assert "abandoned the rotation to version 2" in response.warnings[0]
    assert r(eng, "keymgmt/key/k")["latest_version"] == 1
    for kms, region in (("aws1", "us-west-1"), ("p2", "eu-west-1")):
        assert r(eng, f"keymgmt/kms/{kms}/key/k")["versions"] == {"1": v1[kms]}
        assert world.region(region).aliases[f"alias/hashicorp/k-{TS}"] == v1[kms]
    assert all(world.find(k.region, k.key_id).state == "PendingDeletion" for k in world.all_keys()
               if k.key_id in created)
    assert eng.status()["unfinished"] == []
    with pytest.raises(PreconditionFailed, match="no unfinished rotation"):
        eng.handle(Request("delete", "keymgmt/key/k/rotate", {}))
    w(eng, "keymgmt/key/k/rotate")  # a fresh rotation works afterwards
    assert r(eng, "keymgmt/key/k")["latest_version"] == 2


def test_a_distribution_stuck_on_a_refused_wrapping_is_finished_with_another(eng, world):
    w(eng, "keymgmt/key/k", type="rsa-2048")
    world.fail_next("ImportKeyMaterial", "KMSInvalidStateException")  # e.g. an IAM condition on the algorithm
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="sign,verify", wrapping_algorithm="RSA_AES_KEY_WRAP_SHA_1")
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k", purpose="sign,verify", wrapping_algorithm="RSA_AES_KEY_WRAP_SHA_256",
      wrapping_key_spec="RSA_3072")
    mount, _ = eng.resolve("keymgmt/key")
    dist = eng.store.get(mount.doc("dist", "aws1", "k"))
    assert (dist["wrapping_algorithm"], dist["wrapping_key_spec"], dist["state"]) == \
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_3072", "ready")
    assert world.calls == ["GetParametersForImport", "ImportKeyMaterial", "CreateAlias"]
    w(eng, "keymgmt/kms/aws1/key/k", purpose="sign,verify")  # no wrapping given: the recorded choice stays
    assert eng.store.get(mount.doc("dist", "aws1", "k"))["wrapping_algorithm"] == "RSA_AES_KEY_WRAP_SHA_256"
