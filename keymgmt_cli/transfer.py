"""The wrapping AWS KMS's import ("bring your own key") requires, and which wrapping fits which material.

Pure functions, no I/O and no AWS calls. What AWS accepts is given as data (the tables below)
so that a bad value fails with the allowed list before any AWS call. The material itself (its
format checks, its generation, its public half) is ``keymaterial.py``.

Specs implemented:

- AWS KMS Developer Guide, "Importing key material": GetParametersForImport's supported
  wrapping algorithm x key material table, and the refusal of ECC_NIST_P521 material with an
  RSA_2048 wrapping key under RSAES_OAEP_SHA_*.
- RSAES-OAEP, RFC 8017 section 7.1, with the hash and the MGF1 hash equal and an empty label.
- AWS "RSA_AES_KEY_WRAP_SHA_*" (PKCS#11 CKM_RSA_AES_KEY_WRAP): an ephemeral AES-256 key K under
  RSAES-OAEP, followed by the material under AES Key Wrap with Padding, RFC 5649. The RSA part
  comes first and is exactly k bytes long (k = modulus length in bytes).

Every failure raises :class:`TransferError` (``keymaterial.TransferError``) with a one-line
message that never contains key material.
"""

from __future__ import annotations

import os

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from keymgmt_cli.keymaterial import EC_CURVES, RSA_BITS, TransferError, der_header, names, require_key_spec


WRAPPING_ALGORITHMS: tuple[str, ...] = (
    "RSAES_OAEP_SHA_256",
    "RSAES_OAEP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
)
"""The wrapping algorithms we implement. Not here: RSAES_PKCS1_V1_5 (AWS stopped accepting it on
2023-10-10) and SM2PKE (China regions only)."""

WRAPPING_KEY_SPECS: dict[str, int] = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
"""GetParametersForImport's WrappingKeySpec values (without SM2, China only) -> modulus bits."""

_OAEP = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1")
_RSA_AES = ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")

# AWS-DG table, algorithms in AWS's order of preference.
_ALLOWED: dict[str, tuple[str, ...]] = {
    "SYMMETRIC_DEFAULT": _OAEP,
    **{spec: _RSA_AES for spec in RSA_BITS},
    **{spec: _RSA_AES + _OAEP for spec in EC_CURVES},
}

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RSAES_OAEP_SHA_256": hashes.SHA256,
    "RSAES_OAEP_SHA_1": hashes.SHA1,
    "RSA_AES_KEY_WRAP_SHA_256": hashes.SHA256,
    "RSA_AES_KEY_WRAP_SHA_1": hashes.SHA1,
}

_EPHEMERAL_AES_LEN = 32  # RSA_AES_KEY_WRAP uses an AES-256 key
_MAX_ENCRYPTED_LEN = 6144  # ImportKeyMaterial's EncryptedKeyMaterial blob limit


def _require_algorithm(algorithm: str) -> None:
    if algorithm not in WRAPPING_ALGORITHMS:
        raise TransferError(f"unknown wrapping algorithm {algorithm!r}; "
                            f"allowed: {names(WRAPPING_ALGORITHMS)}")


def _oaep(algorithm: str) -> padding.OAEP:
    """RFC 8017 section 7.1 as AWS uses it: hash = MGF1 hash, empty label."""
    digest = _HASHES[algorithm]
    return padding.OAEP(mgf=padding.MGF1(digest()), algorithm=digest(), label=None)


def _oaep_capacity(modulus_bits: int, algorithm: str) -> int:
    """RFC 8017 section 7.1.1: a message may be at most k - 2*hLen - 2 bytes."""
    return (modulus_bits + 7) // 8 - 2 * _HASHES[algorithm].digest_size - 2


