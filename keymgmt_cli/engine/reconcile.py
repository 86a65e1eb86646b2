"""The reconcile state machine: from a distribution's record to what AWS must hold.

A distribution document records, call by call, what exists in AWS (the KMS key id of every
version the moment CreateKey returns, whether its material is imported, whether it is enabled, the
alias target, the replicas). ``reconcile`` walks from that record to the wanted state, saving the
record after every call, so re-running a command after a failure finishes the job with the keys
already created instead of making new ones. ``sync_key`` runs it for every distribution of a key
(rotation, min_enabled_version), ``abandon_version`` undoes an unfinished rotation, and
``find_tagged`` finds a key that was created but never recorded.

On the happy path a distribution makes exactly CreateKey, GetParametersForImport and
ImportKeyMaterial per version plus one alias call; DisableKey only below min_enabled_version.

Public interface (used by ``distribution``, ``keys``, ``lifetime`` and ``verify``):
``distributed_to``, ``connect``, ``versions``, ``reconcile``, ``sync_key``, ``abandon_version``,
``find_tagged``, ``alias_name``, ``import_material``, ``apply_min_enabled``.
"""

from __future__ import annotations

from keymgmt_cli.engine import kmsproviders, ondemand, shapes
from keymgmt_cli.engine.sealing import unseal_all
from keymgmt_cli.errors import EngineError, PreconditionFailed, ProviderError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView, Mount


def distributed_to(engine: EngineView, mount: Mount, key_name: str) -> list[str]:
    return [kms for kms in engine.store.list(mount.doc("kms"))
            if engine.store.get(mount.doc("dist", kms, key_name)) is not None]



def abandon_version(engine: EngineView, mount: Mount, key: dict[str, Any], version: int, window: int = 7) -> None:
    """Undo an unfinished rotation in every distribution: aliases back to the previous version,
    the new version's KMS keys (and replicas, and any key created but never recorded) scheduled
    for deletion, the version dropped from each record. The caller holds the key lock."""
    previous = str(version - 1)
    for kms in distributed_to(engine, mount, key["name"]):
        dist_id = mount.doc("dist", kms, key["name"])
        dist = shapes.load(engine.store, dist_id, shapes.distribution)
        rec = dist["versions"].get(str(version)) if dist else None
        if rec is None:
            continue
        provider = connect(engine, mount, kmsproviders.load_provider(engine, mount, kms))
        if ondemand.shares_first_key(dist, version):  # the shared KMS key stays: only the staged material goes
            material = unseal_all(engine, mount, key).get(version)
            ondemand.abandon(provider, dist, version, rec, material, lambda: engine.put(dist_id, dist),
                             import_material, engine)
            del dist["versions"][str(version)]
            engine.put(dist_id, dist)
            continue
        back = dist["versions"].get(previous, {}).get("key_id")
        if rec.get("key_id") and dist.get("alias_target") == rec["key_id"] and back:
            provider.update_alias(alias_name(dist), back)
            dist["alias_target"] = back
            engine.put(dist_id, dist)
        for region, replica in rec.get("replicas", {}).items():
            regional = provider.in_region(region)
            if dist.get("replica_alias_targets", {}).get(region) == rec.get("key_id") and back:
                regional.update_alias(alias_name(dist, region), back)
                dist["replica_alias_targets"][region] = back
            if replica.get("created") and not replica.get("deleted"):
                regional.schedule_key_deletion(rec["key_id"], window)
                replica["deleted"] = True
            engine.put(dist_id, dist)
        doomed = [rec["key_id"]] if rec.get("key_id") else []
        if rec.get("creating"):
            doomed += find_tagged(provider, {"keymgmt:state_id": engine.state_id(), "keymgmt:op": rec["creating"]})
        for key_id in dict.fromkeys(doomed):
            provider.schedule_key_deletion(key_id, window)
        del dist["versions"][str(version)]
        engine.put(dist_id, dist)


