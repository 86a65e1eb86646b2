"""The reconcile state machine (reconcile.py) on the KMS twin: what each call records, that a
re-run makes no call, recovery of a key created but never recorded (the ``creating`` intent and
its tag), the alias, min_enabled_version, replicas, and the small public helpers."""

from __future__ import annotations

import re

import pytest

from keymgmt_cli.engine import reconcile
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import EngineError, ProviderError
from keymgmt_cli.providers.memory import MemoryKms

TS = 1700000000
ALIAS = f"alias/hashicorp/k-{TS}"


class Died(BaseException):
    """The process died here: nothing after this point ran."""


# A write of min_enabled_version and a re-run of a finished distribution converge with AWS first
# (engine/converge.py): DescribeKey and ListResourceTags per key, ListAliases per region. These
# tests are about the writes reconcile makes, so they look at the calls other than those reads.
CONVERGE_READS = {"DescribeKey", "ListResourceTags", "ListAliases"}


def writes(calls):
    return [c for c in calls if (c[1] if isinstance(c, tuple) else c) not in CONVERGE_READS]


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def mount_of(engine):
    return engine.resolve("keymgmt/")[0]


def dist_doc(engine, kms="aws1", key="k"):
    return engine.store.get(mount_of(engine).doc("dist", kms, key))


def key_doc(engine, key="k"):
    return engine.store.get(mount_of(engine).doc("keys", key))


def die_after(monkeypatch, method):
    """AWS serves the call, then the process dies before its answer is recorded."""
    original = getattr(MemoryKms, method)

    def served_then_died(self, *args, **kwargs):
        original(self, *args, **kwargs)
        monkeypatch.setattr(MemoryKms, method, original)
        raise Died()

    monkeypatch.setattr(MemoryKms, method, served_then_died)


@pytest.fixture
def eng(aws1_engine):
    w(aws1_engine, "keymgmt/key/k", type="aes256-gcm96")
    w(aws1_engine, "keymgmt/key/k/rotate")
    return aws1_engine


# -- the record --------------------------------------------------------------------------------------
def test_each_call_is_recorded_and_the_keys_carry_their_tags(eng, world):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    assert world.calls == ["CreateKey", "GetParametersForImport", "ImportKeyMaterial"] * 2 + ["CreateAlias"]
    dist = dist_doc(eng)
    assert dist["state"] == "ready"
    assert sorted(dist["versions"]) == ["1", "2"]
    for v, rec in dist["versions"].items():
        assert set(rec) == {"key_id", "imported", "enabled"} and rec["imported"] and rec["enabled"]
        tags = world.find("us-west-1", rec["key_id"]).tags
        assert re.fullmatch(r"[0-9a-f]{32}", tags.pop("keymgmt:op"))
        from keymgmt_cli.store.retired import instance_id  # which copy of the state made it (issue 10)

        assert tags.pop("keymgmt:instance") == instance_id(eng.store) and re.fullmatch(r"[0-9a-f]{16}", instance_id(eng.store))
        assert tags == {"keymgmt:state_id": eng.state_id(), "keymgmt:mount": "keymgmt/", "keymgmt:key_name": "k",
                        "keymgmt:version": v, "keymgmt:kms": "aws1"}
        assert world.find("us-west-1", rec["key_id"]).description == f"keymgmt keymgmt/key/k version {v} (KMS provider aws1)"
    assert dist["alias_target"] == dist["versions"]["2"]["key_id"]


def test_a_rerun_of_a_finished_distribution_makes_no_write(eng, world):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    before = dist_doc(eng)
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    reconcile.sync_key(eng, mount_of(eng), "k", key_doc(eng))
    w(eng, "keymgmt/key/k", min_enabled_version=0)
    assert writes(world.calls) == [] and dist_doc(eng) == before
    assert set(world.calls) == CONVERGE_READS  # it did ask AWS: that is how drift gets fixed


