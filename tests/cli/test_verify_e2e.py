"""`keymgmt verify` end to end: the real CLI, the boto3 adapter and the embedded local KMS."""

from __future__ import annotations

import json

import boto3
import pytest

from keymgmt_cli.localkms import server
from support.cli import km as run

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def kms():
    with server.start() as local:
        yield local


def test_verify_in_sync_then_names_drift(cli_environ, kms):
    def km(*args):
        return run(cli_environ, *args)

    assert km("write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
              "credentials=access_key=AKIAVERIFY", "credentials=secret_key=verify-secret",
              f"credentials=endpoint={kms.endpoint_url}").returncode == 0
    assert km("write", "keymgmt/key/v", "type=aes256-gcm96").returncode == 0
    assert km("write", "keymgmt/kms/e/key/v", "purpose=encrypt,decrypt").returncode == 0
    ok = km("verify")
    assert (ok.returncode, ok.stdout) == (0, "checked 1 distribution(s), 1 KMS key(s): in sync\n"), ok.stderr
    key_id = json.loads(km("read", "-format=json", "keymgmt/kms/e/key/v").stdout)["data"]["versions"]["1"]
    client = boto3.client("kms", region_name="us-west-2", endpoint_url=kms.endpoint_url,
                          aws_access_key_id="AKIAVERIFY", aws_secret_access_key="verify-secret")
    client.disable_key(KeyId=key_id)
    drift = km("verify", "-format=json")
    assert drift.returncode == 2
    found = json.loads(drift.stdout)["data"]
    assert found["in_sync"] is False
    assert [(d["key_id"], d["problem"]) for d in found["drift"]] == [
        (key_id, "is Disabled, expected Enabled (min_enabled_version 0)")]
    table = km("verify", "keymgmt/kms/e/key/v")
    assert table.returncode == 2 and f"DRIFT  keymgmt/kms/e/key/v v1  us-west-2  {key_id}: is Disabled" in table.stdout


def test_an_unreachable_provider_exits_3_and_the_others_are_checked(cli_environ, kms):
    environ = dict(cli_environ, AWS_MAX_ATTEMPTS="1")

    def km(*args):
        return run(environ, *args)

    for name, endpoint in (("near", kms.endpoint_url), ("gone", "http://127.0.0.1:9")):
        assert km("write", f"keymgmt/kms/{name}", "provider=awskms", "key_collection=us-west-2",
                  "credentials=access_key=AKIAVERIFY", "credentials=secret_key=verify-secret",
                  f"credentials=endpoint={endpoint}").returncode == 0
    assert km("write", "keymgmt/key/v", "type=aes256-gcm96").returncode == 0
    assert km("write", "keymgmt/kms/near/key/v", "purpose=encrypt,decrypt").returncode == 0
    result = km("verify")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "UNCHECKED  keymgmt/kms/gone  us-west-2: could not check: " in result.stdout
    assert result.stdout.strip().endswith("no drift found, 1 provider(s) could not be checked")
    assert "verify-secret" not in result.stdout + result.stderr
