"""operator init and migrate with a DynamoDB state (moto in-process): init leaves a fresh table empty
(so migrate into it is not refused), each state keeps its own trail (a trail is never copied: it is
MAC'd under its own state's master key), and both trails record the migration and verify."""

from __future__ import annotations

import base64
import os

import pytest

from dynamo.dynamo_support import REGION, aws_test_credentials, invoke
from keymgmt_cli.audit import chain
from keymgmt_cli.audit.doctrail import DocTrail
from keymgmt_cli.audit.filetrail import FileTrail
from keymgmt_cli.audit.keys import AuditKeys

moto = pytest.importorskip("moto")
pytestmark = pytest.mark.emulator


@pytest.fixture
def aws(monkeypatch):
    aws_test_credentials(monkeypatch)
    with moto.mock_aws():
        import boto3

        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(Description="seal")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/keymgmt-seal", TargetKeyId=key_id)
        yield kms


def env_for(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_")}
    env.update(KEYMGMT_HOME=str(home), KEYMGMT_CONFIG=str(home / "absent.json"), **extra)
    return env


def ok(environ, *args):
    code, out, err = invoke(environ, *args)
    assert code == 0, (args, out, err)
    return out


def verified(trail) -> list[dict]:
    count, problem = chain.verify(trail.records(), trail.head(), trail.keys)
    assert problem is None, problem
    return [r for _w, r in trail.records()]


def test_init_leaves_the_table_empty_and_each_state_keeps_its_own_trail(aws, tmp_path):
    from keymgmt_cli.store import keysource, open_store, open_store_url

    key_a = base64.b64encode(os.urandom(32)).decode()
    src_env = env_for(tmp_path / "src", KEYMGMT_MASTER_KEY=key_a)
    ok(src_env, "write", "keymgmt/key/k", "type=aes256-gcm96")
    table = f"dynamodb://team?region={REGION}"
    dyn_env = env_for(tmp_path / "machine", KEYMGMT_STORAGE=table, KEYMGMT_SEAL=f"awskms://alias/keymgmt-seal?region={REGION}")
    ok(dyn_env, "operator", "init")
    dyn = open_store(dyn_env)
    assert [i for i in dyn.all_ids() if not i.startswith("meta/")] == []

    ok(dict(dyn_env, KEYMGMT_MASTER_KEY=key_a), "operator", "migrate", f"-from=file://{tmp_path / 'src'}", f"-to={table}")
    dyn_key = keysource.load_key(dyn, dyn_env).key
    dyn_trail = DocTrail(dyn, AuditKeys(dyn_key))
    recs = verified(dyn_trail)
    assert [(r["type"], r["request"]["path"]) for r in recs] == [("request", "sys/operator/migrate"),
                                                                  ("response", "sys/operator/migrate")]
    src_trail = FileTrail(tmp_path / "src.audit", AuditKeys(base64.b64decode(key_a)))
    assert [r["request"]["path"] for r in verified(src_trail)][-2:] == ["sys/operator/migrate"] * 2

    ok(dyn_env, "write", "-f", "keymgmt/key/k/rotate")  # the table's trail goes on from there
    assert len(verified(dyn_trail)) == 4

    key_b = base64.b64encode(os.urandom(32)).decode()
    back = tmp_path / "back"
    ok(dict(dyn_env, KEYMGMT_MASTER_KEY=key_b), "operator", "migrate", f"-from={table}", f"-to=file://{back}")
    copied = open_store_url(f"file://{back}", {})
    assert not [i for i in copied.all_ids() if i.startswith("audit/")]  # the table's trail stays in the table
    recs = verified(dyn_trail)
    assert [(r["type"], r["request"]["path"]) for r in recs[-2:]] == [("request", "sys/operator/migrate"),
                                                                       ("response", "sys/operator/migrate")]
    back_recs = verified(FileTrail(tmp_path / "back.audit", AuditKeys(base64.b64decode(key_b))))
    assert [r["type"] for r in back_recs] == ["request", "response"]
    assert back_recs[1]["response"]["data"]["copied_from"] == table