def test_the_intent_is_saved_before_create_key_and_the_id_before_the_import(eng, world, monkeypatch):
    seen = {}
    create, params = MemoryKms.create_key, MemoryKms.get_parameters_for_import

    def spying_create(self, **kwargs):
        seen.setdefault("at_create", []).append((kwargs["tags"]["keymgmt:op"], dict(dist_doc(eng)["versions"])))
        return create(self, **kwargs)

    def spying_params(self, key_id, *args):
        seen.setdefault("at_params", []).append((key_id, dict(dist_doc(eng)["versions"])))
        return params(self, key_id, *args)

    monkeypatch.setattr(MemoryKms, "create_key", spying_create)
    monkeypatch.setattr(MemoryKms, "get_parameters_for_import", spying_params)
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    token, versions = seen["at_create"][0]
    assert versions == {"1": {"creating": token}}  # on disk before the call
    key_id, versions = seen["at_params"][0]
    assert versions == {"1": {"key_id": key_id, "imported": False}}  # the id on disk before the import


# -- recovery --------------------------------------------------------------------------------------
def test_a_created_but_unrecorded_key_is_adopted_and_a_duplicate_scheduled_for_deletion(eng, world, monkeypatch):
    die_after(monkeypatch, "create_key")
    with pytest.raises(Died):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    token = dist_doc(eng)["versions"]["1"]["creating"]
    (first,) = world.all_keys()
    # a second key with the same operation tag (say, a retried CreateKey whose first answer was lost)
    kms = MemoryKms("us-west-1", world)
    second = kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="",
                            tags=dict(first.tags))
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert world.calls[:4] == ["ListKeys", "ListResourceTags", "ListResourceTags", "ScheduleKeyDeletion"]
    assert world.calls.count("CreateKey") == 1  # version 2 only
    adopted = dist_doc(eng)["versions"]["1"]["key_id"]
    assert adopted in (first.key_id, second)
    other = second if adopted == first.key_id else first.key_id
    assert world.find("us-west-1", other).state == "PendingDeletion"
    assert world.find("us-west-1", adopted).state == "Enabled"
    assert world.find("us-west-1", adopted).tags["keymgmt:op"] == token


def test_recovery_never_adopts_a_key_of_another_state_or_attempt(eng, world, monkeypatch):
    die_after(monkeypatch, "create_key")
    with pytest.raises(Died):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    (ours,) = world.all_keys()
    # as if AWS had never served it; another environment's key has the same name, version and kms tags
    del world.region("us-west-1").keys[ours.key_id]
    kms = MemoryKms("us-west-1", world)
    foreign = kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="",
                             tags={**ours.tags, "keymgmt:op": "0" * 32})
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert dist_doc(eng)["versions"]["1"]["key_id"] != foreign
    assert world.find("us-west-1", foreign).state == "PendingImport"  # untouched
    assert {k.key_id for k in world.all_keys()} - {foreign} == \
        {rec["key_id"] for rec in dist_doc(eng)["versions"].values()}


def test_find_tagged_needs_every_tag_and_skips_keys_it_cannot_read(world):
    kms = MemoryKms("us-west-1", world)
    make = lambda tags: kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",  # noqa: E731
                                       description="", tags=tags)
    unreadable = make({"a": "1", "b": "2"})
    hit = make({"a": "1", "b": "2", "c": "3"})
    make({"a": "1"})
    make({"a": "1", "b": "other"})
    world.fail_next("ListResourceTags", "AccessDeniedException")  # the first key is not ours to read
    assert reconcile.find_tagged(kms, {"a": "1", "b": "2"}) == [hit]
    assert reconcile.find_tagged(kms, {"a": "1", "b": "2"}) == [unreadable, hit]


