"""MemoryKms, the in-memory twin: what the contract tests cannot reach through moto (fault
injection, the world's clock: deletion windows, replica deletion, expiry) and a wrap built
independently of transfer.py, so the twin does not just agree with itself."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from keymgmt_cli import keymaterial, transfer
from keymgmt_cli.errors import ProviderError
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld

REGION, OTHER = "us-east-1", "eu-west-1"


@pytest.fixture
def world():
    return MemoryKmsWorld()


@pytest.fixture
def kms(world):
    return MemoryKms(REGION, world)


def new_key(kms, spec="SYMMETRIC_DEFAULT", usage="ENCRYPT_DECRYPT", **kwargs):
    kwargs.setdefault("tags", {})
    kwargs.setdefault("description", "")
    return kms.create_key(key_spec=spec, key_usage=usage, **kwargs)


def do_import(kms, key_id, material, spec="SYMMETRIC_DEFAULT", valid_to=None):
    algorithm = transfer.default_wrapping(spec)[0]
    params = kms.get_parameters_for_import(key_id, algorithm, "RSA_2048")
    kms.import_key_material(key_id, params.import_token,
                            transfer.wrap_key_material(material, params.public_key_der, algorithm),
                            valid_to=valid_to)


def error(fn, *args, **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        fn(*args, **kwargs)
    return info.value


# -- fault injection and call log --------------------------------------------------------------

def test_fail_next_injects_errors_worded_like_awskms(kms):
    kms.fail_next("CreateKey", "ThrottlingException", count=2)
    for _ in range(2):
        err = error(new_key, kms)
        assert err.code == "ThrottlingException" and err.retryable
        assert str(err) == "AWS KMS CreateKey in us-east-1 failed: ThrottlingException: injected fault"
    key_id = new_key(kms)
    assert kms.calls == ["CreateKey"] * 3
    assert kms.describe_key(key_id) is not None


def test_fail_next_defaults_and_access_denied_wording(kms):
    key_id = new_key(kms)
    kms.fail_next("EnableKey")
    err = error(kms.enable_key, key_id)
    assert err.code == "KMSInternalException" and err.retryable
    kms.fail_next("CreateKey", "AccessDeniedException", message="User bob is not authorized")
    err = error(new_key, kms, tags={"a": "b"})
    assert str(err) == ("AWS KMS CreateKey in us-east-1 failed: AccessDeniedException: User bob is not "
                        "authorized (needs kms:CreateKey and kms:TagResource)")
    assert not err.retryable


def test_fail_next_is_per_region_and_nothing_happens_on_failure(kms, world):
    other = kms.in_region(OTHER)
    kms.fail_next("CreateKey", "LimitExceededException")
    other_key = new_key(other)  # the other region is unaffected
    assert error(new_key, kms).code == "LimitExceededException"
    assert [k.key_id for k in world.all_keys()] == [other_key]
    world.fail_next("ImportKeyMaterial", "KMSInternalException")  # any region
    key_id = new_key(other)
    assert error(do_import, other, key_id, os.urandom(32)).code == "KMSInternalException"
    assert other.describe_key(key_id).state == "PendingImport"
    assert kms.call_log[-1] == (OTHER, "DescribeKey")


def test_injected_not_found_on_delete_alias_is_tolerated(kms):
    kms.fail_next("DeleteAlias", "NotFoundException")
    kms.delete_alias("alias/whatever")
    kms.fail_next("ScheduleKeyDeletion", "NotFoundException")
    kms.schedule_key_deletion(new_key(kms), 7)


def test_call_log_is_shared_by_the_world(kms):
    other = kms.in_region(OTHER)
    new_key(kms)
    new_key(other)
    assert other.calls is kms.calls
    assert kms.call_log == [(REGION, "CreateKey"), (OTHER, "CreateKey")]


# -- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, usage, code", [
    ("AES_256", "ENCRYPT_DECRYPT", "ValidationException"),
    ("SYMMETRIC_DEFAULT", "SIGN_VERIFY", "ValidationException"),
    ("RSA_2048", "GENERATE_VERIFY_MAC", "ValidationException"),
    ("ML_DSA_65", "SIGN_VERIFY", "UnsupportedOperationException"),
    ("ECC_NIST_P256", "KEY_AGREEMENT", "UnsupportedOperationException"),
])
def test_create_key_spec_usage_rules(kms, spec, usage, code):
    assert error(new_key, kms, spec, usage).code == code


def test_tag_rules(kms):
    assert error(new_key, kms, tags={"k" * 129: "v"}).code == "TagException"
    assert error(new_key, kms, tags={"k": "v" * 257}).code == "TagException"
    assert error(new_key, kms, tags={"aws:x": "v"}).code == "TagException"
    assert new_key(kms, tags={"k" * 128: "v" * 256})


def test_unknown_wrapping_parameters(kms):
    key_id = new_key(kms)
    assert error(kms.get_parameters_for_import, key_id, "RSAES_PKCS1_V1_5", "RSA_2048").code == \
        "ValidationException"
    assert error(kms.get_parameters_for_import, key_id, "RSAES_OAEP_SHA_256", "RSA_1024").code == \
        "ValidationException"


def test_get_public_key_refused_for_symmetric_and_disabled(kms):
    symmetric = new_key(kms)
    do_import(kms, symmetric, os.urandom(32))
    assert error(kms.get_public_key, symmetric).code == "UnsupportedOperationException"
    ec_key = new_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    material = keymaterial.generate_material("ECC_NIST_P256")
    do_import(kms, ec_key, material, "ECC_NIST_P256")
    kms.create_alias("alias/ec", ec_key)
    assert kms.get_public_key("alias/ec") == kms.get_public_key(ec_key)
    kms.disable_key(ec_key)
    assert error(kms.get_public_key, ec_key).code == "DisabledException"


def test_key_arn_of_another_region_is_not_found(kms):
    key_id = new_key(kms)
    arn = kms.describe_key(key_id).arn
    assert kms.in_region(OTHER).describe_key(arn) is None
    assert error(kms.in_region(OTHER).enable_key, arn).code == "NotFoundException"


def test_replica_cannot_be_replicated(kms):
    primary = new_key(kms, multi_region=True)
    do_import(kms, primary, os.urandom(32))
    kms.replicate_key(primary, OTHER, description="", tags={})
    assert error(kms.in_region(OTHER).replicate_key, primary, "ap-south-1", description="",
                 tags={}).code == "UnsupportedOperationException"


# -- independent wrapping (not transfer.wrap_key_material) ----------------------------------------

def test_reference_oaep_sha256_wrap_is_accepted(kms):
    """The construction of reference 2.4, written out here: hash = MGF1 hash = SHA-256."""
    key_id = new_key(kms)
    params = kms.get_parameters_for_import(key_id, "RSAES_OAEP_SHA_256", "RSA_4096")
    public = serialization.load_der_public_key(params.public_key_der)
    blob = public.encrypt(os.urandom(32), padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                       algorithm=hashes.SHA256(), label=None))
    kms.import_key_material(key_id, params.import_token, blob)
    assert kms.describe_key(key_id).state == "Enabled"


def test_reference_rsa_aes_key_wrap_is_accepted_and_mgf1_sha1_refused(kms):
    key_id = new_key(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    material = keymaterial.generate_material("RSA_2048")
    params = kms.get_parameters_for_import(key_id, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
    public = serialization.load_der_public_key(params.public_key_der)
    wrong = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA256(), label=None)
    aes = os.urandom(32)
    blob = public.encrypt(aes, wrong) + aes_key_wrap_with_padding(aes, material)
    assert error(kms.import_key_material, key_id, params.import_token, blob).code == \
        "InvalidCiphertextException"
    params = kms.get_parameters_for_import(key_id, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
    public = serialization.load_der_public_key(params.public_key_der)
    right = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    blob = public.encrypt(aes, right) + aes_key_wrap_with_padding(aes, material)
    assert len(blob) == 384 + 8 * ((len(material) + 7) // 8) + 8  # RSA part first, exactly k bytes
    kms.import_key_material(key_id, params.import_token, blob)
    assert kms.describe_key(key_id).state == "Enabled"


# -- time: deletion windows, replica deletion, expiry ---------------------------------------------

def test_key_and_its_aliases_disappear_after_the_window(kms, world):
    key_id = new_key(kms)
    kms.create_alias("alias/doomed", key_id)
    kms.schedule_key_deletion(key_id, 7)
    world.advance(days=6)
    assert kms.describe_key(key_id).state == "PendingDeletion"
    assert kms.get_alias_target("alias/doomed") == key_id
    world.advance(days=2)
    assert kms.describe_key(key_id) is None
    assert kms.get_alias_target("alias/doomed") is None
    kms.schedule_key_deletion(key_id, 7)  # gone: still not an error


def test_primary_waits_for_its_replicas(kms, world):
    primary = new_key(kms, multi_region=True)
    do_import(kms, primary, os.urandom(32))
    kms.replicate_key(primary, OTHER, description="", tags={})
    kms.schedule_key_deletion(primary, 30)
    assert kms.describe_key(primary).state == "PendingReplicaDeletion"
    assert error(kms.enable_key, primary).code == "KMSInvalidStateException"
    kms.schedule_key_deletion(primary, 30)  # tolerated like PendingDeletion
    there = kms.in_region(OTHER)
    there.schedule_key_deletion(primary, 7)
    assert there.describe_key(primary).state == "PendingDeletion"
    world.advance(days=8)
    assert there.describe_key(primary) is None
    assert kms.describe_key(primary).state == "PendingDeletion"  # its own 30 days start now
    world.advance(days=29)
    assert kms.describe_key(primary) is not None
    world.advance(days=2)
    assert kms.describe_key(primary) is None


def test_expired_material_returns_key_to_pending_import(kms, world):
    key_id = new_key(kms)
    material = os.urandom(32)
    do_import(kms, key_id, material, valid_to=world.now() + timedelta(days=1))
    assert kms.describe_key(key_id).state == "Enabled"
    world.advance(days=2)
    assert kms.describe_key(key_id).state == "PendingImport"
    assert error(do_import, kms, key_id, os.urandom(32)).code == "IncorrectKeyMaterialException"
    do_import(kms, key_id, material)
    assert kms.describe_key(key_id).state == "Enabled"


def test_import_token_expires_after_24_hours(kms, world):
    key_id = new_key(kms)
    params = kms.get_parameters_for_import(key_id, "RSAES_OAEP_SHA_256", "RSA_2048")
    blob = transfer.wrap_key_material(os.urandom(32), params.public_key_der, "RSAES_OAEP_SHA_256")
    world.advance(hours=25)
    assert error(kms.import_key_material, key_id, params.import_token, blob).code == \
        "ExpiredImportTokenException"


def test_reimport_keeps_a_disabled_key_disabled(kms):
    key_id = new_key(kms)
    material = os.urandom(32)
    do_import(kms, key_id, material)
    kms.disable_key(key_id)
    do_import(kms, key_id, material)
    assert kms.describe_key(key_id).state == "Disabled"


# -- import hygiene ------------------------------------------------------------------------------------

def test_twin_and_permissions_do_not_load_boto3():
    code = ("import sys, keymgmt_cli.providers.memory, keymgmt_cli.providers.permissions;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'moto')];"
            "print(', '.join(bad), file=sys.stderr); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
