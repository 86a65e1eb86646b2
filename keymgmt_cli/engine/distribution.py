"""Distributions: copies of a key's versions in one KMS provider (Vault's keymgmt API 12-16).

Each distribution is one document that records, call by call, what exists in AWS: the KMS key id
of every version the moment CreateKey returns, whether its material is imported, whether it is
enabled, the alias target, the replicas. Every operation is a *reconcile* from that record to the
wanted state, so re-running a command after a failure finishes the job with the keys already
created instead of making new ones.

On the happy path a distribution makes exactly CreateKey, GetParametersForImport and
ImportKeyMaterial per version plus one alias call; DisableKey only below min_enabled_version.
"""

from __future__ import annotations

from keymgmt_cli.engine import kmsproviders
from keymgmt_cli.engine.core import Engine, Mount, now_rfc3339
from keymgmt_cli.engine.keytypes import KEY_TYPES, key_usage_for, ordered_purposes
from keymgmt_cli.engine.names import check_name
from keymgmt_cli.engine.routing import Response
from keymgmt_cli.engine.schemas import parse_valid_to
from keymgmt_cli.errors import EngineError, InvalidRequest, NoValue, NotFound, PreconditionFailed, ProviderError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ALIAS_PREFIX = "alias/hashicorp/"




# -- queries ---------------------------------------------------------------------------------------
def distributed_to(engine: Engine, mount: Mount, key_name: str) -> list[str]:
    return [kms for kms in engine.store.list(mount.doc("kms"))
            if engine.store.get(mount.doc("dist", kms, key_name)) is not None]


def _load_dist(engine: Engine, mount: Mount, kms: str, key_name: str) -> dict[str, Any] | None:
    check_name("KMS provider", kms)
    check_name("key", key_name)
    return engine.store.get(mount.doc("dist", kms, key_name))


