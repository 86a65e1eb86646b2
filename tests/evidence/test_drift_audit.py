"""verify against the trail: a key disabled in AWS directly is reported as changed behind keymgmt's
back; the drift an unfinished (failed) rotation leaves is not; a key no record names is unknown."""

from __future__ import annotations

import pytest

from keymgmt_cli.audit.drift import explain
from keymgmt_cli.audit.session import audited, open_trail
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.engine.verify import verify
from keymgmt_cli.errors import ProviderError
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box


def run(eng, verb, path, data=None):
    return audited(eng, {}, verb, path, data or {}, lambda: eng.handle(Request(verb, path, data or {})))


def test_drift_is_told_apart_by_the_trail():
    world = MemoryKmsWorld()
    eng = Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                 clock=lambda: 1700000000.0)
    run(eng, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1"})
    for name in ("a", "b"):
        run(eng, "write", f"keymgmt/key/{name}", {"type": "aes256-gcm96"})
        run(eng, "write", f"keymgmt/kms/k1/key/{name}", {"purpose": "encrypt,decrypt"})
    assert explain(verify(eng, None), open_trail(eng, {}).records())["changed_outside_keymgmt"] == 0

    a_id = eng.store.get("ns/default/dist/k1/a")["versions"]["1"]["key_id"]
    MemoryKms("us-west-1", world).disable_key(a_id)  # behind keymgmt's back
    world.fail_next("ImportKeyMaterial", count=1)
    with pytest.raises(ProviderError):
        run(eng, "write", "keymgmt/key/b/rotate")
    result = explain(verify(eng, None), open_trail(eng, {}).records())
    by_key = {item["key_id"]: item for item in result["drift"]}
    assert by_key[a_id]["audit"]["behind_our_back"] is True
    b_new = eng.store.get("ns/default/dist/k1/b")["versions"]["2"]["key_id"]
    b_items = [item for item in result["drift"] if item["path"].endswith("/b")]
    assert b_items and all(item["audit"]["behind_our_back"] is False for item in b_items), b_items
    assert any(item["key_id"] == b_new for item in b_items)
    assert result["changed_outside_keymgmt"] == 1

    # the same drift with no trail at all cannot be judged
    unknown = explain(verify(eng, None), [])
    assert all(item["audit"]["behind_our_back"] is None for item in unknown["drift"])
    assert unknown["changed_outside_keymgmt"] == 0
