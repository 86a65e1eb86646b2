"""What AWS KMS allows, for the local KMS double: key specs, curves, wrapping algorithms, limits.

Every allowed-value table of the double lives here, once.  They are the double's own copy of AWS
facts, written from the AWS API reference and the KMS developer guide, and deliberately independent of
``keymgmt_cli/transfer.py`` and ``keymaterial.py``: the double is the oracle keymgmt's own code is
tested against, so it must not share keymgmt's beliefs about AWS (a wrong table would then pass its
own test).  Where AWS's behaviour is unknown or looser in the API model text than in the guide, the
stricter reading is taken.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from moto.kms.exceptions import ValidationException

# --------------------------------------------------------------------------- limits

TOKEN_VALIDITY_SECONDS = 24 * 3600  # "Each public key and import token set is valid for 24 hours."
MAX_VALID_TO_SECONDS = 365 * 86400  # ValidTo "maximum value is 365 days from the request date"
MAX_BLOB = 6144  # EncryptedKeyMaterial / ImportToken: 1..6144 bytes
MAX_ON_DEMAND_ROTATIONS = 25  # "You can perform on-demand key rotation a maximum of 25 times per KMS key."
LIST_LIMIT_MAX = 1000  # ListKeyRotations Limit: 1..1000

# --------------------------------------------------------------------------- key specs

SYMMETRIC = "SYMMETRIC_DEFAULT"
RSA_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
#: The one ECDSA signing algorithm KMS offers per curve.
EC_SIGNING_ALGORITHMS = {
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
}
PENDING_DELETION = ("PendingDeletion", "PendingReplicaDeletion")
ORIGINS = ("AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE")

# --------------------------------------------------------------------------- wrapping

OAEP_HASH = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}
KWP_HASH = {"RSA_AES_KEY_WRAP_SHA_1": hashes.SHA1, "RSA_AES_KEY_WRAP_SHA_256": hashes.SHA256}
#: The WrappingAlgorithmSpec enum (accepted by the API, then refused here unless OAEP or KWP).
WRAPPING_ALGORITHMS = ("RSAES_PKCS1_V1_5", *OAEP_HASH, *KWP_HASH, "SM2PKE")
#: The WrappingKeySpec enum; the RSA ones are the only ones served here.
WRAPPING_KEY_SPECS = (*RSA_BITS, "SM2")

# --------------------------------------------------------------------------- ImportKeyMaterial

EXPIRATION_MODELS = ("KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE")
IMPORT_TYPES = ("NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL")
INCLUDE_KEY_MATERIAL = ("ALL_KEY_MATERIAL", "ROTATIONS_ONLY")
DESCRIPTION_RE = re.compile(r"^[a-zA-Z0-9:/_\s.-]+$")
MATERIAL_ID_RE = re.compile(r"^[a-f0-9]{64}$")

# DER-encoded OID contents (without tag/length) of the PKCS#8 AlgorithmIdentifier we accept.
OID_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1


def key_family(key_spec: str) -> str:
    """``symmetric``, ``rsa``, ``ecc`` (the importable families) or ``other``."""
    if key_spec == SYMMETRIC:
        return "symmetric"
    if key_spec in RSA_BITS:
        return "rsa"
    if key_spec in EC_CURVES:
        return "ecc"
    return "other"


#: Key usages per family, and the ones an EXTERNAL key of that family may have.
_USAGES = {"symmetric": ("ENCRYPT_DECRYPT",), "rsa": ("ENCRYPT_DECRYPT", "SIGN_VERIFY")}
_IMPORTABLE_USAGES = {"symmetric": ("ENCRYPT_DECRYPT",), "rsa": ("ENCRYPT_DECRYPT", "SIGN_VERIFY"),
                      "ecc": ("SIGN_VERIFY",)}


def allowed_wrapping(key_spec: str) -> tuple[str, ...]:
    """Wrapping algorithms for this key spec (AWS developer guide table), preferred first."""
    family = key_family(key_spec)
    oaep, kwp = tuple(reversed(OAEP_HASH)), tuple(reversed(KWP_HASH))  # SHA-256 first
    return {"symmetric": oaep, "rsa": kwp, "ecc": kwp + oaep}.get(family, ())


def importable(key_spec: str, key_usage: str) -> bool:
    """True when an EXTERNAL key of this spec and usage is emulated here."""
    return key_usage in _IMPORTABLE_USAGES.get(key_family(key_spec), ())


def importable_specs() -> str:
    """The key specs :func:`importable` accepts, for error messages."""
    return ", ".join((SYMMETRIC, *RSA_BITS, *EC_CURVES))


def default_and_check_usage(key_spec: str, key_usage: str | None) -> str:
    """KeyUsage defaulted to ENCRYPT_DECRYPT and checked against the spec (ValidationException)."""
    # moto leaves KeyUsage unset (absent from KeyMetadata) when the request omits it.  AWS defaults to
    # ENCRYPT_DECRYPT and validates the spec/usage pair.
    usage = key_usage or "ENCRYPT_DECRYPT"
    valid = _USAGES.get(key_family(key_spec))
    if valid is None:
        if key_spec.startswith("HMAC"):
            valid = ("GENERATE_VERIFY_MAC",)
        elif key_spec == "ECC_SECG_P256K1":
            valid = ("SIGN_VERIFY",)
        elif key_spec.startswith("ECC_NIST"):
            valid = ("SIGN_VERIFY", "KEY_AGREEMENT")
        else:  # SM2 and anything moto may add
            return usage
    if usage not in valid:
        raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {key_spec}.")
    return usage
