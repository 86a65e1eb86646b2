"""The KMS actions moto lacks, added to moto's ``KmsResponse``: GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial.

moto's BaseResponse.call_action maps the X-Amz-Target action (e.g. "GetParametersForImport") to a
snake_case *function* defined on the response class; :func:`keymgmt_cli.localkms.moto_import.install`
sets these functions there.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives import serialization
from moto.kms.exceptions import NotFoundException, ValidationException
from moto.kms.responses import KmsResponse

from .clock import now
from .errors import (
    ExpiredImportTokenException,
    IncorrectKeyMaterialException,
    InvalidImportTokenException,
    KMSInvalidStateException,
    UnsupportedOperationException,
    enum_error,
)
from .keystate import (
    CURRENT,
    LOCK,
    PENDING_MULTI_REGION,
    PENDING_ROTATION,
    ImportState,
    Material,
    derive_material_id,
    expire_due,
    forget_material,
    import_state,
    is_replica,
    replicas_of,
    sync_key,
)
from .material import check_material, moto_private_key, unwrap
from .params import blob, params_of, parse_timestamp, require_external, require_not_pending_deletion, required, resolve_key_id_or_arn
from .rules import (
    DESCRIPTION_RE,
    EXPIRATION_MODELS,
    IMPORT_TYPES,
    MATERIAL_ID_RE,
    MAX_VALID_TO_SECONDS,
    OAEP_HASH,
    SYMMETRIC,
    TOKEN_VALIDITY_SECONDS,
    WRAPPING_ALGORITHMS,
    WRAPPING_KEY_SPECS,
    allowed_wrapping,
)
from .tokens import POOL, Token, prune, tokens_of




def get_parameters_for_import(self: KmsResponse) -> str:
    params = params_of(self)
    key_id = required(params, "KeyId")
    algorithm = required(params, "WrappingAlgorithm")
    wrapping_spec = required(params, "WrappingKeySpec")
    if algorithm not in WRAPPING_ALGORITHMS:
        raise enum_error(algorithm, "wrappingAlgorithm", WRAPPING_ALGORITHMS)
    if wrapping_spec not in WRAPPING_KEY_SPECS:
        raise enum_error(wrapping_spec, "wrappingKeySpec", WRAPPING_KEY_SPECS)
    if algorithm == "RSAES_PKCS1_V1_5":
        raise UnsupportedOperationException(
            "RSAES_PKCS1_V1_5 is no longer supported as a wrapping algorithm (since October 10, 2023)."
        )
    if algorithm == "SM2PKE" or wrapping_spec == "SM2":
        raise UnsupportedOperationException("SM2 wrapping is only available in China Regions.")

    with LOCK:
        key = resolve_key_id_or_arn(self, key_id)
        require_external(key)
        expire_due(key)
        require_not_pending_deletion(key)
        allowed = allowed_wrapping(key.key_spec)
        if algorithm not in allowed:
            raise ValidationException(
                f"Wrapping algorithm {algorithm} is not supported for {key.key_spec} key material. "
                f"Use one of: {', '.join(allowed)}."
            )
        if key.key_spec == "ECC_NIST_P521" and wrapping_spec == "RSA_2048" and algorithm in OAEP_HASH:
            raise ValidationException(
                "ECC_NIST_P521 key material cannot be wrapped with an RSA_2048 wrapping key and "
                f"{algorithm}. Use a larger wrapping key or an RSA_AES_KEY_WRAP_SHA_* wrapping algorithm."
            )
        reg = tokens_of(self.kms_backend)
        prune(reg)

    private_key = POOL.take(wrapping_spec)  # may take ~1 s for RSA_4096; done outside the lock
    token = b"localkms-import-token-v1:" + secrets.token_bytes(48)
    expires_at = now() + TOKEN_VALIDITY_SECONDS
    with LOCK:
        reg[token] = Token(
            key_id=key.id,
            algorithm=algorithm,
            wrapping_spec=wrapping_spec,
            expires_at=expires_at,
            private_key=private_key,
        )
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return json.dumps(
        {
            "KeyId": key.arn,
            "ImportToken": base64.b64encode(token).decode("ascii"),
            "PublicKey": base64.b64encode(public_der).decode("ascii"),
            "ParametersValidTo": expires_at,
        }
    )


def import_key_material(self: KmsResponse) -> str:
    params = params_of(self)
    key_id = required(params, "KeyId")
    token_bytes = blob(params, "ImportToken")
    wrapped = blob(params, "EncryptedKeyMaterial")
    expiration_model = params.get("ExpirationModel") or "KEY_MATERIAL_EXPIRES"  # AWS default
    valid_to_raw = params.get("ValidTo")
    import_type = params.get("ImportType")
    material_description = params.get("KeyMaterialDescription")
    requested_material_id = params.get("KeyMaterialId")

    # Parameter rules that do not depend on the key.
    if expiration_model not in EXPIRATION_MODELS:
        raise enum_error(expiration_model, "expirationModel", EXPIRATION_MODELS)
    current = now()
    valid_to: float | None = None
    if expiration_model == "KEY_MATERIAL_DOES_NOT_EXPIRE":
        if valid_to_raw is not None:
            raise ValidationException("ValidTo must not be set when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.")
    else:
        if valid_to_raw is None:
            raise ValidationException("A ValidTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES.")
        valid_to = parse_timestamp(valid_to_raw, "validTo")
        if valid_to <= current:
            raise ValidationException("ValidTo must be in the future.")
        if valid_to - current > MAX_VALID_TO_SECONDS:
            raise ValidationException("ValidTo must be at most 365 days from the request date.")
    if import_type is not None and import_type not in IMPORT_TYPES:
        raise enum_error(import_type, "importType", IMPORT_TYPES)
    if material_description is not None and (
        not isinstance(material_description, str)
        or len(material_description) > 256
        or not DESCRIPTION_RE.match(material_description)
    ):
        raise ValidationException("KeyMaterialDescription must match ^[a-zA-Z0-9:/_\\s.-]+$ (at most 256 characters).")
    if requested_material_id is not None and (
        not isinstance(requested_material_id, str) or not MATERIAL_ID_RE.match(requested_material_id)
    ):
        raise ValidationException("KeyMaterialId must be 64 lowercase hexadecimal characters.")

    with LOCK:
        key = resolve_key_id_or_arn(self, key_id)
        require_external(key)
        expire_due(key)
        require_not_pending_deletion(key)
        if key.key_state not in ("PendingImport", "Enabled", "Disabled"):
            raise KMSInvalidStateException(f"{key.arn} is {key.key_state}.")
        symmetric = key.key_spec == SYMMETRIC
        if not symmetric and (
            import_type is not None or material_description is not None or requested_material_id is not None
        ):
            # "only usable with symmetric encryption keys"; KMS rejects ImportType for other keys.
            raise ValidationException(
                "ImportType, KeyMaterialDescription and KeyMaterialId are only supported for "
                "SYMMETRIC_DEFAULT keys."
            )
        st = import_state(key)
        effective_type = import_type or ("EXISTING_KEY_MATERIAL" if st.materials else "NEW_KEY_MATERIAL")
        if effective_type == "NEW_KEY_MATERIAL" and requested_material_id is not None:
            raise ValidationException("You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL.")

        # Token checks.  The token is spent from here on, whatever happens next.
        reg = tokens_of(self.kms_backend)
        tok = reg.get(token_bytes)
        if tok is None:
            raise InvalidImportTokenException("The import token is invalid or was not issued in this Region.")
        if tok.used:
            raise InvalidImportTokenException("The import token has already been used.")
        tok.used = True
        unwrap_token = Token(tok.key_id, tok.algorithm, tok.wrapping_spec, tok.expires_at, tok.private_key)
        tok.private_key = None  # forget the wrapping key pair
        if current >= tok.expires_at:
            raise ExpiredImportTokenException("The import token has expired.")
        if tok.key_id != key.id:
            raise InvalidImportTokenException("The import token is associated with a different KMS key.")

        secret = unwrap(unwrap_token, wrapped)
        parsed = check_material(key, secret)
        new_id = derive_material_id(key, secret)
        target = st.find(new_id)

        if effective_type == "EXISTING_KEY_MATERIAL":
            if not st.materials:
                raise IncorrectKeyMaterialException(
                    "ImportType EXISTING_KEY_MATERIAL, but no key material is associated with this key."
                )
            if target is None:
                raise IncorrectKeyMaterialException(
                    "The key material is not the same key material that was previously imported into this key."
                )
            if requested_material_id is not None and requested_material_id != new_id:
                raise IncorrectKeyMaterialException("KeyMaterialId does not identify the imported key material.")
        else:
            if target is not None:
                raise IncorrectKeyMaterialException(
                    "KMS expected new key material but the key material being imported is already "
                    "associated with this key."
                )
            if st.materials:
                _check_new_material_allowed(key, st)  # after the comparison above, so the token is spent
            if st.materials and is_replica(key):
                # AWS: NEW_KEY_MATERIAL on the primary, EXISTING_KEY_MATERIAL on replicas (the token is spent).
                raise UnsupportedOperationException(
                    f"{key.arn} is a multi-Region replica key: import new key material into its primary key "
                    "and then this material into the replica with ImportType EXISTING_KEY_MATERIAL."
                )
            # The first material becomes CURRENT; later new material waits for RotateKeyOnDemand (on a
            # multi-Region primary with replicas, until every replica has it too: they list it as well).
            replicas = replicas_of(key) if st.materials else []
            staged = PENDING_MULTI_REGION if replicas else PENDING_ROTATION
            target = Material(new_id, state=staged if st.materials else CURRENT)
            st.materials.append(target)
            for replica in replicas:
                import_state(replica).materials.append(Material(new_id, state=PENDING_MULTI_REGION))

        # Success: the key really uses the material from now on.
        target.secret = secret
        target.moto_key = None if symmetric else moto_private_key(key.key_spec, parsed)
        target.expiration_model = expiration_model
        target.valid_to = valid_to
        if material_description is not None:
            target.description = material_description
        sync_key(key)  # PendingImport -> Enabled once every permanently associated material is back
        out: dict[str, Any] = {"KeyId": key.arn}
        if symmetric:
            out["KeyMaterialId"] = new_id
        return json.dumps(out)


def _check_new_material_allowed(key: Any, st: ImportState) -> None:
    """ImportType NEW_KEY_MATERIAL on a key that has material: staging material for on-demand rotation."""
    if key.key_spec != SYMMETRIC:
        raise ValidationException("ImportType NEW_KEY_MATERIAL is only supported for SYMMETRIC_DEFAULT keys "
                                  "that already have key material.")
    if not st.complete():
        raise KMSInvalidStateException(f"{key.arn} is pending import: reimport its key material first.")
    if st.pending() is not None:
        raise KMSInvalidStateException(
            f"{key.arn} already has key material pending rotation: rotate it (RotateKeyOnDemand) or "
            "delete it (DeleteImportedKeyMaterial with its KeyMaterialId) first."
        )


def delete_imported_key_material(self: KmsResponse) -> str:
    params = params_of(self)
    key_id = required(params, "KeyId")
    requested_material_id = params.get("KeyMaterialId")
    with LOCK:
        key = resolve_key_id_or_arn(self, key_id)
        require_external(key)
        expire_due(key)
        st = import_state(key)
        if requested_material_id is not None:
            if key.key_spec != SYMMETRIC:
                raise ValidationException("KeyMaterialId is only supported for SYMMETRIC_DEFAULT keys.")
            if not isinstance(requested_material_id, str) or not MATERIAL_ID_RE.match(requested_material_id):
                raise ValidationException("KeyMaterialId must be 64 lowercase hexadecimal characters.")
            target = st.find(requested_material_id)
            if target is None:
                raise NotFoundException(f"Key material {requested_material_id} is not associated with {key.arn}.")
        else:
            target = st.current()  # "If no KeyMaterialId is specified, KMS deletes the current key material."
        if target is not None:
            forget_material(key, target)
        out: dict[str, Any] = {"KeyId": key.arn}
        if key.key_spec == SYMMETRIC and target is not None:
            out["KeyMaterialId"] = target.material_id
        return json.dumps(out)
