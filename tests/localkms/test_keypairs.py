"""moto's per-key pairs are generated only for keys that need one (localkms/keypairs.py), and every
key still answers as before: asymmetric keys have their pair from CreateKey on, imported material
replaces it, symmetric keys encrypt with their material."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import moto.kms.utils
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from moto import mock_aws

from keymgmt_cli.localkms import moto_import
from keymgmt_cli.localkms.keypairs import PairOnFirstUse

pytestmark = pytest.mark.emulator

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pairs moto generated, in order: ``RSA-<bits>`` or the ECC key spec (moto.kms.utils'
    RSAPrivateKey and ECDSAPrivateKey constructors generate them, whoever calls them)."""
    made: list[str] = []
    rsa_init, ec_init = moto.kms.utils.RSAPrivateKey.__init__, moto.kms.utils.ECDSAPrivateKey.__init__

    def rsa_counting(self: Any, key_size: int) -> None:
        made.append(f"RSA-{key_size}")
        rsa_init(self, key_size)

    def ec_counting(self: Any, key_spec: str) -> None:
        made.append(key_spec)
        ec_init(self, key_spec)

    monkeypatch.setattr(moto.kms.utils.RSAPrivateKey, "__init__", rsa_counting)
    monkeypatch.setattr(moto.kms.utils.ECDSAPrivateKey, "__init__", ec_counting)
    return made


@pytest.fixture
def kms(generated: list[str]) -> Iterator[Any]:
    moto_import.install()
    with mock_aws():
        yield boto3.client("kms", region_name=REGION)


def _key(kms: Any, **kwargs: Any) -> dict[str, Any]:
    return kms.create_key(**kwargs)["KeyMetadata"]


def _backend_key(key_id: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends["123456789012"][REGION].keys[key_id]


def _import(kms: Any, key_id: str, material: bytes, algorithm: str) -> None:
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_3072")
    wrapping = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(wrapping, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    if algorithm == "RSAES_OAEP_SHA_256":
        blob = wrapping.encrypt(material, oaep)
    else:  # RSA_AES_KEY_WRAP_SHA_256
        from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

        aes = os.urandom(32)
        blob = wrapping.encrypt(aes, oaep) + aes_key_wrap_with_padding(aes, material)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=blob,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")


def test_external_symmetric_key_generates_no_pair(kms: Any, generated: list[str]) -> None:
    meta = _key(kms, Origin="EXTERNAL")
    _import(kms, meta["KeyId"], os.urandom(32), "RSAES_OAEP_SHA_256")
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    assert generated == []
    assert _backend_key(meta["KeyId"]).private_key is None


def test_aws_kms_symmetric_key_generates_its_placeholder_pair_only_when_read(kms: Any, generated: list[str]) -> None:
    meta = _key(kms)
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    assert generated == []
    assert isinstance(_backend_key(meta["KeyId"]).private_key, PairOnFirstUse)
    # moto answers GetPublicKey for a symmetric key with its RSA-2048 placeholder (AWS refuses):
    # still the same answer, from a pair made now, and the same one when asked again
    first = kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    assert serialization.load_der_public_key(first).key_size == 2048  # type: ignore[union-attr]
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == first
    assert generated == ["RSA-2048"]


@pytest.mark.parametrize(("spec", "usage", "algorithm", "pair"), [
    ("RSA_2048", "SIGN_VERIFY", "RSASSA_PSS_SHA_256", "RSA-2048"),
    ("ECC_NIST_P256", "SIGN_VERIFY", "ECDSA_SHA_256", "ECC_NIST_P256"),
])
def test_aws_kms_asymmetric_key_has_its_pair_from_create_key_on(kms: Any, generated: list[str], spec: str,
                                                                usage: str, algorithm: str, pair: str) -> None:
    meta = _key(kms, KeySpec=spec, KeyUsage=usage)
    assert generated == [pair]
    assert not isinstance(_backend_key(meta["KeyId"]).private_key, PairOnFirstUse)
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"])
    sig = kms.sign(KeyId=meta["KeyId"], Message=b"m", SigningAlgorithm=algorithm)["Signature"]
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(sig, b"m", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
                      hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(sig, b"m", ec.ECDSA(hashes.SHA256()))
    assert kms.verify(KeyId=meta["KeyId"], Message=b"m", Signature=sig, SigningAlgorithm=algorithm)["SignatureValid"]
    assert generated == [pair]  # generated once


def test_aws_kms_rsa_encryption_key_encrypts(kms: Any, generated: list[str]) -> None:
    meta = _key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    assert generated == ["RSA-2048"]
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    out = kms.decrypt(KeyId=meta["KeyId"], CiphertextBlob=blob["CiphertextBlob"],
                      EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert out["Plaintext"] == b"x"


def test_external_asymmetric_key_uses_the_imported_pair_and_generates_none(kms: Any, generated: list[str]) -> None:
    local = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    meta = _key(kms, Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    assert _backend_key(meta["KeyId"]).private_key is None
    der = local.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    _import(kms, meta["KeyId"], der, "RSA_AES_KEY_WRAP_SHA_256")
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == local.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    sig = kms.sign(KeyId=meta["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    local.public_key().verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())
    assert generated == []


def test_placeholder_generates_once_for_concurrent_readers(generated: list[str]) -> None:
    import threading

    pair = PairOnFirstUse("SYMMETRIC_DEFAULT")
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(pair.public_key())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert generated == ["RSA-2048"]
    assert len(set(seen)) == 1
