"""Keys over time (issue 13) on the in-memory twins with one injected clock for the engine and the
KMS world: expiry seen coming, durations relative to each import, renewal of expired material,
rotation on a schedule (also from two runners at once), the kill switch, and `due`."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from keymgmt_cli.engine import durations, lifetime
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import InvalidRequest, KeymgmtError, PreconditionFailed
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box

T0 = 1800000000  # 2027-01-15


class Clock:
    def __init__(self, world):
        self.t, self.world = float(T0), world

    def __call__(self):
        return self.t

    def advance(self, **delta):
        seconds = timedelta(**delta).total_seconds()
        self.t += seconds
        self.world.advance(seconds=seconds)


@pytest.fixture
def world():
    return MemoryKmsWorld(now=datetime.fromtimestamp(T0, timezone.utc))


@pytest.fixture
def clock(world):
    return Clock(world)


@pytest.fixture
def eng(world, clock):
    engine = Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world), clock=clock)
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    return engine


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def r(engine, path):
    return engine.handle(Request("read", path, {})).data


def kms_state(world, key_id):
    return world.find("us-west-1", key_id).state


def test_durations_parse_as_vault_and_bad_ones_are_refused():
    assert durations.parse_duration("90d", "f") == 90 * 86400
    assert durations.parse_duration("1h30m", "f") == 5400
    assert durations.parse_duration("3600", "f") == 3600
    for bad in ("90 days", "-1h", "1y", "", "h"):
        with pytest.raises(InvalidRequest):
            durations.parse_duration(bad, "f")


def test_valid_to_as_a_duration_is_relative_to_each_import_so_rotation_months_later_works(eng, world, clock):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to="90d")
    first = r(eng, "keymgmt/kms/aws1/key/k")
    assert first["material_expiry"] == {"1": {"us-west-1": durations.rfc3339(
        datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=90))}}
    clock.advance(days=200)  # version 1's material expired on its own meanwhile
    w(eng, "keymgmt/key/k/rotate")
    data = r(eng, "keymgmt/kms/aws1/key/k")
    assert data["material_expiry"]["2"]["us-west-1"] == durations.rfc3339(
        datetime.fromtimestamp(clock.t, timezone.utc) + timedelta(days=90))
    assert kms_state(world, data["versions"]["2"]) == "Enabled"
    assert kms_state(world, data["versions"]["1"]) == "PendingImport"


def test_an_absolute_valid_to_now_past_refuses_the_rotation_before_it_starts(eng, world, clock):
    when = durations.rfc3339(datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=10))
    dist = {"purpose": "encrypt,decrypt"}
    w(eng, "keymgmt/kms/aws1/key/k", **dist)
    mount, _ = eng.resolve("keymgmt/kms")
    doc = eng.store.get(mount.doc("dist", "aws1", "k"))
    doc["valid_to"] = when  # as distributed with an absolute date
    eng.store.put(mount.doc("dist", "aws1", "k"), doc)
    clock.advance(days=20)
    calls = len(world.calls)
    with pytest.raises(InvalidRequest, match="cannot rotate 'k'"):
        w(eng, "keymgmt/key/k/rotate")
    assert len(world.calls) == calls
    assert r(eng, "keymgmt/key/k")["latest_version"] == 1 and not eng.store.get(mount.doc("keys", "k")).get("pending")


def test_due_lists_expiring_material_with_its_deadline_and_fix_and_renew_brings_expired_keys_back(eng, world, clock):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to="40d")
    assert lifetime.due(eng, within=30 * 86400) == []
    clock.advance(days=15)
    items = lifetime.due(eng, within=30 * 86400)
    assert [(i["kind"], i["path"], i["version"], i["region"]) for i in items] == [
        ("expiring", "keymgmt/kms/aws1/key/k", 1, "us-west-1")]
    assert items[0]["fix"] == "keymgmt write keymgmt/kms/aws1/key/k/renew valid_to=40d"
    key_id = r(eng, "keymgmt/kms/aws1/key/k")["versions"]["1"]
    material = world.find("us-west-1", key_id).material
    clock.advance(days=30)  # past ValidTo: AWS deleted the material
    assert kms_state(world, key_id) == "PendingImport"
    assert lifetime.due(eng, within=0)[0]["kind"] == "expired"
    w(eng, "keymgmt/kms/aws1/key/k/renew", valid_to="90d")
    assert kms_state(world, key_id) == "Enabled"  # the same ARN, material back
    assert world.find("us-west-1", key_id).material == material  # the same material: old ciphertexts decrypt
    assert lifetime.due(eng, within=30 * 86400) == []
    assert r(eng, "keymgmt/kms/aws1/key/k")["valid_to"] == "90d"


def test_renew_reimports_into_every_version_and_keeps_min_enabled(eng, world, clock):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to="60d")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    ids = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k/renew", valid_to="120d")
    assert world.calls.count("ImportKeyMaterial") == 2
    assert kms_state(world, ids["1"]) == "Disabled" and kms_state(world, ids["2"]) == "Enabled"
    expiry = r(eng, "keymgmt/kms/aws1/key/k")["material_expiry"]
    assert set(expiry) == {"1", "2"}
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k/renew", valid_to="120d")  # repeated at once: the same expiry, no call
    assert world.calls == []
    clock.advance(days=1)
    w(eng, "keymgmt/kms/aws1/key/k/renew", valid_to="120d")  # a day later: 120 days from then
    assert world.calls.count("ImportKeyMaterial") == 2


def test_renew_interrupted_is_finished_by_a_rerun_without_importing_twice(eng, world, clock):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to="60d")
    w(eng, "keymgmt/key/k/rotate")
    world.fail_next("ImportKeyMaterial", "KMSInternalException")  # the first re-import fails
    world.calls.clear()
    with pytest.raises(KeymgmtError):
        w(eng, "keymgmt/kms/aws1/key/k/renew", valid_to="100d")
    w(eng, "keymgmt/kms/aws1/key/k/renew", valid_to="100d")
    assert world.calls.count("ImportKeyMaterial") == 3  # 1 failed + 2 done, none repeated
    assert lifetime.due(eng) == []


def test_auto_rotate_period_and_due_apply_rotate_once_even_from_two_runners(eng, world, clock):
    with pytest.raises(InvalidRequest):
        w(eng, "keymgmt/key/k", auto_rotate_period="30m")
    w(eng, "keymgmt/key/k", auto_rotate_period="90d")
    assert r(eng, "keymgmt/key/k")["auto_rotate_period"] == 90 * 86400
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    assert lifetime.apply_due(eng, within=0) == []
    clock.advance(days=91)
    results: list = []
    runners = [threading.Thread(target=lambda: results.extend(lifetime.apply_due(eng, within=0)))
               for _ in range(2)]
    for t in runners:
        t.start()
    for t in runners:
        t.join(30)
    # the second runner finds the rotation done, or (reading while the first holds the lock) in
    # progress, which it then waits for under the same lock and finds finished
    outcomes = sorted(i["outcome"] for i in results)
    assert outcomes in (["rotated"], ["already rotated", "rotated"], ["finished elsewhere", "rotated"]), outcomes
    assert r(eng, "keymgmt/key/k")["latest_version"] == 2
    assert lifetime.due(eng, within=0) == []
    w(eng, "keymgmt/key/k", auto_rotate_period="0")
    clock.advance(days=400)
    assert [i for i in lifetime.due(eng, within=0) if i["kind"] == "rotation"] == []


def test_suspend_deletes_every_material_and_resume_restores_the_enabled_set(eng, world, clock):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/key/k", min_enabled_version=2)
    ids = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    aliases = dict(world.region("us-west-1").aliases)
    w(eng, "keymgmt/kms/aws1/key/k/suspend")
    assert r(eng, "keymgmt/kms/aws1/key/k")["suspended"] is True
    assert {kms_state(world, i) for i in ids.values()} == {"PendingImport"}
    assert world.region("us-west-1").aliases == aliases  # ARNs and aliases stay
    from keymgmt_cli.engine.verify import verify
    assert verify(eng)["in_sync"], verify(eng)["drift"]
    w(eng, "keymgmt/kms/aws1/key/k/suspend")  # safe to repeat: no more calls
    with pytest.raises(PreconditionFailed, match="suspended"):
        w(eng, "keymgmt/key/k/rotate")
    w(eng, "keymgmt/kms/aws1/key/k/resume")
    assert kms_state(world, ids["1"]) == "Disabled" and kms_state(world, ids["2"]) == "Enabled"
    assert r(eng, "keymgmt/kms/aws1/key/k")["suspended"] is False
    assert verify(eng)["in_sync"], verify(eng)["drift"]
    world.calls.clear()
    w(eng, "keymgmt/kms/aws1/key/k/resume")
    assert world.calls == []


def test_suspend_interrupted_is_finished_by_a_rerun(eng, world, clock):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    w(eng, "keymgmt/key/k/rotate")
    world.fail_next("DeleteImportedKeyMaterial", "KMSInternalException")
    with pytest.raises(KeymgmtError):
        w(eng, "keymgmt/kms/aws1/key/k/suspend")
    assert lifetime.due(eng) == []  # a half-done suspension is not expiry: no false alarm
    w(eng, "keymgmt/kms/aws1/key/k/suspend")
    ids = r(eng, "keymgmt/kms/aws1/key/k")["versions"]
    assert {kms_state(world, i) for i in ids.values()} == {"PendingImport"}


def test_verify_reports_expired_material_as_drift(eng, world, clock):
    from keymgmt_cli.engine.verify import verify

    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to="10d")
    clock.advance(days=11)
    drift = verify(eng)["drift"]
    assert len(drift) == 1 and "PendingImport" in drift[0]["problem"]


def test_due_apply_renews_an_absolute_valid_to_for_the_same_length_not_for_a_year(eng, world, clock):
    """A distribution given valid_to=<a date 40 days away> renews, from due -apply, for 40 days
    again (what the user chose), never AWS's 365-day maximum; the next renewals keep that length."""
    when = durations.rfc3339(datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=40))
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to=when)
    clock.advance(days=15)
    items = lifetime.due(eng, within=30 * 86400)
    assert items[0]["fix"] == "keymgmt write keymgmt/kms/aws1/key/k/renew valid_to=40d"
    results = lifetime.apply_due(eng, within=30 * 86400)
    assert [i["outcome"] for i in results] == ["renewed"]
    expiry = r(eng, "keymgmt/kms/aws1/key/k")["material_expiry"]["1"]["us-west-1"]
    assert expiry == durations.rfc3339(datetime.fromtimestamp(clock.t, timezone.utc) + timedelta(days=40))
    clock.advance(days=15)
    assert lifetime.due(eng, within=30 * 86400)[0]["fix"].endswith("valid_to=40d")


