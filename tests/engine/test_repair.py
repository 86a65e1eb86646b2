"""verify names the fix of every finding; verify -fix (engine/repair.py, engine/converge.py)
repairs what it says it repairs, from the state's own records, and nothing else (issue 16 items 1-2).

Each case changes AWS (the twin) or the state behind keymgmt's back the way an operator with the
aws CLI, or an attacker, would."""

from __future__ import annotations

import pytest

from keymgmt_cli.engine import verify as verify_module
from keymgmt_cli.engine.plan import plan
from keymgmt_cli.engine.repair import repair
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.engine.verify import FIXABLE, KINDS, verify
from keymgmt_cli.providers.memory import MemoryKms

TS = 1700000000
ALIAS = f"alias/hashicorp/k-{TS}"
WHERE = "keymgmt/kms/aws1/key/k"
FOREIGN_TAGS = {"owner": "someone-else"}


@pytest.fixture
def eng(twin_engine):
    for path, data in [("keymgmt/kms/aws1", {"provider": "awskms", "key_collection": "us-west-1"}),
                       ("keymgmt/key/k", {"type": "ecdsa-p256"}),
                       ("keymgmt/key/k/rotate", {}),
                       (WHERE, {"purpose": "sign,verify"})]:
        twin_engine.handle(Request("write", path, data))
    return twin_engine


@pytest.fixture
def kms(world):
    return MemoryKms("us-west-1", world)


def ids(eng):
    return eng.handle(Request("read", WHERE, {})).data["versions"]


def dist_id(eng):
    mount, _ = eng.resolve("keymgmt/kms")
    return mount.doc("dist", "aws1", "k")


def edit_dist(eng, change):
    doc = eng.store.get(dist_id(eng))
    change(doc)
    eng.store.put(dist_id(eng), doc)


def edit_key(eng, change):
    mount, _ = eng.resolve("keymgmt/kms")
    doc = eng.store.get(mount.doc("keys", "k"))
    change(doc)
    eng.store.put(mount.doc("keys", "k"), doc)


def foreign_key(kms):
    return kms.create_key(key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY", description="not ours",
                          tags=FOREIGN_TAGS)


# kind -> how to cause it; returns the key id the finding names
def _unfinished(eng, kms, world):
    edit_dist(eng, lambda d: d.update(state="distributing"))


def _missing(eng, kms, world):
    world._delete(world.find("us-west-1", ids(eng)["1"]))
    return ids(eng)["1"]


def _pending_deletion(eng, kms, world):
    kms.schedule_key_deletion(ids(eng)["1"], 7)
    return ids(eng)["1"]


def _origin(eng, kms, world):
    world.find("us-west-1", ids(eng)["1"]).origin = "AWS_KMS"
    return ids(eng)["1"]


def _spec(eng, kms, world):
    world.find("us-west-1", ids(eng)["1"]).key_spec = "ECC_NIST_P384"
    return ids(eng)["1"]


def _expired(eng, kms, world):
    kms.delete_imported_key_material(ids(eng)["1"])
    edit_dist(eng, lambda d: d["versions"]["1"].update(valid_to="2001-01-01T00:00:00Z"))
    return ids(eng)["1"]


def _not_imported(eng, kms, world):
    kms.delete_imported_key_material(ids(eng)["1"])
    return ids(eng)["1"]


def _enabled(eng, kms, world):
    kms.disable_key(ids(eng)["2"])
    return ids(eng)["2"]


def _tag(eng, kms, world):
    world.find("us-west-1", ids(eng)["2"]).tags.pop("keymgmt:version")
    world.find("us-west-1", ids(eng)["1"]).tags["keymgmt:key_name"] = "other"
    return ids(eng)["2"]


def _public_key(eng, kms, world):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key = world.find("us-west-1", ids(eng)["2"])
    key.material = key.associated = other
    return ids(eng)["2"]


def _alias_missing(eng, kms, world):
    kms.delete_alias(ALIAS)
    return ids(eng)["2"]


def _alias_ours(eng, kms, world):
    kms.update_alias(ALIAS, ids(eng)["1"])  # drifted back to an older version of ours
    return ids(eng)["2"]


def _alias_foreign(eng, kms, world):
    other = foreign_key(kms)
    kms.update_alias(ALIAS, other)
    return other


def _suspended_material(eng, kms, world):
    eng.handle(Request("write", f"{WHERE}/suspend", {}))
    reimport_behind_our_back(eng, world, "2")
    return ids(eng)["2"]


