"""Keys over time against the embedded local KMS (the import double models ValidTo expiry and
DeleteImportedKeyMaterial as AWS does): ciphertexts made before the material expired, or before
the key was suspended, decrypt again after renew or resume, under the same ARN and alias."""

from __future__ import annotations

import json

import boto3
import pytest

from keymgmt_cli.localkms import server
from support.cli import km as run

pytestmark = pytest.mark.emulator

REGION = "us-west-2"


@pytest.fixture
def kms(monkeypatch):
    monkeypatch.delenv("KEYMGMT_LOCALKMS_CLOCK_OFFSET", raising=False)
    with server.start() as local:
        yield local


def _setup(cli_environ, kms):
    def km(*args):
        result = run(cli_environ, *args)
        assert "Traceback" not in result.stderr
        return result

    assert km("write", "keymgmt/kms/e", "provider=awskms", f"key_collection={REGION}",
              "credentials=access_key=AKIALIFETIME", "credentials=secret_key=lifetime-secret",
              f"credentials=endpoint={kms.endpoint_url}").returncode == 0
    assert km("write", "keymgmt/key/v", "type=aes256-gcm96").returncode == 0
    client = boto3.client("kms", region_name=REGION, endpoint_url=kms.endpoint_url,
                          aws_access_key_id="AKIALIFETIME", aws_secret_access_key="lifetime-secret")
    return km, client


def _state(client, key_id):
    return client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]


def test_expired_material_renewed_decrypts_old_ciphertexts(cli_environ, kms, monkeypatch):
    km, client = _setup(cli_environ, kms)
    assert km("write", "keymgmt/kms/e/key/v", "purpose=encrypt,decrypt", "valid_to=1d").returncode == 0
    data = json.loads(km("read", "-format=json", "keymgmt/kms/e/key/v").stdout)["data"]
    key_id, alias = data["versions"]["1"], "alias/hashicorp/" + data["name"]
    assert set(data["material_expiry"]["1"]) == {REGION}
    blob = client.encrypt(KeyId=alias, Plaintext=b"made before expiry")["CiphertextBlob"]
    monkeypatch.setenv("KEYMGMT_LOCALKMS_CLOCK_OFFSET", str(2 * 86400))  # two days later, in the KMS
    assert _state(client, key_id) == "PendingImport"
    with pytest.raises(client.exceptions.KMSInvalidStateException):
        client.decrypt(CiphertextBlob=blob)
    renew = km("write", "keymgmt/kms/e/key/v/renew", "valid_to=90d")
    assert renew.returncode == 0, renew.stderr
    assert _state(client, key_id) == "Enabled"
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"made before expiry"
    assert json.loads(km("read", "-format=json", "keymgmt/kms/e/key/v").stdout)["data"]["versions"]["1"] == key_id


def test_suspend_makes_the_key_unusable_and_resume_brings_it_back(cli_environ, kms):
    km, client = _setup(cli_environ, kms)
    assert km("write", "keymgmt/kms/e/key/v", "purpose=encrypt,decrypt").returncode == 0
    data = json.loads(km("read", "-format=json", "keymgmt/kms/e/key/v").stdout)["data"]
    key_id, alias = data["versions"]["1"], "alias/hashicorp/" + data["name"]
    blob = client.encrypt(KeyId=alias, Plaintext=b"before the kill switch")["CiphertextBlob"]
    suspend = km("write", "-f", "keymgmt/kms/e/key/v/suspend")
    assert suspend.returncode == 0, suspend.stderr
    assert _state(client, key_id) == "PendingImport"
    with pytest.raises(client.exceptions.KMSInvalidStateException):
        client.decrypt(CiphertextBlob=blob)
    assert km("verify").returncode == 0  # suspended on purpose: in sync
    assert json.loads(km("read", "-format=json", "keymgmt/kms/e/key/v").stdout)["data"]["suspended"] is True
    resume = km("write", "-f", "keymgmt/kms/e/key/v/resume")
    assert resume.returncode == 0, resume.stderr
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the kill switch"
    assert km("verify").returncode == 0
