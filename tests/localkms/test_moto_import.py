"""Tests of the strict BYOK import double on moto (keymgmt_cli.localkms.moto_import) and its server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from moto import mock_aws

from keymgmt_cli.localkms import moto_import
from keymgmt_cli.localkms.server import start

pytestmark = pytest.mark.emulator

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)


@pytest.fixture
def kms() -> Iterator[Any]:
    moto_import.install()
    with mock_aws():
        yield boto3.client("kms", region_name=REGION)


@pytest.fixture
def kms_other_region(kms: Any) -> Any:
    return boto3.client("kms", region_name=OTHER_REGION)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    moto_import.set_clock(lambda: fake.now)
    try:
        yield fake
    finally:
        moto_import.set_clock(None)


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa2048_other() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa3072() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def pkcs8(priv: Any) -> bytes:
    return priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def spki(priv: Any) -> bytes:
    return priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def wrap(params: dict[str, Any], material: bytes, algorithm: str) -> bytes:
    """Wrap material the way AWS documents it (section 2.4 of the reference)."""
    pub = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(pub, rsa.RSAPublicKey)
    h = hashes.SHA256 if algorithm.endswith("SHA_256") else hashes.SHA1
    oaep = padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return pub.encrypt(material, oaep)
    aes_key = os.urandom(32)
    return pub.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)


def get_params(client: Any, key_id: str, algorithm: str, spec: str = "RSA_2048") -> dict[str, Any]:
    return client.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)


def do_import(
    client: Any,
    key_id: str,
    material: bytes,
    algorithm: str = "RSAES_OAEP_SHA_256",
    spec: str = "RSA_2048",
    **extra: Any,
) -> dict[str, Any]:
    params = get_params(client, key_id, algorithm, spec)
    extra.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return client.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params, material, algorithm),
        **extra,
    )


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def raises(code: str) -> Any:
    class _Ctx:
        def __enter__(self) -> None:
            self._cm = pytest.raises(ClientError)
            self._info = self._cm.__enter__()

        def __exit__(self, *exc: Any) -> bool:
            handled = self._cm.__exit__(*exc)
            if not handled:  # not a ClientError: let it propagate
                return False
            assert error_code(self._info) == code, self._info.value
            return bool(handled)

    return _Ctx()


def state(client: Any, key_id: str) -> str:
    return client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]


def new_key(client: Any, **kwargs: Any) -> dict[str, Any]:
    return client.create_key(Origin="EXTERNAL", **kwargs)["KeyMetadata"]


def moto_blob_plaintext(material: bytes, blob: bytes) -> bytes:
    """Decrypt moto's ciphertext format (36-byte key id, 12-byte IV, 16-byte tag, data) locally.

    Relies on moto 5.2's internal format.  It proves that Encrypt used *our* imported material.
    """
    iv, tag, data = blob[36:48], blob[48:64], blob[64:]
    return AESGCM(material).decrypt(iv, data + tag, b"")


# --------------------------------------------------------------------------- install, CreateKey, states


def test_install_is_idempotent() -> None:
    moto_import.install()
    moto_import.install()
    assert moto_import.installed()


def test_external_symmetric_key_starts_pending_import(kms: Any) -> None:
    meta = new_key(kms)
    assert (meta["KeyState"], meta["Enabled"], meta["Origin"]) == ("PendingImport", False, "EXTERNAL")
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert "ExpirationModel" not in meta
    with raises("KMSInvalidStateException"):
        kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
    with raises("KMSInvalidStateException"):
        kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_256")
    with raises("KMSInvalidStateException"):
        kms.enable_key(KeyId=meta["Arn"])
    with raises("KMSInvalidStateException"):
        kms.disable_key(KeyId=meta["KeyId"])
    assert state(kms, meta["KeyId"]) == "PendingImport"


@pytest.mark.parametrize(
    ("spec", "usage"),
    [
        ("RSA_2048", "SIGN_VERIFY"),
        ("RSA_3072", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("ECC_NIST_P384", "SIGN_VERIFY"),
        ("ECC_NIST_P521", "SIGN_VERIFY"),
    ],
)
def test_external_asymmetric_keys_are_creatable_and_unusable_before_import(kms: Any, spec: str, usage: str) -> None:
    meta = new_key(kms, KeySpec=spec, KeyUsage=usage)
    assert (meta["KeySpec"], meta["KeyUsage"], meta["KeyState"], meta["Enabled"]) == (spec, usage, "PendingImport", False)
    with raises("KMSInvalidStateException"):
        kms.get_public_key(KeyId=meta["KeyId"])
    if usage == "SIGN_VERIFY":
        with raises("KMSInvalidStateException"):
            kms.sign(KeyId=meta["KeyId"], Message=b"m", SigningAlgorithm=meta["SigningAlgorithms"][0])


def test_create_key_refusals(kms: Any) -> None:
    with raises("UnsupportedOperationException"):
        new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    with raises("ValidationException"):
        new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="ENCRYPT_DECRYPT")
    with raises("ValidationException"):
        new_key(kms, KeySpec="ECC_NIST_P256")  # KeyUsage defaults to ENCRYPT_DECRYPT, as in AWS


# --------------------------------------------------------------------------- symmetric import


@pytest.mark.parametrize(
    ("algorithm", "wrapping_spec"),
    [("RSAES_OAEP_SHA_256", "RSA_4096"), ("RSAES_OAEP_SHA_1", "RSA_2048"), ("RSAES_OAEP_SHA_256", "RSA_3072")],
)
def test_symmetric_import_and_use(kms: Any, algorithm: str, wrapping_spec: str) -> None:
    meta = new_key(kms)
    params = get_params(kms, meta["KeyId"], algorithm, wrapping_spec)
    assert params["KeyId"] == meta["Arn"]
    pub = serialization.load_der_public_key(params["PublicKey"])
    assert pub.key_size == int(wrapping_spec.split("_")[1])  # type: ignore[union-attr]
    validity = params["ParametersValidTo"].timestamp() - time.time()
    assert 24 * 3600 - 60 < validity <= 24 * 3600

    material = os.urandom(32)
    out = kms.import_key_material(
        KeyId=meta["Arn"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params, material, algorithm),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert out["KeyId"] == meta["Arn"]
    assert re.fullmatch(r"[0-9a-f]{64}", out["KeyMaterialId"])
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert (described["KeyState"], described["Enabled"]) == ("Enabled", True)
    assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert described["CurrentKeyMaterialId"] == out["KeyMaterialId"]
    assert "ValidTo" not in described

    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    assert moto_blob_plaintext(material, blob) == b"secret"  # the imported material, not moto's random one


def test_wrapping_key_pairs_are_never_reused(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    public_keys = {get_params(kms, key_id, "RSAES_OAEP_SHA_256")["PublicKey"] for _ in range(4)}
    tokens = {get_params(kms, key_id, "RSAES_OAEP_SHA_256")["ImportToken"] for _ in range(4)}
    assert len(public_keys) == 4 and len(tokens) == 4


def test_reimport_same_material_only(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    material = os.urandom(32)
    first = do_import(kms, key_id, material)
    again = do_import(kms, key_id, material, algorithm="RSAES_OAEP_SHA_1")
    assert again["KeyMaterialId"] == first["KeyMaterialId"]
    again = do_import(kms, key_id, material, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=first["KeyMaterialId"])
    with raises("IncorrectKeyMaterialException"):
        do_import(kms, key_id, os.urandom(32))
    with raises("IncorrectKeyMaterialException"):
        do_import(kms, key_id, material, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId="0" * 64)
    with raises("IncorrectKeyMaterialException"):
        do_import(kms, key_id, material, ImportType="NEW_KEY_MATERIAL")
    staged = do_import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")  # for on-demand rotation
    assert staged["KeyMaterialId"] != first["KeyMaterialId"]
    assert state(kms, key_id) == "Enabled"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == first["KeyMaterialId"]


def test_material_is_bound_to_the_key(kms: Any) -> None:
    """The same 32 bytes in two single-Region keys give different KeyMaterialIds and no interoperability."""
    material = os.urandom(32)
    a, b = new_key(kms)["KeyId"], new_key(kms)["KeyId"]
    id_a = do_import(kms, a, material)["KeyMaterialId"]
    id_b = do_import(kms, b, material)["KeyMaterialId"]
    assert id_a != id_b
    blob = kms.encrypt(KeyId=a, Plaintext=b"p")["CiphertextBlob"]
    with pytest.raises(ClientError):  # AWS: IncorrectKeyException; moto 5.2: AccessDeniedException
        kms.decrypt(CiphertextBlob=blob, KeyId=b)


def test_symmetric_material_must_be_32_bytes(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    for size in (16, 31, 33, 64):
        with raises("IncorrectKeyMaterialException"):
            do_import(kms, key_id, os.urandom(size))
    assert state(kms, key_id) == "PendingImport"


# --------------------------------------------------------------------------- tokens


def test_token_of_another_key_is_refused(kms: Any) -> None:
    key_a, key_b = new_key(kms)["KeyId"], new_key(kms)["KeyId"]
    params_a = get_params(kms, key_a, "RSAES_OAEP_SHA_256")
    with raises("InvalidImportTokenException"):
        kms.import_key_material(
            KeyId=key_b,
            ImportToken=params_a["ImportToken"],
            EncryptedKeyMaterial=wrap(params_a, os.urandom(32), "RSAES_OAEP_SHA_256"),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    assert state(kms, key_b) == "PendingImport"


def test_token_is_single_use(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    material = os.urandom(32)
    params = get_params(kms, key_id, "RSAES_OAEP_SHA_256")
    blob = wrap(params, material, "RSAES_OAEP_SHA_256")
    args = dict(KeyId=key_id, ImportToken=params["ImportToken"], ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    kms.import_key_material(EncryptedKeyMaterial=blob, **args)
    with raises("InvalidImportTokenException"):
        kms.import_key_material(EncryptedKeyMaterial=blob, **args)
    # A failed unwrap also spends the token (stricter than, or equal to, AWS).
    params = get_params(kms, key_id, "RSAES_OAEP_SHA_256")
    args["ImportToken"] = params["ImportToken"]
    with raises("InvalidCiphertextException"):
        kms.import_key_material(EncryptedKeyMaterial=os.urandom(256), **args)
    with raises("InvalidImportTokenException"):
        kms.import_key_material(EncryptedKeyMaterial=wrap(params, material, "RSAES_OAEP_SHA_256"), **args)


def test_unknown_token_is_refused(kms: Any) -> None:
    key_id = new_key(kms)["KeyId"]
    params = get_params(kms, key_id, "RSAES_OAEP_SHA_256")
    with raises("InvalidImportTokenException"):
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=params["ImportToken"][:-1] + bytes([params["ImportToken"][-1] ^ 1]),
            EncryptedKeyMaterial=wrap(params, os.urandom(32), "RSAES_OAEP_SHA_256"),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )


def test_token_expires_after_24_hours(kms: Any, clock: FakeClock) -> None:
    key_id = new_key(kms)["KeyId"]
    material = os.urandom(32)
    fresh = get_params(kms, key_id, "RSAES_OAEP_SHA_256")
    stale = get_params(kms, key_id, "RSAES_OAEP_SHA_256")
    clock.advance(24 * 3600 - 5)
    kms.import_key_material(
        KeyId=key_id,
        ImportToken=fresh["ImportToken"],
        EncryptedKeyMaterial=wrap(fresh, material, "RSAES_OAEP_SHA_256"),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    clock.advance(10)
    with raises("ExpiredImportTokenException"):
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=stale["ImportToken"],
            EncryptedKeyMaterial=wrap(stale, material, "RSAES_OAEP_SHA_256"),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )


def test_garbage_and_mismatched_ciphertext(kms: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    key_id = new_key(kms)["KeyId"]
    cases = [
        ("RSAES_OAEP_SHA_256", lambda p: os.urandom(256)),
        ("RSAES_OAEP_SHA_256", lambda p: os.urandom(100)),  # not the modulus length
        ("RSAES_OAEP_SHA_256", lambda p: wrap(p, os.urandom(32), "RSAES_OAEP_SHA_1")),  # wrong OAEP hash
    ]
    for algorithm, make in cases:
        params = get_params(kms, key_id, algorithm)
        with raises("InvalidCiphertextException"):
            kms.import_key_material(
                KeyId=key_id,
                ImportToken=params["ImportToken"],
                EncryptedKeyMaterial=make(params),
                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
            )
    rsa_key = new_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyId"]
    for make in (
        lambda p: os.urandom(256 + 40),
        lambda p: wrap(p, pkcs8(rsa2048), "RSA_AES_KEY_WRAP_SHA_1"),  # token says SHA-256
        lambda p: wrap(p, pkcs8(rsa2048), "RSA_AES_KEY_WRAP_SHA_256")[:-8],  # truncated AES-KWP part
    ):
        params = get_params(kms, rsa_key, "RSA_AES_KEY_WRAP_SHA_256")
        with raises("InvalidCiphertextException"):
            kms.import_key_material(
                KeyId=rsa_key,
                ImportToken=params["ImportToken"],
                EncryptedKeyMaterial=make(params),
                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
            )
    assert state(kms, key_id) == state(kms, rsa_key) == "PendingImport"


# --------------------------------------------------------------------------- GetParametersForImport rules


def test_get_parameters_for_import_refusals(kms: Any) -> None:
    sym = new_key(kms)
    kms.create_alias(AliasName="alias/byok", TargetKeyId=sym["KeyId"])
    with raises("UnsupportedOperationException"):  # deprecated since 2023-10-10
        get_params(kms, sym["KeyId"], "RSAES_PKCS1_V1_5")
    with raises("ValidationException"):
        get_params(kms, sym["KeyId"], "RSAES_OAEP_SHA_512")
    with raises("ValidationException"):
        get_params(kms, sym["KeyId"], "RSAES_OAEP_SHA_256", "RSA_1024")
    with raises("ValidationException"):  # symmetric material: OAEP only
        get_params(kms, sym["KeyId"], "RSA_AES_KEY_WRAP_SHA_256")
    with raises("NotFoundException"):  # aliases are not accepted
        get_params(kms, "alias/byok", "RSAES_OAEP_SHA_256")
    with raises("NotFoundException"):
        get_params(kms, "1234abcd-12ab-34cd-56ef-1234567890ab", "RSAES_OAEP_SHA_256")
    with raises("NotFoundException"):  # ARN of another Region
        get_params(kms, sym["Arn"].replace(REGION, OTHER_REGION), "RSAES_OAEP_SHA_256")
    rsa_key = new_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyId"]
    with raises("ValidationException"):  # RSA material: RSA_AES_KEY_WRAP only
        get_params(kms, rsa_key, "RSAES_OAEP_SHA_256")
    p521 = new_key(kms, KeySpec="ECC_NIST_P521", KeyUsage="SIGN_VERIFY")["KeyId"]
    with raises("ValidationException"):
        get_params(kms, p521, "RSAES_OAEP_SHA_256", "RSA_2048")
    get_params(kms, p521, "RSAES_OAEP_SHA_256", "RSA_3072")
    aws_key = kms.create_key()["KeyMetadata"]["KeyId"]
    with raises("UnsupportedOperationException"):
        get_params(kms, aws_key, "RSAES_OAEP_SHA_256")
    with raises("UnsupportedOperationException"):
        kms.delete_imported_key_material(KeyId=aws_key)


# --------------------------------------------------------------------------- asymmetric import


@pytest.mark.parametrize("algorithm", ["RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1"])
def test_rsa_signing_key_import(kms: Any, rsa2048: rsa.RSAPrivateKey, algorithm: str) -> None:
    meta = new_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    out = do_import(kms, meta["KeyId"], pkcs8(rsa2048), algorithm=algorithm, spec="RSA_3072")
    assert "KeyMaterialId" not in out
    assert state(kms, meta["KeyId"]) == "Enabled"
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == spki(rsa2048)
    message = b"signed by imported material"
    sig = kms.sign(KeyId=meta["KeyId"], Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    rsa2048.public_key().verify(
        sig, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256()
    )
    sig = kms.sign(KeyId=meta["Arn"], Message=message, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    rsa2048.public_key().verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
    assert kms.verify(
        KeyId=meta["KeyId"], Message=message, Signature=sig, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
    )["SignatureValid"]


@pytest.mark.parametrize(
    ("spec", "curve", "hash_cls", "algorithm"),
    [
        ("ECC_NIST_P256", ec.SECP256R1, hashes.SHA256, "RSA_AES_KEY_WRAP_SHA_256"),
        ("ECC_NIST_P384", ec.SECP384R1, hashes.SHA384, "RSAES_OAEP_SHA_256"),
        ("ECC_NIST_P521", ec.SECP521R1, hashes.SHA512, "RSA_AES_KEY_WRAP_SHA_1"),
        ("ECC_SECG_P256K1", ec.SECP256K1, hashes.SHA256, "RSAES_OAEP_SHA_1"),
    ],
)
def test_ec_signing_key_import(kms: Any, spec: str, curve: Any, hash_cls: Any, algorithm: str) -> None:
    local = ec.generate_private_key(curve())
    meta = new_key(kms, KeySpec=spec, KeyUsage="SIGN_VERIFY")
    do_import(kms, meta["KeyId"], pkcs8(local), algorithm=algorithm)
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == spki(local)
    message = b"ecdsa by imported material"
    signing_algorithm = meta["SigningAlgorithms"][0]
    sig = kms.sign(KeyId=meta["KeyId"], Message=message, SigningAlgorithm=signing_algorithm)["Signature"]
    local.public_key().verify(sig, message, ec.ECDSA(hash_cls()))


def test_rsa_encryption_key_import(kms: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    meta = new_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    do_import(kms, meta["KeyId"], pkcs8(rsa2048), algorithm="RSA_AES_KEY_WRAP_SHA_256")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"to rsa", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert rsa2048.decrypt(blob["CiphertextBlob"], oaep) == b"to rsa"
    local_blob = rsa2048.public_key().encrypt(b"from local", oaep)
    out = kms.decrypt(CiphertextBlob=local_blob, KeyId=meta["KeyId"], EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert out["Plaintext"] == b"from local"
    with raises("InvalidKeyUsageException"):
        kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")  # SYMMETRIC_DEFAULT is not valid for RSA
    with raises("InvalidKeyUsageException"):
        kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_256")


def test_asymmetric_material_format_refusals(
    kms: Any, rsa2048: rsa.RSAPrivateKey, rsa3072: rsa.RSAPrivateKey
) -> None:
    rsa_key = new_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyId"]
    p256_key = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyId"]
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    pkcs1 = rsa2048.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    sec1 = p256.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    encrypted = rsa2048.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    pem = rsa2048.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    rsa_cases = {
        "PKCS#1 instead of PKCS#8": pkcs1,
        "3072-bit key for RSA_2048": pkcs8(rsa3072),
        "EC key for RSA_2048": pkcs8(p256),
        "encrypted PKCS#8": encrypted,
        "PEM instead of DER": pem,
        "trailing bytes": pkcs8(rsa2048) + b"\x00",
        "raw 32 bytes": os.urandom(32),
    }
    for label, material in rsa_cases.items():
        with raises("IncorrectKeyMaterialException"):
            do_import(kms, rsa_key, material, algorithm="RSA_AES_KEY_WRAP_SHA_256")
        assert state(kms, rsa_key) == "PendingImport", label
    for material in (pkcs8(p384), sec1, pkcs8(rsa2048)):
        with raises("IncorrectKeyMaterialException"):
            do_import(kms, p256_key, material, algorithm="RSA_AES_KEY_WRAP_SHA_256")
    assert state(kms, p256_key) == "PendingImport"


def test_asymmetric_reimport_and_import_type(kms: Any, rsa2048: rsa.RSAPrivateKey, rsa2048_other: rsa.RSAPrivateKey) -> None:
    key_id = new_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyId"]
    with raises("ValidationException"):  # KMS rejects ImportType for non-symmetric keys
        do_import(kms, key_id, pkcs8(rsa2048), algorithm="RSA_AES_KEY_WRAP_SHA_256", ImportType="NEW_KEY_MATERIAL")
    do_import(kms, key_id, pkcs8(rsa2048), algorithm="RSA_AES_KEY_WRAP_SHA_256")
    kms.delete_imported_key_material(KeyId=key_id)
    assert state(kms, key_id) == "PendingImport"
    with raises("KMSInvalidStateException"):
        kms.get_public_key(KeyId=key_id)
    with raises("IncorrectKeyMaterialException"):
        do_import(kms, key_id, pkcs8(rsa2048_other), algorithm="RSA_AES_KEY_WRAP_SHA_256")
    do_import(kms, key_id, pkcs8(rsa2048), algorithm="RSA_AES_KEY_WRAP_SHA_1", spec="RSA_4096")
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki(rsa2048)


# --------------------------------------------------------------------------- lifecycle: delete, disable, deletion, expiry


def test_delete_imported_key_material_and_reimport(kms: Any) -> None:
    meta = new_key(kms)
    material = os.urandom(32)
    material_id = do_import(kms, meta["KeyId"], material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    out = kms.delete_imported_key_material(KeyId=meta["Arn"])
    assert out["KeyId"] == meta["Arn"] and out["KeyMaterialId"] == material_id
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert (described["KeyState"], described["Enabled"]) == ("PendingImport", False)
    assert "CurrentKeyMaterialId" not in described
    with raises("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=blob)
    with raises("IncorrectKeyMaterialException"):
        do_import(kms, meta["KeyId"], os.urandom(32))
    do_import(kms, meta["KeyId"], material)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_disable_enable_with_arn_and_reimport_while_disabled(kms: Any) -> None:
    meta = new_key(kms)
    material = os.urandom(32)
    do_import(kms, meta["KeyId"], material)
    kms.disable_key(KeyId=meta["Arn"])  # moto 5.2 raises a bare KeyError for ARNs here
    with raises("DisabledException"):
        kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
    do_import(kms, meta["KeyId"], material)
    assert state(kms, meta["KeyId"]) == "Disabled"
    kms.enable_key(KeyId=meta["Arn"])
    assert state(kms, meta["KeyId"]) == "Enabled"


def test_pending_deletion(kms: Any) -> None:
    meta = new_key(kms)
    material = os.urandom(32)
    do_import(kms, meta["KeyId"], material)
    early = get_params(kms, meta["KeyId"], "RSAES_OAEP_SHA_256")
    kms.schedule_key_deletion(KeyId=meta["Arn"], PendingWindowInDays=7)
    assert state(kms, meta["KeyId"]) == "PendingDeletion"
    with raises("KMSInvalidStateException"):
        get_params(kms, meta["KeyId"], "RSAES_OAEP_SHA_256")
    with raises("KMSInvalidStateException"):
        kms.import_key_material(
            KeyId=meta["KeyId"],
            ImportToken=early["ImportToken"],
            EncryptedKeyMaterial=wrap(early, material, "RSAES_OAEP_SHA_256"),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    with raises("KMSInvalidStateException"):
        kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
    with raises("KMSInvalidStateException"):
        kms.enable_key(KeyId=meta["KeyId"])
    with raises("KMSInvalidStateException"):
        kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
    kms.delete_imported_key_material(KeyId=meta["KeyId"])
    assert state(kms, meta["KeyId"]) == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=meta["KeyId"])
    assert state(kms, meta["KeyId"]) == "PendingImport"  # no material left to be Disabled with
    # The token from before the deletion was not spent by the refused call.
    kms.import_key_material(
        KeyId=meta["KeyId"],
        ImportToken=early["ImportToken"],
        EncryptedKeyMaterial=wrap(early, material, "RSAES_OAEP_SHA_256"),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert state(kms, meta["KeyId"]) == "Enabled"


def test_valid_to_rules_and_material_expiry(kms: Any, clock: FakeClock) -> None:
    meta = new_key(kms)
    material = os.urandom(32)
    params = get_params(kms, meta["KeyId"], "RSAES_OAEP_SHA_256")
    blob = wrap(params, material, "RSAES_OAEP_SHA_256")
    base = dict(KeyId=meta["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=blob)
    day = 86400
    refused = [
        {},  # default ExpirationModel is KEY_MATERIAL_EXPIRES, which needs ValidTo
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES"},
        {"ValidTo": clock.now - 60},
        {"ValidTo": clock.now + 366 * day},
        {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE", "ValidTo": clock.now + day},
    ]
    for extra in refused:
        with raises("ValidationException"):
            kms.import_key_material(**base, **extra)
    # Parameter refusals do not spend the token.
    kms.import_key_material(**base, ValidTo=clock.now + 30 * day)
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert abs(described["ValidTo"].timestamp() - (clock.now + 30 * day)) < 1
    kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")

    clock.advance(30 * day + 1)
    with raises("KMSInvalidStateException"):
        kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
    assert state(kms, meta["KeyId"]) == "PendingImport"
    do_import(kms, meta["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=clock.now + 365 * day - 60)
    assert state(kms, meta["KeyId"]) == "Enabled"


# --------------------------------------------------------------------------- multi-Region


def test_replicate_external_key(kms: Any, kms_other_region: Any) -> None:
    primary = new_key(kms, MultiRegion=True)
    assert primary["KeyId"].startswith("mrk-")
    with raises("KMSInvalidStateException"):  # the primary must have material first
        kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)
    material = os.urandom(32)
    material_id = do_import(kms, primary["KeyId"], material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=primary["KeyId"], Plaintext=b"mrk")["CiphertextBlob"]

    replica = kms.replicate_key(KeyId=primary["Arn"], ReplicaRegion=OTHER_REGION)["ReplicaKeyMetadata"]
    assert (replica["KeyState"], replica["Enabled"], replica["Origin"]) == ("PendingImport", False, "EXTERNAL")
    assert replica["KeyId"] == primary["KeyId"]
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert kms_other_region.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    primary_cfg = kms.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"]
    assert primary_cfg["MultiRegionKeyType"] == "PRIMARY"
    assert [r["Region"] for r in primary_cfg["ReplicaKeys"]] == [OTHER_REGION]
    with raises("AlreadyExistsException"):
        kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)
    with raises("KMSInvalidStateException"):
        kms_other_region.decrypt(CiphertextBlob=blob)

    # A token from the primary's Region is not valid in the replica's Region.
    primary_params = get_params(kms, primary["KeyId"], "RSAES_OAEP_SHA_256")
    with raises("InvalidImportTokenException"):
        kms_other_region.import_key_material(
            KeyId=primary["KeyId"],
            ImportToken=primary_params["ImportToken"],
            EncryptedKeyMaterial=wrap(primary_params, material, "RSAES_OAEP_SHA_256"),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    with raises("IncorrectKeyMaterialException"):
        do_import(kms_other_region, primary["KeyId"], os.urandom(32))
    with raises("IncorrectKeyMaterialException"):  # replicas take EXISTING material only
        do_import(kms_other_region, primary["KeyId"], material, ImportType="NEW_KEY_MATERIAL")
    out = do_import(kms_other_region, primary["KeyId"], material, ImportType="EXISTING_KEY_MATERIAL")
    assert out["KeyMaterialId"] == material_id
    assert kms_other_region.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms_other_region.decrypt(CiphertextBlob=blob)["Plaintext"] == b"mrk"
    # moto 5.2 truncates "mrk-" key IDs in its ciphertext header; the patch resolves them again.
    assert kms.decrypt(CiphertextBlob=blob, KeyId=primary["Arn"])["Plaintext"] == b"mrk"
    # Key states of related keys are independent.
    kms_other_region.delete_imported_key_material(KeyId=primary["KeyId"])
    assert state(kms, primary["KeyId"]) == "Enabled"


def test_replicate_refusals(kms: Any) -> None:
    single = new_key(kms)
    do_import(kms, single["KeyId"], os.urandom(32))
    with raises("UnsupportedOperationException"):
        kms.replicate_key(KeyId=single["KeyId"], ReplicaRegion=OTHER_REGION)
    mrk = new_key(kms, MultiRegion=True)
    do_import(kms, mrk["KeyId"], os.urandom(32))
    kms.disable_key(KeyId=mrk["KeyId"])
    with raises("DisabledException"):
        kms.replicate_key(KeyId=mrk["KeyId"], ReplicaRegion=OTHER_REGION)


# --------------------------------------------------------------------------- server mode


def test_server_mode_lifecycle(rsa2048: rsa.RSAPrivateKey) -> None:
    started = time.monotonic()
    with start() as server:
        assert time.monotonic() - started < 2.0
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.endpoint_url)
        client = boto3.client("kms", region_name=REGION, endpoint_url=server.endpoint_url)
        meta = new_key(client)
        assert meta["KeyState"] == "PendingImport"
        material = os.urandom(32)
        params = get_params(client, meta["KeyId"], "RSAES_OAEP_SHA_256", "RSA_4096")
        client.import_key_material(
            KeyId=meta["KeyId"],
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrap(params, material, "RSAES_OAEP_SHA_256"),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
        with raises("InvalidImportTokenException"):
            client.import_key_material(
                KeyId=meta["KeyId"],
                ImportToken=params["ImportToken"],
                EncryptedKeyMaterial=wrap(params, material, "RSAES_OAEP_SHA_256"),
                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
            )
        blob = client.encrypt(KeyId=meta["Arn"], Plaintext=b"over http")["CiphertextBlob"]
        assert moto_blob_plaintext(material, blob) == b"over http"
        assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over http"

        signer = new_key(client, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
        do_import(client, signer["KeyId"], pkcs8(rsa2048), algorithm="RSA_AES_KEY_WRAP_SHA_256")
        assert client.get_public_key(KeyId=signer["KeyId"])["PublicKey"] == spki(rsa2048)
        with raises("ValidationException"):
            do_import(client, meta["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES")
        client.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
        with raises("KMSInvalidStateException"):
            client.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")


def test_server_binds_loopback_only() -> None:
    with pytest.raises(ValueError):
        start(host="0.0.0.0")
    server = start()
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.stop()
        server.stop()  # idempotent


def test_server_module_entry_point() -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keymgmt_cli.localkms.server", "--port", "0"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint), endpoint
        client = boto3.client("kms", region_name=REGION, endpoint_url=endpoint)
        meta = new_key(client)
        assert meta["KeyState"] == "PendingImport"
        get_params(client, meta["KeyId"], "RSAES_OAEP_SHA_256")  # the import extension is installed
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == ""  # quiet: no request log lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
