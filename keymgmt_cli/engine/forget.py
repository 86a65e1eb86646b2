"""``keymgmt delete -forget MOUNT/kms/NAME/key/KEY``: drop a distribution's local record without
asking AWS (issue 16 item 3).

For a provider AWS can no longer be asked about (its endpoint is gone, its account closed, its
credentials revoked for good) a removal stays "removing" forever and the provider cannot be
deleted. Forgetting drops the record only. Nothing in AWS is changed, so whatever the record
knew of is listed, for the operator to clean up by hand: every KMS key id that is not yet
scheduled for deletion (per region, replicas included), every alias, and the operation tag of a
CreateKey whose answer was never recorded (such a key may exist; the tag finds it). The list is
the response's data, so the audit trail keeps it too.

The confirmation (a terminal, or ``-force``) is the CLI's (cli/forget.py); ``preview`` gives it
the same list without changing anything. Idempotent: forgetting what is not there changes nothing.
"""

from __future__ import annotations

from keymgmt_cli.engine import reconcile, shapes
from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT
from keymgmt_cli.engine.names import check_name
from keymgmt_cli.engine.routing import Response
from keymgmt_cli.errors import UnsupportedPath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView as Engine, Mount


def _target(engine: Engine, path: str) -> tuple[Mount, str, str]:
    mount, rel = engine.resolve(path)
    parts = [p for p in rel.split("/") if p]
    if len(parts) != 4 or parts[0] != "kms" or parts[2] != "key":
        raise UnsupportedPath(f"-forget applies to a distribution, MOUNT/kms/NAME/key/KEY, not {path}")
    check_name("KMS provider", parts[1])
    check_name("key", parts[3])
    return mount, parts[1], parts[3]


def left_behind(engine: Engine, mount: Mount, kms: str, dist: dict[str, Any]) -> list[dict[str, Any]]:
    """What AWS may still hold of the distribution, one item per KMS key, alias or unrecorded key,
    each with the aws CLI line that cleans it up."""
    doc = shapes.load(engine.store, mount.doc("kms", kms), shapes.provider)
    primary = doc["key_collection"] if doc else "REGION"
    out: list[dict[str, Any]] = []

    def key(version: int, region: str, key_id: str) -> None:
        out.append({"kind": "kms_key", "version": version, "region": region, "key_id": key_id,
                    "cleanup": f"aws kms schedule-key-deletion --key-id {key_id} --pending-window-in-days 7 "
                               f"--region {region}"})

    for v, rec in reconcile.versions(dist):
        if rec.get("key_id") and not rec.get("deleted"):
            key(v, primary, rec["key_id"])
        elif not rec.get("key_id") and rec.get("creating"):
            token = rec["creating"]
            out.append({"kind": "unrecorded_key", "version": v, "region": primary, "key_id": None,
                        "cleanup": f"aws resourcegroupstaggingapi get-resources --region {primary} "
                                   f"--tag-filters Key=keymgmt:op,Values={token}"})
        for region, replica in sorted(rec.get("replicas", {}).items()):
            if rec.get("key_id") and replica.get("created") and not replica.get("deleted"):
                key(v, region, rec["key_id"])
    aliases = [(primary, reconcile.alias_name(dist), dist.get("alias_target"))]
    aliases += [(region, reconcile.alias_name(dist, region), target)
                for region, target in sorted(dist.get("replica_alias_targets", {}).items())]
    for region, name, target in aliases:
        if target is not None or dist.get("state") != "ready":  # made, or perhaps made by an interrupted run
            out.append({"kind": "alias", "version": None, "region": region, "key_id": target, "alias": name,
                        "cleanup": f"aws kms delete-alias --alias-name {name} --region {region}"})
    return out


def preview(engine: Engine, path: str) -> dict[str, Any] | None:
    """What ``forget`` would drop and leave behind (None: there is no such distribution)."""
    mount, kms, key_name = _target(engine, path)
    dist = shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)
    if dist is None:
        return None
    return {"path": f"{mount.path}kms/{kms}/key/{key_name}", "state": dist.get("state"),
            "left_behind": left_behind(engine, mount, kms, dist)}


def forget(engine: Engine, path: str) -> Response:
    """Drop the record under the key's lock (the lock every operation on the key takes: a removal
    or rotation running meanwhile finishes first, or sees the record gone)."""
    mount, kms, key_name = _target(engine, path)
    where = f"{mount.path}kms/{kms}/key/{key_name}"
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        dist_id = mount.doc("dist", kms, key_name)
        dist = shapes.load(engine.store, dist_id, shapes.distribution)
        if dist is None:
            return Response({"path": where, "forgotten": False, "left_behind": []})
        left = left_behind(engine, mount, kms, dist)
        engine.store.delete(dist_id)
    warnings = [f"forgot {where} without asking AWS; {len(left)} item(s) may be left there, "
                "clean them up by hand"] if left else []
    return Response({"path": where, "forgotten": True, "left_behind": left}, warnings=warnings)
