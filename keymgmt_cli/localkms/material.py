"""Key material of the local KMS double: unwrapping it, checking it against the key spec, and handing
imported private keys to moto's own key classes."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding
from moto.kms import utils as kms_utils
from moto.kms.models import Key

from .errors import IncorrectKeyMaterialException, InvalidCiphertextException
from .rules import EC_CURVES, EC_SIGNING_ALGORITHMS, KWP_HASH, OAEP_HASH, OID_EC_PUBLIC_KEY, OID_RSA_ENCRYPTION, RSA_BITS, key_family
from .tokens import Token


def oaep(hash_cls: type[hashes.HashAlgorithm]) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)


def unwrap(tok: Token, blob: bytes) -> bytes:
    priv = tok.private_key
    assert priv is not None
    k = priv.key_size // 8
    bad = InvalidCiphertextException("KMS could not decrypt the encrypted (wrapped) key material.")
    try:
        if tok.algorithm in OAEP_HASH:
            if len(blob) != k:
                raise bad
            return priv.decrypt(blob, oaep(OAEP_HASH[tok.algorithm]))
        # RSA_AES_KEY_WRAP_SHA_*: RSA-OAEP(ephemeral AES-256 key) || AES-KWP(RFC 5649, material)
        if len(blob) <= k:
            raise bad
        aes_key = priv.decrypt(blob[:k], oaep(KWP_HASH[tok.algorithm]))
        if len(aes_key) != 32:
            raise bad
        return aes_key_unwrap_with_padding(aes_key, blob[k:])
    except (ValueError, InvalidUnwrap):
        raise bad from None


def der_element(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content_start, content_end) of the DER element at pos; ValueError if malformed."""
    if pos + 2 > len(buf):
        raise ValueError("truncated")
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4 or pos + n > len(buf):
            raise ValueError("bad length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > len(buf):
        raise ValueError("truncated")
    return tag, pos, pos + length


def pkcs8_algorithm_oid(material: bytes) -> bytes:
    """Return the algorithm OID of an unencrypted PKCS#8 PrivateKeyInfo; ValueError otherwise.

    PKCS#1 RSAPrivateKey, SEC1 ECPrivateKey and EncryptedPrivateKeyInfo all fail here.
    """
    tag, start, end = der_element(material, 0)
    if tag != 0x30 or end != len(material):
        raise ValueError("not a single DER SEQUENCE")
    tag, v_start, v_end = der_element(material, start)  # version INTEGER (0 = v1, 1 = v2 / OneAsymmetricKey)
    if tag != 0x02 or material[v_start:v_end] not in (b"\x00", b"\x01"):
        raise ValueError("no PKCS#8 version")
    tag, a_start, a_end = der_element(material, v_end)  # AlgorithmIdentifier SEQUENCE
    if tag != 0x30:
        raise ValueError("no AlgorithmIdentifier")
    tag, o_start, o_end = der_element(material, a_start)
    if tag != 0x06:
        raise ValueError("no algorithm OID")
    tag, _, _ = der_element(material, a_end)  # privateKey OCTET STRING
    if tag != 0x04:
        raise ValueError("no privateKey OCTET STRING")
    return material[o_start:o_end]


def check_material(key: Key, material: bytes) -> Any:
    """Validate material for the key spec; return the parsed private key (asymmetric) or the bytes."""
    spec = key.key_spec
    family = key_family(spec)
    if family == "symmetric":
        if len(material) != 32:
            raise IncorrectKeyMaterialException(
                f"Key material for {spec} must be exactly 32 bytes (256-bit), got {len(material)} bytes."
            )
        return material
    want_oid = OID_RSA_ENCRYPTION if family == "rsa" else OID_EC_PUBLIC_KEY
    try:
        oid = pkcs8_algorithm_oid(material)
    except ValueError as exc:
        raise IncorrectKeyMaterialException(
            f"Key material for {spec} must be a DER-encoded, unencrypted PKCS#8 private key ({exc})."
        ) from None
    if oid != want_oid:
        raise IncorrectKeyMaterialException(f"Key material is not a {family.upper()} private key, as {spec} requires.")
    try:
        priv = serialization.load_der_private_key(material, password=None)
    except (ValueError, TypeError) as exc:
        raise IncorrectKeyMaterialException(f"Key material is not a valid private key: {exc}") from None
    if family == "rsa":
        if not isinstance(priv, rsa.RSAPrivateKey) or priv.key_size != RSA_BITS[spec]:
            size = getattr(priv, "key_size", "?")
            raise IncorrectKeyMaterialException(f"{spec} requires a {RSA_BITS[spec]}-bit RSA key, got {size} bits.")
    else:
        curve = EC_CURVES[spec]
        if not isinstance(priv, ec.EllipticCurvePrivateKey) or not isinstance(priv.curve, curve):
            got = getattr(getattr(priv, "curve", None), "name", "?")
            raise IncorrectKeyMaterialException(f"{spec} requires an EC key on {curve.name}, got {got}.")
    return priv


def moto_private_key(key_spec: str, priv: Any) -> Any:
    """Wrap an imported private key in moto's own key class (moto.kms.utils).

    moto 5.2 keeps asymmetric keys in ``Key.private_key`` as ``RSAPrivateKey(key_size)`` or
    ``ECDSAPrivateKey(key_spec)``.  Their constructors generate a new key.  We bypass them with
    ``__new__`` and set the attributes their sign/verify/public_key methods read:
    RSA: ``key_size``, ``private_key``.  ECDSA: ``private_key``, ``valid_signing_algorithms``.
    """
    if key_spec in RSA_BITS:
        obj = kms_utils.RSAPrivateKey.__new__(kms_utils.RSAPrivateKey)
        obj.key_size = priv.key_size
        obj.private_key = priv
        return obj
    obj = kms_utils.ECDSAPrivateKey.__new__(kms_utils.ECDSAPrivateKey)
    obj.private_key = priv
    obj.valid_signing_algorithms = list(EC_SIGNING_ALGORITHMS[key_spec])
    return obj