def _stray(eng, kms, world):
    return kms.create_key(key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY", description="x",
                          tags={"keymgmt:state_id": eng.state_id(), "keymgmt:mount": "keymgmt/",
                                "keymgmt:kms": "aws1", "keymgmt:key_name": "ghost", "keymgmt:version": "1"})


def reimport_behind_our_back(eng, world, v):
    """What an operator restoring material by hand does (the twin's shortcut for it)."""
    key = world.find("us-west-1", ids(eng)[v])
    key.material = key.associated
    key.state = "Enabled"


CAUSES = {"unfinished": _unfinished, "missing": _missing, "pending_deletion": _pending_deletion,
          "origin": _origin, "spec": _spec, "expired": _expired, "not_imported": _not_imported,
          "enabled": _enabled, "tag": _tag, "public_key": _public_key, "alias_missing": _alias_missing,
          "alias_ours": _alias_ours, "alias_foreign": _alias_foreign,
          "suspended_material": _suspended_material, "stray": _stray}


def test_every_kind_verify_produces_has_a_case():
    assert set(CAUSES) == KINDS


FIXES = {
    "unfinished": "keymgmt write keymgmt/kms/aws1/key/k purpose=sign,verify",
    "missing": "keymgmt delete keymgmt/kms/aws1/key/k, then keymgmt write keymgmt/kms/aws1/key/k purpose=sign,verify",
    "pending_deletion": "aws kms cancel-key-deletion --key-id {id} --region us-west-1, then keymgmt verify -fix "
                        "keymgmt/kms/aws1/key/k",
    "origin": "report only: aws kms describe-key --key-id {id} --region us-west-1",
    "spec": "report only: aws kms describe-key --key-id {id} --region us-west-1",
    "expired": "keymgmt write keymgmt/kms/aws1/key/k/renew valid_to=DURATION",
    "public_key": "report only: aws kms get-public-key --key-id {id} --region us-west-1",
    "alias_foreign": "report only: aws kms list-aliases --key-id {id} --region us-west-1",
    "stray": "report only: aws kms describe-key --key-id {id} --region us-west-1; aws kms list-resource-tags "
             "--key-id {id} --region us-west-1",
    **{kind: "keymgmt verify -fix keymgmt/kms/aws1/key/k" for kind in FIXABLE},
}


@pytest.mark.parametrize("kind", sorted(CAUSES))
def test_each_finding_names_its_kind_and_fix(eng, kms, world, kind):
    assert verify(eng)["in_sync"]
    key_id = CAUSES[kind](eng, kms, world)
    drift = verify(eng)["drift"]
    mine = [d for d in drift if d["kind"] == kind]
    assert mine, drift
    for item in mine:
        assert item["fix"].startswith(FIXES[kind].format(id=item["key_id"])), item
    if key_id is not None:
        assert key_id in {d["key_id"] for d in mine}


def writes(world):
    from keymgmt_cli.audit.calls import MUTATING

    return [c for c in world.calls if c in MUTATING]


@pytest.mark.parametrize("kind", sorted(FIXABLE | {"unfinished"}))
def test_fix_converges_each_fixable_kind_with_the_same_key_ids(eng, kms, world, kind):
    before = ids(eng)
    CAUSES[kind](eng, kms, world)
    assert not verify(eng)["in_sync"]
    world.calls.clear()
    done = repair(eng).data
    assert done["failed"] == [] and done["fixed"], done
    assert verify(eng)["in_sync"], verify(eng)["drift"]
    assert ids(eng) == before  # the same KMS keys: repaired, never replaced
    assert "CreateKey" not in world.calls and "ScheduleKeyDeletion" not in world.calls
    world.calls.clear()
    assert repair(eng).data == {"fixed": [], "failed": []} and writes(world) == []  # again: nothing to do


def test_reimported_material_is_the_states_own(eng, kms, world):
    v1 = ids(eng)["1"]
    kms.delete_imported_key_material(v1)
    repair(eng)
    key = world.find("us-west-1", v1)
    assert key.state == "Enabled" and key.material == key.associated  # AWS accepts only the same material
    assert verify(eng)["in_sync"]


def test_min_enabled_version_is_applied_both_ways(eng, kms, world):
    v = ids(eng)
    eng.handle(Request("write", "keymgmt/key/k", {"min_enabled_version": 2}))
    kms.enable_key(v["1"])  # re-enabled behind our back: must be disabled again
    kms.disable_key(v["2"])  # disabled behind our back: must be enabled again
    world.calls.clear()
    repair(eng)
    assert sorted(writes(world)) == ["DisableKey", "EnableKey"]
    assert world.find("us-west-1", v["1"]).state == "Disabled" and world.find("us-west-1", v["2"]).state == "Enabled"


