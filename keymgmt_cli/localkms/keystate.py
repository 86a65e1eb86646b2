"""Per-key import state of the local KMS double: which material a key has, its expiry, its key state.

The state lives on moto's ``Key`` object (attribute ``_localkms_import``), so moto's backend reset
drops it with the key.  Every change to it happens under :data:`LOCK`.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from moto.kms.exceptions import NotFoundException
from moto.kms.models import Key, KmsBackend

from .clock import now
from .errors import DisabledException, KMSInvalidStateException
from .rules import PENDING_DELETION

#: Serialises every read-modify-write of import state and tokens (re-entrant).
LOCK = threading.RLock()


@dataclass
class ImportState:
    """What the double knows about a key's imported material (stored on the moto Key object)."""

    #: KeyMaterialId of the material the key is permanently associated with (None until the first import).
    bound_material_id: str | None = None
    has_material: bool = False
    expiration_model: str | None = None
    valid_to: float | None = None
    description: str | None = None


def import_state(key: Key) -> ImportState:
    st = getattr(key, "_localkms_import", None)
    if st is None:
        st = ImportState()
        key._localkms_import = st  # type: ignore[attr-defined]
    return st


def derive_material_id(key: Key, material: bytes) -> str:
    # AWS derives the KeyMaterialId from the KMS key ID and the material. Replicas share the key ID.
    return hashlib.sha256(key.id.encode("utf-8") + b"\x00" + material).hexdigest()


def forget_material(key: Key) -> None:
    """Drop the key's material, like DeleteImportedKeyMaterial or expiry do."""
    st = import_state(key)
    st.has_material = False
    st.expiration_model = None
    st.valid_to = None
    # None rather than random bytes: a code path this patch misses then fails loudly
    # instead of silently using material that AWS would not have.
    key.key_material = None
    key.private_key = None
    if key.key_state not in PENDING_DELETION:
        key.key_state = "PendingImport"
        key.enabled = False


def expire_due(key: Key) -> None:
    if getattr(key, "origin", None) != "EXTERNAL":
        return
    st = import_state(key)
    if st.has_material and st.valid_to is not None and now() >= st.valid_to:
        forget_material(key)


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

