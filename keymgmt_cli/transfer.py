"""Key material for AWS KMS's import ("bring your own key") and the wrapping it requires.

Pure functions, no I/O and no AWS calls. What AWS accepts is given as data (the tables below)
so that a bad value fails with the allowed list before any AWS call.

Specs implemented:

- AWS KMS Developer Guide, "Importing key material": GetParametersForImport's supported
  wrapping algorithm x key material table, the key material formats (32 raw bytes for
  SYMMETRIC_DEFAULT; an unencrypted PKCS#8 DER private key, RFC 5208, for RSA and ECC) and the
  refusal of ECC_NIST_P521 material with an RSA_2048 wrapping key under RSAES_OAEP_SHA_*.
- RSAES-OAEP, RFC 8017 section 7.1, with the hash and the MGF1 hash equal and an empty label.
- AWS "RSA_AES_KEY_WRAP_SHA_*" (PKCS#11 CKM_RSA_AES_KEY_WRAP): an ephemeral AES-256 key K under
  RSAES-OAEP, followed by the material under AES Key Wrap with Padding, RFC 5649. The RSA part
  comes first and is exactly k bytes long (k = modulus length in bytes).

Every failure raises :class:`TransferError` with a one-line message that never contains key
material. Just over 400 lines: the allowed-value tables and one small function per spec step,
kept together so each step can be checked against the spec it cites.
"""

from __future__ import annotations

import os

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from keymgmt_cli.errors import InvalidRequest


class TransferError(InvalidRequest):
    """Key material or a wrapping parameter that AWS KMS's import would not accept."""


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

_RSA_BITS: dict[str, int] = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
}

KEY_SPECS: tuple[str, ...] = ("SYMMETRIC_DEFAULT", *_RSA_BITS, *_EC_CURVES)
"""The KMS KeySpec values whose material we generate and import."""

_OAEP = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1")
_RSA_AES = ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")

# AWS-DG table, algorithms in AWS's order of preference.
_ALLOWED: dict[str, tuple[str, ...]] = {
    "SYMMETRIC_DEFAULT": _OAEP,
    **{spec: _RSA_AES for spec in _RSA_BITS},
    **{spec: _RSA_AES + _OAEP for spec in _EC_CURVES},
}

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RSAES_OAEP_SHA_256": hashes.SHA256,
    "RSAES_OAEP_SHA_1": hashes.SHA1,
    "RSA_AES_KEY_WRAP_SHA_256": hashes.SHA256,
    "RSA_AES_KEY_WRAP_SHA_1": hashes.SHA1,
}

_SYMMETRIC_LEN = 32  # AES-256 raw key (16-byte SM4 exists only in China regions)
_EPHEMERAL_AES_LEN = 32  # RSA_AES_KEY_WRAP uses an AES-256 key
_MAX_ENCRYPTED_LEN = 6144  # ImportKeyMaterial's EncryptedKeyMaterial blob limit


def _names(values) -> str:
    return ", ".join(values)


def _require_key_spec(key_spec: str) -> None:
    if key_spec not in _ALLOWED:
        raise TransferError(f"unsupported key spec {key_spec!r} for import; "
                            f"allowed: {_names(KEY_SPECS)}")


def _require_algorithm(algorithm: str) -> None:
    if algorithm not in WRAPPING_ALGORITHMS:
        raise TransferError(f"unknown wrapping algorithm {algorithm!r}; "
                            f"allowed: {_names(WRAPPING_ALGORITHMS)}")


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
    _require_key_spec(key_spec)
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
                            f"key material; allowed: {_names(allowed)}")
    if wrapping_key_spec not in WRAPPING_KEY_SPECS:
        raise TransferError(f"unknown wrapping key spec {wrapping_key_spec!r}; "
                            f"allowed: {_names(WRAPPING_KEY_SPECS)}")
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


# --- key material -------------------------------------------------------------------------------

def _der_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """One DER TLV header at ``offset`` (X.690 section 8.1): (tag, content start, content end)."""
    if offset + 2 > len(data):
        raise ValueError("truncated")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated")
    return tag, start, end


def _pkcs8_shape(material: bytes) -> str | None:
    """None if ``material`` has the outer shape of an unencrypted PKCS#8 PrivateKeyInfo
    (RFC 5208 section 5: SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING key, ... }),
    else a short description of what it looks like instead."""
    if material.lstrip().startswith(b"-----BEGIN"):
        return "PEM text"
    try:
        tag, start, end = _der_header(material, 0)
        if tag != 0x30:
            return "not DER"
        if end != len(material):
            return "DER with trailing bytes"
        first_tag, _, first_end = _der_header(material, start)
        if first_tag == 0x30:
            return "an encrypted PKCS#8 key"
        if first_tag != 0x02:
            return "not a private key"
        second_tag, _, _ = _der_header(material, first_end)
    except ValueError:
        return "not DER"
    if second_tag != 0x30:
        return "a traditional (PKCS#1 or SEC1) key, not PKCS#8"
    return None


def _expected(key_spec: str) -> str:
    if key_spec in _RSA_BITS:
        return (f"an unencrypted PKCS#8 DER RSA private key with a {_RSA_BITS[key_spec]}-bit "
                f"modulus")
    return f"an unencrypted PKCS#8 DER EC private key on curve {_EC_CURVES[key_spec].name}"


