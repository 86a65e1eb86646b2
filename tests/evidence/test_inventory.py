"""The inventory after a lifecycle with rotations, replicas and a suspended version: one row per key
version and region, matching the distribution records; the last rotation and who did it from the
trail; no AWS call."""

from __future__ import annotations

import pytest

from keymgmt_cli.audit.session import audited, open_trail
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.inventory import COLUMNS, inventory
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box


@pytest.fixture
def world():
    return MemoryKmsWorld()


@pytest.fixture
def eng(world):
    return Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                  clock=lambda: 1700000000.0)


def run(eng, verb, path, data=None):
    audited(eng, {}, verb, path, data or {}, lambda: eng.handle(Request(verb, path, data or {})))


def test_rows_match_the_state_after_rotations_and_replicas(eng, world):
    run(eng, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1"})
    run(eng, "write", "keymgmt/kms/k2", {"provider": "awskms", "key_collection": "eu-west-1"})
    run(eng, "write", "keymgmt/key/a", {"type": "aes256-gcm96", "replica_regions": ["us-east-1", "us-east-2"]})
    run(eng, "write", "keymgmt/key/solo", {"type": "ecdsa-p256"})
    run(eng, "write", "keymgmt/kms/k1/key/a", {"purpose": "encrypt,decrypt"})
    run(eng, "write", "keymgmt/kms/k2/key/a", {"purpose": "encrypt,decrypt"})
    run(eng, "write", "keymgmt/key/a/rotate")
    run(eng, "write", "keymgmt/kms/k1/key/a/replicate")
    run(eng, "write", "keymgmt/key/a/rotate")
    run(eng, "write", "keymgmt/key/a", {"min_enabled_version": 2})
    calls = len(world.call_log)
    rows = inventory(eng, None, open_trail(eng, {}).records())
    assert len(world.call_log) == calls  # no AWS call
    assert all(tuple(row) == COLUMNS for row in rows)
    a_rows = [r for r in rows if r["key_name"] == "a"]
    # 3 versions in k1 (us-west-1 + 2 replicas) and 3 in k2 (eu-west-1): 3*3 + 3
    assert len(a_rows) == 12
    d1 = eng.store.get("ns/default/dist/k1/a")
    d2 = eng.store.get("ns/default/dist/k2/a")
    for row in a_rows:
        dist = d1 if row["provider"] == "k1" else d2
        rec = dist["versions"][str(row["version"])]
        assert row["kms_key_id"] == rec["key_id"]
        assert row["enabled"] == (row["version"] >= 2), row
        is_latest = row["version"] == 3
        assert (row["alias"] == dist["alias"]) == is_latest, row
        if row["region"] in ("us-east-1", "us-east-2"):
            assert row["provider"] == "k1" and row["replica_of"] == f"us-west-1 {rec['key_id']}"
            assert world.find(row["region"], rec["key_id"]) is not None
        else:
            assert row["replica_of"] == ""
            assert row["region"] == ("us-west-1" if row["provider"] == "k1" else "eu-west-1")
        assert world.find(row["region"], rec["key_id"]).enabled == row["enabled"]
        assert row["last_rotation"] and row["last_rotated_by"].count("@") == 1
    solo = [r for r in rows if r["key_name"] == "solo"]
    assert [(r["version"], r["provider"], r["region"], r["last_rotation"]) for r in solo] == [(1, "", "", "")]
    assert {r["key_name"] for r in inventory(eng, "keymgmt/key/solo")} == {"solo"}
    assert {(r["provider"], r["region"]) for r in inventory(eng, "keymgmt/kms/k2")} == {("k2", "eu-west-1")}