# -- alias -----------------------------------------------------------------------------------------
def test_an_alias_created_by_an_interrupted_run_is_repointed(eng, world, monkeypatch):
    die_after(monkeypatch, "create_alias")
    with pytest.raises(Died):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert dist_doc(eng)["alias_target"] is None and ALIAS in world.region("us-west-1").aliases
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert world.calls == ["CreateAlias", "ListAliases", "UpdateAlias"]  # adopted: its target is our key
    latest = dist_doc(eng)["versions"]["2"]["key_id"]
    assert world.region("us-west-1").aliases[ALIAS] == latest == dist_doc(eng)["alias_target"]


def test_any_other_alias_error_stops_the_run_unrecorded(eng, world):
    world.fail_next("CreateAlias", "KMSInternalException")
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert world.calls[-1] == "CreateAlias" and dist_doc(eng)["alias_target"] is None
    assert dist_doc(eng)["state"] == "distributing"
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert world.calls == ["CreateAlias"] and dist_doc(eng)["state"] == "ready"


# -- min_enabled_version ---------------------------------------------------------------------------
def test_min_enabled_skips_versions_not_imported_and_versions_deleted(eng, world):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    mount = mount_of(eng)
    dist = dist_doc(eng)
    dist["versions"]["1"]["deleted"] = True  # as a removal halfway leaves it
    eng.store.put(mount.doc("dist", "aws1", "k"), dist)
    world.calls.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    assert writes(world.calls) == []  # version 1 is on its way out: no DisableKey for it
    dist = dist_doc(eng)
    dist["versions"]["1"].pop("deleted")
    dist["versions"]["1"]["imported"] = False
    eng.store.put(mount.doc("dist", "aws1", "k"), dist)
    world.calls.clear()
    reconcile.apply_min_enabled(MemoryKms("us-west-1", world), dist, key_doc(eng), None, lambda: None)
    assert world.calls == []  # never imported: nothing to disable yet


def test_min_enabled_is_applied_once_per_change(eng, world):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    world.calls.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    assert writes(world.calls) == ["DisableKey"]
    assert dist_doc(eng)["versions"]["1"]["enabled"] is False and dist_doc(eng)["versions"]["2"]["enabled"]
    world.fail_next("EnableKey")
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/key/k", min_enabled_version=1)
    assert key_doc(eng)["min_enabled_version"] == 1 and dist_doc(eng)["versions"]["1"]["enabled"] is False
    world.calls.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=1)  # the same write again finishes the job
    assert writes(world.calls) == ["EnableKey"] and dist_doc(eng)["versions"]["1"]["enabled"] is True


# -- replicas --------------------------------------------------------------------------------------
def test_a_disabled_version_is_replicated_once_it_is_enabled(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96", replica_regions="eu-west-1")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    v1, v2 = (dist_doc(eng)["versions"][v]["key_id"] for v in ("1", "2"))
    world.call_log.clear()
    w(eng, "keymgmt/kms/aws1/key/k/replicate")
    assert world.call_log == [("us-west-1", "ReplicateKey"), ("eu-west-1", "GetParametersForImport"),
                              ("eu-west-1", "ImportKeyMaterial"), ("eu-west-1", "CreateAlias")]
    assert world.find("eu-west-1", v1) is None and world.find("eu-west-1", v2).state == "Enabled"
    assert dist_doc(eng)["replica_alias_targets"] == {"eu-west-1": v2}
    world.call_log.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=0)
    assert writes(world.call_log) == [("us-west-1", "EnableKey"), ("us-west-1", "ReplicateKey"),
                              ("eu-west-1", "GetParametersForImport"), ("eu-west-1", "ImportKeyMaterial")]
    assert world.find("eu-west-1", v1).material == world.find("us-west-1", v1).material
    world.call_log.clear()
    w(eng, "keymgmt/kms/aws1/key/k/replicate")
    assert world.call_log == []