def _load_private(key_spec: str, material: bytes, *, validate_rsa: bool = True):
    """Load asymmetric material after checking it is what AWS accepts for ``key_spec``.

    ``validate_rsa=False`` skips OpenSSL's RSA private-key consistency check (about 0.3 s for
    RSA-4096), for callers that only read the public half of material checked before."""
    if not isinstance(material, (bytes, bytearray)):
        raise TransferError(f"{key_spec} key material must be bytes, "
                            f"got {type(material).__name__}")
    expected = _expected(key_spec)
    shape = _pkcs8_shape(bytes(material))
    if shape is not None:
        raise TransferError(f"{key_spec} key material must be {expected}; got {shape}")
    try:
        key = serialization.load_der_private_key(
            bytes(material), password=None, unsafe_skip_rsa_key_validation=not validate_rsa)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise TransferError(f"{key_spec} key material must be {expected}; "
                            f"got an unparsable or inconsistent private key") from None
    if key_spec in _RSA_BITS:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TransferError(f"{key_spec} key material must be {expected}; "
                                f"got a {_kind(key)} key")
        if key.key_size != _RSA_BITS[key_spec]:
            raise TransferError(f"{key_spec} key material must be {expected}; "
                                f"got a {key.key_size}-bit modulus")
    else:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TransferError(f"{key_spec} key material must be {expected}; "
                                f"got a {_kind(key)} key")
        if key.curve.name != _EC_CURVES[key_spec].name:
            raise TransferError(f"{key_spec} key material must be {expected}; "
                                f"got curve {key.curve.name}")
    return key


def _kind(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "EC"
    return type(key).__name__.lstrip("_").replace("PrivateKey", "") or "non-RSA/EC"


def check_material(key_spec: str, material: bytes) -> None:
    """Refuse material that AWS would not import as ``key_spec`` (AWS-DG "Requirements for
    imported key material"): SYMMETRIC_DEFAULT takes exactly 32 raw bytes; RSA_* and ECC_NIST_*
    take only the private key, DER-encoded unencrypted PKCS#8 (RFC 5208), of the right modulus
    size or curve. PEM, PKCS#1, SEC1 and encrypted PKCS#8 are refused."""
    _require_key_spec(key_spec)
    if key_spec == "SYMMETRIC_DEFAULT":
        if not isinstance(material, (bytes, bytearray)):
            raise TransferError(f"SYMMETRIC_DEFAULT key material must be {_SYMMETRIC_LEN} raw "
                                f"bytes, got {type(material).__name__}")
        if len(material) != _SYMMETRIC_LEN:
            raise TransferError(f"SYMMETRIC_DEFAULT key material must be exactly "
                                f"{_SYMMETRIC_LEN} raw bytes (AES-256), got {len(material)}")
        return
    _load_private(key_spec, material)


def generate_material(key_spec: str) -> bytes:
    """Fresh key material in the form AWS imports: 32 random bytes for SYMMETRIC_DEFAULT, else an
    unencrypted PKCS#8 DER private key (RSA with e = 65537, or EC on the named NIST curve)."""
    _require_key_spec(key_spec)
    if key_spec == "SYMMETRIC_DEFAULT":
        return os.urandom(_SYMMETRIC_LEN)
    if key_spec in _RSA_BITS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[key_spec])
    else:
        key = ec.generate_private_key(_EC_CURVES[key_spec]())
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(key_spec: str, material: bytes) -> str | None:
    """The PEM SubjectPublicKeyInfo (RFC 5280 section 4.1.2.7) of asymmetric material, as KMS's
    GetPublicKey would return it after import (in DER); None for SYMMETRIC_DEFAULT.

    The format, type, size and curve are checked as in :func:`check_material`; the RSA
    private-key consistency check is skipped because only the public half is read."""
    _require_key_spec(key_spec)
    if key_spec == "SYMMETRIC_DEFAULT":
        check_material(key_spec, material)
        return None
    key = _load_private(key_spec, material, validate_rsa=False)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


# --- wrapping ---------------------------------------------------------------------------------

def _load_wrapping_public_key(der: bytes) -> rsa.RSAPublicKey:
    """GetParametersForImport's PublicKey: a DER X.509 SubjectPublicKeyInfo of an RSA key."""
    if not isinstance(der, (bytes, bytearray)):
        raise TransferError(f"wrapping public key must be DER bytes, got {type(der).__name__}")
    not_spki = "wrapping public key is not a DER SubjectPublicKeyInfo"
    try:
        # RFC 5280 4.1: SEQUENCE { SEQUENCE algorithm, BIT STRING key }. cryptography would also
        # take a bare PKCS#1 RSAPublicKey (SEQUENCE { INTEGER n, ... }), which AWS never sends.
        _, start, _ = _der_header(bytes(der), 0)
        if _der_header(bytes(der), start)[0] != 0x30:
            raise ValueError("not SubjectPublicKeyInfo")
        key = serialization.load_der_public_key(bytes(der))
    except (ValueError, UnsupportedAlgorithm):
        raise TransferError(not_spki) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise TransferError("wrapping public key is not an RSA key")
    if key.key_size not in WRAPPING_KEY_SPECS.values():
        raise TransferError(f"wrapping public key is RSA-{key.key_size}; AWS issues "
                            f"{_names(WRAPPING_KEY_SPECS)}")
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
