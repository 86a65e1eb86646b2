"""Converge one distribution with what AWS holds: the part of drift keymgmt can repair itself.

``reconcile`` walks from the *record* to the wanted state and trusts the record for every step
already done; it never asks AWS whether a key it enabled is still enabled. ``converge`` asks: per
version key (and replica) one DescribeKey and one ListResourceTags, per region one ListAliases,
and only then the writes that bring AWS back to what the record and ``min_enabled_version`` say:

* material missing (PendingImport, not expired, not suspended): re-imported from the state's own
  sealed material into the same KMS key id (GetParametersForImport + ImportKeyMaterial);
* enabled where it must be disabled, or the reverse: DisableKey / EnableKey;
* material present while the distribution is suspended: DeleteImportedKeyMaterial (never an
  import while suspended, even into a key a suspension cut short had not reached yet);
* the tags that name the key's place (``verify.checked_tags``) lost or changed: TagResource;
* the alias missing: CreateAlias under ``reconcile``'s custody rules (a name taken meanwhile by a
  key that is not ours is left alone and another name chosen); pointing at another key of this
  distribution (or one carrying its tags): UpdateAlias. An alias pointing at anything else belongs
  to someone else now and is not touched.

What it does not touch (verify names the command): a key missing in AWS or pending deletion,
another origin, key spec or usage, expired material (``renew``'s job), foreign public keys, strays.

Every write is followed by saving the record, and every decision is made from a fresh read, so a
crash at any call leaves nothing a re-run does not finish: it reads again and does what remains.
The caller holds the key's lock. Used by ``repair`` (``verify -fix``), by a re-run of a finished
distribution and by a write of ``min_enabled_version`` (``distribution``, ``keys``).
"""

from __future__ import annotations

from keymgmt_cli.engine import kmsproviders, reconcile, shapes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView, Mount

PENDING_DELETION = ("PendingDeletion", "PendingReplicaDeletion")


def checked_tags(key: dict[str, Any], dist: dict[str, Any], v: int) -> dict[str, str]:
    """The tags verify compares and converge restores: the ones that name the key's place."""
    return {"keymgmt:key_name": key["name"], "keymgmt:version": str(v), "keymgmt:kms": dist["kms_name"]}


def _expired(holder: dict[str, Any]) -> bool:
    from keymgmt_cli.engine.durations import rfc3339, utc_now

    return bool(holder.get("valid_to")) and holder["valid_to"] <= rfc3339(utc_now())


