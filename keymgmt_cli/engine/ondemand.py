"""``rotation_mode=on-demand``: one KMS key for every version of a symmetric key (issue 13 item 5).

Vault's keymgmt, and keymgmt's default (``rotation_mode=new-key``), give each version its own KMS
key and move the alias on rotation: old ciphertexts name the old key. AWS's 2025 alternative for
imported material (reference 2.10) keeps one key: a rotation imports the new version's material
with ``ImportType=NEW_KEY_MATERIAL`` (it waits as ``PENDING_ROTATION``, or
``PENDING_MULTI_REGION_IMPORT_AND_ROTATION`` while a multi-Region primary's replicas lack it), the
same material goes into each replica with ``EXISTING_KEY_MATERIAL``, and ``RotateKeyOnDemand`` on
the primary makes it current. The ARN and the alias never change; ciphertexts made under earlier
material still decrypt (KMS keeps every material of the key).

The record: every version record of an on-demand distribution names the same ``key_id`` (version
1's). A version above 1 goes through, each step recorded before the next AWS call:

* ``staging`` (intent) → ImportKeyMaterial(NEW_KEY_MATERIAL) → ``imported``, ``material_id``;
* each replica: ImportKeyMaterial(EXISTING_KEY_MATERIAL) → the replica record's ``imported``;
* ``rotating`` (intent) → RotateKeyOnDemand → ``rotated``.

A re-run after a crash at any of those calls finishes the same version: a NEW import refused as
"already associated" means the crashed run staged it, so the material is imported again as
EXISTING (which also gives its id back); a ``rotating`` intent is checked against DescribeKey's
``CurrentKeyMaterialId`` before RotateKeyOnDemand is sent again.

What AWS does not allow is refused before any record or call: key types other than aes256-gcm96
(asymmetric and HMAC keys hold one material forever), and ``min_enabled_version`` above 1, because
AWS cannot disable one material of a key (deleting a non-current material makes the whole key
PendingImport). AWS allows at most 25 on-demand rotations per key; the 26th is AWS's
LimitExceededException, reported as it comes.
"""

from __future__ import annotations

from keymgmt_cli.errors import InvalidRequest, PreconditionFailed, ProviderError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

ROTATION_MODES = ("new-key", "on-demand")
DEFAULT_MODE = "new-key"
NEW, EXISTING = "NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"
MAX_ROTATIONS = 25  # per KMS key (reference 2.10)


def is_on_demand(dist: dict[str, Any]) -> bool:
    return dist.get("rotation_mode") == "on-demand"


def shares_first_key(dist: dict[str, Any], version: int) -> bool:
    """Does this version live in version 1's KMS key (an on-demand version above 1)?"""
    return is_on_demand(dist) and version > 1


def staged_only(rec: dict[str, Any]) -> bool:
    """A version imported as new material but not rotated to (an interrupted rotation): AWS does not
    associate it with the key for good, and deleting it on the primary drops the replicas' copies."""
    return bool(rec.get("staging")) and not rec.get("rotated")


def check_allowed(key: dict[str, Any], mode: str) -> None:
    """Refuse on-demand where AWS cannot do it, before anything is recorded."""
    if mode != "on-demand":
        return
    if key["type"] != "aes256-gcm96":
        raise InvalidRequest(f"rotation_mode=on-demand needs an aes256-gcm96 key ({key['name']!r} is "
                             f"{key['type']}): AWS rotates imported material on demand only for symmetric "
                             "encryption keys; use rotation_mode=new-key")
    if key.get("min_enabled_version", 0) > 1:
        raise InvalidRequest(f"rotation_mode=on-demand cannot honour min_enabled_version "
                             f"{key['min_enabled_version']} of {key['name']!r}: AWS cannot disable one material "
                             "of a KMS key; set min_enabled_version=0 first or use rotation_mode=new-key")
    if len(key["versions"]) > MAX_ROTATIONS + 1:
        raise InvalidRequest(f"rotation_mode=on-demand holds at most {MAX_ROTATIONS + 1} versions per KMS key "
                             f"(AWS allows {MAX_ROTATIONS} on-demand rotations); {key['name']!r} has "
                             f"{len(key['versions'])}")


def import_type_for(dist: dict[str, Any], holder: dict[str, Any]) -> str | None:
    """The ImportType an import into ``holder`` sends. Never for asymmetric keys (KMS refuses it).
    new-key distributions: none for a first import (AWS's default is right), EXISTING for a
    re-import of symmetric material (renew, resume): AWS defaults to it too, but saying so means a
    re-import can never stage material as new (LocalStack 2026.3, given no ImportType after
    DeleteImportedKeyMaterial, stages the same material as new, pending rotation). on-demand: none for version 1's first import into its
    fresh key, NEW for a version being staged, EXISTING for everything else (replicas, re-runs)."""
    if not is_on_demand(dist):
        return EXISTING if dist.get("key_spec") == "SYMMETRIC_DEFAULT" and holder.get("imported") else None
    if holder.get("staging") and (not holder.get("imported") or holder.get("suspended")):
        return NEW  # staged and never rotated: suspend dropped it from the key, so it is new again
    if holder.get("imported") or "created" in holder or holder.get("material_id"):
        return EXISTING  # a replica record has "created"; anything imported before is existing
    return None


