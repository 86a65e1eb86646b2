"""Issue 13's oracle: the double's model of AWS's key materials over time, through boto3.

ValidTo expiry (material deleted, key PendingImport, same material brings it back), deletion and
re-import of the same material, ImportType NEW/EXISTING, RotateKeyOnDemand and ListKeyRotations for
imported symmetric keys, and the clock hooks (``moto_import.set_clock``, ``KEYMGMT_LOCALKMS_CLOCK_OFFSET``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from keymgmt_cli.localkms import server
from keymgmt_cli.localkms.clock import OFFSET_ENV, check_offset
from test_moto_import import (  # noqa: F401  (fixtures are used by name)
    FakeClock,
    _aws_env,
    clock,
    do_import,
    kms,
    kms_other_region,
    moto_blob_plaintext,
    new_key,
    raises,
    rsa2048,
    pkcs8,
    state,
)

pytestmark = pytest.mark.emulator

DAY = 86400


def rotations(kms: Any, key_id: str, include: str = "ALL_KEY_MATERIAL") -> list[dict[str, Any]]:
    return kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial=include)["Rotations"]


def summary(kms: Any, key_id: str, include: str = "ALL_KEY_MATERIAL") -> list[tuple[str, str, str]]:
    return [(r["KeyMaterialId"], r["KeyMaterialState"], r["ImportState"]) for r in rotations(kms, key_id, include)]


def staged_key(kms: Any) -> tuple[dict[str, Any], bytes, str, bytes, str]:
    """An imported key with a second material PENDING_ROTATION: (meta, m1, id1, m2, id2)."""
    meta = new_key(kms)
    m1, m2 = os.urandom(32), os.urandom(32)
    id1 = do_import(kms, meta["KeyId"], m1, KeyMaterialDescription="first")["KeyMaterialId"]
    id2 = do_import(kms, meta["KeyId"], m2, ImportType="NEW_KEY_MATERIAL",
                    KeyMaterialDescription="second")["KeyMaterialId"]
    return meta, m1, id1, m2, id2


# --------------------------------------------------------------------------- ValidTo expiry


def test_expired_material_is_deleted_and_the_same_material_restores_the_key(kms: Any, clock: FakeClock) -> None:
    meta = new_key(kms)
    material = os.urandom(32)
    material_id = do_import(kms, meta["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES",
                            ValidTo=clock.now + DAY)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"before expiry")["CiphertextBlob"]
    clock.advance(DAY - 5)
    assert state(kms, meta["KeyId"]) == "Enabled"
    clock.advance(6)  # ValidTo passed (botocore sends it with microseconds, rounded either way)

    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert (described["KeyState"], described["Enabled"]) == ("PendingImport", False)
    assert "ValidTo" not in described and "CurrentKeyMaterialId" not in described
    assert summary(kms, meta["KeyId"]) == [(material_id, "CURRENT", "PENDING_IMPORT")]
    with raises("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=blob)
    with raises("KMSInvalidStateException"):
        kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
    with raises("IncorrectKeyMaterialException"):  # only the same material brings it back
        do_import(kms, meta["KeyId"], os.urandom(32))

    out = do_import(kms, meta["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=clock.now + DAY)
    assert (out["KeyId"], out["KeyMaterialId"]) == (meta["Arn"], material_id)
    assert state(kms, meta["KeyId"]) == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before expiry"


def test_clock_offset_env_moves_the_local_kms_in_server_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OFFSET_ENV, raising=False)
    with server.start() as local:
        client = boto3.client("kms", endpoint_url=local.endpoint_url, region_name="us-east-1")
        meta = new_key(client)
        material = os.urandom(32)
        do_import(client, meta["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES",
                  ValidTo=time.time() + 3600)
        blob = client.encrypt(KeyId=meta["KeyId"], Plaintext=b"p")["CiphertextBlob"]
        monkeypatch.setenv(OFFSET_ENV, "3500")
        assert state(client, meta["KeyId"]) == "Enabled"
        monkeypatch.setenv(OFFSET_ENV, "3601")
        assert state(client, meta["KeyId"]) == "PendingImport"
        with raises("KMSInvalidStateException"):
            client.decrypt(CiphertextBlob=blob)
        # The double's "now" is shifted too: a ValidTo in the real future but the shifted past is refused.
        with raises("ValidationException"):
            do_import(client, meta["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES",
                      ValidTo=time.time() + 3000)
        do_import(client, meta["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES",
                  ValidTo=time.time() + 3601 + 600)
        assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "1e999"])
def test_bad_clock_offset_is_refused_at_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(OFFSET_ENV, value)
    with pytest.raises(ValueError, match=OFFSET_ENV):
        server.start()


def test_clock_offset_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OFFSET_ENV, raising=False)
    assert check_offset() == 0.0
    monkeypatch.setenv(OFFSET_ENV, " -86400.5 ")
    assert check_offset() == -86400.5


# --------------------------------------------------------------------------- DeleteImportedKeyMaterial


def test_delete_makes_the_key_pending_import_until_the_same_material_returns(kms: Any) -> None:
    meta = new_key(kms)
    material = os.urandom(32)
    material_id = do_import(kms, meta["KeyId"], material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    kms.disable_key(KeyId=meta["KeyId"])
    out = kms.delete_imported_key_material(KeyId=meta["KeyId"])
    assert out == {"KeyId": meta["Arn"], "KeyMaterialId": material_id, "ResponseMetadata": out["ResponseMetadata"]}
    assert state(kms, meta["KeyId"]) == "PendingImport"
    assert summary(kms, meta["KeyId"]) == [(material_id, "CURRENT", "PENDING_IMPORT")]
    for call in (lambda: kms.decrypt(CiphertextBlob=blob), lambda: kms.enable_key(KeyId=meta["KeyId"]),
                 lambda: kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")):
        with raises("KMSInvalidStateException"):
            call()
    with raises("NotFoundException"):
        kms.delete_imported_key_material(KeyId=meta["KeyId"], KeyMaterialId="0" * 64)
    with raises("IncorrectKeyMaterialException"):
        do_import(kms, meta["KeyId"], os.urandom(32), ImportType="EXISTING_KEY_MATERIAL")
    out = do_import(kms, meta["KeyId"], material, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=material_id)
    assert out["KeyId"] == meta["Arn"]
    described = kms.describe_key(KeyId=meta["Arn"])["KeyMetadata"]
    assert (described["KeyState"], described["Arn"], described["CurrentKeyMaterialId"]) == (
        "Enabled", meta["Arn"], material_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


# --------------------------------------------------------------------------- ImportType and RotateKeyOnDemand


def test_on_demand_rotation_of_imported_material(kms: Any) -> None:
    meta, m1, id1, m2, id2 = staged_key(kms)
    key_id = meta["KeyId"]
    assert id1 != id2
    assert summary(kms, key_id) == [(id1, "CURRENT", "IMPORTED"), (id2, "PENDING_ROTATION", "IMPORTED")]
    assert summary(kms, key_id, "ROTATIONS_ONLY") == []
    assert [r["KeyMaterialDescription"] for r in rotations(kms, key_id)] == ["first", "second"]
    assert all("RotationDate" not in r for r in rotations(kms, key_id))
    old = kms.encrypt(KeyId=key_id, Plaintext=b"old")["CiphertextBlob"]
    assert moto_blob_plaintext(m1, old) == b"old"  # staged material is not used yet

    before = time.time()
    assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == key_id
    assert summary(kms, key_id) == [(id1, "NON_CURRENT", "IMPORTED"), (id2, "CURRENT", "IMPORTED")]
    (rotated,) = rotations(kms, key_id, "ROTATIONS_ONLY")
    assert (rotated["KeyMaterialId"], rotated["RotationType"]) == (id2, "ON_DEMAND")
    assert rotated["RotationDate"].timestamp() >= before - 1
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (described["KeyState"], described["CurrentKeyMaterialId"]) == ("Enabled", id2)
    new = kms.encrypt(KeyId=key_id, Plaintext=b"new")["CiphertextBlob"]
    assert moto_blob_plaintext(m2, new) == b"new"
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"old"  # NON_CURRENT still decrypts
    assert kms.decrypt(CiphertextBlob=new)["Plaintext"] == b"new"

    # Deleting a NON_CURRENT material makes the whole key unusable until that material is back.
    out = kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=id1)
    assert out["KeyMaterialId"] == id1
    assert state(kms, key_id) == "PendingImport"
    with raises("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=new)
    with raises("IncorrectKeyMaterialException"):  # the id names m1, the material is m2
        do_import(kms, key_id, m2, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=id1)
    do_import(kms, key_id, m1, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=id1)
    assert state(kms, key_id) == "Enabled"
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"old"
    assert kms.decrypt(CiphertextBlob=new)["Plaintext"] == b"new"


def test_staged_material_rules(kms: Any) -> None:
    meta, m1, id1, m2, id2 = staged_key(kms)
    key_id = meta["KeyId"]
    with raises("KMSInvalidStateException"):  # one material pending rotation at a time
        do_import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    with raises("IncorrectKeyMaterialException"):  # already associated
        do_import(kms, key_id, m1, ImportType="NEW_KEY_MATERIAL")
    # Deleting pending material removes it altogether and leaves the key as it was.
    assert kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=id2)["KeyMaterialId"] == id2
    assert summary(kms, key_id) == [(id1, "CURRENT", "IMPORTED")]
    assert state(kms, key_id) == "Enabled"
    with raises("KMSInvalidStateException"):  # nothing pending any more
        kms.rotate_key_on_demand(KeyId=key_id)
    m3 = os.urandom(32)
    id3 = do_import(kms, key_id, m3, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    assert summary(kms, key_id) == [(id1, "CURRENT", "IMPORTED"), (id3, "PENDING_ROTATION", "IMPORTED")]
    # Staging needs the key's permanent material imported.
    kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=id3)
    kms.delete_imported_key_material(KeyId=key_id)
    with raises("KMSInvalidStateException"):
        do_import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")


def test_rotate_key_on_demand_refusals(kms: Any, rsa2048: Any) -> None:
    meta = new_key(kms)
    with raises("KMSInvalidStateException"):  # PendingImport
        kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    do_import(kms, meta["KeyId"], os.urandom(32))
    with raises("KMSInvalidStateException"):  # no material pending rotation
        kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    do_import(kms, meta["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    kms.disable_key(KeyId=meta["KeyId"])
    with raises("DisabledException"):
        kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    kms.enable_key(KeyId=meta["KeyId"])
    kms.rotate_key_on_demand(KeyId=meta["Arn"])

    signing = new_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    do_import(kms, signing["KeyId"], pkcs8(rsa2048), algorithm="RSA_AES_KEY_WRAP_SHA_256")
    with raises("UnsupportedOperationException"):
        kms.rotate_key_on_demand(KeyId=signing["KeyId"])
    with raises("UnsupportedOperationException"):
        kms.list_key_rotations(KeyId=signing["KeyId"])


def test_at_most_25_on_demand_rotations(kms: Any) -> None:
    meta = new_key(kms)
    do_import(kms, meta["KeyId"], os.urandom(32))
    for _ in range(25):
        do_import(kms, meta["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")
        kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    do_import(kms, meta["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    with raises("LimitExceededException"):
        kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    assert len(rotations(kms, meta["KeyId"], "ROTATIONS_ONLY")) == 25
    assert len(rotations(kms, meta["KeyId"])) == 27


def test_list_key_rotations_pages_and_refusals(kms: Any) -> None:
    meta, *_ = staged_key(kms)
    key_id = meta["KeyId"]
    first = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL", Limit=1)
    assert first["Truncated"] is True and len(first["Rotations"]) == 1
    rest = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL", Limit=1,
                                  Marker=first["NextMarker"])
    assert rest["Truncated"] is False and "NextMarker" not in rest
    assert [r["KeyMaterialId"] for r in first["Rotations"] + rest["Rotations"]] == \
        [r["KeyMaterialId"] for r in rotations(kms, key_id)]
    with raises("InvalidMarkerException"):
        kms.list_key_rotations(KeyId=key_id, Marker="not-a-marker")
    with raises("ValidationException"):
        kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="EVERYTHING")


# --------------------------------------------------------------------------- expiry with several materials


def test_expiry_of_any_permanent_material_disables_the_key(kms: Any, clock: FakeClock) -> None:
    meta = new_key(kms)
    key_id = meta["KeyId"]
    m1 = os.urandom(32)
    id1 = do_import(kms, key_id, m1, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=clock.now + 2 * DAY)["KeyMaterialId"]
    id2 = do_import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    kms.rotate_key_on_demand(KeyId=key_id)
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    # ValidTo: the earliest expiry of any permanently associated material (here the NON_CURRENT one).
    assert abs(described["ValidTo"].timestamp() - (clock.now + 2 * DAY)) < 1
    assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"  # the current material's
    clock.advance(2 * DAY + 1)
    assert state(kms, key_id) == "PendingImport"
    assert summary(kms, key_id) == [(id1, "NON_CURRENT", "PENDING_IMPORT"), (id2, "CURRENT", "IMPORTED")]
    do_import(kms, key_id, m1, ImportType="EXISTING_KEY_MATERIAL")
    assert state(kms, key_id) == "Enabled"


def test_expired_pending_material_is_dropped_without_touching_the_key(kms: Any, clock: FakeClock) -> None:
    meta = new_key(kms)
    key_id = meta["KeyId"]
    id1 = do_import(kms, key_id, os.urandom(32))["KeyMaterialId"]
    do_import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL", ExpirationModel="KEY_MATERIAL_EXPIRES",
              ValidTo=clock.now + DAY)
    clock.advance(DAY + 1)
    assert summary(kms, key_id) == [(id1, "CURRENT", "IMPORTED")]
    assert state(kms, key_id) == "Enabled"
    with raises("KMSInvalidStateException"):
        kms.rotate_key_on_demand(KeyId=key_id)


def test_multi_region_on_demand_rotation_stages_on_the_primary_and_rotates_every_replica(
        kms: Any, kms_other_region: Any) -> None:
    """Reference 2.10: NEW_KEY_MATERIAL into the primary (PENDING_MULTI_REGION_IMPORT_AND_ROTATION,
    listed by the replicas too), EXISTING_KEY_MATERIAL into each replica, then RotateKeyOnDemand on
    the primary, refused while a replica lacks the material; the replicas rotate with it."""
    primary = new_key(kms, MultiRegion=True)
    key_id = primary["KeyId"]
    m1, m2 = os.urandom(32), os.urandom(32)
    id1 = do_import(kms, key_id, m1)["KeyMaterialId"]
    kms.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1")
    do_import(kms_other_region, key_id, m1)
    old = kms_other_region.encrypt(KeyId=key_id, Plaintext=b"under m1")["CiphertextBlob"]
    with raises("UnsupportedOperationException"):  # new material goes into the primary only
        do_import(kms_other_region, key_id, m2, ImportType="NEW_KEY_MATERIAL")
    id2 = do_import(kms, key_id, m2, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    assert summary(kms, key_id) == [(id1, "CURRENT", "IMPORTED"),
                                    (id2, "PENDING_MULTI_REGION_IMPORT_AND_ROTATION", "IMPORTED")]
    assert summary(kms_other_region, key_id) == [(id1, "CURRENT", "IMPORTED"),
                                                 (id2, "PENDING_MULTI_REGION_IMPORT_AND_ROTATION", "PENDING_IMPORT")]
    with raises("KMSInvalidStateException"):  # the replica lacks it
        kms.rotate_key_on_demand(KeyId=key_id)
    assert do_import(kms_other_region, key_id, m2, ImportType="EXISTING_KEY_MATERIAL")["KeyMaterialId"] == id2
    with raises("UnsupportedOperationException"):
        kms_other_region.rotate_key_on_demand(KeyId=key_id)  # rotate the primary, not a replica
    kms.rotate_key_on_demand(KeyId=key_id)
    for client in (kms, kms_other_region):
        assert summary(client, key_id) == [(id1, "NON_CURRENT", "IMPORTED"), (id2, "CURRENT", "IMPORTED")]
        assert client.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == id2
        assert client.decrypt(CiphertextBlob=old)["Plaintext"] == b"under m1"
    new = kms_other_region.encrypt(KeyId=key_id, Plaintext=b"under m2")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=new)["Plaintext"] == b"under m2"  # related keys interoperate


def test_deleting_material_staged_on_a_multi_region_primary_drops_the_replicas_copies(
        kms: Any, kms_other_region: Any) -> None:
    primary = new_key(kms, MultiRegion=True)
    key_id = primary["KeyId"]
    m1, m2 = os.urandom(32), os.urandom(32)
    id1 = do_import(kms, key_id, m1)["KeyMaterialId"]
    kms.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1")
    do_import(kms_other_region, key_id, m1)
    id2 = do_import(kms, key_id, m2, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    do_import(kms_other_region, key_id, m2, ImportType="EXISTING_KEY_MATERIAL")
    kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=id2)
    for client in (kms, kms_other_region):
        assert summary(client, key_id) == [(id1, "CURRENT", "IMPORTED")]
        assert client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_automatic_rotation_is_refused_for_imported_material(kms: Any) -> None:
    meta = new_key(kms)
    do_import(kms, meta["KeyId"], os.urandom(32))
    with raises("UnsupportedOperationException"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"] is False
    ordinary = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=ordinary)  # AWS_KMS keys are unaffected
    assert kms.get_key_rotation_status(KeyId=ordinary)["KeyRotationEnabled"] is True