def converge(engine: EngineView, mount: Mount, key: dict[str, Any], dist: dict[str, Any],
             kms_doc: dict[str, Any], materials: dict[int, bytes], provider: Any) -> list[dict[str, Any]]:
    """Repair what drifted in one distribution; the list of what was done (one item per write)."""
    kms = kms_doc["name"]
    dist_id = mount.doc("dist", kms, key["name"])
    where = f"{mount.path}kms/{kms}/key/{key['name']}"
    done: list[dict[str, Any]] = []

    def save() -> None:
        engine.put(dist_id, dist)

    def did(kind: str, what: str, version: int, region: str, key_id: str) -> None:
        engine.progress(f"{kms}: {what} (version {version}, {region})")
        done.append({"path": where, "version": version, "region": region, "key_id": key_id, "kind": kind,
                     "action": what})

    latest = key["latest_version"]
    regions = [(None, provider)] + [(r, provider.in_region(r)) for r in dist.get("replica_regions", [])]
    for replica_region, regional in regions:
        region = replica_region or provider.region
        for v, rec in reconcile.versions(dist):
            key_id = rec.get("key_id")
            if not key_id or rec.get("deleted"):
                continue
            holder = rec if replica_region is None else rec.get("replicas", {}).get(replica_region)
            if replica_region is not None and not (holder and holder.get("created")):
                continue  # not replicated yet: reconcile's job
            desc = regional.describe_key(key_id)
            if desc is None or desc.state in PENDING_DELETION or desc.origin != "EXTERNAL" \
                    or desc.key_spec != dist["key_spec"] or desc.key_usage != dist["key_usage"]:
                continue  # not repairable here (verify names the command)
            if holder.get("suspended") or dist.get("suspended"):
                # The kill switch wins: material back in a suspended key (or in one a suspension cut
                # short had not reached) is deleted again, never re-imported; resume undoes it.
                if desc.state != "PendingImport":
                    regional.delete_imported_key_material(key_id)
                    holder["suspended"] = True
                    holder.pop("valid_to", None)
                    save()
                    did("suspended_material", "deleted the material again (the key is suspended)", v, region, key_id)
            else:
                state, enabled = desc.state, desc.enabled
                if state == "PendingImport" and not _expired(holder):
                    reconcile.import_material(engine, regional, holder, key_id, materials[v], dist)
                    holder["enabled"] = True
                    save()
                    did("not_imported", "re-imported the material", v, region, key_id)
                    state, enabled = "Enabled", True
                if state in ("Enabled", "Disabled"):
                    want = v >= key["min_enabled_version"]
                    if enabled != want:
                        (regional.enable_key if want else regional.disable_key)(key_id)
                        did("enabled", "enabled" if want else "disabled", v, region, key_id)
                    if holder.get("enabled", True) != want or not holder.get("imported"):
                        holder["enabled"], holder["imported"] = want, True
                        save()
            found = regional.list_resource_tags(key_id)
            lost = {k: val for k, val in checked_tags(key, dist, v).items() if found.get(k) != val}
            if lost:
                regional.tag_resource(key_id, lost)
                did("tag", f"restored tags {', '.join(sorted(lost))}", v, region, key_id)
        _converge_alias(engine, mount, key, dist, kms, replica_region, regional, latest, save, did)
    return done


def _converge_alias(engine: EngineView, mount: Mount, key: dict[str, Any], dist: dict[str, Any], kms: str,
                    replica_region: str | None, regional: Any, latest: int, save: Any, did: Any) -> None:
    latest_rec = dist["versions"].get(str(latest), {})
    want = latest_rec.get("key_id")
    if not want or latest_rec.get("deleted"):
        return
    if replica_region is not None and not latest_rec.get("replicas", {}).get(replica_region, {}).get("imported"):
        return
    holder, slot = ((dist, "alias_target") if replica_region is None
                    else (dist.setdefault("replica_alias_targets", {}), replica_region))
    name = reconcile.alias_name(dist, replica_region)
    target = regional.get_alias_target(name)
    region = replica_region or regional.region
    if target == want:
        if holder.get(slot) != want:
            holder[slot] = want
            save()
        return
    tags = reconcile.key_tags(engine, mount, kms, key["name"], latest)
    if target is None:
        holder[slot] = None  # ours and gone: created again (a name taken meanwhile is not taken over)
        reconcile.point_alias(engine, regional, dist, replica_region, want, tags, save)
        did("alias_missing", f"created alias {reconcile.alias_name(dist, replica_region)}", latest, region, want)
    elif reconcile.ours(regional, target, dist, tags):
        regional.update_alias(name, want)
        holder[slot] = want
        save()
        did("alias_ours", f"repointed alias {name} to version {latest}", latest, region, want)
    # else: the alias points at a key that is not ours; never taken over (verify reports it)


def converge_key(engine: EngineView, mount: Mount, key_name: str, key: dict[str, Any]) -> list[dict[str, Any]]:
    """``converge`` every distribution of the key (not those being removed or suspended as a
    whole: their own commands finish them). The caller holds the key lock and has run
    ``reconcile.sync_key``."""
    from keymgmt_cli.engine.sealing import unseal_all

    done: list[dict[str, Any]] = []
    materials = None
    for kms in reconcile.distributed_to(engine, mount, key_name):
        dist = shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)
        if dist is None or dist.get("state") != "ready":
            continue
        kms_doc = kmsproviders.load_provider(engine, mount, kms)
        if materials is None:
            materials = unseal_all(engine, mount, key)
        done += converge(engine, mount, key, dist, kms_doc, materials, reconcile.connect(engine, mount, kms_doc))
    return done
