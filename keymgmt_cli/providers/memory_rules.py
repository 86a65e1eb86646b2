"""What AWS KMS refuses before it acts, as the in-memory twin checks it: each check raises the error
code and message AWS gives, through ``fail(code, message)`` (the twin words it as awskms does).

* ``CreateKey``: KeySpec/KeyUsage pairs (reference 2.1), what may be imported (``Origin=EXTERNAL``),
  the description's length, tag lengths and the reserved ``aws:`` prefix.
* ``GetParametersForImport``: the wrapping algorithm and wrapping key spec, which wrapping fits
  which material (reference 2.2), ECC_NIST_P521 under RSA_2048 with OAEP.
* ``ImportKeyMaterial``: ValidTo in the future and within 365 days; the import token issued in this
  region for this key, unused (spent by its first use, whatever happens next) and unexpired; a
  ciphertext that unwraps under the token's wrapping key (``transfer.unwrap_key_material``), into
  material the key spec takes (``keymaterial.check_material``).
* Aliases: ``alias/`` names, the reserved ``alias/aws/``, the allowed characters and length.

Apart from ``memory.py`` so that each of the twin's methods reads as what the operation does to the
world (look up, check, change), beside ``awskms.py``; the tables checked against are in
``memory_world.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .memory_materials import Fail
from .memory_world import (IMPORTABLE, KEY_USAGES, MAX_VALID_TO, WRAPPING_ALGORITHMS, WRAPPING_KEY_BITS,
                           MemoryKmsWorld, _ALIAS_RE, _Key, _OAEP, _Token, _wrap_algorithms, _wrapping_key)


def check_create(key_spec: str, key_usage: str, description: str, tags: dict[str, str] | None,
                 fail: Fail) -> None:
    if key_spec not in KEY_USAGES:
        raise fail("ValidationException",
                   f"1 validation error detected: Value '{key_spec}' at 'keySpec' "
                   f"failed to satisfy constraint: Member must satisfy enum value set: "
                   f"[{', '.join(KEY_USAGES)}]")
    if key_usage not in KEY_USAGES[key_spec]:
        raise fail("ValidationException",
                   f"KeyUsage {key_usage} is not compatible with KeySpec {key_spec}")
    if key_usage not in IMPORTABLE.get(key_spec, ()):
        raise fail("UnsupportedOperationException",
                   f"Importing key material for KeySpec {key_spec} with KeyUsage "
                   f"{key_usage} is not supported")
    if len(description or "") > 8192:
        raise fail("ValidationException",
                   "Description must have length less than or equal to 8192")
    check_tags(tags, fail)


def check_tags(tags: dict[str, str] | None, fail: Fail) -> None:
    for k, v in (tags or {}).items():
        if not 1 <= len(str(k)) <= 128 or len(str(v)) > 256:
            raise fail("TagException",
                       "Tag keys must be 1-128 characters and tag values at most 256 characters")
        if str(k).startswith("aws:"):
            raise fail("TagException", "Tag keys cannot begin with aws:")


def check_wrapping_request(wrapping_algorithm: str, wrapping_key_spec: str, fail: Fail) -> None:
    """GetParametersForImport's enumerations, checked before the key is looked up."""
    if wrapping_algorithm not in WRAPPING_ALGORITHMS:
        raise fail("ValidationException",
                   f"1 validation error detected: Value '{wrapping_algorithm}' at "
                   f"'wrappingAlgorithm' failed to satisfy constraint: Member must "
                   f"satisfy enum value set: [{', '.join(WRAPPING_ALGORITHMS)}]")
    if wrapping_key_spec not in WRAPPING_KEY_BITS:
        raise fail("ValidationException",
                   f"1 validation error detected: Value '{wrapping_key_spec}' at "
                   f"'wrappingKeySpec' failed to satisfy constraint: Member must "
                   f"satisfy enum value set: [{', '.join(WRAPPING_KEY_BITS)}]")


