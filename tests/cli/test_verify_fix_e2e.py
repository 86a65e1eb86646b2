"""`keymgmt verify -fix` end to end: the real CLI as a process, the boto3 adapter, the embedded local
KMS; AWS changed behind keymgmt's back with boto3, as an operator with the aws CLI would."""

from __future__ import annotations

import json

import boto3
import pytest

from keymgmt_cli.localkms import server
from support.cli import km as run

pytestmark = pytest.mark.emulator
SECRET = "verify-fix-secret"


@pytest.fixture(scope="module")
def kms():
    with server.start() as local:
        yield local


def test_fix_dry_run_then_fix_converges_and_reports_the_stray(cli_environ, kms):
    def km(*args):
        result = run(cli_environ, *args)
        assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr
        return result

    assert km("write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
              "credentials=access_key=AKIAVERIFYFIX", f"credentials=secret_key={SECRET}",
              f"credentials=endpoint={kms.endpoint_url}").returncode == 0
    assert km("write", "keymgmt/key/v", "type=aes256-gcm96").returncode == 0
    assert km("write", "-f", "keymgmt/key/v/rotate").returncode == 0
    assert km("write", "keymgmt/kms/e/key/v", "purpose=encrypt,decrypt").returncode == 0
    dist = json.loads(km("read", "-format=json", "keymgmt/kms/e/key/v").stdout)["data"]
    v1, v2 = dist["versions"]["1"], dist["versions"]["2"]
    alias = f"alias/hashicorp/{dist['name']}"
    client = boto3.client("kms", region_name="us-west-2", endpoint_url=kms.endpoint_url,
                          aws_access_key_id="AKIAVERIFYFIX", aws_secret_access_key=SECRET)
    client.disable_key(KeyId=v2)
    client.delete_imported_key_material(KeyId=v1)
    client.untag_resource(KeyId=v2, TagKeys=["keymgmt:version"])
    client.update_alias(AliasName=alias, TargetKeyId=v1)
    state_id = json.loads((__import__("pathlib").Path(cli_environ["KEYMGMT_HOME"]) / "state.json")
                          .read_text())["state_id"]
    stray = client.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT", Origin="EXTERNAL",
                              Tags=[{"TagKey": "keymgmt:state_id", "TagValue": state_id},
                                    {"TagKey": "keymgmt:mount", "TagValue": "keymgmt/"},
                                    {"TagKey": "keymgmt:kms", "TagValue": "e"}])["KeyMetadata"]["KeyId"]

    found = km("verify", "-format=json")
    assert found.returncode == 2
    drift = json.loads(found.stdout)["data"]["drift"]
    assert {d["kind"] for d in drift} == {"not_imported", "enabled", "tag", "alias_ours", "stray"}
    assert all(d["fix"] == "keymgmt verify -fix keymgmt/kms/e/key/v" for d in drift if d["kind"] != "stray")
    [stray_item] = [d for d in drift if d["kind"] == "stray"]
    assert stray_item["fix"].startswith(f"report only: aws kms describe-key --key-id {stray} --region us-west-2")
    table = km("verify")
    assert "       fix: keymgmt verify -fix keymgmt/kms/e/key/v" in table.stdout.splitlines()

    planned = km("verify", "-fix", "-dry-run", "-format=json")
    assert planned.returncode == 0, planned.stderr
    calls = [c["operation"] for c in json.loads(planned.stdout)["aws_calls"]["us-west-2"] if c["mutating"]]
    assert calls == ["ImportKeyMaterial", "EnableKey", "TagResource", "UpdateAlias"], calls
    assert client.describe_key(KeyId=v2)["KeyMetadata"]["KeyState"] == "Disabled"  # the plan changed nothing

    fixed = km("verify", "-fix")
    assert fixed.returncode == 2, (fixed.stdout, fixed.stderr)  # the stray remains: reported, not deleted
    assert f"FIXED  keymgmt/kms/e/key/v v1  us-west-2  {v1}: re-imported the material" in fixed.stdout
    assert f"FIXED  keymgmt/kms/e/key/v v2  us-west-2  {v2}: enabled" in fixed.stdout
    assert f"DRIFT  keymgmt/kms/e  us-west-2  {stray}: stray key" in fixed.stdout
    assert client.describe_key(KeyId=stray)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert client.describe_key(KeyId=v1)["KeyMetadata"]["KeyState"] == "Enabled"
    assert client.describe_key(KeyId=v2)["KeyMetadata"]["KeyState"] == "Enabled"
    assert {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=v2)["Tags"]}["keymgmt:version"] == "2"
    assert [a["TargetKeyId"] for a in client.list_aliases()["Aliases"] if a["AliasName"] == alias] == [v2]
    client.schedule_key_deletion(KeyId=stray, PendingWindowInDays=7)  # the operator cleans it up by hand
    assert km("verify").returncode == 0
    audit = km("audit", "list", "-format=json")
    assert "verify -fix" in audit.stdout
