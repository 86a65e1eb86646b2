"""The in-memory twin's model of a key's material (reference 2.5, 2.10): what ``ImportKeyMaterial``
does with material that unwrapped and checked, and what ``ImportType``, ``RotateKeyOnDemand`` and
``DeleteImportedKeyMaterial(KeyMaterialId)`` act on.

An asymmetric key (``import_asymmetric``) only ever accepts the material first associated with it
(for a multi-Region key: with its primary). A symmetric key holds several materials: the
association (which materials belong to the key, which one is CURRENT) lives on the primary (or
single-Region) key as ``_Key.materials``: id → {"secret", "state"}. Every regional key records what
is imported there as ``_Key.imported``: id → its ValidTo. A key is usable when every permanently
associated material (CURRENT or NON_CURRENT) is imported there; new material waits as
PENDING_ROTATION, or PENDING_MULTI_REGION_IMPORT_AND_ROTATION while the primary has replicas, until
RotateKeyOnDemand. ``KeyMaterialId`` = sha256(key id + material): AWS derives it from the same two
(its exact derivation is not documented). Errors are raised through ``fail(code, message)``, which
the twin words as awskms does.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Callable

from .memory_world import MemoryKmsWorld, _Key

IMPORT_TYPES = ("NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL")
MAX_ON_DEMAND_ROTATIONS = 25  # per KMS key (reference 2.10, botocore 2026)
PERMANENT = ("CURRENT", "NON_CURRENT")
Fail = Callable[[str, str], Exception]


def family(world: MemoryKmsWorld, key: _Key) -> dict[str, dict[str, Any]]:
    """The association the key shares: its primary's for a replica, its own otherwise."""
    if key.mr_type == "REPLICA" and key.primary_region:
        primary = world.find(key.primary_region, key.key_id)
        if primary is not None:
            return primary.materials
    return key.materials


def current_id(world: MemoryKmsWorld, key: _Key) -> str:
    return next((mid for mid, m in family(world, key).items() if m["state"] == "CURRENT"), "")


def associated(world: MemoryKmsWorld, key: _Key) -> bytes | None:
    """The material forever bound to an asymmetric key: its own, or for a replica its primary's."""
    if key.associated is not None:
        return key.associated
    if key.mr_type == "REPLICA" and key.primary_region:
        primary = world.find(key.primary_region, key.key_id)
        if primary is not None:
            return primary.associated
    return None


def import_asymmetric(world: MemoryKmsWorld, key: _Key, material: bytes, when: datetime | None,
                      fail: Fail) -> None:
    """ImportKeyMaterial of asymmetric material that unwrapped and checked: ``PendingImport`` → ``Enabled``."""
    bound = associated(world, key)
    if bound is not None and bound != material:
        raise fail("IncorrectKeyMaterialException",
                   "The key material in the request is not the same key material "
                   "that was previously imported into this KMS key.")
    key.associated = material
    key.material = material
    key.expiration_model = "KEY_MATERIAL_DOES_NOT_EXPIRE" if when is None else "KEY_MATERIAL_EXPIRES"
    key.valid_to = when
    if key.state == "PendingImport":
        key.state = "Enabled"


