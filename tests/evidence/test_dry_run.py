"""The dry run on the in-memory twins: for every mutating path, the plan changes nothing (no
document, no mutating call in the KMS world's log), and the real run then makes exactly the calls
the plan listed, per region in order, and changes exactly the documents the plan named."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from keymgmt_cli.audit.calls import MUTATING
from keymgmt_cli.audit.session import audited
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.plan import plan
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import ProviderError
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box

TS = 1700000000


@pytest.fixture
def world():
    return MemoryKmsWorld(now=datetime.fromtimestamp(TS, timezone.utc))  # one clock with the engine's


@pytest.fixture
def eng(world):
    return Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                  clock=lambda: float(TS))


def per_region(calls):
    out = {}
    for region, op in calls:
        out.setdefault(region, []).append(op)
    return out


def state_docs(eng):
    return {k: v for k, v in eng.store._docs.items() if not k.startswith("audit/")}


def step(eng, world, verb, path, data=None, *, expect_error=None):
    """Plan, check nothing changed, run for real, check the run matched the plan; the plan."""
    data = data or {}
    docs_before = copy.deepcopy(eng.store._docs)
    log_start = len(world.call_log)
    request = Request(verb, path, data)
    result = plan(eng, lambda planner: planner.handle(request))
    dry_wire = world.call_log[log_start:]
    assert eng.store._docs == docs_before, f"the dry run changed the state ({path})"
    assert not [op for _r, op in dry_wire if op in MUTATING], f"the dry run sent a mutating call ({path})"
    planned = [(region, c["operation"]) for region, calls in result["aws_calls"].items() for c in calls]
    assert result["mutating_calls"] == sum(1 for _r, op in planned if op in MUTATING)
    before = state_docs(eng)
    run_start = len(world.call_log)
    audited(eng, {}, verb, path, data, lambda: eng.handle(request))
    real = world.call_log[run_start:]
    assert per_region(planned) == per_region(real), (path, result["aws_calls"], real)
    after = state_docs(eng)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert {c["document"] for c in result["state_changes"]} == changed, path
    return result


def test_every_mutating_path_plans_what_it_then_does(eng, world):
    step(eng, world, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1",
                                               "credentials": ["access_key=AKIAPLAN", "secret_key=planSECRET"]})
    step(eng, world, "write", "keymgmt/kms/k2", {"provider": "awskms", "key_collection": "eu-west-1"})
    step(eng, world, "write", "keymgmt/key/a", {"type": "aes256-gcm96", "replica_regions": "us-east-1"})
    step(eng, world, "write", "keymgmt/key/s", {"type": "rsa-2048"})
    p = step(eng, world, "write", "keymgmt/kms/k1/key/a", {"purpose": "encrypt,decrypt"})  # distribution
    assert [c["operation"] for c in p["aws_calls"]["us-west-1"]] == [
        "CreateKey", "GetParametersForImport", "ImportKeyMaterial", "CreateAlias"]
    step(eng, world, "write", "keymgmt/kms/k2/key/a", {"purpose": "encrypt,decrypt"})
    step(eng, world, "write", "keymgmt/kms/k1/key/s", {"purpose": "encrypt,decrypt", "valid_to": "100d"})
    step(eng, world, "write", "keymgmt/key/a/rotate")  # rotation in two providers at once
    step(eng, world, "write", "keymgmt/kms/k1/key/a/replicate")  # replication
    step(eng, world, "write", "keymgmt/key/a/rotate")
    step(eng, world, "write", "keymgmt/key/a", {"min_enabled_version": 2})  # suspension of version 1
    step(eng, world, "write", "keymgmt/key/a", {"min_enabled_version": 1})  # re-enabled
    step(eng, world, "write", "keymgmt/kms/k1/key/s", {"purpose": "encrypt,decrypt",
                                                        "valid_to": "200d"})  # a new expiry for later imports
    step(eng, world, "write", "keymgmt/kms/k1/key/s/renew", {"valid_to": "150d"})  # renewal
    step(eng, world, "write", "keymgmt/kms/k1/key/s/suspend")  # the kill switch
    step(eng, world, "write", "keymgmt/kms/k1/key/s/resume")
    step(eng, world, "write", "keymgmt/key/a", {"deletion_allowed": True})
    step(eng, world, "delete", "keymgmt/kms/k2/key/a", {"pending_window_days": 7})  # removal
    step(eng, world, "delete", "keymgmt/kms/k1/key/a")  # removal with replicas
    step(eng, world, "delete", "keymgmt/key/a")
    step(eng, world, "delete", "keymgmt/kms/k2")
    assert world.call_log  # the world saw the real runs


def test_on_demand_rotation_and_its_lifetime_plan_what_they_then_do(eng, world):
    """rotation_mode=on-demand (one KMS key, NEW_KEY_MATERIAL + RotateKeyOnDemand), multi-Region,
    through rotation, renewal, the kill switch and removal: the plan equals the real run."""
    step(eng, world, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1"})
    step(eng, world, "write", "keymgmt/key/o", {"type": "aes256-gcm96", "replica_regions": "us-east-1"})
    step(eng, world, "write", "keymgmt/kms/k1/key/o", {"purpose": "encrypt,decrypt", "rotation_mode": "on-demand",
                                                        "valid_to": "100d"})
    step(eng, world, "write", "keymgmt/kms/k1/key/o/replicate")
    p = step(eng, world, "write", "keymgmt/key/o/rotate")
    assert [(region, c["operation"]) for region, calls in p["aws_calls"].items() for c in calls] == [
        ("us-west-1", "GetParametersForImport"), ("us-west-1", "ImportKeyMaterial"),
        ("us-west-1", "RotateKeyOnDemand"), ("us-east-1", "GetParametersForImport"),
        ("us-east-1", "ImportKeyMaterial")]  # per region; in time the replica's import precedes the rotation
    step(eng, world, "write", "keymgmt/kms/k1/key/o/renew", {"valid_to": "150d"})
    step(eng, world, "write", "keymgmt/kms/k1/key/o/suspend")
    step(eng, world, "write", "keymgmt/kms/k1/key/o/resume")
    step(eng, world, "write", "keymgmt/key/o/rotate")
    step(eng, world, "delete", "keymgmt/kms/k1/key/o")


def test_an_unfinished_rotation_plans_its_finish_and_its_abandon(eng, world):
    step(eng, world, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1"})
    step(eng, world, "write", "keymgmt/key/b", {"type": "aes256-gcm96"})
    step(eng, world, "write", "keymgmt/kms/k1/key/b", {"purpose": "encrypt,decrypt"})
    world.fail_next("ImportKeyMaterial", count=1)
    with pytest.raises(ProviderError):
        audited(eng, {}, "write", "keymgmt/key/b/rotate", {},
                lambda: eng.handle(Request("write", "keymgmt/key/b/rotate", {})))
    finish = plan(eng, lambda planner: planner.handle(Request("write", "keymgmt/key/b/rotate", {})))
    assert [c["operation"] for c in finish["aws_calls"]["us-west-1"]][:2] == ["GetParametersForImport",
                                                                               "ImportKeyMaterial"]
    step(eng, world, "delete", "keymgmt/key/b/rotate")  # abandon: alias back, new key scheduled for deletion
    step(eng, world, "write", "keymgmt/key/b/rotate")


def test_a_plan_does_not_touch_the_real_store_or_provider_objects(eng, world):
    step(eng, world, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1"})
    store, factory = eng.store, eng.provider_factory
    plan(eng, lambda planner: planner.handle(Request("write", "keymgmt/key/z", {"type": "aes256-gcm96"})))
    assert eng.store is store and eng.provider_factory is factory
    assert eng.store.get("ns/default/keys/z") is None
    assert not eng.store.list("ns/default/keys")