def test_strays_and_foreign_aliases_are_reported_never_touched(eng, kms, world):
    stray = _stray(eng, kms, world)
    other = _alias_foreign(eng, kms, world)
    world.calls.clear()
    done = repair(eng).data
    assert done["fixed"] == [] and writes(world) == []
    assert world.find("us-west-1", stray).state == "PendingImport"  # not scheduled for deletion
    assert kms.get_alias_target(ALIAS) == other  # someone else's now: never taken over
    kinds = {d["kind"] for d in verify(eng)["drift"]}
    assert kinds == {"stray", "alias_foreign"}


def test_a_missing_alias_whose_name_was_taken_meanwhile_is_not_taken_over(eng, kms, world, monkeypatch):
    """Our alias deleted, then the name created by someone else for their key (between verify and
    -fix): CreateAlias fails, the target is not ours, so another name of Vault's shape is chosen."""
    kms.delete_alias(ALIAS)
    other = foreign_key(kms)
    original = kms.create_alias

    def racing(name, key_id):
        if name == ALIAS and kms.get_alias_target(ALIAS) is None:
            original(ALIAS, other)  # the race: someone else takes the name first
        return original(name, key_id)

    kms.create_alias = racing
    from keymgmt_cli.engine import reconcile

    monkeypatch.setattr(reconcile, "connect", lambda *args, **kwargs: kms)  # this one twin, with the race
    repair(eng)
    assert kms.get_alias_target(ALIAS) == other
    new_alias = eng.store.get(dist_id(eng))["alias"]
    assert new_alias != ALIAS and kms.get_alias_target(new_alias) == ids(eng)["2"]


def test_plan_equals_the_real_calls(eng, kms, world):
    _not_imported(eng, kms, world)
    _enabled(eng, kms, world)
    _tag(eng, kms, world)
    _alias_ours(eng, kms, world)
    world.call_log.clear()
    planned = plan(eng, lambda planner: repair(planner))
    assert world.call_log == [(region, op) for region, op in world.call_log if op not in
                              ("CreateKey", "ImportKeyMaterial", "EnableKey", "DisableKey", "TagResource",
                               "UpdateAlias", "CreateAlias", "DeleteImportedKeyMaterial")]  # nothing was changed
    assert not verify(eng)["in_sync"]
    world.call_log.clear()
    world.calls.clear()
    repair(eng)
    real = [op for _region, op in world.call_log]
    assert [c["operation"] for c in planned["aws_calls"]["us-west-1"]] == real
    assert planned["mutating_calls"] == len(writes(world)) > 0


def test_fix_takes_the_keys_lock(eng, kms, world, monkeypatch):
    import threading

    from keymgmt_cli.engine import repair as repair_module

    kms.disable_key(ids(eng)["2"])
    mount, _ = eng.resolve("keymgmt/kms")
    held, release = threading.Event(), threading.Event()

    def holder():
        with eng.store.lock(mount.lock("key", "k")):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    monkeypatch.setattr(repair_module, "MUTATION_LOCK_TIMEOUT", 0.2)
    try:
        with pytest.raises(Exception) as refused:
            repair(eng)
        assert "lock" in str(refused.value).lower() or "busy" in str(refused.value).lower()
        assert world.find("us-west-1", ids(eng)["2"]).state == "Disabled"  # nothing done without the lock
    finally:
        release.set()
        thread.join()
    repair(eng)
    assert verify(eng)["in_sync"]


def test_an_unreachable_provider_is_reported_and_the_others_repaired(eng, kms, world):
    eng.handle(Request("write", "keymgmt/kms/far", {"provider": "awskms", "key_collection": "eu-west-1"}))
    eng.handle(Request("write", "keymgmt/kms/far/key/k", {"purpose": "sign,verify"}))
    kms.disable_key(ids(eng)["2"])
    world.fail_next("DescribeKey", "UnrecognizedClientException", count=50, region="eu-west-1")
    done = repair(eng).data
    assert [f["path"] for f in done["failed"]] == ["keymgmt/kms/far/key/k"]
    assert "UnrecognizedClientException" in done["failed"][0]["cause"]
    assert world.find("us-west-1", ids(eng)["2"]).state == "Enabled"