def import_symmetric(world: MemoryKmsWorld, key: _Key, material: bytes, import_type: str | None,
                     when: datetime | None, fail: Fail) -> str:
    """ImportKeyMaterial of symmetric material that unwrapped and checked; returns its KeyMaterialId."""
    materials = family(world, key)
    mid = hashlib.sha256(key.key_id.encode() + material).hexdigest()
    kind = import_type or ("EXISTING_KEY_MATERIAL" if materials else "NEW_KEY_MATERIAL")
    if kind == "EXISTING_KEY_MATERIAL" and mid not in materials:
        raise fail("IncorrectKeyMaterialException", "The key material in the request is not the same key "
                   "material that was previously imported into this KMS key.")
    if kind == "NEW_KEY_MATERIAL":
        if mid in materials:
            raise fail("IncorrectKeyMaterialException", "KMS expected new key material but the key material "
                       "being imported is already associated with this KMS key.")
        if materials:
            if key.mr_type == "REPLICA":
                raise fail("UnsupportedOperationException", f"{key.arn} is a multi-Region replica key: import "
                           "new key material into its primary key.")
            if key.state not in ("Enabled", "Disabled"):
                raise fail("KMSInvalidStateException", f"{key.arn} is pending import.")
            if any(m["state"] not in PERMANENT for m in materials.values()):
                raise fail("KMSInvalidStateException", f"{key.arn} already has key material pending rotation.")
        staged = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION" if world._replicas(key) else "PENDING_ROTATION"
        materials[mid] = {"secret": material, "state": staged if materials else "CURRENT"}
    key.imported[mid] = when
    if materials[mid]["state"] == "CURRENT":
        key.material, key.associated = material, key.associated or material
    key.expiration_model = "KEY_MATERIAL_DOES_NOT_EXPIRE" if when is None else "KEY_MATERIAL_EXPIRES"
    sync_state(world, key)
    return mid


def sync_state(world: MemoryKmsWorld, key: _Key) -> None:
    complete = all(mid in key.imported for mid, m in family(world, key).items() if m["state"] in PERMANENT)
    if key.state == "PendingImport" and complete:
        key.state = "Enabled"
    elif key.state in ("Enabled", "Disabled") and not complete:
        key.state = "PendingImport"


def rotate(world: MemoryKmsWorld, key: _Key, fail: Fail) -> None:
    """RotateKeyOnDemand: the staged material becomes CURRENT in the key and all its replicas."""
    if key.origin != "EXTERNAL" or key.key_spec != "SYMMETRIC_DEFAULT":
        raise fail("UnsupportedOperationException",
                   f"{key.arn} does not support on-demand rotation of imported key material.")
    if key.mr_type == "REPLICA":
        raise fail("UnsupportedOperationException", f"{key.arn} is a multi-Region replica key; rotate its primary key.")
    if key.state == "Disabled":
        raise fail("DisabledException", f"{key.arn} is disabled.")
    if key.state != "Enabled":
        raise fail("KMSInvalidStateException", f"{key.arn} is {key.state}.")
    staged = [mid for mid, m in key.materials.items() if m["state"] not in PERMANENT]
    if not staged or staged[0] not in key.imported:
        raise fail("KMSInvalidStateException", f"{key.arn} has no key material in PENDING_ROTATION state: "
                   "import new key material first.")
    if any(staged[0] not in replica.imported for replica in world._replicas(key)):
        raise fail("KMSInvalidStateException", f"{key.arn} has key material in "
                   "PENDING_MULTI_REGION_IMPORT_AND_ROTATION: import it into every replica first.")
    if key.rotations >= MAX_ON_DEMAND_ROTATIONS:
        raise fail("LimitExceededException",
                   f"{key.arn} has reached the maximum of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations.")
    for m in key.materials.values():
        if m["state"] == "CURRENT":
            m["state"] = "NON_CURRENT"
    key.materials[staged[0]]["state"] = "CURRENT"
    key.rotations += 1
    for regional in [key, *world._replicas(key)]:
        regional.material = key.materials[staged[0]]["secret"]


def delete_one(world: MemoryKmsWorld, key: _Key, material_id: str) -> bool:
    """DeleteImportedKeyMaterial(KeyMaterialId) of an associated material. Staged material on a
    primary leaves the key altogether, with the replicas' copies; on a replica only its copy goes.
    Returns True when it was the current material (the caller makes the key PendingImport)."""
    materials = family(world, key)
    key.imported.pop(material_id, None)
    state = materials[material_id]["state"]
    if state not in PERMANENT:
        if key.mr_type != "REPLICA":
            del materials[material_id]
            for replica in world._replicas(key):
                replica.imported.pop(material_id, None)
        return False
    if state != "CURRENT":
        sync_state(world, key)
        return False
    return True