def sync_key(engine: EngineView, mount: Mount, key_name: str, key: dict[str, Any]) -> None:
    """Bring every distribution of the key to its current versions and min_enabled_version.

    Distributions in different providers proceed concurrently; the caller holds the key lock.
    """
    targets = []
    for kms in distributed_to(engine, mount, key_name):
        dist = shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)
        if dist is None or dist.get("state") == "removing" or dist.get("suspended"):
            continue  # a suspended distribution holds no material: resume applies what changed meanwhile
        targets.append((kmsproviders.load_provider(engine, mount, kms), dist))
    if not targets:
        return
    materials = unseal_all(engine, mount, key)
    if len(targets) == 1:
        reconcile(engine, mount, key, targets[0][1], targets[0][0], materials)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        futures = [(kms_doc["name"], pool.submit(reconcile, engine, mount, key, dist, kms_doc, materials))
                   for kms_doc, dist in targets]
    failures = []
    for kms, future in futures:
        error = future.exception()
        if error is not None:
            failures.append((kms, error))
    if failures:
        for _kms, error in failures:
            if not isinstance(error, EngineError):
                raise error  # a bug, not a refusal: let the CLI's guard report it
        first = failures[0][1]
        causes = "; ".join(f"{kms}: {error}" for kms, error in failures)  # every cause, not only the first
        message = f"{len(failures)} of {len(targets)} distributions did not finish ({causes})"
        raise type(first)(message, hint="re-run the same command to finish; what was done is recorded") \
            if not isinstance(first, ProviderError) else ProviderError(
                message, code=first.code, hint="re-run the same command to finish; what was done is recorded")