def advance(engine: Any, provider: Any, dist: dict[str, Any], v: int, rec: dict[str, Any], material: bytes,
            save: Callable[[], None], import_material: Callable[..., None], kms: str) -> None:
    """Bring on-demand version ``v`` (> 1) to current in version 1's KMS key: stage, replicas, rotate."""
    first = dist["versions"]["1"]
    if not rec.get("key_id"):
        rec.update(key_id=first["key_id"], imported=False)
        save()
    key_id = rec["key_id"]
    if not rec.get("imported"):
        resumed = bool(rec.get("staging"))
        rec["staging"] = True
        save()  # the intent is on disk before the import
        engine.progress(f"{kms}: importing version {v} as new key material")
        try:
            import_material(engine, provider, rec, key_id, material, dist)
        except ProviderError as error:
            if not (resumed and error.code == "IncorrectKeyMaterialException"):
                raise
            # the crashed run staged it already: import it again as existing material (its id comes back)
            import_material(engine, provider, rec, key_id, material, dist, import_type=EXISTING)
        rec["enabled"] = True
        save()
    for region in dist.get("replica_regions", []):
        if not first.get("replicas", {}).get(region, {}).get("created"):
            continue  # replicated later by the replica loop, which imports every version
        replica = rec.setdefault("replicas", {}).setdefault(region, {"created": True, "imported": False})
        if not replica.get("imported"):
            engine.progress(f"{kms}: importing version {v} into the replica in {region}")
            import_material(engine, provider.in_region(region), replica, key_id, material, dist)
            replica["enabled"] = True
            save()
    if rec.get("rotated"):
        return
    if rec.get("rotating"):
        desc = provider.describe_key(key_id)  # the crashed run may have rotated already
        if desc is not None and rec.get("material_id") and desc.current_key_material_id == rec["material_id"]:
            _rotated(rec, save)
            return
    rec["rotating"] = True
    save()
    engine.progress(f"{kms}: rotating to version {v} (RotateKeyOnDemand)")
    provider.rotate_key_on_demand(key_id)
    _rotated(rec, save)


def _rotated(rec: dict[str, Any], save: Callable[[], None]) -> None:
    rec["rotated"] = True
    rec.pop("rotating", None)
    rec.pop("staging", None)
    save()


def abandon(provider: Any, dist: dict[str, Any], version: int, rec: dict[str, Any], material: bytes | None,
            save: Callable[[], None], import_material: Callable[..., None], engine: Any) -> None:
    """Undo a staged, not yet rotated version: delete its material from the shared key (on the
    primary, which drops the replicas' copies too). The key itself stays: it holds every other
    version. A version AWS has rotated to cannot be abandoned: its material encrypts now."""
    rotated = rec.get("rotated")
    if rec.get("rotating") and not rotated:  # sent, or about to be: AWS knows which material is current
        desc = provider.describe_key(rec["key_id"])
        rotated = desc is None or not rec.get("material_id") or desc.current_key_material_id == rec["material_id"]
    if rotated:
        raise PreconditionFailed(f"version {version} is already current in AWS (RotateKeyOnDemand) in "
                                 f"{dist['kms_name']!r}; finish the rotation instead (rotate again)")
    if not rec.get("key_id") or not rec.get("staging"):
        return
    if not rec.get("material_id") and material is not None:
        try:  # staged by a run that died before recording the id: importing it again names it
            import_material(engine, provider, rec, rec["key_id"], material, dist, import_type=EXISTING)
        except ProviderError as error:
            if error.code != "IncorrectKeyMaterialException":
                raise
            return  # never staged: nothing to delete
        save()
    if rec.get("material_id"):
        provider.delete_imported_key_material(rec["key_id"], rec["material_id"])


def current_material_drift(provider: Any, dist: dict[str, Any], latest_rec: dict[str, Any],
                           region: str | None) -> str | None:
    """verify's check of an on-demand distribution: the shared key's CurrentKeyMaterialId must be
    the latest version's (else an unfinished or foreign rotation). None when in sync or not on-demand."""
    if not is_on_demand(dist) or dist.get("suspended") or not latest_rec.get("rotated"):
        return None
    holder = latest_rec if region is None else latest_rec.get("replicas", {}).get(region, {})
    want = holder.get("material_id") or latest_rec.get("material_id")
    desc = provider.describe_key(latest_rec["key_id"])
    if desc is None or not want or desc.state not in ("Enabled", "Disabled"):
        return None  # a missing or unusable key is reported by the per-key check already
    if desc.current_key_material_id != want:
        return (f"current key material is {desc.current_key_material_id or 'unknown'}, expected the latest "
                f"version's {want} (rotation_mode=on-demand)")
    return None
