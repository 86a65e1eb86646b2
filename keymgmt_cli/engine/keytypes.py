"""Key types as data: Vault's seven types, their AWS KMS key spec and the purposes AWS can honour.

Vault distributes only aes256-gcm96 to AWS; AWS has accepted imported RSA and ECC private keys
since 2023, so we map those too (PRODUCT.md section 2).
"""

from __future__ import annotations

import os

from keymgmt_cli.errors import InvalidRequest

PURPOSES = ("encrypt", "decrypt", "sign", "verify", "wrap", "unwrap")
_ENC = frozenset({"encrypt", "decrypt"})
_SIG = frozenset({"sign", "verify"})


class KeyType:
    """usages: (KMS KeyUsage, the purposes it covers); bits: RSA modulus; curve: EC curve name."""

    __slots__ = ("name", "kms_key_spec", "usages", "bits", "curve")

    def __init__(self, name: str, kms_key_spec: str, usages: tuple[tuple[str, frozenset[str]], ...],
                 bits: int = 0, curve: str = ""):
        self.name, self.kms_key_spec, self.usages, self.bits, self.curve = name, kms_key_spec, usages, bits, curve

    @property
    def asymmetric(self) -> bool:
        return self.kms_key_spec != "SYMMETRIC_DEFAULT"


KEY_TYPES: dict[str, KeyType] = {
    "aes256-gcm96": KeyType("aes256-gcm96", "SYMMETRIC_DEFAULT", (("ENCRYPT_DECRYPT", _ENC),)),
    "rsa-2048": KeyType("rsa-2048", "RSA_2048", (("ENCRYPT_DECRYPT", _ENC), ("SIGN_VERIFY", _SIG)), bits=2048),
    "rsa-3072": KeyType("rsa-3072", "RSA_3072", (("ENCRYPT_DECRYPT", _ENC), ("SIGN_VERIFY", _SIG)), bits=3072),
    "rsa-4096": KeyType("rsa-4096", "RSA_4096", (("ENCRYPT_DECRYPT", _ENC), ("SIGN_VERIFY", _SIG)), bits=4096),
    "ecdsa-p256": KeyType("ecdsa-p256", "ECC_NIST_P256", (("SIGN_VERIFY", _SIG),), curve="SECP256R1"),
    "ecdsa-p384": KeyType("ecdsa-p384", "ECC_NIST_P384", (("SIGN_VERIFY", _SIG),), curve="SECP384R1"),
    "ecdsa-p521": KeyType("ecdsa-p521", "ECC_NIST_P521", (("SIGN_VERIFY", _SIG),), curve="SECP521R1"),
}
DEFAULT_KEY_TYPE = "rsa-2048"  # as Vault


def key_usage_for(key_type: str, purposes: list[str]) -> str:
    """The KMS KeyUsage that honours every purpose, or InvalidRequest before any AWS call."""
    kt = KEY_TYPES[key_type]
    wanted = frozenset(purposes)
    if not wanted:
        raise InvalidRequest("purpose is required: give at least one of " + ", ".join(PURPOSES))
    for usage, covered in kt.usages:
        if wanted <= covered:
            return usage
    honoured = " or ".join(purpose_choices(key_type))  # in PURPOSES order: sign,verify, not verify,sign
    raise InvalidRequest(
        f"AWS KMS cannot honour purpose {','.join(ordered_purposes(purposes))} for {with_article(key_type)} "
        f"key; allowed: {honoured}")


def with_article(name: str) -> str:
    """``name`` with its indefinite article, as it is read aloud: key types are initialisms
    (an aes256-gcm96, an rsa-2048, an ecdsa-p384: "ay", "ar", "ee"), so the article follows the
    sound of the first letter's name, not whether it is a vowel."""
    return ("an " if name and name[0].lower() in "aefhilmnorsx" else "a ") + name


def purpose_choices(key_type: str | None) -> list[str]:
    """The purpose lists AWS KMS can honour for ``key_type``, one per KeyUsage (every type's when
    the type is unknown)."""
    types = [KEY_TYPES[key_type]] if key_type in KEY_TYPES else list(KEY_TYPES.values())
    found: list[str] = []
    for kt in types:
        for _, covered in kt.usages:
            choice = ",".join(ordered_purposes(list(covered)))
            if choice not in found:
                found.append(choice)
    return found


def missing_purpose(key_type: str | None) -> str:
    """The refusal of a distribution without ``purpose``, suggesting only what the key can take."""
    choices = " or ".join(f"purpose={choice}" for choice in purpose_choices(key_type))
    target = f" for {with_article(key_type)} key" if key_type in KEY_TYPES else ""
    return f"missing required field 'purpose' (give {choices}{target})"


def ordered_purposes(purposes: list[str]) -> list[str]:
    return [p for p in PURPOSES if p in purposes]


def generate_material(key_type: str) -> tuple[bytes, str | None]:
    """Fresh key material and its public key: 32 random bytes, or a PKCS#8 DER private key (the
    form AWS imports) with its SubjectPublicKeyInfo PEM (what Vault's read returns)."""
    kt = KEY_TYPES[key_type]
    if not kt.asymmetric:
        return os.urandom(32), None
    from keymgmt_cli import keymaterial  # cryptography only on the paths that create keys

    material = keymaterial.generate_material(kt.kms_key_spec)
    return material, keymaterial.public_key_pem(kt.kms_key_spec, material)
