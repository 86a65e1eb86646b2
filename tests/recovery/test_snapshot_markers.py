"""Snapshots and the authenticated markers: a snapshot carries none of a copy's identity, and one
saved by a keymgmt from before markers were authenticated (untagged escrow record and origin)
still restores: the snapshot's own MAC proves its markers, which the restore signs."""

from __future__ import annotations

import base64
import json
import os

from keymgmt_cli.store import snapshot, snapshotfile
from keymgmt_cli.store.auth import AUTH_FIELD
from recovery_support import file_env, km


def _state(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    env = file_env(tmp_path / "src", KEYMGMT_MASTER_KEY=key)
    assert km(env, "write", "keymgmt/key/k", "type=aes256-gcm96")[0] == 0
    assert km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[0] == 0
    return env, key


def test_a_snapshot_carries_no_instance_origin_or_retirement(tmp_path):
    env, key = _state(tmp_path)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    copy = file_env(tmp_path / "copy", KEYMGMT_MASTER_KEY=key)
    assert km(copy, "operator", "snapshot", "restore", str(file))[0] == 0
    again = tmp_path / "again.snap"
    assert km(copy, "operator", "snapshot", "save", str(again))[0] == 0  # a snapshot of a copy
    _, body, _ = snapshotfile.read(str(again))
    assert not set(body["documents"]) & snapshot.LOCAL_ONLY
    instance = json.loads((tmp_path / "copy" / "meta" / "instance.json").read_text())["instance_id"]
    assert body["instance"] == {"id": instance, "retired": []}
    third = file_env(tmp_path / "third", KEYMGMT_MASTER_KEY=key)
    assert km(third, "operator", "snapshot", "restore", str(again))[0] == 0
    origin = json.loads((tmp_path / "third" / "meta" / "origin.json").read_text())
    assert origin["source_instance"] == instance and origin["source_retired"] is False
    assert json.loads((tmp_path / "third" / "meta" / "instance.json").read_text())["instance_id"] != instance


def test_a_snapshot_with_untagged_markers_from_an_older_keymgmt_restores_and_signs_them(tmp_path):
    env, key = _state(tmp_path)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    _, body, _ = snapshotfile.read(str(file))
    docs = body["documents"]
    docs["meta/escrow"] = {k: v for k, v in docs["meta/escrow"].items() if k != AUTH_FIELD}
    docs["meta/origin"] = {"format": 1, "copy_of": body["state_id"], "restored_from": "/old"}
    body.pop("instance")
    old = tmp_path / "old.snap"
    old.write_bytes(snapshotfile.encode(body, base64.b64decode(key)))  # as the older keymgmt made it
    copy = file_env(tmp_path / "copy", KEYMGMT_MASTER_KEY=key)
    code, out, err = km(copy, "operator", "snapshot", "restore", str(old))
    assert code == 0, err
    escrow = json.loads((tmp_path / "copy" / "meta" / "escrow.json").read_text())
    assert AUTH_FIELD in escrow
    assert "Escrow:      3 shares, threshold 2" in km(copy, "status")[1]
    origin = json.loads((tmp_path / "copy" / "meta" / "origin.json").read_text())
    assert AUTH_FIELD in origin and origin.get("restored_from") != "/old"  # the restore's own origin
    assert km(copy, "verify")[0] == 0 and km(copy, "write", "-f", "keymgmt/key/k/rotate")[0] == 0
    # an untagged marker in a snapshot whose file MAC does not hold is refused like any edit
    tampered = old.read_bytes().replace(b'"threshold": 2', b'"threshold": 1')
    bad = tmp_path / "bad.snap"
    bad.write_bytes(tampered)
    code, _, err = km(file_env(tmp_path / "other", KEYMGMT_MASTER_KEY=key), "operator", "snapshot", "restore", str(bad))
    assert code == 2 and "not an unmodified keymgmt snapshot" in err