# -- plain writes converge too ------------------------------------------------------------------------
def test_rewriting_min_enabled_version_converges(eng, kms, world):
    kms.disable_key(ids(eng)["2"])
    kms.delete_alias(ALIAS)
    eng.handle(Request("write", "keymgmt/key/k", {"min_enabled_version": 0}))
    assert verify(eng)["in_sync"], verify(eng)["drift"]


def test_rerunning_a_distribution_converges(eng, kms, world):
    _not_imported(eng, kms, world)
    _tag(eng, kms, world)
    _alias_ours(eng, kms, world)
    eng.handle(Request("write", WHERE, {"purpose": "sign,verify"}))
    assert verify(eng)["in_sync"], verify(eng)["drift"]


def test_a_first_distribution_makes_no_extra_call(twin_engine, world):
    for path, data in [("keymgmt/kms/aws1", {"provider": "awskms", "key_collection": "us-west-1"}),
                       ("keymgmt/key/n", {"type": "aes256-gcm96"})]:
        twin_engine.handle(Request("write", path, data))
    world.calls.clear()
    twin_engine.handle(Request("write", "keymgmt/kms/aws1/key/n", {"purpose": "encrypt,decrypt"}))
    assert world.calls == ["CreateKey", "GetParametersForImport", "ImportKeyMaterial", "CreateAlias"]


def test_unfixable_kinds_are_left_alone(eng, kms, world):
    for kind in ("missing", "pending_deletion", "origin", "expired", "public_key"):
        assert kind not in FIXABLE
    _pending_deletion(eng, kms, world)
    world.calls.clear()
    repair(eng)
    assert "CancelKeyDeletion" not in world.calls and writes(world) == []
    assert {d["kind"] for d in verify(eng)["drift"]} == {"pending_deletion"}
    assert verify_module.fix_for("pending_deletion", WHERE, "us-west-1", "k1").startswith("aws kms cancel-key-deletion")


def test_replicas_are_converged_too(twin_engine, world):
    eng = twin_engine
    for path, data in [("keymgmt/kms/aws1", {"provider": "awskms", "key_collection": "us-west-1"}),
                       ("keymgmt/key/m", {"type": "aes256-gcm96", "replica_regions": "eu-west-1"}),
                       ("keymgmt/key/m/rotate", {}),
                       ("keymgmt/kms/aws1/key/m", {"purpose": "encrypt,decrypt"}),
                       ("keymgmt/kms/aws1/key/m/replicate", {})]:
        eng.handle(Request("write", path, data))
    v = eng.handle(Request("read", "keymgmt/kms/aws1/key/m", {})).data["versions"]
    replica = MemoryKms("eu-west-1", world)
    replica.disable_key(v["2"])
    replica.delete_imported_key_material(v["1"])
    replica.delete_alias(f"alias/hashicorp/m-{TS}")
    world.find("eu-west-1", v["2"]).tags.pop("keymgmt:kms")
    assert {d["kind"] for d in verify(eng)["drift"]} == {"enabled", "not_imported", "alias_missing", "tag"}
    done = repair(eng).data
    assert {(f["region"], f["kind"]) for f in done["fixed"]} == {
        ("eu-west-1", "enabled"), ("eu-west-1", "not_imported"), ("eu-west-1", "alias_missing"), ("eu-west-1", "tag")}
    assert verify(eng)["in_sync"], verify(eng)["drift"]
    assert world.find("us-west-1", v["1"]).state == "Enabled"  # the primary was not touched


def test_fix_never_undoes_the_kill_switch(eng, kms, world):
    """A suspension cut short: the record says suspended, version 2's holder was not reached (its
    material is still there) and version 1's material was deleted. -fix must finish the
    suspension, never re-import into a suspended distribution."""
    eng.handle(Request("write", f"{WHERE}/suspend", {}))
    edit_dist(eng, lambda d: d["versions"]["2"].pop("suspended"))
    reimport_behind_our_back(eng, world, "2")
    assert {d["kind"] for d in verify(eng)["drift"]} == {"suspended_material"}
    world.calls.clear()
    repair(eng)
    assert "ImportKeyMaterial" not in world.calls
    assert world.find("us-west-1", ids(eng)["1"]).state == world.find("us-west-1", ids(eng)["2"]).state == "PendingImport"
    assert verify(eng)["in_sync"]
    eng.handle(Request("write", f"{WHERE}/resume", {}))
    assert verify(eng)["in_sync"] and world.find("us-west-1", ids(eng)["2"]).state == "Enabled"