def read_distribution(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    kmsproviders.load_provider(engine, mount, name)
    dist = _load_dist(engine, mount, name, key_name)
    if dist is None:
        raise NotFound(f"key {key_name!r} is not distributed to KMS provider {name!r}")
    versions = {v: rec["key_id"] for v, rec in sorted(dist["versions"].items(), key=lambda kv: int(kv[0]))
                if rec.get("key_id")}
    return Response({"name": dist["name"], "protection": dist["protection"],
                     "purpose": ",".join(dist["purpose"]), "versions": versions})


def list_distributions(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    kmsproviders.load_provider(engine, mount, name)
    keys = engine.store.list(mount.doc("dist", name))
    if not keys:
        raise NoValue(f"No value found at {mount.path}kms/{name}/key")
    return Response({"keys": keys})


# -- commands --------------------------------------------------------------------------------------
def distribute(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    from keymgmt_cli import transfer
    from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT, load_key

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
        dist = engine.store.get(dist_id)
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
        if dist is None:
            stamp = int(engine.clock())
            dist = {"key_name": key_name, "kms_name": name, "name": f"{key_name}-{stamp}",
                    "alias": f"{ALIAS_PREFIX}{key_name}-{stamp}", "purpose": purposes,
                    "protection": protection, "key_spec": spec, "key_usage": usage, **per_import,
                    "created": now_rfc3339(), "state": "distributing", "alias_target": None, "versions": {}}
            engine.put(dist_id, dist)
        elif any(dist.get(field) != value for field, value in per_import.items()):
            dist.update(per_import)
            engine.put(dist_id, dist)
        materials = _unseal_all(engine, mount, key)
        _reconcile(engine, mount, key, dist, kms_doc, materials)
    return Response(warnings=warnings)


def remove(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT

    kms_doc = kmsproviders.load_provider(engine, mount, name)
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        dist_id = mount.doc("dist", name, key_name)
        dist = _load_dist(engine, mount, name, key_name)
        if dist is None:
            return Response()  # "deleted (if it existed)": re-running a finished removal is safe
        window = values.get("pending_window_days", dist.get("pending_window_days", 30))
        dist["state"] = "removing"
        engine.put(dist_id, dist)
        provider = _connect(engine, mount, kms_doc)
        alias = dist["alias"]
        # Replicas first: a primary with live replicas only reaches PendingReplicaDeletion.
        for region in dist.get("replica_regions", []):
            regional = provider.in_region(region)
            regional.delete_alias(alias)
            for v, rec in _versions(dist):
                replica = rec.get("replicas", {}).get(region)
                if replica and replica.get("created") and not replica.get("deleted"):
                    engine.progress(f"{name}: scheduling deletion of version {v} in {region}")
                    regional.schedule_key_deletion(rec["key_id"], window)
                    replica["deleted"] = True
                    engine.put(dist_id, dist)
        provider.delete_alias(alias)
        for v, rec in _versions(dist):
            if rec.get("key_id") and not rec.get("deleted"):
                engine.progress(f"{name}: scheduling deletion of version {v}")
                provider.schedule_key_deletion(rec["key_id"], window)
                rec["deleted"] = True
                engine.put(dist_id, dist)
        engine.store.delete(dist_id)
    return Response()


def replicate(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT, load_key

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
        _reconcile(engine, mount, key, dist, kms_doc, _unseal_all(engine, mount, key))
    return Response()


def abandon_version(engine: Engine, mount: Mount, key: dict[str, Any], version: int, window: int = 7) -> None:
    """Undo an unfinished rotation in every distribution: aliases back to the previous version,
    the new version's KMS keys (and replicas, and any key created but never recorded) scheduled
    for deletion, the version dropped from each record. The caller holds the key lock."""
    previous = str(version - 1)
    for kms in distributed_to(engine, mount, key["name"]):
        dist_id = mount.doc("dist", kms, key["name"])
        dist = engine.store.get(dist_id)
        rec = dist["versions"].get(str(version)) if dist else None
        if rec is None:
            continue
        provider = _connect(engine, mount, kmsproviders.load_provider(engine, mount, kms))
        back = dist["versions"].get(previous, {}).get("key_id")
        if rec.get("key_id") and dist.get("alias_target") == rec["key_id"] and back:
            provider.update_alias(dist["alias"], back)
            dist["alias_target"] = back
            engine.put(dist_id, dist)
        for region, replica in rec.get("replicas", {}).items():
            regional = provider.in_region(region)
            if dist.get("replica_alias_targets", {}).get(region) == rec.get("key_id") and back:
                regional.update_alias(dist["alias"], back)
                dist["replica_alias_targets"][region] = back
            if replica.get("created") and not replica.get("deleted"):
                regional.schedule_key_deletion(rec["key_id"], window)
                replica["deleted"] = True
            engine.put(dist_id, dist)
        doomed = [rec["key_id"]] if rec.get("key_id") else []
        if rec.get("creating"):
            doomed += find_tagged(provider, {"keymgmt:op": rec["creating"]})
        for key_id in dict.fromkeys(doomed):
            provider.schedule_key_deletion(key_id, window)
        del dist["versions"][str(version)]
        engine.put(dist_id, dist)


def sync_key(engine: Engine, mount: Mount, key_name: str, key: dict[str, Any]) -> None:
    """Bring every distribution of the key to its current versions and min_enabled_version.

    Distributions in different providers proceed concurrently; the caller holds the key lock.
    """
    targets = []
    for kms in distributed_to(engine, mount, key_name):
        dist = engine.store.get(mount.doc("dist", kms, key_name))
        if dist is None or dist.get("state") == "removing":
            continue
        targets.append((kmsproviders.load_provider(engine, mount, kms), dist))
    if not targets:
        return
    materials = _unseal_all(engine, mount, key)
    if len(targets) == 1:
        _reconcile(engine, mount, key, targets[0][1], targets[0][0], materials)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        futures = [(kms_doc["name"], pool.submit(_reconcile, engine, mount, key, dist, kms_doc, materials))
                   for kms_doc, dist in targets]
    failures = []
    for kms, future in futures:
        error = future.exception()
        if error is not None:
            failures.append((kms, error))
    if failures:
        kms, first = failures[0]
        if not isinstance(first, EngineError):
            raise first
        message = f"{len(failures)} of {len(targets)} distributions did not finish ({kms}: {first})"
        raise type(first)(message, hint="re-run the same command to finish; what was done is recorded") \
            if not isinstance(first, ProviderError) else ProviderError(
                message, code=first.code, hint="re-run the same command to finish; what was done is recorded")


# -- the reconcile loop ----------------------------------------------------------------------------
def _versions(dist: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return sorted(((int(v), rec) for v, rec in dist["versions"].items()), key=lambda item: item[0])


def _max_material_len(key: dict[str, Any]) -> int | None:
    return 32 if key["type"] == "aes256-gcm96" else None


def _unseal_all(engine: Engine, mount: Mount, key: dict[str, Any]) -> dict[int, bytes]:
    from keymgmt_cli.engine.keys import unseal_material

    return {int(v): unseal_material(engine, mount, key["name"], key, int(v)) for v in key["versions"]}


def _connect(engine: Engine, mount: Mount, kms_doc: dict[str, Any]) -> Any:
    if engine.provider_factory is None:
        raise EngineError("no KMS provider factory configured")
    return engine.provider_factory(kmsproviders.provider_config(engine, mount, kms_doc))


def _tags(engine: Engine, mount: Mount, kms: str, key_name: str, version: int) -> dict[str, str]:
    return {"keymgmt:state_id": engine.state_id(), "keymgmt:mount": mount.path, "keymgmt:key_name": key_name,
            "keymgmt:version": str(version), "keymgmt:kms": kms}


def _description(mount: Mount, kms: str, key_name: str, version: int) -> str:
    return f"keymgmt {mount.path}key/{key_name} version {version} (KMS provider {kms})"


def _import(provider: Any, key_id: str, material: bytes, dist: dict[str, Any]) -> None:
    from keymgmt_cli import transfer

    params = provider.get_parameters_for_import(key_id, dist["wrapping_algorithm"], dist["wrapping_key_spec"])
    blob = transfer.wrap_key_material(material, params.public_key_der, dist["wrapping_algorithm"])
    valid_to = parse_valid_to(dist["valid_to"]) if dist.get("valid_to") else None
    provider.import_key_material(key_id, params.import_token, blob, valid_to=valid_to)


def _ensure_imported(engine: Engine, provider: Any, holder: dict[str, Any], key_id: str, material: bytes,
                     dist: dict[str, Any], save: Any, progress: str) -> None:
    """Import the material once; ``holder`` (a version record or a replica record) remembers it."""
    if holder.get("imported"):
        return
    engine.progress(progress)
    _import(provider, key_id, material, dist)
    holder["imported"] = True
    holder["enabled"] = True
    save()


def _reconcile(engine: Engine, mount: Mount, key: dict[str, Any], dist: dict[str, Any],
               kms_doc: dict[str, Any], materials: dict[int, bytes]) -> None:
    kms = kms_doc["name"]
    key_name = key["name"]
    dist_id = mount.doc("dist", kms, key_name)

    def save() -> None:
        engine.put(dist_id, dist)

    provider = _connect(engine, mount, kms_doc)
    multi_region = bool(key.get("replica_regions"))
    latest = key["latest_version"]
    for v in range(1, latest + 1):
        rec = dist["versions"].setdefault(str(v), {})
        if not rec.get("key_id") and rec.get("creating"):
            # An earlier run called CreateKey and may have died before recording the id: the
            # key carries our operation tag, so find it instead of making a second one.
            found = find_tagged(provider, {"keymgmt:op": rec["creating"]})
            if found:
                rec["key_id"] = found[0]
                rec["imported"] = False
                for extra in found[1:]:
                    provider.schedule_key_deletion(extra, 7)
                save()
        if not rec.get("key_id"):
            rec["creating"] = _new_token()
            save()  # the intent is on disk before the call, so a crash during it is recoverable
            engine.progress(f"{kms}: creating the KMS key for version {v}")
            rec["key_id"] = provider.create_key(
                key_spec=dist["key_spec"], key_usage=dist["key_usage"],
                description=_description(mount, kms, key_name, v),
                tags={**_tags(engine, mount, kms, key_name, v), "keymgmt:op": rec["creating"]},
                multi_region=multi_region)
            rec.pop("creating")
            rec["imported"] = False
            save()  # the key id is on disk before anything else can fail
        _ensure_imported(engine, provider, rec, rec["key_id"], materials[v], dist, save,
                         f"{kms}: importing version {v}")
    _point_alias(provider, dist["alias"], dist, "alias_target", dist["versions"][str(latest)]["key_id"], save)
    _apply_min_enabled(provider, dist, key, None, save)

    for region in dist.get("replica_regions", []):
        regional = provider.in_region(region)
        for v, rec in _versions(dist):
            replica = rec.setdefault("replicas", {}).setdefault(region, {})
            if not replica.get("created"):
                if not rec.get("enabled", True):
                    continue  # AWS refuses to replicate a disabled primary; it is replicated once enabled
                engine.progress(f"{kms}: replicating version {v} to {region}")
                # a replica that exists already (an interrupted earlier run) counts as created
                provider.replicate_key(rec["key_id"], region, description=_description(mount, kms, key_name, v),
                                       tags=_tags(engine, mount, kms, key_name, v))
                replica["created"] = True
                replica["imported"] = False
                save()
            _ensure_imported(engine, regional, replica, rec["key_id"], materials[v], dist, save,
                             f"{kms}: importing version {v} into the replica in {region}")
        targets = dist.setdefault("replica_alias_targets", {})
        latest_rec = dist["versions"][str(latest)]
        if latest_rec.get("replicas", {}).get(region, {}).get("imported"):
            _point_alias(regional, dist["alias"], targets, region, latest_rec["key_id"], save)
        _apply_min_enabled(regional, dist, key, region, save)

    if dist.get("state") != "ready":
        dist["state"] = "ready"
        save()


def _new_token() -> str:
    import uuid

    return uuid.uuid4().hex


def find_tagged(provider: Any, wanted: dict[str, str]) -> list[str]:
    """Key ids in the provider's region whose tags include ``wanted`` (ListKeys + ListResourceTags:
    a recovery path, never the happy path)."""
    found = []
    for key_id in provider.list_keys():
        try:
            tags = provider.list_resource_tags(key_id)
        except ProviderError:
            continue  # keys we may not read (AWS managed, other teams) are not ours
        if all(tags.get(k) == v for k, v in wanted.items()):
            found.append(key_id)
    return found


def _point_alias(provider: Any, alias: str, holder: dict[str, Any], slot: str, key_id: str, save: Any) -> None:
    """CreateAlias once, UpdateAlias on rotation; an alias that exists already is repointed.

    ``holder[slot]`` records the alias target (the distribution's, or one replica region's)."""
    current = holder.get(slot)
    if current == key_id:
        return
    if current is None:
        try:
            provider.create_alias(alias, key_id)
        except ProviderError as error:
            if error.code != "AlreadyExistsException":
                raise
            provider.update_alias(alias, key_id)  # created by an interrupted earlier run
    else:
        provider.update_alias(alias, key_id)
    holder[slot] = key_id
    save()


def _apply_min_enabled(provider: Any, dist: dict[str, Any], key: dict[str, Any], region: str | None,
                       save: Any) -> None:
    minimum = key["min_enabled_version"]
    for v, rec in _versions(dist):
        target = rec if region is None else rec.get("replicas", {}).get(region)
        if not target or not target.get("imported") or rec.get("deleted"):
            continue
        want = v >= minimum
        if target.get("enabled", True) != want:
            (provider.enable_key if want else provider.disable_key)(rec["key_id"])
            target["enabled"] = want
            save()
