"""Handlers for distributions: copies of a key's versions in one KMS provider (Vault's keymgmt
API 12-16): distribute, read, list, remove, replicate.

Each distribution is one document that records what exists in AWS; every command here sets the
wanted state in that record and hands it to the reconcile state machine (``reconcile.py``), so
re-running a command after a failure finishes the job instead of starting another.
"""

from __future__ import annotations

from keymgmt_cli.engine import kmsproviders, ondemand
from keymgmt_cli.engine import shapes
from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT, load_key
from keymgmt_cli.engine.keytypes import KEY_TYPES, key_usage_for, missing_purpose, ordered_purposes
from keymgmt_cli.engine.mounts import Mount, now_rfc3339
from keymgmt_cli.engine.names import check_name
from keymgmt_cli.engine.reconcile import ALIAS_PREFIX, alias_name, connect, find_tagged, reconcile, versions
from keymgmt_cli.engine.routing import Response
from keymgmt_cli.engine.sealing import unseal_all
from keymgmt_cli.errors import InvalidRequest, NoValue, NotFound, PreconditionFailed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView as Engine

# -- queries ---------------------------------------------------------------------------------------
def _load_dist(engine: Engine, mount: Mount, kms: str, key_name: str) -> dict[str, Any] | None:
    check_name("KMS provider", kms)
    check_name("key", key_name)
    return shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)