def versions(dist: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return sorted(((int(v), rec) for v, rec in dist["versions"].items()), key=lambda item: item[0])


def connect(engine: EngineView, mount: Mount, kms_doc: dict[str, Any]) -> Any:
    if engine.provider_factory is None:
        raise EngineError("no KMS provider factory configured")
    provider = engine.provider_factory(kmsproviders.provider_config(engine, mount, kms_doc))
    kmsproviders.record_credential_source(engine, mount, kms_doc["name"],
                                          getattr(provider, "credential_source", None))
    return provider


def _tags(engine: EngineView, mount: Mount, kms: str, key_name: str, version: int) -> dict[str, str]:
    return {"keymgmt:state_id": engine.state_id(), "keymgmt:mount": mount.path, "keymgmt:key_name": key_name,
            "keymgmt:version": str(version), "keymgmt:kms": kms, INSTANCE_TAG: _instance(engine)}


INSTANCE_TAG = "keymgmt:instance"


def _instance(engine: EngineView) -> str:
    """This copy of the state (``store/retired.py``): two live copies share a state id, so keys
    also say which copy made them, and ``verify`` can tell the copies apart (``engine/instances.py``)."""
    from keymgmt_cli.store.retired import ensure_instance

    return ensure_instance(engine.store)


def key_tags(engine: EngineView, mount: Mount, kms: str, key_name: str, version: int) -> dict[str, str]:
    """The tags CreateKey gives a version's KMS key (verify and repair compare with them)."""
    return _tags(engine, mount, kms, key_name, version)


def _description(mount: Mount, kms: str, key_name: str, version: int) -> str:
    return f"keymgmt {mount.path}key/{key_name} version {version} (KMS provider {kms})"


FROM_DIST = object()  # import_material's default: the expiry the distribution asks for


def import_material(engine: EngineView, provider: Any, holder: dict[str, Any], key_id: str, material: bytes,
                    dist: dict[str, Any], valid_to: Any = FROM_DIST, import_type: Any = FROM_DIST,
                    _again: bool = False) -> None:
    """GetParametersForImport, wrap, ImportKeyMaterial into ``key_id``; ``holder`` (a version or a
    replica record) remembers that it holds material, when it expires and (on-demand) its KeyMaterialId.
    ImportType is sent as ``ondemand.import_type_for`` decides (never for asymmetric keys)."""
    from keymgmt_cli import transfer
    from keymgmt_cli.engine.durations import engine_now, resolve_valid_to, rfc3339  # writes only

    when = resolve_valid_to(dist.get("valid_to"), engine_now(engine)) if valid_to is FROM_DIST else valid_to
    kind = ondemand.import_type_for(dist, holder) if import_type is FROM_DIST else import_type
    params = provider.get_parameters_for_import(key_id, dist["wrapping_algorithm"], dist["wrapping_key_spec"])
    blob = transfer.wrap_key_material(material, params.public_key_der, dist["wrapping_algorithm"])
    extra = {"import_type": kind} if kind else {}
    material_id = provider.import_key_material(key_id, params.import_token, blob, valid_to=when, **extra)
    holder["imported"] = True
    if ondemand.is_on_demand(dist):  # which of the key's materials this holder's is
        if not material_id and not _again:
            # The answer was lost and AWS refused the retry's spent token (awskms then returns
            # None): the same material again, as existing, names it (once).
            import_material(engine, provider, holder, key_id, material, dist, valid_to=when,
                            import_type=ondemand.EXISTING, _again=True)
            return
        if material_id:
            holder["material_id"] = material_id
    if when is None:
        holder.pop("valid_to", None)
    else:
        holder["valid_to"] = rfc3339(when)


def _ensure_imported(engine: EngineView, provider: Any, holder: dict[str, Any], key_id: str, material: bytes,
                     dist: dict[str, Any], save: Any, progress: str) -> None:
    """Import the material once; ``holder`` (a version record or a replica record) remembers it."""
    if holder.get("imported"):
        return
    engine.progress(progress)
    import_material(engine, provider, holder, key_id, material, dist)
    holder["enabled"] = True
    save()


def reconcile(engine: EngineView, mount: Mount, key: dict[str, Any], dist: dict[str, Any],
               kms_doc: dict[str, Any], materials: dict[int, bytes], provider: Any = None) -> None:
    """Walk the distribution from its record to the wanted state (every version imported, the alias
    on the latest, min_enabled_version applied, replicas likewise), saving after every AWS call.
    ``provider`` is the connection when the caller made one already."""
    kms = kms_doc["name"]
    key_name = key["name"]
    dist_id = mount.doc("dist", kms, key_name)

    def save() -> None:
        engine.put(dist_id, dist)

    if provider is None:
        provider = connect(engine, mount, kms_doc)
    multi_region = bool(key.get("replica_regions"))
    latest = key["latest_version"]
    for v in range(1, latest + 1):
        rec = dist["versions"].setdefault(str(v), {})
        if ondemand.shares_first_key(dist, v):  # version 1's KMS key takes it (RotateKeyOnDemand)
            ondemand.advance(engine, provider, dist, v, rec, materials[v], save, import_material, kms)
            continue
        if not rec.get("key_id") and rec.get("creating"):
            # An earlier run called CreateKey and may have died before recording the id: the
            # key carries our operation tag, so find it instead of making a second one.
            found = find_tagged(provider, {"keymgmt:state_id": engine.state_id(), "keymgmt:op": rec["creating"]})
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
    alias_tags = _tags(engine, mount, kms, key_name, latest)
    _point_alias(engine, provider, dist, None, dist["versions"][str(latest)]["key_id"], alias_tags, save)
    apply_min_enabled(provider, dist, key, None, save)

    for region in dist.get("replica_regions", []):
        regional = provider.in_region(region)
        for v, rec in versions(dist):
            replica = rec.setdefault("replicas", {}).setdefault(region, {})
            if not replica.get("created") and ondemand.shares_first_key(dist, v):
                if not dist["versions"]["1"].get("replicas", {}).get(region, {}).get("created"):
                    continue
                replica.update(created=True, imported=False)  # version 1's replica is this version's too
                save()
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
        latest_rec = dist["versions"][str(latest)]
        if latest_rec.get("replicas", {}).get(region, {}).get("imported"):
            _point_alias(engine, regional, dist, region, latest_rec["key_id"], alias_tags, save)
        apply_min_enabled(regional, dist, key, region, save)

    if dist.get("state") != "ready":
        dist["state"] = "ready"
        save()


def _new_token() -> str:
    import uuid

    return uuid.uuid4().hex


def find_tagged(provider: Any, wanted: dict[str, str]) -> list[str]:
    """Key ids in the provider's region whose tags include ``wanted``: the recovery search for a key
    created but never recorded (a lost CreateKey answer, a crash during the call).

    It lists (ListKeys + ListResourceTags, concurrently, paced at ListResourceTags' quota) rather
    than asking ``tag:GetResources`` as verify does: the tagging API is eventually consistent, and
    the key looked for here is seconds old, so a search that missed it would make a second key and
    leave the first one orphaned. Keys whose tags we may not read are not ours."""
    from keymgmt_cli.providers.tagsearch import by_listing

    return by_listing(provider, wanted)


ALIAS_PREFIX = "alias/hashicorp/"
ALIAS_ATTEMPTS = 10  # other names tried when an alias name is taken by a key that is not ours


def alias_name(dist: dict[str, Any], region: str | None = None) -> str:
    """The distribution's alias in the primary region, or in one replica region (where it differs
    only when the primary's name was taken there by a key that is not ours)."""
    if region is not None:
        return dist.get("replica_alias_names", {}).get(region, dist["alias"])
    return dist["alias"]


def ours(provider: Any, key_id: str, dist: dict[str, Any], tags: dict[str, str]) -> bool:
    """Is ``key_id`` provably this distribution's: a key id it recorded, or a key carrying its tags
    (state id, mount, key name, provider)? Anything else, another state's or a hand-made key, is not."""
    if any(rec.get("key_id") == key_id for rec in dist["versions"].values()):
        return True
    try:
        found = provider.list_resource_tags(key_id)
    except ProviderError:
        return False  # a key we may not read is not ours
    return all(found.get(k) == v for k, v in tags.items() if k not in ("keymgmt:version", INSTANCE_TAG))


def _point_alias(engine: EngineView, provider: Any, dist: dict[str, Any], region: str | None, key_id: str,
                 tags: dict[str, str], save: Any) -> None:
    """CreateAlias once, UpdateAlias on rotation. An alias name that exists already is adopted only
    when its target is provably ours (an interrupted earlier run); a name taken by anything else
    (another mount or state distributing a key of the same name in the same second, a hand-made
    alias) is left untouched, and another name is chosen and recorded before CreateAlias."""
    holder, slot = (dist, "alias_target") if region is None else (dist.setdefault("replica_alias_targets", {}),
                                                                  region)
    current = holder.get(slot)
    if current == key_id:
        return
    if current is not None:
        provider.update_alias(alias_name(dist, region), key_id)
    else:
        for _attempt in range(ALIAS_ATTEMPTS):
            name = alias_name(dist, region)
            try:
                provider.create_alias(name, key_id)
                break
            except ProviderError as error:
                if error.code != "AlreadyExistsException":
                    raise
            target = provider.get_alias_target(name)
            if target is None:
                continue  # deleted in between: try the same name again
            if ours(provider, target, dist, tags):
                provider.update_alias(name, key_id)  # created by an interrupted earlier run
                break
            _rename_alias(engine, dist, region)
            save()  # the new name is on record before CreateAlias
        else:
            raise PreconditionFailed(f"no free alias name for {dist['key_name']!r} after {ALIAS_ATTEMPTS} tries; "
                                     "the names are taken by keys that are not this distribution's")
    holder[slot] = key_id
    save()


def point_alias(engine: EngineView, provider: Any, dist: dict[str, Any], region: str | None, key_id: str,
                tags: dict[str, str], save: Any) -> None:
    """``_point_alias`` for ``converge``: the same custody rules when an alias is made again."""
    _point_alias(engine, provider, dist, region, key_id, tags, save)


def _rename_alias(engine: EngineView, dist: dict[str, Any], region: str | None) -> None:
    """Choose the next name of Vault's shape, alias/hashicorp/<key_name>-<unix_timestamp>: a later
    timestamp than the one that was taken (and than now, so racing states drift apart)."""
    taken = alias_name(dist, region)
    stamp = max(int(taken.rsplit("-", 1)[1]) + 1, int(engine.clock()))
    name = f"{dist['key_name']}-{stamp}"
    if region is None:
        dist["name"], dist["alias"] = name, ALIAS_PREFIX + name
    else:
        dist.setdefault("replica_alias_names", {})[region] = ALIAS_PREFIX + name


def apply_min_enabled(provider: Any, dist: dict[str, Any], key: dict[str, Any], region: str | None,
                       save: Any) -> None:
    if ondemand.is_on_demand(dist):
        return  # one KMS key holds every version: AWS cannot disable one material (refused at write)
    minimum = key["min_enabled_version"]
    for v, rec in versions(dist):
        target = rec if region is None else rec.get("replicas", {}).get(region)
        if not target or not target.get("imported") or rec.get("deleted"):
            continue
        want = v >= minimum
        if target.get("enabled", True) != want:
            (provider.enable_key if want else provider.disable_key)(rec["key_id"])
            target["enabled"] = want
            save()