def test_an_absolute_valid_to_without_its_length_on_record_is_not_guessed(eng, world, clock):
    when = durations.rfc3339(datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=20))
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to=when)
    mount, _ = eng.resolve("keymgmt/kms")
    doc = eng.store.get(mount.doc("dist", "aws1", "k"))
    doc.pop("valid_for")  # as recorded before the length was kept
    eng.store.put(mount.doc("dist", "aws1", "k"), doc)
    calls = len(world.calls)
    items = lifetime.due(eng, within=30 * 86400)
    assert items[0]["fix"] == f"keymgmt write keymgmt/kms/aws1/key/k/renew valid_to={lifetime.ABSOLUTE_FIX}"
    (result,) = lifetime.apply_due(eng, within=30 * 86400)
    assert result["outcome"].startswith("failed: valid_to of keymgmt/kms/aws1/key/k was an absolute time")
    assert len(world.calls) == calls  # nothing sent


def test_renewing_with_an_absolute_time_keeps_that_length_for_the_next_renewal(eng, world, clock):
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt", valid_to="30d")
    when = durations.rfc3339(datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=60, minutes=10))
    w(eng, "keymgmt/kms/aws1/key/k/renew", valid_to=when)
    clock.advance(days=45)
    assert lifetime.due(eng, within=30 * 86400)[0]["fix"].endswith("valid_to=60d")  # to the hour