def read_distribution(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    region = kmsproviders.load_provider(engine, mount, name)["key_collection"]
    dist = _load_dist(engine, mount, name, key_name)
    if dist is None:
        raise NotFound(f"key {key_name!r} is not distributed to KMS provider {name!r}")
    key_ids = {str(v): rec["key_id"] for v, rec in versions(dist) if rec.get("key_id")}
    data = {"name": dist["name"], "protection": dist["protection"], "purpose": ",".join(dist["purpose"]),
            "rotation_mode": dist.get("rotation_mode", ondemand.DEFAULT_MODE),
            "suspended": bool(dist.get("suspended")), "versions": key_ids}
    material_ids = {str(v): rec["material_id"] for v, rec in versions(dist) if rec.get("material_id")}
    if ondemand.is_on_demand(dist) and material_ids:
        data["key_material_ids"] = material_ids  # version → KeyMaterialId in the one KMS key
    if dist.get("replica_regions"):
        data["replica_regions"] = list(dist["replica_regions"])
    expiry: dict[str, dict[str, str]] = {}  # version → region → when its material expires
    for v, rec in versions(dist):
        if rec.get("key_id") and not rec.get("deleted"):
            for where, holder in [(region, rec)] + sorted(rec.get("replicas", {}).items()):
                if holder.get("valid_to"):
                    expiry.setdefault(str(v), {})[where] = holder["valid_to"]
    if expiry:
        data["material_expiry"] = expiry
    if dist.get("valid_to"):
        data["valid_to"] = dist["valid_to"]
    return Response(data)


def list_distributions(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    kmsproviders.load_provider(engine, mount, name)
    keys = engine.store.list(mount.doc("dist", name))
    if not keys:
        raise NoValue(f"No value found at {mount.path}kms/{name}/key")
    return Response({"keys": keys})


# -- commands --------------------------------------------------------------------------------------
def distribute(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    from keymgmt_cli import transfer
    kms_doc = kmsproviders.load_provider(engine, mount, name)
    if "purpose" not in values or not values["purpose"]:
        key = shapes.load(engine.store, mount.doc("keys", key_name), shapes.key)  # for the hint only
        raise InvalidRequest(missing_purpose(key["type"] if key else None))
    warnings = []
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        key = load_key(engine, mount, key_name)
        purposes = ordered_purposes(values["purpose"])
        usage = key_usage_for(key["type"], purposes)  # refuses what AWS cannot honour, before any call
        spec = KEY_TYPES[key["type"]].kms_key_spec
        protection = values.get("protection", "hsm")
        if protection == "software":
            warnings.append("AWS KMS keeps imported key material in its HSMs; protection=software is recorded only")
        dist_id = mount.doc("dist", name, key_name)
        dist = shapes.load(engine.store, dist_id, shapes.distribution)
        if dist is not None:
            if dist.get("state") == "removing":
                raise PreconditionFailed(f"key {key_name!r} is being removed from {name!r}; "
                                         f"run 'keymgmt delete {mount.path}kms/{name}/key/{key_name}' to finish first")
            if dist["purpose"] != purposes or dist["protection"] != protection:
                raise PreconditionFailed("purpose and protection cannot be changed after distribution "
                                         f"(distributed with purpose={','.join(dist['purpose'])} "
                                         f"protection={dist['protection']})")
            recorded_mode = dist.get("rotation_mode", ondemand.DEFAULT_MODE)
            if values.get("rotation_mode", recorded_mode) != recorded_mode:
                raise PreconditionFailed(f"rotation_mode cannot be changed after distribution (distributed with "
                                         f"rotation_mode={recorded_mode}); remove and distribute again to change it")
            defaults = dist
        else:
            defaults = {"wrapping_algorithm": transfer.default_wrapping(spec)[0], "wrapping_key_spec": "RSA_4096",
                        "valid_to": None, "pending_window_days": 30}
        # How material is wrapped, when it expires and the removal window belong to each import, not
        # to the distribution's identity: given again, they apply from the next call on (so one stuck
        # on a wrapping AWS refuses can be finished with another); not given, the recorded ones stay.
        per_import = {field: values.get(field, defaults.get(field))
                      for field in ("wrapping_algorithm", "wrapping_key_spec", "valid_to", "pending_window_days")}
        transfer.check_wrapping(spec, per_import["wrapping_algorithm"], per_import["wrapping_key_spec"],
                                _max_material_len(key))
        mode = dist.get("rotation_mode", ondemand.DEFAULT_MODE) if dist else values.get("rotation_mode",
                                                                                          ondemand.DEFAULT_MODE)
        ondemand.check_allowed(key, mode)
        # Everything that can be refused locally (a wrong master key for the material or the
        # credentials) is refused before the first record is written: a refused command leaves no trace.
        materials = unseal_all(engine, mount, key)
        provider = connect(engine, mount, kms_doc)
        if dist is None:
            stamp = int(engine.clock())
            dist = {"key_name": key_name, "kms_name": name, "name": f"{key_name}-{stamp}",
                    "alias": f"{ALIAS_PREFIX}{key_name}-{stamp}", "purpose": purposes,
                    "protection": protection, "key_spec": spec, "key_usage": usage, **per_import,
                    **({"rotation_mode": mode} if mode != ondemand.DEFAULT_MODE else {}),
                    "created": now_rfc3339(engine.clock()), "state": "distributing", "alias_target": None, "versions": {}}
            _remember_validity(engine, dist)
            # Under the provider's lock, which its deletion takes too: either the deletion sees this
            # record and refuses, or it went first and this distribution stops here, before any AWS call.
            with engine.store.lock(mount.lock("kms", name)):
                kms_doc = kmsproviders.load_provider(engine, mount, name)
                engine.put(dist_id, dist)
        elif any(dist.get(field) != value for field, value in per_import.items()):
            dist.update(per_import)
            _remember_validity(engine, dist)
            engine.put(dist_id, dist)
        finished = dist.get("state") == "ready"  # a re-run of a finished distribution
        reconcile(engine, mount, key, dist, kms_doc, materials, provider)
        if finished:
            # Converge with AWS as verify -fix does (reads, then only the writes that repair drift):
            # re-running the write fixes what was changed behind keymgmt's back, not only what failed.
            from keymgmt_cli.engine.converge import converge

            converge(engine, mount, key, dist, kms_doc, materials, provider)
    return Response(warnings=warnings)


def remove(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    kms_doc = kmsproviders.load_provider(engine, mount, name)
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        dist_id = mount.doc("dist", name, key_name)
        dist = _load_dist(engine, mount, name, key_name)
        if dist is None:
            return Response()  # "deleted (if it existed)": re-running a finished removal is safe
        window = values.get("pending_window_days", dist.get("pending_window_days", 30))
        provider = connect(engine, mount, kms_doc)  # unseals the credentials: refused before any record
        if dist.get("state") != "removing":
            dist["state"], dist["removing_since"] = "removing", now_rfc3339(engine.clock())
            engine.put(dist_id, dist)
        dates: list[Any] = []  # AWS's DeletionDate of each key scheduled by this run
        # Replicas first: a primary with live replicas only reaches PendingReplicaDeletion.
        for region in dist.get("replica_regions", []):
            regional = provider.in_region(region)
            _delete_our_alias(regional, dist, region, dist.get("replica_alias_targets", {}).get(region))
            for v, rec in versions(dist):
                replica = rec.get("replicas", {}).get(region)
                if replica and replica.get("created") and not replica.get("deleted"):
                    engine.progress(f"{name}: scheduling deletion of version {v} in {region}")
                    dates.append(regional.schedule_key_deletion(rec["key_id"], window))
                    _mark_shared(dist, rec["key_id"], region)
                    engine.put(dist_id, dist)
        _delete_our_alias(provider, dist, None, dist.get("alias_target"))
        for v, rec in versions(dist):
            if not rec.get("key_id") and rec.get("creating"):
                # Abandoned after a crash during CreateKey: the key may exist, unrecorded, with our tag.
                for key_id in find_tagged(provider, {"keymgmt:state_id": engine.state_id(),
                                                     "keymgmt:op": rec["creating"]}):
                    provider.schedule_key_deletion(key_id, window)
                rec["key_id"], rec["deleted"] = None, True
                rec.pop("creating")
                engine.put(dist_id, dist)
            if rec.get("key_id") and not rec.get("deleted"):
                engine.progress(f"{name}: scheduling deletion of version {v}")
                dates.append(provider.schedule_key_deletion(rec["key_id"], window))
                _mark_shared(dist, rec["key_id"], None)
                engine.put(dist_id, dist)
        engine.store.delete(dist_id)
    return Response(warnings=deletion_warnings(dates, window))


def deletion_warnings(dates: list[Any], window: int) -> list[str]:
    """When AWS will delete the keys a removal scheduled, from ScheduleKeyDeletion's DeletionDate
    (the latest, when versions differ); nothing when AWS gave no date (keys already pending)."""
    from keymgmt_cli.engine.durations import rfc3339

    known = [d for d in dates if d is not None]
    if not known:
        return []
    undo = "until then 'aws kms cancel-key-deletion' can undo it"
    if len(known) == len(dates):
        return [f"AWS KMS deletes the {len(dates)} KMS key(s) on {rfc3339(max(known))} "
                f"(pending_window_days={window}); {undo}"]
    # a multi-Region primary gave no date: AWS starts its window once its replicas are deleted
    return [f"AWS KMS deletes the {len(dates)} KMS key(s) from {rfc3339(min(known))} on (the replicas; "
            f"each multi-Region primary {window} days after its last replica is gone); {undo}"]


def replicate(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    kms_doc = kmsproviders.load_provider(engine, mount, name)
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        key = load_key(engine, mount, key_name)
        regions = key.get("replica_regions") or []
        if not regions:
            raise PreconditionFailed(f"key {key_name!r} has no replica_regions; they are set when the key is "
                                     "created (type=aes256-gcm96 replica_regions=us-east-1,eu-west-1)")
        if kms_doc["key_collection"] in regions:
            raise InvalidRequest(f"replica region {kms_doc['key_collection']} is the primary region of {name!r}")
        dist = _load_dist(engine, mount, name, key_name)
        if dist is None or dist.get("state") == "removing":
            raise PreconditionFailed(f"key {key_name!r} is not distributed to {name!r}; distribute it first: "
                                     f"keymgmt write {mount.path}kms/{name}/key/{key_name} purpose=encrypt,decrypt")
        dist["replica_regions"] = list(regions)
        engine.put(mount.doc("dist", name, key_name), dist)
        reconcile(engine, mount, key, dist, kms_doc, unseal_all(engine, mount, key))
    return Response()


def _remember_validity(engine: Engine, dist: dict[str, Any]) -> None:
    """An absolute valid_to is a date, which a renewal cannot reuse: remember the validity it gave
    (its distance from now, when it was set), which ``due -apply`` renews for again."""
    from keymgmt_cli.engine.durations import engine_now, is_duration, validity_length

    spec = dist.get("valid_to")
    if spec and not is_duration(spec):
        dist["valid_for"] = validity_length(spec, engine_now(engine))
    else:
        dist.pop("valid_for", None)


def _mark_shared(dist: dict[str, Any], key_id: str, region: str | None) -> None:
    """Record the deletion for every version that lives in ``key_id`` (all of them with
    rotation_mode=on-demand, one otherwise): ScheduleKeyDeletion is sent once per KMS key."""
    for _v, rec in versions(dist):
        if rec.get("key_id") != key_id:
            continue
        holder = rec if region is None else rec.get("replicas", {}).get(region)
        if holder is not None and (region is None or holder.get("created")):
            holder["deleted"] = True


def _delete_our_alias(provider: Any, dist: dict[str, Any], region: str | None, recorded: str | None) -> None:
    """Delete the distribution's alias only when it is ours: recorded as created, or (a crash
    between CreateAlias and its record) found pointing at one of our keys. An alias of the same
    name that points elsewhere belongs to someone else and is left alone."""
    name = alias_name(dist, region)
    if recorded is None:
        target = provider.get_alias_target(name)
        if target is None or not any(rec.get("key_id") == target for rec in dist["versions"].values()):
            return
    provider.delete_alias(name)


def _max_material_len(key: dict[str, Any]) -> int | None:
    return 32 if key["type"] == "aes256-gcm96" else None