def _kwp_len(material_len: int) -> int:
    """RFC 5649 section 4.1: pad to a multiple of 8 bytes, plus one 8-byte block."""
    return 8 * ((material_len + 7) // 8) + 8


def allowed_algorithms(key_spec: str) -> tuple[str, ...]:
    """Wrapping algorithms AWS accepts for ``key_spec``, in AWS's order of preference.

    AWS-DG GetParametersForImport table: symmetric keys take RSAES_OAEP_SHA_*; RSA private keys
    take only RSA_AES_KEY_WRAP_SHA_* (no RSA private key fits in one OAEP block); ECC private keys
    take both, RSA_AES first.
    """
    require_key_spec(key_spec)
    return _ALLOWED[key_spec]


def default_wrapping(key_spec: str) -> tuple[str, str]:
    """The (WrappingAlgorithm, WrappingKeySpec) pair we request for ``key_spec``.

    RSA_4096 because AWS says "use the longest RSA wrapping key that is practical"; the SHA-256
    variant of the first algorithm AWS lists for the material type.
    """
    return allowed_algorithms(key_spec)[0], "RSA_4096"


def check_wrapping(key_spec: str, algorithm: str, wrapping_key_spec: str,
                   material_len: int | None = None) -> None:
    """Refuse a wrapping choice that AWS's import would refuse, before any AWS call.

    Checks that the algorithm and wrapping key spec are known and allowed for ``key_spec``;
    AWS's explicit rule that ECC_NIST_P521 material cannot be wrapped with RSA_2048 under
    RSAES_OAEP_SHA_*; and, when ``material_len`` is given, the OAEP capacity
    (RFC 8017 section 7.1.1) and ImportKeyMaterial's 6144-byte limit on the encrypted blob.
    """
    allowed = allowed_algorithms(key_spec)
    if algorithm not in allowed:
        known = "unknown" if algorithm not in WRAPPING_ALGORITHMS else "not allowed"
        raise TransferError(f"wrapping algorithm {algorithm!r} is {known} for {key_spec} "
                            f"key material; allowed: {names(allowed)}")
    if wrapping_key_spec not in WRAPPING_KEY_SPECS:
        raise TransferError(f"unknown wrapping key spec {wrapping_key_spec!r}; "
                            f"allowed: {names(WRAPPING_KEY_SPECS)}")
    bits = WRAPPING_KEY_SPECS[wrapping_key_spec]
    if algorithm in _OAEP and key_spec == "ECC_NIST_P521" and wrapping_key_spec == "RSA_2048":
        raise TransferError(f"AWS does not accept ECC_NIST_P521 key material wrapped with "
                            f"{algorithm} under an RSA_2048 wrapping key; use a larger wrapping "
                            f"key or RSA_AES_KEY_WRAP_SHA_256")
    if material_len is None:
        return
    if material_len <= 0:
        raise TransferError("key material is empty")
    if algorithm in _OAEP:
        capacity = _oaep_capacity(bits, algorithm)
        if material_len > capacity:
            raise TransferError(f"{material_len}-byte key material does not fit {algorithm} "
                                f"with an {wrapping_key_spec} wrapping key (at most {capacity} "
                                f"bytes); use a larger wrapping key or RSA_AES_KEY_WRAP_SHA_256")
        return
    encrypted_len = bits // 8 + _kwp_len(material_len)
    if encrypted_len > _MAX_ENCRYPTED_LEN:
        raise TransferError(f"{material_len}-byte key material wraps to {encrypted_len} bytes, "
                            f"over ImportKeyMaterial's limit of {_MAX_ENCRYPTED_LEN}")


# --- wrapping ---------------------------------------------------------------------------------

def _load_wrapping_public_key(der: bytes) -> rsa.RSAPublicKey:
    """GetParametersForImport's PublicKey: a DER X.509 SubjectPublicKeyInfo of an RSA key."""
    if not isinstance(der, (bytes, bytearray)):
        raise TransferError(f"wrapping public key must be DER bytes, got {type(der).__name__}")
    not_spki = "wrapping public key is not a DER SubjectPublicKeyInfo"
    try:
        # RFC 5280 4.1: SEQUENCE { SEQUENCE algorithm, BIT STRING key }. cryptography would also
        # take a bare PKCS#1 RSAPublicKey (SEQUENCE { INTEGER n, ... }), which AWS never sends.
        _, start, _ = der_header(bytes(der), 0)
        if der_header(bytes(der), start)[0] != 0x30:
            raise ValueError("not SubjectPublicKeyInfo")
        key = serialization.load_der_public_key(bytes(der))
    except (ValueError, UnsupportedAlgorithm):
        raise TransferError(not_spki) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise TransferError("wrapping public key is not an RSA key")
    if key.key_size not in WRAPPING_KEY_SPECS.values():
        raise TransferError(f"wrapping public key is RSA-{key.key_size}; AWS issues "
                            f"{names(WRAPPING_KEY_SPECS)}")
    return key


def wrap_key_material(material: bytes, wrapping_public_key_der: bytes, algorithm: str) -> bytes:
    """EncryptedKeyMaterial for ImportKeyMaterial.

    RSAES_OAEP_SHA_256 / _SHA_1: RSAES-OAEP-ENCRYPT (RFC 8017 section 7.1.1) of the material.
    RSA_AES_KEY_WRAP_SHA_256 / _SHA_1: RSAES-OAEP-ENCRYPT of a fresh AES-256 key K (k bytes),
    followed by AES Key Wrap with Padding (RFC 5649 section 4.1) of the material under K.
    """
    _require_algorithm(algorithm)
    if not isinstance(material, (bytes, bytearray)) or not material:
        raise TransferError("key material to wrap must be non-empty bytes")
    public_key = _load_wrapping_public_key(wrapping_public_key_der)
    if algorithm in _OAEP:
        capacity = _oaep_capacity(public_key.key_size, algorithm)
        if len(material) > capacity:
            raise TransferError(f"{len(material)}-byte key material does not fit {algorithm} "
                                f"with an RSA-{public_key.key_size} wrapping key (at most "
                                f"{capacity} bytes); use a larger wrapping key or "
                                f"RSA_AES_KEY_WRAP_SHA_256")
        return public_key.encrypt(bytes(material), _oaep(algorithm))
    aes_key = os.urandom(_EPHEMERAL_AES_LEN)
    return (public_key.encrypt(aes_key, _oaep(algorithm))
            + aes_key_wrap_with_padding(aes_key, bytes(material)))


def unwrap_key_material(encrypted: bytes, wrapping_private_key, algorithm: str) -> bytes:
    """The inverse of :func:`wrap_key_material`, as KMS does it on ImportKeyMaterial (used by the
    in-memory KMS twin). ``wrapping_private_key`` is a cryptography ``RSAPrivateKey``.

    RSA_AES_KEY_WRAP: the first k bytes are RSAES-OAEP-DECRYPT'ed to K, which must be 32 bytes;
    the rest is AES Key Unwrap with Padding (RFC 5649 section 4.2) under K.
    """
    _require_algorithm(algorithm)
    if not isinstance(wrapping_private_key, rsa.RSAPrivateKey):
        raise TransferError("wrapping private key is not an RSA private key")
    if not isinstance(encrypted, (bytes, bytearray)):
        raise TransferError(f"encrypted key material must be bytes, got {type(encrypted).__name__}")
    encrypted = bytes(encrypted)
    k = (wrapping_private_key.key_size + 7) // 8
    failed = f"encrypted key material could not be unwrapped with {algorithm}"
    if algorithm in _OAEP:
        if len(encrypted) != k:
            raise TransferError(f"{failed}: expected {k} bytes, got {len(encrypted)}")
        try:
            return wrapping_private_key.decrypt(encrypted, _oaep(algorithm))
        except ValueError:
            raise TransferError(failed) from None
    if len(encrypted) < k + 16 or (len(encrypted) - k) % 8:
        raise TransferError(f"{failed}: {len(encrypted)} bytes is not {k} bytes of RSA-OAEP "
                            f"followed by an RFC 5649 wrapped key")
    try:
        aes_key = wrapping_private_key.decrypt(encrypted[:k], _oaep(algorithm))
    except ValueError:
        raise TransferError(f"{failed}: RSA-OAEP part") from None
    if len(aes_key) != _EPHEMERAL_AES_LEN:
        raise TransferError(f"{failed}: the wrapped AES key is {len(aes_key)} bytes, not "
                            f"{_EPHEMERAL_AES_LEN}")
    try:
        return aes_key_unwrap_with_padding(aes_key, encrypted[k:])
    except (InvalidUnwrap, ValueError):
        raise TransferError(f"{failed}: AES key wrap part") from None
