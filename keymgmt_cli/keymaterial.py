"""Key material in the form AWS KMS imports it ("bring your own key"): its checks and its generation.

Pure functions, no I/O and no AWS calls; the key specs whose material we make are a table, so a bad
value fails with the allowed list before any AWS call. The wrapping that carries the material to
AWS is ``transfer.py``; this module is what is wrapped, apart because it cites other specs and is
needed without any wrapping (a new asymmetric key's public half, the twin's check of an import).

Specs implemented:

- AWS KMS Developer Guide, "Requirements for imported key material": 32 raw bytes for
  SYMMETRIC_DEFAULT; an unencrypted PKCS#8 DER private key (RFC 5208) for RSA and ECC, of the
  key spec's modulus size or curve.
- DER (X.690 section 8.1) as far as telling PKCS#8 from PEM, PKCS#1, SEC1 and encrypted PKCS#8,
  and a SubjectPublicKeyInfo from a bare RSAPublicKey (``der_header``, used by ``transfer.py``).

Every failure raises :class:`TransferError` with a one-line message that never contains key
material.
"""

from __future__ import annotations

import os

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keymgmt_cli.errors import InvalidRequest


class TransferError(InvalidRequest):
    """Key material or a wrapping parameter that AWS KMS's import would not accept."""


RSA_BITS: dict[str, int] = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
}

KEY_SPECS: tuple[str, ...] = ("SYMMETRIC_DEFAULT", *RSA_BITS, *EC_CURVES)
"""The KMS KeySpec values whose material we generate and import."""

_KNOWN = frozenset(KEY_SPECS)
_SYMMETRIC_LEN = 32  # AES-256 raw key (16-byte SM4 exists only in China regions)


def names(values) -> str:
    return ", ".join(values)


def require_key_spec(key_spec: str) -> None:
    if key_spec not in _KNOWN:
        raise TransferError(f"unsupported key spec {key_spec!r} for import; "
                            f"allowed: {names(KEY_SPECS)}")


def der_header(data: bytes, offset: int) -> tuple[int, int, int]:
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
        tag, start, end = der_header(material, 0)
        if tag != 0x30:
            return "not DER"
        if end != len(material):
            return "DER with trailing bytes"
        first_tag, _, first_end = der_header(material, start)
        if first_tag == 0x30:
            return "an encrypted PKCS#8 key"
        if first_tag != 0x02:
            return "not a private key"
        second_tag, _, _ = der_header(material, first_end)
    except ValueError:
        return "not DER"
    if second_tag != 0x30:
        return "a traditional (PKCS#1 or SEC1) key, not PKCS#8"
    return None


def _expected(key_spec: str) -> str:
    if key_spec in RSA_BITS:
        return (f"an unencrypted PKCS#8 DER RSA private key with a {RSA_BITS[key_spec]}-bit "
                f"modulus")
    return f"an unencrypted PKCS#8 DER EC private key on curve {EC_CURVES[key_spec].name}"


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
    if key_spec in RSA_BITS:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TransferError(f"{key_spec} key material must be {expected}; "
                                f"got a {_kind(key)} key")
        if key.key_size != RSA_BITS[key_spec]:
            raise TransferError(f"{key_spec} key material must be {expected}; "
                                f"got a {key.key_size}-bit modulus")
    else:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TransferError(f"{key_spec} key material must be {expected}; "
                                f"got a {_kind(key)} key")
        if key.curve.name != EC_CURVES[key_spec].name:
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
    require_key_spec(key_spec)
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
    require_key_spec(key_spec)
    if key_spec == "SYMMETRIC_DEFAULT":
        return os.urandom(_SYMMETRIC_LEN)
    if key_spec in RSA_BITS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[key_spec])
    else:
        key = ec.generate_private_key(EC_CURVES[key_spec]())
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(key_spec: str, material: bytes) -> str | None:
    """The PEM SubjectPublicKeyInfo (RFC 5280 section 4.1.2.7) of asymmetric material, as KMS's
    GetPublicKey would return it after import (in DER); None for SYMMETRIC_DEFAULT.

    The format, type, size and curve are checked as in :func:`check_material`; the RSA
    private-key consistency check is skipped because only the public half is read."""
    require_key_spec(key_spec)
    if key_spec == "SYMMETRIC_DEFAULT":
        check_material(key_spec, material)
        return None
    key = _load_private(key_spec, material, validate_rsa=False)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
