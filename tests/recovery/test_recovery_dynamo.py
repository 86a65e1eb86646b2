"""Escrow, recover, snapshots and rekey on the DynamoDB backend (moto's server on 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import os

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dynamo"))  # the moto server helpers
from dynamo_support import REGION, aws_test_credentials, machine_env, moto_server
from recovery_support import assert_absent, file_env, km, shares_of

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
SECRET = "dynamo/recovery/SECRET+0123456789abcdefgh"


aws = pytest.fixture(scope="module", name="aws")(moto_server)


@pytest.fixture
def table(aws, request, monkeypatch):
    aws_test_credentials(monkeypatch)
    name = "rec-" + request.node.name.replace("_", "-")[:40]
    return f"dynamodb://{name}?region={REGION}&endpoint={aws.endpoint}"


def _kms_seal(aws):
    key_id = aws.client("kms").create_key(Description="keymgmt seal")["KeyMetadata"]["KeyId"]
    return f"awskms://{key_id}?region={REGION}&endpoint={aws.endpoint}"


def _build(env, aws):
    for args in (["write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
                  "credentials=access_key=AKIADYNAMORECOVERY01", f"credentials=secret_key={SECRET}",
                  f"credentials=endpoint={aws.endpoint}"],
                 ["write", "keymgmt/key/v", "type=aes256-gcm96"],
                 ["write", "keymgmt/kms/e/key/v", "purpose=encrypt,decrypt"]):
        code, _, err = km(env, *args)
        assert code == 0, (args, err)
    assert km(env, "verify")[0] == 0


def _all_secrets_open_under(store_url, environ, key):
    from keymgmt_cli.store import open_store_url
    from keymgmt_cli.store.migrate import walk_leaves as _walk
    from keymgmt_cli.store.rekey import TOKEN_RE
    from keymgmt_cli.store.seal import Sealer
    from keymgmt_cli.store.snapshot import all_ids

    store, sealer, n = open_store_url(store_url, environ), Sealer(key), 0
    for doc_id in all_ids(store):
        for path, value in _walk(store.get(doc_id)):
            if isinstance(value, str) and TOKEN_RE.match(value) and not doc_id.startswith("meta/"):
                sealer.unseal(value, f"{doc_id}#{'/'.join(path)}")
                n += 1
    return n


def test_team_key_lost_then_recovered_from_shares(aws, table, tmp_path):
    key = os.urandom(32)
    env = machine_env(tmp_path / "a", table, KEYMGMT_MASTER_KEY=base64.b64encode(key).decode())
    assert km(env, "operator", "init")[0] == 0
    _build(env, aws)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=4", "-key-threshold=3")[1])
    lost = {k: v for k, v in env.items() if k != "KEYMGMT_MASTER_KEY"}
    code, _, err = km(lost, "write", "-f", "keymgmt/key/v/rotate")
    assert code == 2 and "not set" in err
    code, _, err = km(lost, "operator", "recover", input="\n".join(shares[1:]))  # cannot write the env
    assert code == 2 and "-print" in err
    code, _, err = km(lost, "operator", "recover", "-print", input="\n".join(shares[:2]))
    assert code == 2 and "needs 3" in err
    code, out, err = km(lost, "operator", "recover", "-print", input="\n".join(shares[:3]))
    assert code == 0 and base64.b64decode(out.strip()) == key, err
    back = dict(lost, KEYMGMT_MASTER_KEY=out.strip())
    assert km(back, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    assert km(back, "verify")[0] == 0
    assert "Escrow:      4 shares, threshold 3" in km(back, "status")[1]


def test_file_snapshot_restored_into_dynamodb_then_verify_and_rotate(aws, table, tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    src = file_env(tmp_path / "laptop", KEYMGMT_MASTER_KEY=key)
    _build(src, aws)
    file = tmp_path / "s.snap"
    assert km(src, "operator", "snapshot", "save", str(file))[0] == 0
    team = machine_env(tmp_path / "ci", table, KEYMGMT_MASTER_KEY=key)
    code, out, err = km(team, "operator", "snapshot", "restore", f"-retire-source=file://{tmp_path / 'laptop'}", str(file))
    assert code == 0, err
    code, out, err = km(team, "verify")
    assert code == 0 and "in sync" in out, err
    assert km(team, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    assert km(team, "verify")[0] == 0
    code, _, err = km(src, "write", "-f", "keymgmt/key/v/rotate")
    assert code == 2 and "is retired" in err and table.split("&")[0] in err
    # the same snapshot again: its finished restore is recognised (the origin names it) and kept
    # as it is (the rotation above stays); so an interrupted -retire-source is finished by a re-run
    code, out, err = km(team, "operator", "snapshot", "restore", str(file))
    assert code == 0 and "nothing was written" in out, err
    assert km(team, "verify")[0] == 0
    assert km(team, "read", "-field=latest_version", "keymgmt/key/v")[1].strip() == "2"
    # another snapshot is refused: the target is not empty
    other = tmp_path / "other.snap"
    assert km(team, "operator", "snapshot", "save", str(other))[0] == 0
    code, _, err = km(team, "operator", "snapshot", "restore", str(other))
    assert code == 2 and "not empty" in err


def test_kms_sealed_dynamodb_snapshot_restored_into_a_fresh_table_and_a_directory(aws, table, tmp_path):
    seal = _kms_seal(aws)
    env = machine_env(tmp_path / "a", table, seal)
    assert km(env, "operator", "init")[0] == 0
    _build(env, aws)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    assert SECRET.encode() not in file.read_bytes()
    other = table.replace("rec-", "rec2-")
    env2 = machine_env(tmp_path / "b", other)
    code, _, err = km(env2, "operator", "snapshot", "restore", str(file))
    assert code == 0, err
    assert km(env2, "verify")[0] == 0
    env3 = file_env(tmp_path / "dir")  # a directory restored from it opens through AWS KMS too
    code, _, err = km(env3, "operator", "snapshot", "restore", str(file))
    assert code == 0, err
    assert km(env3, "verify")[0] == 0
    assert km(env2, "write", "-f", "keymgmt/key/v/rotate")[0] == 0 and km(env2, "verify")[0] == 0
    # two live copies of one state: after the table rotates, the directory's view has drifted
    assert km(env3, "verify")[0] == 2


def test_rekey_of_a_kms_sealed_table_renews_the_data_key(aws, table, tmp_path):
    from keymgmt_cli.store import open_store_url
    from keymgmt_cli.store.kmsseal import load_shared_master_key

    seal = _kms_seal(aws)
    env = machine_env(tmp_path / "a", table, seal)
    assert km(env, "operator", "init")[0] == 0
    _build(env, aws)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=2", "-key-threshold=2")[1])
    store = open_store_url(table, env)
    old_record = store.get("meta/seal")
    old = load_shared_master_key(store, env).key
    code, out, err = km(env, "operator", "rekey")
    assert code == 0 and "new data key" in out, err
    new_shares = shares_of(out)
    record = open_store_url(table, env).get("meta/seal")
    assert record["encrypted_key"] != old_record["encrypted_key"] and record["kcv"] != old_record["kcv"]
    new = load_shared_master_key(open_store_url(table, env), env).key
    assert new != old and _all_secrets_open_under(table, env, new) >= 2
    with pytest.raises(Exception):
        _all_secrets_open_under(table, env, old)
    code, _, err = km(env, "write", "-f", "keymgmt/key/v/rotate")
    assert code == 0, err  # the audit trail in the table was re-linked under the new key
    assert km(env, "verify")[0] == 0
    code, out, err = km(env, "audit", "verify")
    assert code == 0, out + err
    code, _, err = km(env, "operator", "recover", "-print", input="\n".join(shares))
    assert code == 2 and "does not open the state" in err
    code, out, _ = km(env, "operator", "recover", "-print", input="\n".join(new_shares))
    assert code == 0 and base64.b64decode(out.strip()) == new
    assert_absent(json.dumps(record), [old, new])


def test_rekey_of_a_team_key_table_prints_the_new_key(aws, table, tmp_path):
    key = os.urandom(32)
    env = machine_env(tmp_path / "a", table, KEYMGMT_MASTER_KEY=base64.b64encode(key).decode())
    assert km(env, "operator", "init")[0] == 0
    _build(env, aws)
    code, out, err = km(env, "operator", "rekey", "-format=json")
    assert code == 0, err
    new = json.loads(out)["master_key_b64"]
    code, _, err = km(env, "write", "-f", "keymgmt/key/v/rotate")
    assert code == 2 and "does not match" in err
    assert km(dict(env, KEYMGMT_MASTER_KEY=new), "write", "-f", "keymgmt/key/v/rotate")[0] == 0
