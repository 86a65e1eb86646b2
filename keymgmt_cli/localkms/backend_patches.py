"""Fixes to moto's KMS backend (``KmsBackend``, ``Key``) so that keys behave as AWS's do.

EXTERNAL keys start PendingImport without material; key-state rules for cryptographic operations,
enable/disable, deletion and replication; multi-Region ciphertexts and configurations; KeyMetadata
fields of imported material.  Each patch says which moto 5.2 internals it relies on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from moto.kms import utils as kms_utils
from moto.kms.exceptions import AccessDeniedException, AlreadyExistsException, ValidationException
from moto.kms.exceptions import InvalidCiphertextException as MotoInvalidCiphertextException
from moto.kms.models import Key, KmsBackend, kms_backends

from .clock import now
from .errors import (
    DisabledException,
    InvalidKeyUsageException,
    KMSInvalidStateException,
    LimitExceededException,
    UnsupportedOperationException,
    enum_error,
)
from .keystate import (
    CURRENT,
    LOCK,
    NON_CURRENT,
    ImportState,
    Material,
    check_enable_disable,
    expire_due,
    import_state,
    lookup,
    require_enabled,
    resolve_raw,
    replicas_of,
    sync_key,
)
from .keypairs import realize
from .rules import (
    MAX_ON_DEMAND_ROTATIONS,
    ORIGINS,
    PENDING_DELETION,
    SYMMETRIC,
    default_and_check_usage,
    importable,
    importable_specs,
)


def patch_backend() -> None:
    orig_create_key = KmsBackend.create_key

    def create_key(  # EXTERNAL keys start PendingImport with no material (moto: Enabled, random material)
        self: KmsBackend,
        policy: str | None,
        key_usage: str,
        key_spec: str,
        description: str,
        tags: list[dict[str, str]] | None,
        multi_region: bool = False,
        origin: str = "AWS_KMS",
    ) -> Key:
        origin = origin or "AWS_KMS"
        spec = key_spec or SYMMETRIC
        if spec not in kms_utils.KeySpec.key_specs():  # moto raises its own ValidationException
            return orig_create_key(self, policy, key_usage, key_spec, description, tags, multi_region, origin)
        if origin not in ORIGINS:
            raise enum_error(origin, "origin", ORIGINS)
        if origin in ("AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"):
            # moto ignores CustomKeyStoreId and would create an ordinary key.
            raise UnsupportedOperationException(f"Origin {origin} (custom key stores) is not supported here.")
        key_usage = default_and_check_usage(spec, key_usage)
        if origin == "EXTERNAL" and not importable(spec, key_usage):
            raise UnsupportedOperationException(
                f"Importing key material for KeySpec {spec} with KeyUsage {key_usage} is not supported "
                f"by the local KMS double (supported: {importable_specs()})."
            )
        key = orig_create_key(self, policy, key_usage, key_spec, description, tags, multi_region, origin)
        if origin == "EXTERNAL":
            with LOCK:
                key._localkms_import = ImportState()  # type: ignore[attr-defined]
                sync_key(key)  # no material: PendingImport, moto's random material and pair placeholder dropped
        else:
            realize(key)  # an asymmetric key's pair exists from CreateKey on (keypairs.py)
        return key

    orig_enable_key = KmsBackend.enable_key
    orig_disable_key = KmsBackend.disable_key

    def enable_key(self: KmsBackend, key_id: str) -> None:  # AWS: fails in PendingImport / PendingDeletion
        key = resolve_raw(self, key_id)
        expire_due(key)
        check_enable_disable(key)
        orig_enable_key(self, key.id)

    def disable_key(self: KmsBackend, key_id: str) -> None:
        key = resolve_raw(self, key_id)
        expire_due(key)
        check_enable_disable(key)
        orig_disable_key(self, key.id)

    orig_schedule = KmsBackend.schedule_key_deletion

    def schedule_key_deletion(self: KmsBackend, key_id: str, pending_window_in_days: int) -> float:
        key = resolve_raw(self, key_id)
        if key.key_state in PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        # moto silently does nothing (and returns no DeletionDate) outside 7..30.
        if not isinstance(pending_window_in_days, int) or not 7 <= pending_window_in_days <= 30:
            raise ValidationException("PendingWindowInDays must be between 7 and 30, inclusive.")
        return orig_schedule(self, key.id, pending_window_in_days)

    orig_cancel = KmsBackend.cancel_key_deletion

    def cancel_key_deletion(self: KmsBackend, key_id: str) -> None:
        key = resolve_raw(self, key_id)
        if key.key_state not in PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
        orig_cancel(self, key.id)  # -> Disabled
        if key.origin == "EXTERNAL":
            expire_due(key)
            # Material deleted (or expired) while pending deletion: the key cannot be Disabled-but-usable.
            sync_key(key)

    orig_replicate = KmsBackend.replicate_key

    def replicate_key(self: KmsBackend, key_id: str, replica_region: str) -> Key:
        with LOCK:
            primary = resolve_raw(self, key_id)
            expire_due(primary)
            if not primary.multi_region:
                raise UnsupportedOperationException(f"{primary.arn} is not a multi-Region key.")
            config = primary.multi_region_configuration
            if config["PrimaryKey"]["Arn"] != primary.arn:
                raise UnsupportedOperationException(f"{primary.arn} is not a multi-Region primary key.")
            if primary.key_state == "Disabled":
                raise DisabledException(f"{primary.arn} is disabled.")
            if primary.key_state == "PendingImport":
                raise KMSInvalidStateException(f"{primary.arn} is pending import.")
            if primary.key_state != "Enabled":
                raise KMSInvalidStateException(f"{primary.arn} is {primary.key_state}.")
            if not isinstance(replica_region, str) or not re.match(r"^([a-z]+-){2,3}\d+$", replica_region):
                raise ValidationException(f"Invalid ReplicaRegion {replica_region!r}.")
            if replica_region == self.region_name:
                raise ValidationException("ReplicaRegion must be different from the primary key's Region.")
            if primary.id in kms_backends[self.account_id][replica_region].keys:
                raise AlreadyExistsException(f"A replica of {primary.arn} already exists in {replica_region}.")

            replica = orig_replicate(self, primary.id, replica_region)

            # moto's copy() shares the multi_region_configuration dict (DescribeKey on the replica then flips the
            # primary to MultiRegionKeyType REPLICA), and the aliases/grants/rotations containers.
            replica.aliases = {}
            replica.grants = {}
            replica.rotations = []
            sync_multi_region_configs(self.account_id, primary)
            if primary.origin == "EXTERNAL":
                # AWS: the replica has no key material and is PendingImport; the same material must be
                # imported with a token from the replica's Region.
                # Same association (ids, states, descriptions), none of the secrets.
                replica._localkms_import = ImportState(  # type: ignore[attr-defined]
                    materials=[Material(m.material_id, state=m.state, description=m.description,
                                        rotation_date=m.rotation_date)
                               for m in import_state(primary).materials if m.permanent],
                )
                replica.key_state = "PendingImport"
                sync_key(replica)
            return replica

    orig_encrypt = KmsBackend.encrypt

    def encrypt(self: KmsBackend, key_id: str, plaintext: bytes, encryption_context: dict[str, str]) -> Any:
        # Also reached from GenerateDataKey* and ReEncrypt (destination).
        key = lookup(self, key_id)
        if key is not None:
            require_enabled(key)
            if key.origin == "EXTERNAL" and key.key_spec != SYMMETRIC:
                raise InvalidKeyUsageException(f"{key.arn} is not a symmetric encryption key.")
        return orig_encrypt(self, key_id, plaintext, encryption_context)

    orig_decrypt = KmsBackend.decrypt

    def decrypt(self: KmsBackend, ciphertext_blob: bytes, encryption_context: dict[str, str], key_id: str | None = None) -> Any:
        try:
            blob_key_id = kms_utils._deserialize_ciphertext_blob(ciphertext_blob).key_id
        except Exception:
            blob_key_id = None
        key = self.keys.get(blob_key_id) if blob_key_id else None
        truncated = False
        if key is None and blob_key_id and blob_key_id.startswith("mrk-"):
            # moto packs the key ID into a 36-byte header field, which truncates the 40-character
            # multi-Region key IDs ("mrk-" + UUID).  moto's own decrypt then never finds the key
            # (AccessDeniedException for every multi-Region ciphertext).  Resolve the truncated ID here.
            matches = [k for k in self.keys.values() if k.id[:36] == blob_key_id]
            if len(matches) == 1:
                key, truncated = matches[0], True
        if key is None:
            return orig_decrypt(self, ciphertext_blob, encryption_context, key_id)
        with LOCK:
            require_enabled(key)
            if key.origin == "EXTERNAL" and key.key_spec == SYMMETRIC:
                # Any imported material decrypts what it encrypted (the CURRENT one and those rotated out).
                secrets = [m.secret for m in import_state(key).materials if m.permanent and m.secret is not None]
            elif truncated:
                secrets = [key.key_material]
            else:
                secrets = None
        if secrets is None:
            return orig_decrypt(self, ciphertext_blob, encryption_context, key_id)
        if key_id is not None and lookup(self, key_id) is not key:
            raise AccessDeniedException(
                "The ciphertext refers to a customer master key that does not exist, "
                "does not exist in this region, or you are not allowed to access."
            )
        for secret in secrets:
            try:
                plaintext, _ = kms_utils.decrypt(
                    master_keys={blob_key_id: SimpleNamespace(key_material=secret)},
                    ciphertext_blob=ciphertext_blob,
                    encryption_context=encryption_context,
                )
            except MotoInvalidCiphertextException:
                continue
            return plaintext, key.arn
        raise MotoInvalidCiphertextException()

    orig_enable_rotation = KmsBackend.enable_key_rotation

    def enable_key_rotation(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
        # AWS: automatic rotation is not supported for keys with imported key material (moto allows it).
        key = lookup(self, key_id)
        if key is not None and key.origin == "EXTERNAL":
            raise UnsupportedOperationException(f"{key.arn} has imported key material; automatic key rotation "
                                                "is not supported (use RotateKeyOnDemand).")
        return orig_enable_rotation(self, key_id, *args, **kwargs)

    orig_rotate_on_demand = KmsBackend.rotate_key_on_demand

    def rotate_key_on_demand(self: KmsBackend, key_id: str) -> str:
        key = lookup(self, key_id)
        if key is None or key.origin != "EXTERNAL":
            return orig_rotate_on_demand(self, key_id)
        with LOCK:
            if key.key_spec != SYMMETRIC:
                raise UnsupportedOperationException(f"{key.arn} is not a symmetric encryption key; "
                                                    "on-demand rotation is not supported.")
            if key.multi_region and key.multi_region_configuration["PrimaryKey"]["Arn"] != key.arn:
                raise UnsupportedOperationException(f"{key.arn} is a multi-Region replica key; rotate its primary key.")
            require_enabled(key)
            st = import_state(key)
            pending = st.pending()
            if pending is None or not pending.imported:
                raise KMSInvalidStateException(
                    f"{key.arn} has no key material in PENDING_ROTATION state: import new key material "
                    "(ImportKeyMaterial with ImportType NEW_KEY_MATERIAL) first."
                )
            replicas = replicas_of(key)
            lacking = [r.region for r in replicas
                       if not (import_state(r).find(pending.material_id) or Material("")).imported]
            if lacking:
                raise KMSInvalidStateException(
                    f"{key.arn} has key material in PENDING_MULTI_REGION_IMPORT_AND_ROTATION state: import it "
                    f"(ImportType EXISTING_KEY_MATERIAL) into every replica first ({', '.join(sorted(lacking))})."
                )
            if st.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS:
                raise LimitExceededException(
                    f"{key.arn} has reached the maximum of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations."
                )
            # AWS completes the rotation asynchronously, typically within seconds; here it is immediate.
            when = now()
            for related in [key, *replicas]:  # the replicas rotate with their primary
                rst = import_state(related)
                current = rst.current()
                if current is not None:
                    current.state = NON_CURRENT
                staged = rst.find(pending.material_id)
                if staged is not None:
                    staged.state = CURRENT
                    staged.rotation_date = when
                sync_key(related)
            st.on_demand_rotations += 1
        return key_id

    def _guard_first_arg(orig: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
            key = lookup(self, key_id)
            if key is not None:
                require_enabled(key)
            return orig(self, key_id, *args, **kwargs)

        guarded.__name__ = orig.__name__
        return guarded

    def _guard_key_id_kwarg(orig: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
            key = lookup(self, kwargs.get("key_id"))
            if key is not None:
                require_enabled(key)
            return orig(self, *args, **kwargs)

        guarded.__name__ = orig.__name__
        return guarded

    KmsBackend.create_key = create_key  # type: ignore[method-assign]
    KmsBackend.enable_key = enable_key  # type: ignore[method-assign]
    KmsBackend.disable_key = disable_key  # type: ignore[method-assign]
    KmsBackend.schedule_key_deletion = schedule_key_deletion  # type: ignore[method-assign]
    KmsBackend.cancel_key_deletion = cancel_key_deletion  # type: ignore[method-assign]
    KmsBackend.replicate_key = replicate_key  # type: ignore[method-assign]
    KmsBackend.encrypt = encrypt  # type: ignore[method-assign]
    KmsBackend.decrypt = decrypt  # type: ignore[method-assign]
    KmsBackend.rotate_key_on_demand = rotate_key_on_demand  # type: ignore[method-assign]
    KmsBackend.enable_key_rotation = enable_key_rotation  # type: ignore[method-assign]
    # sign(key_id, ...), verify(key_id, ...), get_public_key(key_id): moto checks no key state.
    KmsBackend.sign = _guard_first_arg(KmsBackend.sign)  # type: ignore[method-assign]
    KmsBackend.verify = _guard_first_arg(KmsBackend.verify)  # type: ignore[method-assign]
    KmsBackend.get_public_key = _guard_first_arg(KmsBackend.get_public_key)  # type: ignore[method-assign]
    # generate_mac is called with keyword arguments by KmsResponse and by verify_mac.
    KmsBackend.generate_mac = _guard_key_id_kwarg(KmsBackend.generate_mac)  # type: ignore[method-assign]

    orig_to_dict = Key.to_dict

    def to_dict(self: Key) -> dict[str, Any]:  # DescribeKey/CreateKey metadata for imported material
        expire_due(self)
        result = orig_to_dict(self)
        if getattr(self, "origin", None) == "EXTERNAL":
            meta = result["KeyMetadata"]
            st = import_state(self)
            current = st.current()
            if current is not None and current.imported:
                meta["ExpirationModel"] = current.expiration_model
                valid_to = st.valid_to()  # the earliest expiry of any permanently associated material
                if valid_to is not None:
                    meta["ValidTo"] = valid_to
                if self.key_spec == SYMMETRIC:
                    meta["CurrentKeyMaterialId"] = current.material_id
        return result

    Key.to_dict = to_dict  # type: ignore[method-assign]



def sync_multi_region_configs(account_id: str, primary: Key) -> None:
    """Give every related key its own MultiRegionConfiguration (PRIMARY/REPLICA, full replica list)."""
    primary_cfg = primary.multi_region_configuration
    replicas = [dict(r) for r in primary_cfg["ReplicaKeys"]]
    primary.multi_region_configuration = {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": dict(primary_cfg["PrimaryKey"]),
        "ReplicaKeys": replicas,
    }
    for entry in replicas:
        related = kms_backends[account_id][entry["Region"]].keys.get(primary.id)
        if related is not None and related is not primary:
            related.multi_region_configuration = {
                "MultiRegionKeyType": "REPLICA",
                "PrimaryKey": dict(primary_cfg["PrimaryKey"]),
                "ReplicaKeys": [dict(r) for r in replicas],
            }