def check_wrapping_fits(key: _Key, wrapping_algorithm: str, wrapping_key_spec: str, fail: Fail) -> None:
    """Which wrapping fits the key's material (reference 2.2)."""
    if wrapping_algorithm not in _wrap_algorithms(key.key_spec):
        raise fail("ValidationException",
                   f"{wrapping_algorithm} is not supported for {key.key_spec} key "
                   f"material; use one of {', '.join(_wrap_algorithms(key.key_spec))}")
    if (key.key_spec == "ECC_NIST_P521" and wrapping_key_spec == "RSA_2048"
            and wrapping_algorithm in _OAEP):
        raise fail("ValidationException",
                   "ECC_NIST_P521 key material cannot be wrapped with an RSA_2048 "
                   f"wrapping key and {wrapping_algorithm}. Use a larger wrapping key "
                   "or an RSA_AES_KEY_WRAP_SHA_* wrapping algorithm.")


def check_valid_to(valid_to: datetime | None, now: datetime, fail: Fail) -> None:
    if valid_to is not None:
        when = valid_to if valid_to.tzinfo else valid_to.replace(tzinfo=timezone.utc)
        if when <= now:
            raise fail("ValidationException", "ValidTo must be in the future.")
        if when > now + MAX_VALID_TO:
            raise fail("ValidationException",
                       "ValidTo cannot be more than 365 days from the request date.")


def spend_token(world: MemoryKmsWorld, key: _Key, import_token: bytes, now: datetime, fail: Fail) -> _Token:
    """The import token, spent whatever happens next (as in localkms.moto_import): every import,
    including a failed one, needs a fresh GetParametersForImport."""
    token = world.tokens.get(bytes(import_token or b""))
    if token is None:
        raise fail("InvalidImportTokenException",
                   "The import token is invalid or was not issued in this Region.")
    if token.used:
        raise fail("InvalidImportTokenException", "The import token has already been used.")
    token.used = True
    if token.expires <= now:
        raise fail("ExpiredImportTokenException", "The import token has expired.")
    if token.key_arn != key.arn:
        raise fail("InvalidImportTokenException",
                   "The import token is associated with a different KMS key.")
    return token


def unwrapped_material(key: _Key, token: _Token, encrypted_key_material: bytes, fail: Fail) -> bytes:
    """The material under the token's wrapping key, checked against the key's spec."""
    from .. import keymaterial, transfer  # pure crypto; imported when an import actually happens

    try:
        material = transfer.unwrap_key_material(
            bytes(encrypted_key_material), _wrapping_key(token.wrapping_key_spec), token.algorithm)
    except (transfer.TransferError, ValueError):  # a ciphertext KMS cannot decrypt
        raise fail("InvalidCiphertextException",
                   "KMS could not decrypt the encrypted (wrapped) key material. "
                   "Verify that you used the matching wrapping public key and "
                   "algorithm.") from None
    try:
        keymaterial.check_material(key.key_spec, material)
    except (keymaterial.TransferError, ValueError):
        raise fail("IncorrectKeyMaterialException",
                   f"The key material is invalid for a {key.key_spec} KMS key.") from None
    return material


def check_alias_name(alias_name: str, fail: Fail) -> None:
    if not alias_name.startswith("alias/"):
        raise fail("ValidationException", "Invalid identifier")
    if alias_name.startswith("alias/aws/"):
        raise fail("NotAuthorizedException",
                   "The alias name cannot begin with alias/aws/ (reserved for AWS managed keys)")
    if len(alias_name) > 256 or not _ALIAS_RE.match(alias_name):
        raise fail("ValidationException",
                   f"1 validation error detected: Value '{alias_name}' at 'aliasName' "
                   f"failed to satisfy constraint: Member must satisfy regular expression "
                   f"pattern: ^[a-zA-Z0-9:/_-]+$ and length 1-256")
