"""Fixes to moto's ``KmsResponse`` handlers (not new actions): Encrypt/Decrypt with imported RSA keys,
ReplicateKey's Tags and Description, and ListKeyRotations for imported key materials.

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

from .errors import (
    InvalidCiphertextException,
    InvalidKeyUsageException,
    InvalidMarkerException,
    UnsupportedOperationException,
    enum_error,
)
from .keystate import LOCK, Material, expire_due, import_state, lookup, require_enabled
from .material import oaep
from .params import params_of, required, resolve_key_id_or_arn
from .rules import INCLUDE_KEY_MATERIAL, LIST_LIMIT_MAX, OAEP_HASH, RSA_BITS, SYMMETRIC



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



def _rotation_entry(key: Key, material: Material) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "KeyId": key.id,
        "KeyMaterialId": material.material_id,
        "ImportState": "IMPORTED" if material.imported else "PENDING_IMPORT",
        "KeyMaterialState": material.state,
    }
    if material.description is not None:
        entry["KeyMaterialDescription"] = material.description
    if material.expiration_model is not None:
        entry["ExpirationModel"] = material.expiration_model
    if material.valid_to is not None:
        entry["ValidTo"] = material.valid_to
    if material.rotation_date is not None:
        entry["RotationDate"] = material.rotation_date
        entry["RotationType"] = "ON_DEMAND"  # the only rotation EXTERNAL keys have
    return entry


def wrap_list_key_rotations(orig: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    """ListKeyRotations for EXTERNAL keys: their key materials (moto lists only its own rotation log).

    ``IncludeKeyMaterial=ROTATIONS_ONLY`` (the default) lists the materials that rotations made current;
    ``ALL_KEY_MATERIAL`` adds the first material and any material pending rotation.  Pagination by
    ``Limit`` (1..1000, default 100) and an opaque ``Marker`` from ``NextMarker``."""

    def list_key_rotations(self: KmsResponse) -> str:
        params = params_of(self)
        probe = lookup(self.kms_backend, params.get("KeyId"))
        if probe is None or probe.origin != "EXTERNAL":
            return orig(self)
        include = params.get("IncludeKeyMaterial") or "ROTATIONS_ONLY"
        if include not in INCLUDE_KEY_MATERIAL:
            raise enum_error(include, "includeKeyMaterial", INCLUDE_KEY_MATERIAL)
        limit = params.get("Limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValidationException(f"Limit must be an integer between 1 and {LIST_LIMIT_MAX}.")
        marker = params.get("Marker")
        with LOCK:
            key = resolve_key_id_or_arn(self, params.get("KeyId"))
            if key.key_spec != SYMMETRIC:
                raise UnsupportedOperationException(f"{key.arn} does not support key rotation.")
            expire_due(key)
            entries = [_rotation_entry(key, m) for m in import_state(key).materials
                       if include == "ALL_KEY_MATERIAL" or m.rotation_date is not None]
        start = 0
        if marker is not None:
            if not isinstance(marker, str) or not marker.isdigit() or int(marker) > len(entries):
                raise InvalidMarkerException("The marker is not valid for this request.")
            start = int(marker)
        end = start + limit
        out: dict[str, Any] = {"Rotations": entries[start:end], "Truncated": end < len(entries)}
        if end < len(entries):
            out["NextMarker"] = str(end)
        return json.dumps(out)

    list_key_rotations.__name__ = "list_key_rotations"
    return list_key_rotations
