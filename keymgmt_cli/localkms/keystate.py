"""Per-key import state of the local KMS double: which materials a key has, their expiry, the key state.

A key with imported material has one or more :class:`Material` entries, as AWS's ListKeyRotations
lists them: the first imported one, the ones rotated in by RotateKeyOnDemand, and at most one
imported for the next rotation (PENDING_ROTATION).  Asymmetric keys have exactly one.

The state lives on moto's ``Key`` object (attribute ``_localkms_import``), so moto's backend reset
drops it with the key.  Every change to it happens under :data:`LOCK`.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from moto.kms.exceptions import NotFoundException
from moto.kms.models import Key, KmsBackend

from .clock import now
from .errors import DisabledException, KMSInvalidStateException
from .rules import PENDING_DELETION, SYMMETRIC

#: Serialises every read-modify-write of import state and tokens (re-entrant).
LOCK = threading.RLock()


CURRENT, NON_CURRENT, PENDING_ROTATION = "CURRENT", "NON_CURRENT", "PENDING_ROTATION"
#: New material staged on a multi-Region primary (reference 2.10): until RotateKeyOnDemand, which
#: needs it imported into every replica (EXISTING_KEY_MATERIAL) first. Replicas list it likewise.
PENDING_MULTI_REGION = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
PENDING_STATES = (PENDING_ROTATION, PENDING_MULTI_REGION)


@dataclass
class Material:
    """One key material associated with a key (AWS's ListKeyRotations entry, plus the secret itself)."""

    material_id: str
    #: CURRENT (encrypts and decrypts), NON_CURRENT (decrypts only; rotated out) or PENDING_ROTATION
    #: (imported for RotateKeyOnDemand, not yet used, not permanently associated).
    state: str = CURRENT
    #: The imported material (32 bytes, or the PKCS#8 DER of an asymmetric key); None while it is
    #: not imported (deleted, expired, or a replica's material not yet imported there).
    secret: bytes | None = None
    #: For asymmetric keys: moto's key object built from ``secret`` (what Sign/Verify use).
    moto_key: Any = None
    expiration_model: str | None = None
    valid_to: float | None = None
    description: str | None = None
    #: When RotateKeyOnDemand made it CURRENT (None for the first material and pending ones).
    rotation_date: float | None = None

    @property
    def imported(self) -> bool:
        return self.secret is not None

    @property
    def permanent(self) -> bool:
        """Permanently associated with the key: CURRENT or NON_CURRENT (AWS: the key is usable only
        while all of these are imported)."""
        return self.state not in PENDING_STATES

    def forget(self) -> None:
        """The secret is gone (DeleteImportedKeyMaterial or expiry); the association stays."""
        self.secret = None
        self.moto_key = None
        self.expiration_model = None
        self.valid_to = None


@dataclass
class ImportState:
    """What the double knows about a key's imported materials (stored on the moto Key object)."""

    #: Every material associated with the key, in the order they were first imported.
    materials: list[Material] = field(default_factory=list)
    on_demand_rotations: int = 0

    def current(self) -> Material | None:
        return next((m for m in self.materials if m.state == CURRENT), None)

    def pending(self) -> Material | None:
        return next((m for m in self.materials if m.state in PENDING_STATES), None)

    def find(self, material_id: str) -> Material | None:
        return next((m for m in self.materials if m.material_id == material_id), None)

    def complete(self) -> bool:
        """True when the key has material and all its permanently associated materials are imported."""
        permanent = [m for m in self.materials if m.permanent]
        return bool(permanent) and all(m.imported for m in permanent)

    def valid_to(self) -> float | None:
        """KeyMetadata ValidTo: the earliest expiry of the permanently associated materials."""
        dates = [m.valid_to for m in self.materials if m.permanent and m.imported and m.valid_to is not None]
        return min(dates) if dates else None


def import_state(key: Key) -> ImportState:
    st = getattr(key, "_localkms_import", None)
    if st is None:
        st = ImportState()
        key._localkms_import = st  # type: ignore[attr-defined]
    return st


def derive_material_id(key: Key, material: bytes) -> str:
    # AWS derives the KeyMaterialId from the KMS key ID and the material. Replicas share the key ID.
    return hashlib.sha256(key.id.encode("utf-8") + b"\x00" + material).hexdigest()


def sync_key(key: Key) -> None:
    """Make moto's key fields and the key state follow the import state.

    moto encrypts with ``Key.key_material`` and signs with ``Key.private_key``: they hold the CURRENT
    material while it is imported, else None (a code path this patch misses then fails loudly instead
    of silently using material that AWS would not have).  A key missing any permanently associated
    material is PendingImport (unless pending deletion); one that has them all again leaves
    PendingImport as Enabled."""
    st = import_state(key)
    current = st.current()
    imported = current is not None and current.imported
    key.key_material = current.secret if imported and key.key_spec == SYMMETRIC else None
    key.private_key = current.moto_key if imported and key.key_spec != SYMMETRIC else None
    if key.key_state in PENDING_DELETION:
        return
    if not st.complete():
        key.key_state = "PendingImport"
        key.enabled = False
    elif key.key_state == "PendingImport":
        key.key_state = "Enabled"
        key.enabled = True


def forget_material(key: Key, material: Material | None = None) -> None:
    """Drop one material (default: the current one), as DeleteImportedKeyMaterial or expiry do.

    A pending material is not permanently associated: on a primary (or single-Region key) it is
    removed altogether, from the primary's replicas too (AWS: "also deletes the replicas' copies"),
    and the key state does not change; on a replica only its copy goes.  Any other material keeps
    its association (its id, its place) and the key becomes PendingImport."""
    st = import_state(key)
    material = material if material is not None else st.current()
    if material is not None:
        if material.state in PENDING_STATES and not is_replica(key):
            st.materials.remove(material)
            for replica in replicas_of(key):
                copy = import_state(replica).find(material.material_id)
                if copy is not None:
                    import_state(replica).materials.remove(copy)
        else:
            material.forget()
    sync_key(key)


def is_replica(key: Key) -> bool:
    config = getattr(key, "multi_region_configuration", None) or {}
    return bool(getattr(key, "multi_region", False)) and config.get("PrimaryKey", {}).get("Arn") != key.arn


def replicas_of(key: Key) -> list[Key]:
    """The replica keys of a multi-Region primary (none for any other key)."""
    from moto.kms.models import kms_backends

    config = getattr(key, "multi_region_configuration", None) or {}
    if not getattr(key, "multi_region", False) or is_replica(key):
        return []
    found = []
    for entry in config.get("ReplicaKeys", []):
        replica = kms_backends[key.account_id][entry["Region"]].keys.get(key.id)
        if replica is not None:
            found.append(replica)
    return found


def expire_due(key: Key) -> None:
    """Delete every imported material of this EXTERNAL key whose ValidTo has passed (lazily, on use)."""
    if getattr(key, "origin", None) != "EXTERNAL":
        return
    st = import_state(key)
    current = now()
    due = [m for m in st.materials if m.imported and m.valid_to is not None and current >= m.valid_to]
    for material in due:
        forget_material(key, material)


def require_enabled(key: Key) -> None:
    """AWS key-state rules for cryptographic operations (moto checks no state at all)."""
    expire_due(key)
    state = key.key_state
    if state == "Enabled":
        return
    if state == "Disabled":
        raise DisabledException(f"{key.arn} is disabled.")
    if state == "PendingImport":
        raise KMSInvalidStateException(f"{key.arn} is pending import.")
    if state in PENDING_DELETION:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
    raise KMSInvalidStateException(f"{key.arn} is {state}.")


def lookup(backend: KmsBackend, key_id: Any) -> Key | None:
    """Best-effort resolution (id, ARN, alias, alias ARN); None lets moto raise its own NotFound."""
    if not isinstance(key_id, str) or not key_id:
        return None
    try:
        return backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:
        return None



def resolve_raw(backend: KmsBackend, key_id: str) -> Key:
    # moto's enable_key/disable_key/schedule_key_deletion/cancel_key_deletion/replicate_key index
    # self.keys with the request's KeyId, so a key ARN raises a bare KeyError (HTTP 500 in server mode).
    raw = backend.get_key_id(key_id) if isinstance(key_id, str) else key_id
    key = backend.keys.get(raw)
    if key is None:
        raise NotFoundException(f"Key '{key_id}' does not exist")
    return key



def check_enable_disable(key: Key) -> None:
    if key.key_state == "PendingImport":
        raise KMSInvalidStateException(f"{key.arn} is pending import.")
    if key.key_state in PENDING_DELETION:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")

