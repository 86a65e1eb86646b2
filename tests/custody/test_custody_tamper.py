"""Issue 9, item 3, end to end: hand-edited, copied-between-states and rolled-back documents are
refused by the CLI (file state, real processes) and by the engine on DynamoDB (moto), before
anything is acted upon; a format-1 state is upgraded once, explicitly."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEY_DOC = Path("ns") / "default" / "keys" / "k1.json"


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", "keymgmt_cli", *args], env=dict(env, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=120, cwd="/")


def _env(home, key):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(KEYMGMT_HOME=str(home), KEYMGMT_MASTER_KEY=key, KEYMGMT_CONFIG=str(home.parent / "none.json"))
    return env


def _key():
    return base64.b64encode(os.urandom(32)).decode()


# Vault's verbs exit 2 for every failed request, the local state included; other commands exit 1
def _refusal_code(proc) -> int:
    return 2 if proc.args[3] in ("read", "list", "write", "delete") else 1


def _refused(proc, doc, *words):
    assert proc.returncode == _refusal_code(proc), (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    first = proc.stderr.strip().splitlines()[0]
    assert doc in first, proc.stderr
    for word in words:
        assert word in first, proc.stderr


@pytest.fixture
def state(tmp_path):
    home, key = tmp_path / "state", _key()
    env = _env(home, key)
    assert _run(env, "write", "keymgmt/key/k1", "type=rsa-2048").returncode == 0
    return home, env


def _edit(path: Path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_hand_edited_deletion_allowed_is_refused_and_the_key_stays(state):
    home, env = state
    _edit(home / KEY_DOC, lambda d: d.update(deletion_allowed=True))
    proc = _run(env, "delete", "keymgmt/key/k1")
    _refused(proc, "ns/default/keys/k1", "failed authentication")
    assert (home / KEY_DOC).exists()


def test_hand_edited_public_key_is_not_served_by_read(state):
    home, env = state
    _edit(home / KEY_DOC, lambda d: d["versions"]["1"].update(public_key="-----BEGIN PUBLIC KEY-----\nMITM\n"))
    for fmt in ("json", "yaml"):  # the fast path and the click path
        proc = _run(env, "read", f"-format={fmt}", "keymgmt/key/k1")
        _refused(proc, "ns/default/keys/k1", "failed authentication")


def test_hand_edited_mount_table_is_refused(state):
    home, env = state
    _edit(home / "state.json", lambda d: d["mounts"].update({"evil/": {"uuid": "default", "type": "keymgmt"}}))
    proc = _run(env, "secrets", "list")
    _refused(proc, "state document state", "failed authentication")


def test_document_copied_from_another_state_with_the_same_key_is_refused(state, tmp_path):
    home, env = state
    other = tmp_path / "other"
    other_env = _env(other, env["KEYMGMT_MASTER_KEY"])  # the same master key (one team key, two states)
    assert _run(other_env, "write", "keymgmt/key/k1", "type=rsa-2048", "deletion_allowed=true").returncode == 0
    shutil.copy(other / KEY_DOC, home / KEY_DOC)  # the default mount's uuid is "default" in both
    proc = _run(env, "delete", "keymgmt/key/k1")
    _refused(proc, "ns/default/keys/k1", "failed authentication")
    assert _run(env, "read", "keymgmt/key/k1").returncode == 2


def test_older_copy_put_back_is_refused(state):
    home, env = state
    old = (home / KEY_DOC).read_bytes()
    assert _run(env, "write", "keymgmt/key/k1", "deletion_allowed=true").returncode == 0
    assert _run(env, "write", "keymgmt/key/k1", "deletion_allowed=false").returncode == 0
    (home / KEY_DOC).write_bytes(old)  # an older, validly authenticated copy
    proc = _run(env, "write", "keymgmt/key/k1", "min_enabled_version=1")
    _refused(proc, "ns/default/keys/k1", "older copy")
    proc = _run(env, "read", "keymgmt/key/k1")  # the fast path checks it too (the key is cheap here)
    _refused(proc, "ns/default/keys/k1", "older copy")


def test_planted_unauthenticated_document_is_refused(state):
    home, env = state
    planted = home / "ns" / "default" / "keys" / "planted.json"
    planted.write_text(json.dumps({"name": "planted", "type": "aes256-gcm96", "deletion_allowed": True}))
    proc = _run(env, "read", "keymgmt/key/planted")
    _refused(proc, "ns/default/keys/planted", "not authenticated")
    assert "operator upgrade" in proc.stderr


def test_reads_without_a_cheap_key_import_no_keyring_and_still_refuse_an_untagged_document(state, tmp_path):
    """A state whose key lives in the OS keyring: read/list check tags but not MACs (README)."""
    from keymgmt_cli.store.auth import AuthStore
    from keymgmt_cli.store.filestore import FileStore

    home, _env_ = state
    store = AuthStore(FileStore(home), lambda: None)
    assert store.get("ns/default/keys/k1")["name"] == "k1"
    FileStore(home).put("ns/default/keys/bare", {"name": "bare"})
    with pytest.raises(Exception, match="not authenticated"):
        store.get("ns/default/keys/bare")


# -- upgrade of a format-1 state ------------------------------------------------------------------
def _format1(home: Path):
    """Strip every tag and revision record: what an older keymgmt left on disk."""
    shutil.rmtree(home / "meta", ignore_errors=True)
    for path in home.rglob("*.json"):
        if path.name == "seal.json":
            continue
        doc = json.loads(path.read_text())
        doc.pop("_auth", None)
        path.write_text(json.dumps(doc))


def test_format1_state_is_refused_until_upgraded_then_works(state):
    home, env = state
    _format1(home)
    proc = _run(env, "read", "keymgmt/key/k1")
    _refused(proc, "state document state", "not authenticated")
    proc = _run(_env(home, _key()), "operator", "upgrade")  # another key: not proven
    assert proc.returncode == 1 and "does not match" in proc.stderr, proc.stderr
    proc = _run(env, "operator", "upgrade")
    assert proc.returncode == 0, proc.stderr
    assert "Authenticated 2 documents" in proc.stdout
    assert _run(env, "read", "keymgmt/key/k1").returncode == 0
    assert _run(env, "write", "-f", "keymgmt/key/k1/rotate").returncode == 0
    proc = _run(env, "operator", "upgrade")  # re-run: checked, unchanged
    assert proc.returncode == 0 and "authenticated already" in proc.stdout


def test_upgrade_refuses_a_state_whose_tags_were_stripped(state):
    home, env = state
    _edit(home / KEY_DOC, lambda d: (d.pop("_auth"), d.update(deletion_allowed=True)))
    proc = _run(env, "operator", "upgrade")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "removed its tag" in proc.stderr or "removed tags" in proc.stderr, proc.stderr
    assert "_auth" not in (home / KEY_DOC).read_text()


def test_upgrade_refuses_a_secret_sealed_elsewhere(state, tmp_path):
    home, env = state
    _format1(home)
    doc = json.loads((home / KEY_DOC).read_text())
    doc["versions"]["2"] = dict(doc["versions"]["1"])  # a token moved to another field
    (home / KEY_DOC).write_text(json.dumps(doc))
    proc = _run(env, "operator", "upgrade")
    assert proc.returncode == 1 and "cannot unseal" in proc.stderr, proc.stderr


# -- DynamoDB: someone with dynamodb:PutItem ------------------------------------------------------
@pytest.fixture
def dynamo_engine(monkeypatch, tmp_path):
    moto = pytest.importorskip("moto")
    sys.path.insert(0, str(REPO / "tests" / "dynamo"))
    from dynamo_support import REGION, aws_test_credentials

    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
    from keymgmt_cli.store import open_secret_box, open_store

    aws_test_credentials(monkeypatch)
    with moto.mock_aws():
        environ = _env(tmp_path / "machine", _key())
        environ["KEYMGMT_STORAGE"] = f"dynamodb://tamper?region={REGION}"
        store = open_store(environ)
        store.ensure_table()
        from keymgmt_cli.store.kmsseal import init_shared_seal

        init_shared_seal(store.inner, environ)
        world = MemoryKmsWorld()

        def make():
            s = open_store(environ)
            return Engine(s, open_secret_box(s.home, environ, store=s), lambda cfg: MemoryKms(cfg.region, world))

        yield make, world


def _handle(engine, op, path, **data):
    from keymgmt_cli.engine.routing import Request

    return engine.handle(Request(op, path, data))


def test_dynamodb_put_item_cannot_steer_a_deletion(dynamo_engine):
    from keymgmt_cli.errors import StoreError
    from keymgmt_cli.store.dynamostore import DynamoStore

    make, world = dynamo_engine
    engine = make()
    _handle(engine, "write", "keymgmt/kms/aws", provider="awskms", key_collection="us-west-1")
    _handle(engine, "write", "keymgmt/key/k1", type="aes256-gcm96")
    _handle(engine, "write", "keymgmt/kms/aws/key/k1", purpose="encrypt,decrypt")
    raw = make().store.inner
    dist_id = "ns/default/dist/aws/k1"
    doc = raw.get(dist_id)
    victim_ids = [v for v in json.dumps(doc).split('"') if v.count("-") == 4]  # uuid-shaped key ids
    assert victim_ids
    # the attacker points the record at another environment's KMS key (PutItem, tag kept)
    doc_text = json.dumps(doc).replace(victim_ids[0], "11111111-2222-3333-4444-555555555555")
    other = DynamoStore(raw.table, raw.region, home=raw.home)
    other.get(dist_id)
    other.put(dist_id, json.loads(doc_text))
    with pytest.raises(StoreError, match=f"{dist_id} .*failed authentication"):
        _handle(make(), "delete", "keymgmt/kms/aws/key/k1")
    # the key doc: deletion_allowed flipped by PutItem
    key_doc = other.get("ns/default/keys/k1")
    key_doc["deletion_allowed"] = True
    other.put("ns/default/keys/k1", key_doc)
    with pytest.raises(StoreError, match="ns/default/keys/k1 .*failed authentication"):
        _handle(make(), "delete", "keymgmt/key/k1")


def test_dynamodb_rolled_back_item_is_refused(dynamo_engine):
    from keymgmt_cli.errors import StoreError
    from keymgmt_cli.store.dynamostore import DynamoStore

    make, _world = dynamo_engine
    _handle(make(), "write", "keymgmt/key/k1", type="aes256-gcm96", deletion_allowed="true")
    raw = make().store.inner
    old = raw.get("ns/default/keys/k1")
    _handle(make(), "write", "keymgmt/key/k1", deletion_allowed="false")
    other = DynamoStore(raw.table, raw.region, home=raw.home)
    other.get("ns/default/keys/k1")
    other.put("ns/default/keys/k1", old)  # the earlier item, from a backup or an earlier read
    with pytest.raises(StoreError, match="ns/default/keys/k1 .*older copy"):
        _handle(make(), "delete", "keymgmt/key/k1")