def test_min_enabled_reaches_the_replicas(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96", replica_regions="eu-west-1")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    w(eng, "keymgmt/kms/aws1/key/k/replicate")
    v1 = dist_doc(eng)["versions"]["1"]["key_id"]
    world.call_log.clear()
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    assert sorted(writes(world.call_log)) == [("eu-west-1", "DisableKey"), ("us-west-1", "DisableKey")]
    assert world.find("eu-west-1", v1).state == world.find("us-west-1", v1).state == "Disabled"
    assert dist_doc(eng)["versions"]["1"]["replicas"]["eu-west-1"]["enabled"] is False


# -- sync_key, abandon_version and the helpers ------------------------------------------------------
def test_sync_key_leaves_a_distribution_being_removed_alone(eng, world):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    world.fail_next("ScheduleKeyDeletion")
    with pytest.raises(ProviderError):
        eng.handle(Request("delete", "keymgmt/kms/aws1/key/k"))
    world.calls.clear()
    w(eng, "keymgmt/key/k/rotate")
    assert world.calls == [] and "3" not in dist_doc(eng)["versions"]
    assert key_doc(eng)["latest_version"] == 3 and "pending" not in key_doc(eng)


def test_abandon_version_schedules_deletion_of_a_key_created_but_never_recorded(eng, world, monkeypatch):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    v2 = dist_doc(eng)["versions"]["2"]["key_id"]
    die_after(monkeypatch, "create_key")
    with pytest.raises(Died):
        w(eng, "keymgmt/key/k/rotate")
    assert {k: v for k, v in key_doc(eng)["pending"].items() if k != "since"} == {"op": "rotate", "version": 3}
    assert set(dist_doc(eng)["versions"]["3"]) == {"creating"}
    orphan = [k.key_id for k in world.all_keys() if k.tags["keymgmt:version"] == "3"]
    assert len(orphan) == 1
    world.calls.clear()
    eng.handle(Request("delete", "keymgmt/key/k/rotate"))
    assert world.calls == ["ListKeys"] + ["ListResourceTags"] * 3 + ["ScheduleKeyDeletion"]
    assert world.find("us-west-1", orphan[0]).state == "PendingDeletion"
    assert sorted(dist_doc(eng)["versions"]) == ["1", "2"]
    assert world.region("us-west-1").aliases[ALIAS] == v2  # never moved: nothing to move back


def test_versions_are_in_numeric_order():
    dist = {"versions": {"10": {"n": 10}, "2": {"n": 2}, "1": {"n": 1}}}
    assert [(v, rec["n"]) for v, rec in reconcile.versions(dist)] == [(1, 1), (2, 2), (10, 10)]


def test_distributed_to_names_only_providers_holding_the_key(eng):
    for name in ("c", "b"):
        w(eng, f"keymgmt/kms/{name}", provider="awskms", key_collection="eu-west-1")
    w(eng, "keymgmt/kms/c/key/k", purpose="encrypt")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert reconcile.distributed_to(eng, mount_of(eng), "k") == ["aws1", "c"]
    assert reconcile.distributed_to(eng, mount_of(eng), "other") == []


def test_without_a_provider_factory_nothing_reaches_aws(engine):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    with pytest.raises(EngineError, match="no KMS provider factory configured"):
        w(engine, "keymgmt/kms/aws1/key/k", purpose="encrypt")


# -- two environments in one AWS account ------------------------------------------------------------
def test_an_alias_of_another_state_is_never_repointed(world):
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.store.memory import MemoryStore
    from twins import memory_secret_box

    def environment():
        engine = Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                        clock=lambda: float(TS))
        w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
        w(engine, "keymgmt/key/k", type="aes256-gcm96")
        return engine

    prod, staging = environment(), environment()
    w(prod, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    prod_key = dist_doc(prod)["versions"]["1"]["key_id"]
    try:
        w(staging, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    except EngineError:
        pass  # refusing is fine; taking the alias is not
    assert world.region("us-west-1").aliases[ALIAS] == prod_key
