"""The inventory an auditor asks for: one row per key version and place (KMS region, primary or
replica), from the state alone (and the audit trail for who rotated last). No AWS call.

A key that is not distributed anywhere gives one row per version with no provider or region.
``kms_key_arn`` is the key id when the provider returned an ARN; the state records the KeyId
only, and the account is not known without a caller identity, so it is otherwise empty.
"""

from __future__ import annotations

from keymgmt_cli.engine import shapes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

COLUMNS = ("key_name", "mount", "type", "version", "creation_time", "provider", "region", "kms_key_id",
           "kms_key_arn", "alias", "enabled", "material_expiry", "replica_of", "last_rotation",
           "last_rotated_by")


def last_rotations(trail_records: Any) -> dict[str, tuple[str, str]]:
    """``{"<mount>key/<name>": (time, "user@host")}`` of the last successful rotation in the trail."""
    out: dict[str, tuple[str, str]] = {}
    for _where, record in trail_records or ():
        if not isinstance(record, dict) or record.get("type") != "response" or record.get("error"):
            continue
        path = str((record.get("request") or {}).get("path", "")).strip("/")
        if not path.endswith("/rotate"):
            continue
        meta = record.get("keymgmt") or {}
        out[path[: -len("/rotate")]] = (str(record.get("time", "")),
                                         f"{meta.get('local_user', '?')}@{meta.get('host', '?')}")
    return out


def inventory(engine: Any, path: str | None = None, trail_records: Any = None) -> list[dict[str, Any]]:
    """The rows, for every mount (or the mount, key or provider ``path`` names)."""
    from keymgmt_cli.engine.reconcile import alias_name

    rotations = last_rotations(trail_records)
    only_key = only_kms = None
    mounts = engine.mounts()
    if path:
        mount, rel = engine.resolve(path)
        mounts = [mount]
        parts = rel.split("/") if rel else []
        if len(parts) >= 2 and parts[0] == "key":
            only_key = parts[1]
        elif len(parts) >= 2 and parts[0] == "kms":
            only_kms = parts[1]
            if len(parts) >= 4 and parts[2] == "key":
                only_key = parts[3]
    rows: list[dict[str, Any]] = []
    store = engine.store
    for mount in mounts:
        kms_names = store.list(mount.doc("kms"))
        for name in store.list(mount.doc("keys")):
            if only_key is not None and name != only_key:
                continue
            key = shapes.load(store, mount.doc("keys", name), shapes.key)
            if key is None:
                continue
            rotated, by = rotations.get(f"{mount.path}key/{name}", ("", ""))
            base = {"key_name": name, "mount": mount.path, "type": key["type"], "last_rotation": rotated,
                    "last_rotated_by": by}
            placed = False
            for kms in kms_names:
                if only_kms is not None and kms != only_kms:
                    continue
                dist = shapes.load(store, mount.doc("dist", kms, name), shapes.distribution)
                if dist is None:
                    continue
                provider = shapes.load(store, mount.doc("kms", kms), shapes.provider) or {}
                region = provider.get("key_collection", "")
                for number, rec in sorted(dist["versions"].items(), key=lambda item: int(item[0])):
                    version = key["versions"].get(number, {})
                    key_id = rec.get("key_id") or ""
                    common = {**base, "version": int(number), "creation_time": version.get("creation_time", ""),
                              "provider": kms, "kms_key_id": key_id,
                              "kms_key_arn": key_id if key_id.startswith("arn:") else "",
                              "material_expiry": dist.get("valid_to") or ""}
                    rows.append({**common, "region": region,
                                 "alias": dist["alias"] if key_id and dist.get("alias_target") == key_id else "",
                                 "enabled": bool(rec.get("enabled", True)) and bool(rec.get("imported", False)),
                                 "replica_of": ""})
                    placed = True
                    for rregion, replica in sorted((rec.get("replicas") or {}).items()):
                        if not replica.get("created") or replica.get("deleted"):
                            continue
                        target = (dist.get("replica_alias_targets") or {}).get(rregion)
                        rows.append({**common, "region": rregion,
                                     "alias": alias_name(dist, rregion) if key_id and target == key_id else "",
                                     "enabled": bool(replica.get("enabled", True)) and bool(replica.get("imported")),
                                     "replica_of": f"{region} {key_id}"})
            if not placed and only_kms is None:
                for number, version in sorted(key["versions"].items(), key=lambda item: int(item[0])):
                    rows.append({**base, "version": int(number), "creation_time": version.get("creation_time", ""),
                                 "provider": "", "region": "", "kms_key_id": "", "kms_key_arn": "", "alias": "",
                                 "enabled": int(number) >= key["min_enabled_version"], "material_expiry": "",
                                 "replica_of": ""})
    return [{column: row.get(column, "") for column in COLUMNS} for row in rows]
