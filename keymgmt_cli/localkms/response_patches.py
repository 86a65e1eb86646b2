"""Fixes to moto's ``KmsResponse`` handlers (not new actions): Encrypt/Decrypt with imported RSA keys,
and ReplicateKey's Tags and Description.

moto encrypts with ``Key.key_material`` (AES-GCM) even for RSA keys.  Imported RSA keys have no such
material, so Encrypt/Decrypt on them use real RSAES-OAEP with the imported key pair, as AWS does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import padding
from moto.kms.exceptions import ValidationException
from moto.kms.models import Key, kms_backends
from moto.kms.responses import KmsResponse

from .errors import InvalidCiphertextException, InvalidKeyUsageException
from .keystate import lookup, require_enabled
from .material import oaep
from .params import params_of, required
from .rules import OAEP_HASH, RSA_BITS, SYMMETRIC



def is_external_asymmetric(key: Key | None) -> bool:
    return key is not None and key.origin == "EXTERNAL" and key.key_spec != SYMMETRIC


def wrap_replicate_key(orig: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    """moto ignores ReplicateKey's Tags and Description; AWS puts them on the replica."""

    def replicate_key(self: KmsResponse) -> str:
        body = orig(self)
        params = params_of(self)
        meta = json.loads(body)["ReplicaKeyMetadata"]
        backend = kms_backends[self.current_account][params["ReplicaRegion"]]
        replica = backend.keys[meta["KeyId"]]
        tags = params.get("Tags") or []
        if tags:
            backend.tagger.tag_resource(replica.id, [{"TagKey": t["TagKey"], "TagValue": t.get("TagValue", "")}
                                                     for t in tags])
        if params.get("Description") is not None:
            replica.description = params["Description"]
            meta["Description"] = params["Description"]
        result = json.loads(body)
        result["ReplicaKeyMetadata"] = meta
        if tags:
            result["ReplicaTags"] = tags
        return json.dumps(result)

    return replicate_key


def asym_setup(self: KmsResponse, key: Key, params: dict[str, Any]) -> padding.OAEP:
    require_enabled(key)
    if key.key_usage != "ENCRYPT_DECRYPT" or key.key_spec not in RSA_BITS:
        raise InvalidKeyUsageException(f"{key.arn} key usage is {key.key_usage} which is not valid for this operation.")
    algorithm = params.get("EncryptionAlgorithm") or "SYMMETRIC_DEFAULT"
    if algorithm not in OAEP_HASH:
        raise InvalidKeyUsageException(
            f"Encryption algorithm {algorithm} is not valid for {key.key_spec}; use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256."
        )
    if params.get("EncryptionContext"):
        raise ValidationException("EncryptionContext is not supported with asymmetric KMS keys.")
    return oaep(OAEP_HASH[algorithm])


def wrap_encrypt(orig: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def encrypt(self: KmsResponse) -> str:
        params = params_of(self)
        key = lookup(self.kms_backend, params.get("KeyId"))
        if not is_external_asymmetric(key):
            return orig(self)
        assert key is not None
        pad = asym_setup(self, key, params)
        plaintext = base64.b64decode(required(params, "Plaintext"))
        k = key.private_key.private_key.key_size // 8
        h_len = OAEP_HASH[params["EncryptionAlgorithm"]].digest_size
        if len(plaintext) > k - 2 * h_len - 2:
            raise ValidationException(f"Plaintext is too long for {key.key_spec} with {params['EncryptionAlgorithm']}.")
        ciphertext = key.private_key.private_key.public_key().encrypt(plaintext, pad)
        return json.dumps(
            {
                "CiphertextBlob": base64.b64encode(ciphertext).decode("ascii"),
                "KeyId": key.arn,
                "EncryptionAlgorithm": params["EncryptionAlgorithm"],
            }
        )

    encrypt.__name__ = "encrypt"
    return encrypt


def wrap_decrypt(orig: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def decrypt(self: KmsResponse) -> str:
        params = params_of(self)
        key = lookup(self.kms_backend, params.get("KeyId"))
        if not is_external_asymmetric(key):
            return orig(self)
        assert key is not None
        pad = asym_setup(self, key, params)
        ciphertext = base64.b64decode(required(params, "CiphertextBlob"))
        try:
            plaintext = key.private_key.private_key.decrypt(ciphertext, pad)
        except ValueError:
            raise InvalidCiphertextException("The ciphertext is invalid for this key and algorithm.") from None
        return json.dumps(
            {
                "Plaintext": base64.b64encode(plaintext).decode("ascii"),
                "KeyId": key.arn,
                "EncryptionAlgorithm": params["EncryptionAlgorithm"],
            }
        )

    decrypt.__name__ = "decrypt"
    return decrypt

