"""rotation_mode=on-demand (issue 13 item 5) on the in-memory twins: one KMS key for every version,
NEW_KEY_MATERIAL + RotateKeyOnDemand, replicas with EXISTING_KEY_MATERIAL, refusals where AWS
cannot, a fault at every call position of a rotation followed by a re-run, renew/suspend/resume,
abandon and remove on the shared key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import InvalidRequest, KeymgmtError, PreconditionFailed, ProviderError
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box

T0 = 1800000000
DIST = "keymgmt/kms/aws1/key/k"
ROTATION = ["GetParametersForImport", "ImportKeyMaterial", "RotateKeyOnDemand"]


class Clock:
    def __init__(self, world):
        self.t, self.world = float(T0), world

    def __call__(self):
        return self.t

    def advance(self, **delta):
        seconds = timedelta(**delta).total_seconds()
        self.t += seconds
        self.world.advance(seconds=seconds)


class After:
    """A provider whose ``op`` call number ``n`` is executed by KMS and then fails (a lost answer, a
    crash after the call): the state never hears of it."""

    def __init__(self, inner, plan):
        self._inner, self._plan = inner, plan

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name == "in_region":
            return lambda region: After(attr(region), self._plan)
        if not callable(attr) or name != self._plan.get("method"):
            return attr

        def call(*args, **kwargs):
            result = attr(*args, **kwargs)
            self._plan["seen"] = self._plan.get("seen", 0) + 1
            if self._plan["seen"] == self._plan["n"]:
                self._plan["method"] = None
                raise ProviderError(f"AWS KMS {name} failed: KMSInternalException: injected after the call",
                                    code="KMSInternalException")
            return result
        return call


@pytest.fixture
def world():
    return MemoryKmsWorld(now=datetime.fromtimestamp(T0, timezone.utc))


@pytest.fixture
def clock(world):
    return Clock(world)


def make(world, clock, plan=None, replicas=None, key_type="aes256-gcm96"):
    def factory(cfg):
        kms = MemoryKms(cfg.region, world)
        return After(kms, plan) if plan is not None else kms
    engine = Engine(MemoryStore(), memory_secret_box(), factory, clock=clock)
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
    extra = {"replica_regions": replicas} if replicas else {}
    w(engine, "keymgmt/key/k", type=key_type, **extra)
    return engine


@pytest.fixture
def eng(world, clock):
    return make(world, clock)


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def r(engine, path):
    return engine.handle(Request("read", path, {})).data


def keys_in(world, region="us-west-1"):
    return {k: v for k, v in world.region(region).keys.items() if v.state not in ("PendingDeletion",)}


def current(world, key_id, region="us-west-1"):
    return MemoryKms(region, world).describe_key(key_id).current_key_material_id


def test_rotation_keeps_one_kms_key_and_the_alias_and_makes_the_new_material_current(eng, world):
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    first = r(eng, DIST)
    assert first["rotation_mode"] == "on-demand"
    key_id = first["versions"]["1"]
    alias = world.region("us-west-1").aliases
    assert list(alias.values()) == [key_id]
    for _ in range(2):
        before = len(world.calls)
        w(eng, "keymgmt/key/k/rotate")
        assert world.calls[before:] == ROTATION  # no CreateKey, no UpdateAlias
    data = r(eng, DIST)
    assert data["versions"] == {"1": key_id, "2": key_id, "3": key_id}
    ids = data["key_material_ids"]
    assert len(set(ids.values())) == 3 and all(len(i) == 64 for i in ids.values())
    assert current(world, key_id) == ids["3"]
    assert list(keys_in(world)) == [key_id] and list(alias.values()) == [key_id]
    assert world.find("us-west-1", key_id).state == "Enabled"
    # every material stays with the key (older ciphertexts decrypt): three associated, one current
    states = sorted(m["state"] for m in world.find("us-west-1", key_id).materials.values())
    assert states == ["CURRENT", "NON_CURRENT", "NON_CURRENT"]


def test_new_key_stays_the_default_and_reads_say_so(eng, world):
    w(eng, DIST, purpose="encrypt,decrypt")
    w(eng, "keymgmt/key/k/rotate")
    data = r(eng, DIST)
    assert data["rotation_mode"] == "new-key" and "key_material_ids" not in data
    assert data["versions"]["1"] != data["versions"]["2"]


@pytest.mark.parametrize("key_type", ["rsa-2048", "ecdsa-p256"])
def test_on_demand_is_refused_for_asymmetric_keys_before_any_call_or_record(world, clock, key_type):
    eng = make(world, clock, key_type=key_type)
    purpose = "sign,verify"
    calls = len(world.calls)
    with pytest.raises(InvalidRequest, match="rotation_mode=on-demand needs an aes256-gcm96 key"):
        w(eng, DIST, purpose=purpose, rotation_mode="on-demand")
    assert len(world.calls) == calls
    mount, _ = eng.resolve("keymgmt/kms")
    assert eng.store.get(mount.doc("dist", "aws1", "k")) is None


def test_min_enabled_version_cannot_disable_one_material_so_it_is_refused_both_ways(eng, world):
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, "keymgmt/key/k/rotate")
    calls = len(world.calls)
    with pytest.raises(InvalidRequest, match="AWS cannot disable one key material"):
        w(eng, "keymgmt/key/k", min_enabled_version=2)
    assert len(world.calls) == calls and r(eng, "keymgmt/key/k")["min_enabled_version"] == 0
    w(eng, "keymgmt/key/k", min_enabled_version=1)  # everything enabled: fine
    # and the other way round: a key with min_enabled_version 2 cannot be distributed on-demand
    w(eng, "keymgmt/kms/aws2", provider="awskms", key_collection="us-west-2")
    eng2 = eng
    w(eng2, "keymgmt/key/j", type="aes256-gcm96")
    w(eng2, "keymgmt/key/j/rotate")
    w(eng2, "keymgmt/key/j", min_enabled_version=2)
    with pytest.raises(InvalidRequest, match="cannot honour min_enabled_version 2"):
        w(eng2, "keymgmt/kms/aws2/key/j", purpose="encrypt,decrypt", rotation_mode="on-demand")


def test_rotation_mode_cannot_change_after_distribution(eng):
    w(eng, DIST, purpose="encrypt,decrypt")
    with pytest.raises(PreconditionFailed, match="rotation_mode cannot be changed"):
        w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="new-key")  # the same mode again is fine


def test_a_key_with_several_versions_distributed_on_demand_rotates_through_them(eng, world):
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    data = r(eng, DIST)
    assert len(set(data["versions"].values())) == 1
    assert current(world, data["versions"]["3"]) == data["key_material_ids"]["3"]
    assert world.calls.count("RotateKeyOnDemand") == 2 and world.calls.count("CreateKey") == 1


def test_multi_region_primary_first_then_each_replica_existing_then_rotate(world, clock):
    eng = make(world, clock, replicas=["us-east-1"])
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, DIST + "/replicate")
    key_id = r(eng, DIST)["versions"]["1"]
    log = len(world.call_log)
    w(eng, "keymgmt/key/k/rotate")
    assert world.call_log[log:] == [
        ("us-west-1", "GetParametersForImport"), ("us-west-1", "ImportKeyMaterial"),
        ("us-east-1", "GetParametersForImport"), ("us-east-1", "ImportKeyMaterial"),
        ("us-west-1", "RotateKeyOnDemand")]
    ids = r(eng, DIST)["key_material_ids"]
    assert current(world, key_id) == current(world, key_id, "us-east-1") == ids["2"]
    assert world.find("us-east-1", key_id).state == "Enabled"
    assert list(keys_in(world, "us-east-1")) == [key_id]


def test_replicating_an_on_demand_key_later_imports_every_version_into_the_one_replica(world, clock):
    eng = make(world, clock, replicas=["us-east-1"])
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, DIST + "/replicate")
    key_id = r(eng, DIST)["versions"]["1"]
    assert world.calls.count("ReplicateKey") == 1
    replica = world.find("us-east-1", key_id)
    assert replica.state == "Enabled" and len(replica.imported) == 2
    assert current(world, key_id, "us-east-1") == r(eng, DIST)["key_material_ids"]["2"]


def _rotation_positions(replicas):
    ops = [("get_parameters_for_import", 1), ("import_key_material", 1)]
    if replicas:
        ops += [("get_parameters_for_import", 2), ("import_key_material", 2)]
    return ops + [("rotate_key_on_demand", 1)]


@pytest.mark.parametrize("replicas", [False, True], ids=["single-region", "multi-region"])
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_fault_at_every_call_of_a_rotation_then_a_rerun_finishes_with_one_key(world, clock, replicas, when):
    for method, n in _rotation_positions(replicas):
        w_ = MemoryKmsWorld(now=datetime.fromtimestamp(T0, timezone.utc))
        plan: dict = {}
        eng = make(w_, Clock(w_), plan=plan, replicas=["us-east-1"] if replicas else None)
        w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
        if replicas:
            w(eng, DIST + "/replicate")
        key_id = r(eng, DIST)["versions"]["1"]
        op = {"get_parameters_for_import": "GetParametersForImport", "import_key_material": "ImportKeyMaterial",
              "rotate_key_on_demand": "RotateKeyOnDemand"}[method]
        if when == "before":
            region = "us-east-1" if n == 2 else "us-west-1"
            w_.fail_next(op, region=region, count=20)  # every retry fails too: the command stops
        else:
            plan.update(method=method, n=n)
        with pytest.raises(KeymgmtError):
            w(eng, "keymgmt/key/k/rotate")
        w_._faults.clear()
        w(eng, "keymgmt/key/k/rotate")  # finishes the interrupted rotation
        data = r(eng, DIST)
        assert data["versions"] == {"1": key_id, "2": key_id}, (method, n)
        assert current(w_, key_id) == data["key_material_ids"]["2"], (method, n)
        assert r(eng, "keymgmt/key/k")["latest_version"] == 2
        mount, _ = eng.resolve("keymgmt/key")
        assert not eng.store.get(mount.doc("keys", "k")).get("pending")
        assert list(keys_in(w_)) == [key_id]  # zero orphans
        assert w_.calls.count("RotateKeyOnDemand") <= 2
        if replicas:
            assert current(w_, key_id, "us-east-1") == data["key_material_ids"]["2"]
            assert w_.find("us-east-1", key_id).state == "Enabled"


def test_renew_reimports_every_material_into_the_one_key_and_brings_it_back(eng, world, clock):
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand", valid_to="40d")
    w(eng, "keymgmt/key/k/rotate")
    key_id = r(eng, DIST)["versions"]["1"]
    clock.advance(days=45)  # both materials expired: AWS made the key PendingImport
    assert world.find("us-west-1", key_id).state == "PendingImport"
    with pytest.raises(PreconditionFailed, match="holds material that expired at") as refused:
        w(eng, "keymgmt/key/k/rotate")
    assert refused.value.hint.startswith("renew it first: keymgmt write keymgmt/kms/aws1/key/k/renew")
    assert r(eng, "keymgmt/key/k")["latest_version"] == 2  # refused before anything changed
    before = len(world.calls)
    w(eng, DIST + "/renew", valid_to="90d")
    assert world.calls[before:] == ["GetParametersForImport", "ImportKeyMaterial"] * 2
    assert world.find("us-west-1", key_id).state == "Enabled"
    assert current(world, key_id) == r(eng, DIST)["key_material_ids"]["2"]
    w(eng, "keymgmt/key/k/rotate")  # and rotation works again
    assert current(world, key_id) == r(eng, DIST)["key_material_ids"]["3"]


def test_suspend_deletes_every_material_by_id_and_resume_brings_all_back(eng, world):
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, "keymgmt/key/k/rotate")
    key_id = r(eng, DIST)["versions"]["1"]
    w(eng, DIST + "/suspend")
    key = world.find("us-west-1", key_id)
    assert key.state == "PendingImport" and key.imported == {}
    assert world.calls.count("DeleteImportedKeyMaterial") == 2
    w(eng, DIST + "/resume")
    assert key.state == "Enabled" and len(key.imported) == 2
    assert current(world, key_id) == r(eng, DIST)["key_material_ids"]["2"]


def test_abandoning_a_staged_rotation_deletes_only_its_material_and_keeps_the_key(eng, world):
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    key_id = r(eng, DIST)["versions"]["1"]
    world.fail_next("RotateKeyOnDemand", count=20)
    with pytest.raises(KeymgmtError):
        w(eng, "keymgmt/key/k/rotate")
    world._faults.clear()
    eng.handle(Request("delete", "keymgmt/key/k/rotate", {}))
    assert r(eng, DIST)["versions"] == {"1": key_id}
    key = world.find("us-west-1", key_id)
    assert key.state == "Enabled" and len(key.materials) == 1 and "ScheduleKeyDeletion" not in world.calls
    w(eng, "keymgmt/key/k/rotate")  # a new version 2 can be staged again
    assert current(world, key_id) == r(eng, DIST)["key_material_ids"]["2"]


def test_remove_schedules_the_one_key_once(eng, world):
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, "keymgmt/key/k/rotate")
    eng.handle(Request("delete", DIST, {}))
    assert world.calls.count("ScheduleKeyDeletion") == 1


def test_verify_sees_an_on_demand_key_in_sync_and_a_rotation_it_did_not_make_as_drift(eng, world):
    from keymgmt_cli.engine.verify import verify

    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, "keymgmt/key/k/rotate")
    report = verify(eng)
    assert report["in_sync"], report["drift"]
    assert report["kms_keys"] == 1
    # a rotation made outside keymgmt (foreign material staged and rotated in by hand)
    key_id = r(eng, DIST)["versions"]["1"]
    key = world.find("us-west-1", key_id)
    for m in key.materials.values():
        m["state"] = "NON_CURRENT"
    key.materials["f" * 64] = {"secret": b"x" * 32, "state": "CURRENT"}
    key.imported["f" * 64] = None
    report = verify(eng)
    assert not report["in_sync"]
    assert [d["problem"] for d in report["drift"]] == [
        f"current key material is {'f' * 64}, expected the latest version's "
        f"{r(eng, DIST)['key_material_ids']['2']} (rotation_mode=on-demand)"]


def test_an_import_whose_answer_was_lost_still_records_its_material_id(world, clock, monkeypatch):
    """awskms returns no KeyMaterialId when botocore's retry of a lost answer met a spent token (the
    import did happen): the id is learnt by importing the same material again, so suspend and
    verify can name every material."""
    eng = make(world, clock)
    original = MemoryKms.import_key_material
    lost = {"n": 0}

    def answer_lost(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        lost["n"] += 1
        return None if lost["n"] in (1, 3) else result  # version 1's import, then version 2's staging

    monkeypatch.setattr(MemoryKms, "import_key_material", answer_lost)
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, "keymgmt/key/k/rotate")
    data = r(eng, DIST)
    key_id = data["versions"]["1"]
    assert sorted(data["key_material_ids"]) == ["1", "2"]
    assert sorted(data["key_material_ids"].values()) == sorted(world.find("us-west-1", key_id).materials)
    assert current(world, key_id) == data["key_material_ids"]["2"]


def test_suspend_and_resume_in_the_middle_of_an_interrupted_multi_region_rotation(world, clock):
    """The kill switch does not wait for a rotation to be finished: the staged material goes too
    (with its replica copies, as AWS drops them), resume stages it again, and the rotation then
    finishes."""
    eng = make(world, clock, replicas=["us-east-1"])
    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand")
    w(eng, DIST + "/replicate")
    key_id = r(eng, DIST)["versions"]["1"]
    world.fail_next("RotateKeyOnDemand", count=20)
    with pytest.raises(KeymgmtError):
        w(eng, "keymgmt/key/k/rotate")
    world._faults.clear()
    w(eng, DIST + "/suspend")
    for region in ("us-west-1", "us-east-1"):
        assert world.find(region, key_id).state == "PendingImport" and world.find(region, key_id).imported == {}
    w(eng, DIST + "/resume")
    w(eng, "keymgmt/key/k/rotate")  # finishes the interrupted rotation
    ids = r(eng, DIST)["key_material_ids"]
    for region in ("us-west-1", "us-east-1"):
        assert world.find(region, key_id).state == "Enabled"
        assert current(world, key_id, region) == ids["2"]


def test_due_apply_rotates_an_on_demand_key_on_schedule_and_renews_it(eng, world, clock):
    from keymgmt_cli.engine import lifetime

    w(eng, DIST, purpose="encrypt,decrypt", rotation_mode="on-demand", valid_to="60d")
    w(eng, "keymgmt/key/k", auto_rotate_period="45d")
    key_id = r(eng, DIST)["versions"]["1"]
    clock.advance(days=46)
    outcomes = sorted(i["outcome"] for i in lifetime.apply_due(eng, within=30 * 86400))
    assert outcomes == ["renewed", "rotated"]
    data = r(eng, DIST)
    assert data["versions"] == {"1": key_id, "2": key_id} and current(world, key_id) == data["key_material_ids"]["2"]
    clock.advance(days=20)  # version 1's first expiry (day 60) has passed: it was renewed, the key is usable
    assert world.find("us-west-1", key_id).state == "Enabled"
