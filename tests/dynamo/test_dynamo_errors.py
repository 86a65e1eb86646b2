"""The DynamoDB backend and the KMS seal when things go wrong, and what each call costs."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from dynamo_support import REGION, aws_test_credentials, invoke

moto = pytest.importorskip("moto")

pytestmark = pytest.mark.emulator


@pytest.fixture
def aws(monkeypatch):
    aws_test_credentials(monkeypatch)
    with moto.mock_aws():
        yield


@pytest.fixture
def store(aws, tmp_path):
    from keymgmt_cli.store.dynamostore import DynamoStore

    s = DynamoStore("errors", REGION, home=tmp_path)
    s.ensure_table()
    return s


def env_for(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_")}
    env.update(KEYMGMT_HOME=str(tmp_path / "home"), KEYMGMT_CONFIG=str(tmp_path / "absent.json"), **extra)
    return env


def stubbed(service):
    import botocore.session
    from botocore.stub import Stubber

    client = botocore.session.get_session().create_client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


# -- one clear line, exit 2 ------------------------------------------------------------------------
def test_missing_table_is_one_line_naming_the_table_and_the_fix(aws, tmp_path):
    env = env_for(tmp_path, KEYMGMT_STORAGE=f"dynamodb://absent-table?region={REGION}")
    code, out, err = invoke(env, "read", "keymgmt/key/k")
    assert code == 2
    assert err.splitlines() == ["Error reading keymgmt/key/k: DynamoDB table absent-table does not exist in "
                                "us-east-1; run 'keymgmt operator init'"]


@pytest.mark.parametrize("operation, method, call", [
    ("PutItem", "put_item", lambda s: s.put("m/keys/k", {"v": 1})),
    ("GetItem", "get_item", lambda s: s.get("m/keys/k")),
    ("Query", "query", lambda s: s.list("m/keys")),
])
def test_access_denied_names_the_dynamodb_permission(operation, method, call):
    from keymgmt_cli.cli.report import exit_code_for
    from keymgmt_cli.errors import ProviderError
    from keymgmt_cli.store.dynamostore import DynamoStore

    client, stub = stubbed("dynamodb")
    stub.add_client_error(method, service_error_code="AccessDeniedException",
                          service_message=f"User: arn:aws:iam::1:user/ci is not authorized to perform: "
                                          f"dynamodb:{operation}")
    with stub:
        with pytest.raises(ProviderError) as err:
            call(DynamoStore("team", REGION, client=client))
    assert str(err.value) == (f"DynamoDB {operation} on table team in us-east-1 was denied: "
                              f"AccessDeniedException (needs dynamodb:{operation})")
    assert exit_code_for(err.value) == 2


def _kms_record_store():
    from keymgmt_cli.store.memory import MemoryStore

    store = MemoryStore()
    store.put("meta/seal", {"format": 1, "kind": "awskms", "key_id": "alias/seal",
                            "key_arn": "arn:aws:kms:us-east-1:1:key/k", "region": REGION,
                            "endpoint": None, "encrypted_key": base64.b64encode(b"blob").decode(),
                            "kcv": "0" * 16})
    return store


@pytest.mark.parametrize("code, expected", [
    ("AccessDeniedException", "AWS KMS Decrypt in us-east-1 on seal key arn:aws:kms:us-east-1:1:key/k was "
                              "denied: AccessDeniedException (needs kms:Decrypt)"),
    ("DisabledException", "seal key arn:aws:kms:us-east-1:1:key/k is disabled (AWS KMS Decrypt in us-east-1: "
                          "DisabledException); the state's secrets cannot be unsealed"),
])
def test_kms_refusals_name_the_permission_or_the_key_state(code, expected):
    from keymgmt_cli.cli.report import exit_code_for
    from keymgmt_cli.errors import ProviderError
    from keymgmt_cli.store.kmsseal import load_shared_master_key

    client, stub = stubbed("kms")
    stub.add_client_error("decrypt", service_error_code=code, service_message="no")
    with stub:
        with pytest.raises(ProviderError) as err:
            load_shared_master_key(_kms_record_store(), {}, kms_client=client)
    assert str(err.value) == expected
    assert exit_code_for(err.value) == 2


def test_a_disabled_seal_key_locks_every_secret_but_not_the_metadata(aws, tmp_path):
    import boto3

    from keymgmt_cli.localkms import moto_import

    moto_import.install()  # moto alone checks no key state on Decrypt; AWS does
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    env = env_for(tmp_path, KEYMGMT_STORAGE=f"dynamodb://sealed?region={REGION}",
                  KEYMGMT_SEAL=f"awskms://{key_id}?region={REGION}")
    assert invoke(env, "operator", "init")[0] == 0
    assert invoke(env, "write", "keymgmt/key/k", "type=aes256-gcm96")[0] == 0
    kms.disable_key(KeyId=key_id)
    code, out, err = invoke(env, "write", "-f", "keymgmt/key/k/rotate")
    assert code == 2
    assert err.splitlines()[0] == (f"Error writing data to keymgmt/key/k/rotate: seal key {key_id} is disabled "
                                   "(AWS KMS Decrypt in us-east-1: DisabledException); the state's secrets "
                                   "cannot be unsealed")
    assert invoke(env, "read", "-field=latest_version", "keymgmt/key/k")[1].strip() == "1"
    kms.enable_key(KeyId=key_id)
    assert invoke(env, "write", "-f", "keymgmt/key/k/rotate")[0] == 0


def test_a_wrong_seal_key_is_refused(aws, tmp_path):
    import boto3

    kms = boto3.client("kms", region_name=REGION)
    first = kms.create_key()["KeyMetadata"]["KeyId"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    env = env_for(tmp_path, KEYMGMT_STORAGE=f"dynamodb://sealed?region={REGION}",
                  KEYMGMT_SEAL=f"awskms://{first}?region={REGION}")
    assert invoke(env, "operator", "init")[0] == 0
    code, out, err = invoke(dict(env, KEYMGMT_SEAL=f"awskms://{other}?region={REGION}"),
                            "write", "keymgmt/key/k", "type=aes256-gcm96")
    assert code == 2 and f"on seal key {other} was denied" in err  # moto's word for a foreign ciphertext
    # without KEYMGMT_SEAL the record's key is used: runners need only KEYMGMT_STORAGE
    env.pop("KEYMGMT_SEAL")
    assert invoke(env, "write", "keymgmt/key/k", "type=aes256-gcm96")[0] == 0


def test_lease_held_names_the_holder_and_until_when(store, tmp_path):
    from keymgmt_cli.errors import StoreError
    from keymgmt_cli.store.dynamoleases import runner_id
    from keymgmt_cli.store.dynamostore import DynamoStore

    other = DynamoStore("errors", REGION, home=tmp_path, lease_seconds=30)
    with store.lock("ns.key.k"):
        started = time.time()
        with pytest.raises(StoreError) as err:
            with other.lock("ns.key.k", timeout=0.2):
                pass
    message = str(err.value)
    until = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(started + 30))
    assert message.startswith("state is locked by another keymgmt process (lock ns.key.k); retry or check")
    assert f": lease ns.key.k held by {runner_id()} until {until}" in message and message.endswith("Z")
    assert err.value.exit_code == 2


def test_shared_state_refusals_exit_2():
    from keymgmt_cli.cli.report import exit_code_for
    from keymgmt_cli.store.dynamoleases import ConcurrentUpdate, LeaseHeld

    assert exit_code_for(LeaseHeld("x")) == 2 and exit_code_for(ConcurrentUpdate("x")) == 2


# -- consistency -------------------------------------------------------------------------------------
def test_a_write_based_on_a_stale_read_is_refused_not_lost(store, tmp_path):
    from keymgmt_cli.store.dynamoleases import ConcurrentUpdate, runner_id
    from keymgmt_cli.store.dynamostore import DynamoStore

    other = DynamoStore("errors", REGION, home=tmp_path)
    store.put("m/keys/k", {"n": 1})
    assert other.get("m/keys/k") == {"n": 1} == store.get("m/keys/k")
    store.put("m/keys/k", {"n": 2})
    with pytest.raises(ConcurrentUpdate) as err:
        other.put("m/keys/k", {"n": 99})
    assert str(err.value).startswith(f"concurrent update of m/keys/k by another runner ({runner_id()} at 20")
    assert str(err.value).endswith("so this write was refused; re-run the command")
    assert store.get("m/keys/k") == {"n": 2}
    assert other.get("m/keys/k") == {"n": 2}  # a re-read, then the write goes through
    other.put("m/keys/k", {"n": 3})
    # a document never read is only created, never blindly replaced; deletes check too
    with pytest.raises(ConcurrentUpdate):
        DynamoStore("errors", REGION).put("m/keys/k", {"blind": True})
    with pytest.raises(ConcurrentUpdate):
        store.delete("m/keys/k")
    assert store.get("m/keys/k") == {"n": 3}
    # deleted and created again by another runner: versions never repeat, so a read of the
    # first item cannot match the second one (counting from 1 would have let this through)
    store.put("m/keys/aba", {"gen": 1})
    assert store.get("m/keys/aba") == {"gen": 1} == other.get("m/keys/aba")
    assert other.delete("m/keys/aba") is True
    other.put("m/keys/aba", {"gen": 2})
    with pytest.raises(ConcurrentUpdate):
        store.put("m/keys/aba", {"gen": "1, updated"})
    assert other.get("m/keys/aba") == {"gen": 2}


def test_a_runner_that_lost_its_lease_writes_nothing_more(store):
    from keymgmt_cli.store import dynamoleases

    store.lease_seconds = 0.6
    with store.lock("L"):
        def refuse(*args, **kwargs):  # as if another runner took the lease while we stalled
            raise dynamoleases.ConditionFailed(None)

        store._renew = refuse
        time.sleep(0.5)
        with pytest.raises(dynamoleases.LeaseLost, match="lease L was lost"):
            store.put("m/x", {"late": True})
    assert store.get("m/x") is None


def test_the_lease_outlives_its_duration_while_held_and_is_released_after(store, tmp_path):
    from keymgmt_cli.store.dynamoleases import LeaseHeld
    from keymgmt_cli.store.dynamostore import DynamoStore

    store.lease_seconds = 1.0
    other = DynamoStore("errors", REGION, home=tmp_path)
    with store.lock("long"):
        time.sleep(2.0)  # twice the lease: renewed in the background
        with pytest.raises(LeaseHeld):
            with other.lock("long", timeout=0.3):
                pass
    assert store.lease_holder("long") is None
    with other.lock("long", timeout=0.5):
        pass


# -- cost: one request per read, list and write ------------------------------------------------------
def test_read_list_and_write_cost_one_request_each(store):
    calls = []
    store.client.meta.events.register("request-created.dynamodb", lambda request, operation_name, **kw:
                                      calls.append(operation_name))
    store.put("m/keys/k1", {"v": 1})
    assert calls == ["PutItem"]
    calls.clear()
    assert store.get("m/keys/k1") == {"v": 1}
    assert calls == ["GetItem"]
    calls.clear()
    assert store.list("m/keys") == ["k1"]
    assert calls == ["Query"]
    calls.clear()
    store.put("m/keys/k1", {"v": 2})
    assert calls == ["PutItem"]


# -- selection ---------------------------------------------------------------------------------------
def test_storage_and_seal_come_from_the_environment_or_the_config_file(tmp_path):
    from keymgmt_cli.errors import StoreError
    from keymgmt_cli.store import open_store, setting

    config = tmp_path / "config.json"
    env = {"KEYMGMT_HOME": str(tmp_path / "home"), "KEYMGMT_CONFIG": str(config)}
    assert open_store(env).backend == "file"  # no file: the local default
    config.write_text(json.dumps({"storage": f"dynamodb://from-file?region={REGION}",
                                  "seal": "awskms://alias/x?region=eu-west-1"}))
    store = open_store(env)
    assert (store.backend, store.location) == ("dynamodb", "dynamodb://from-file?region=us-east-1")
    assert setting(env, "seal") == "awskms://alias/x?region=eu-west-1"
    env["KEYMGMT_STORAGE"] = f"file://{tmp_path / 'local'}"  # the environment wins
    assert open_store(env).location == str(tmp_path / "local")
    env["KEYMGMT_STORAGE"] = "dynamodb://tbl?region=eu-west-1&endpoint=http://127.0.0.1:1"
    assert open_store(env).location == "dynamodb://tbl?region=eu-west-1&endpoint=http://127.0.0.1:1"
    for bad, words in [("dynamodb://tbl", "needs ?region=R"), ("s3://bucket", "is not supported"),
                       ("dynamodb://tbl?region=r&x=1", "unknown parameter 'x'")]:
        env["KEYMGMT_STORAGE"] = bad
        with pytest.raises(StoreError, match=words.replace("?", r"\?")):
            open_store(env)
    del env["KEYMGMT_STORAGE"]
    config.write_text("[1]")
    with pytest.raises(StoreError, match="is not a JSON object of strings"):
        open_store(env)


def test_status_names_the_backend_and_the_kms_seal_without_calling_kms(aws, tmp_path):
    import boto3

    from keymgmt_cli.store import describe_master_key, open_store

    key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    env = env_for(tmp_path, KEYMGMT_STORAGE=f"dynamodb://status-table?region={REGION}",
                  KEYMGMT_SEAL=f"awskms://{key_id}?region={REGION}")
    store = open_store(env)
    assert invoke(env, "operator", "init")[0] == 0
    line = describe_master_key(store, env)
    assert line == (f"awskms:arn:aws:kms:{REGION}:123456789012:key/{key_id} "
                    f"(sealed data key in dynamodb://status-table?region={REGION})")
    code, out, err = invoke(env, "status")
    assert code == 0 and out.startswith(f"State:       dynamodb dynamodb://status-table?region={REGION}\n")


# -- an item edited by hand: one line naming the document, never a traceback ------------------------
@pytest.mark.parametrize("doc, ver, reason", [
    ("[" * 100_000 + "]" * 100_000, "1", "nested too deeply"),
    ("{not json", "1", "Expecting property name"),
    ("[1, 2]", "1", "expected a JSON object, found list"),
    ('{"n": ' + "9" * 5000 + "}", "1", "integer string conversion"),
    ('{"a": 1}', "one", "its doc or ver attribute is missing or not of the type keymgmt writes"),
])
def test_a_hand_edited_item_is_corrupt_in_one_line(store, doc, ver, reason):
    from keymgmt_cli.errors import StoreError

    store.client.put_item(TableName=store.table, Item={
        "pk": {"S": "/m/keys"}, "sk": {"S": "k"}, "doc": {"S": doc}, "ver": {"N": ver} if ver.isdigit()
        else {"S": ver}})
    with pytest.raises(StoreError) as caught:
        store.get("m/keys/k")
    message = str(caught.value)
    assert message.startswith("state document m/keys/k in ") and "is corrupt (" in message
    assert reason in message
    assert "\n" not in message and "9999" not in message and "not json" not in message
