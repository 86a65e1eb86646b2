"""Keys over time against LocalStack's KMS (issue 13): renew, suspend, resume and on-demand rotation
through the real CLI, with ciphertexts made before each step decrypting after it.

LocalStack is an independent implementation, so what it supports is probed first, once, on a
scratch key of its own (``support``): DeleteImportedKeyMaterial, ImportKeyMaterial with
ImportType=NEW_KEY_MATERIAL on a key that has material, and RotateKeyOnDemand. A test that needs
a call is skipped, with LocalStack's own answer as the reason, only when the probe shows that
call unsupported; everything else must pass. LocalStack stores ValidTo but never expires material
(/work/shared/reference/localstack.md), so expiry itself is proven on the local KMS and the twin.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

pytestmark = pytest.mark.localstack

DIST = "keymgmt/kms/ls/key"
UNSUPPORTED = ("UnsupportedOperationException", "NotImplementedError", "NotImplemented", "InternalFailure",
               "InternalError", "501")


def _answer(error: Exception) -> str:
    response = getattr(error, "response", {}) or {}
    code = response.get("Error", {}).get("Code", type(error).__name__)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    message = response.get("Error", {}).get("Message", str(error))
    return f"{code} (HTTP {status}): {message}"[:300]


def _import(kms: Any, key_id: str, material: bytes, **extra: Any) -> dict[str, Any]:
    from keymgmt_cli import transfer

    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    blob = transfer.wrap_key_material(material, bytes(params["PublicKey"]), "RSAES_OAEP_SHA_256")
    return kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=blob,
                                   ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", **extra)


@pytest.fixture(scope="session")
def support(kms: Any) -> dict[str, str | None]:
    """Call → None when LocalStack does it as AWS does, else why not (its answer, verbatim)."""
    from botocore.exceptions import BotoCoreError, ClientError

    found: dict[str, str | None] = {}
    key_id = kms.create_key(Origin="EXTERNAL", KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT",
                            Description="keymgmt lifetime probe")["KeyMetadata"]["KeyId"]
    first = os.urandom(32)
    _import(kms, key_id, first)
    try:  # on a scratch key of its own: what a deletion leaves must not decide the next probe
        staging = kms.create_key(Origin="EXTERNAL", KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT",
                                 Description="keymgmt lifetime probe")["KeyMetadata"]["KeyId"]
        _import(kms, staging, os.urandom(32))
    except (ClientError, BotoCoreError) as error:
        pytest.fail(f"LocalStack refused a plain import: {_answer(error)}")
    try:
        kms.delete_imported_key_material(KeyId=key_id)
        state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
        found["DeleteImportedKeyMaterial"] = None if state == "PendingImport" else \
            f"DeleteImportedKeyMaterial left the key {state}, not PendingImport"
    except (ClientError, BotoCoreError) as error:
        found["DeleteImportedKeyMaterial"] = _answer(error)
    try:  # and the material back: the same material again, then the key in use
        _import(kms, key_id, first, ImportType="EXISTING_KEY_MATERIAL")
        kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key_id, Plaintext=b"probe")["CiphertextBlob"])
        found["re-import after DeleteImportedKeyMaterial"] = None
    except (ClientError, BotoCoreError) as error:
        found["re-import after DeleteImportedKeyMaterial"] = _answer(error)
    try:
        _import(kms, staging, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
        found["ImportType"] = None
    except (ClientError, BotoCoreError) as error:
        found["ImportType"] = _answer(error)
    if found["ImportType"] is None:
        try:
            kms.rotate_key_on_demand(KeyId=staging)
            found["RotateKeyOnDemand"] = None
        except (ClientError, BotoCoreError) as error:
            found["RotateKeyOnDemand"] = _answer(error)
    else:
        found["RotateKeyOnDemand"] = "not probed: ImportType=NEW_KEY_MATERIAL is unsupported"
    for scratch in (key_id, staging):
        kms.schedule_key_deletion(KeyId=scratch, PendingWindowInDays=7)
    return found


def _needs(support: dict[str, str | None], *calls: str) -> None:
    for call in calls:
        if support.get(call) is not None:
            pytest.skip(f"LocalStack 2026.3 does not support {call} for imported symmetric key material "
                        f"(probed on a scratch key): {support[call]}")


def _distribute(cli: Any, name: str, *extra: str) -> tuple[str, str]:
    cli.run("write", f"keymgmt/key/{name}", "type=aes256-gcm96")
    cli.run("write", f"{DIST}/{name}", "purpose=encrypt,decrypt", "wrapping_key_spec=RSA_2048", *extra)
    data = cli.read(f"{DIST}/{name}")
    return data["versions"]["1"], "alias/hashicorp/" + data["name"]


def test_renew_reimports_the_same_material_with_the_new_expiry(cli: Any, kms: Any) -> None:
    key_id, alias = _distribute(cli, "renewed", "valid_to=30d")
    before = cli.read(f"{DIST}/renewed")["material_expiry"]["1"]
    blob = kms.encrypt(KeyId=alias, Plaintext=b"before renewal")["CiphertextBlob"]
    cli.run("write", f"{DIST}/renewed/renew", "valid_to=90d")
    after = cli.read(f"{DIST}/renewed")
    assert after["versions"]["1"] == key_id and after["material_expiry"]["1"] != before
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before renewal"


def test_suspend_makes_the_key_unusable_and_resume_brings_old_ciphertexts_back(cli: Any, kms: Any,
                                                                              support: dict) -> None:
    _needs(support, "DeleteImportedKeyMaterial", "re-import after DeleteImportedKeyMaterial")
    key_id, alias = _distribute(cli, "killed")
    blob = kms.encrypt(KeyId=alias, Plaintext=b"before the kill switch")["CiphertextBlob"]
    cli.run("write", "-f", f"{DIST}/killed/suspend")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert cli.read(f"{DIST}/killed")["suspended"] is True
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.decrypt(CiphertextBlob=blob)
    cli.run("write", "-f", f"{DIST}/killed/suspend")  # safe to repeat
    cli.run("write", "-f", f"{DIST}/killed/resume")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the kill switch"
    assert cli.read(f"{DIST}/killed")["suspended"] is False


def test_on_demand_rotation_keeps_the_arn_and_old_ciphertexts_decrypt(cli: Any, kms: Any, support: dict) -> None:
    _needs(support, "ImportType", "RotateKeyOnDemand")
    key_id, alias = _distribute(cli, "native", "rotation_mode=on-demand")
    blob = kms.encrypt(KeyId=alias, Plaintext=b"under version 1")["CiphertextBlob"]
    cli.run("write", "-f", "keymgmt/key/native/rotate")
    data = cli.read(f"{DIST}/native")
    assert data["rotation_mode"] == "on-demand" and data["versions"] == {"1": key_id, "2": key_id}
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    if "CurrentKeyMaterialId" in described:
        assert described["CurrentKeyMaterialId"] == data["key_material_ids"]["2"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"under version 1"
    newer = kms.encrypt(KeyId=alias, Plaintext=b"under version 2")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=newer)["Plaintext"] == b"under version 2"
    targets = [a.get("TargetKeyId") for a in kms.list_aliases(KeyId=key_id)["Aliases"]]
    assert targets == [key_id]


def test_on_demand_is_refused_for_an_rsa_key_with_one_line_and_exit_2(cli: Any) -> None:
    cli.run("write", "keymgmt/key/signer", "type=rsa-2048")
    refused = cli.run("write", f"{DIST}/signer", "purpose=sign,verify", "rotation_mode=on-demand", check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "aes256-gcm96" in refused.stderr
    assert cli.run("read", f"{DIST}/signer", check=False).returncode == 2  # nothing recorded
