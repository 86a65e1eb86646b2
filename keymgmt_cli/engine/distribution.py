"""Handlers for distributions: copies of a key's versions in one KMS provider (Vault's keymgmt
API 12-16): distribute, read, list, remove, replicate.

Each distribution is one document that records what exists in AWS; every command here sets the
wanted state in that record and hands it to the reconcile state machine (``reconcile.py``), so
re-running a command after a failure finishes the job instead of starting another.
"""

from __future__ import annotations

from keymgmt_cli.engine import kmsproviders
from keymgmt_cli.engine import shapes
from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT, load_key
from keymgmt_cli.engine.keytypes import KEY_TYPES, key_usage_for, ordered_purposes
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
            "suspended": bool(dist.get("suspended")), "versions": key_ids}
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
        raise InvalidRequest("missing required field 'purpose' (for example purpose=encrypt,decrypt)")
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
        # Everything that can be refused locally (a wrong master key for the material or the
        # credentials) is refused before the first record is written: a refused command leaves no trace.
        materials = unseal_all(engine, mount, key)
        provider = connect(engine, mount, kms_doc)
        if dist is None:
            stamp = int(engine.clock())
            dist = {"key_name": key_name, "kms_name": name, "name": f"{key_name}-{stamp}",
                    "alias": f"{ALIAS_PREFIX}{key_name}-{stamp}", "purpose": purposes,
                    "protection": protection, "key_spec": spec, "key_usage": usage, **per_import,
                    "created": now_rfc3339(engine.clock()), "state": "distributing", "alias_target": None, "versions": {}}
            # Under the provider's lock, which its deletion takes too: either the deletion sees this
            # record and refuses, or it went first and this distribution stops here, before any AWS call.
            with engine.store.lock(mount.lock("kms", name)):
                kms_doc = kmsproviders.load_provider(engine, mount, name)
                engine.put(dist_id, dist)
        elif any(dist.get(field) != value for field, value in per_import.items()):
            dist.update(per_import)
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
        # Replicas first: a primary with live replicas only reaches PendingReplicaDeletion.
        for region in dist.get("replica_regions", []):
            regional = provider.in_region(region)
            _delete_our_alias(regional, dist, region, dist.get("replica_alias_targets", {}).get(region))
            for v, rec in versions(dist):
                replica = rec.get("replicas", {}).get(region)
                if replica and replica.get("created") and not replica.get("deleted"):
                    engine.progress(f"{name}: scheduling deletion of version {v} in {region}")
                    regional.schedule_key_deletion(rec["key_id"], window)
                    replica["deleted"] = True
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
                provider.schedule_key_deletion(rec["key_id"], window)
                rec["deleted"] = True
                engine.put(dist_id, dist)
        engine.store.delete(dist_id)
    return Response()


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
