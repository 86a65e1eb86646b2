"""Handlers for key/:name, key, key/:name/rotate and key/:name/kms (Vault's keymgmt API 1-7)."""

from __future__ import annotations

from keymgmt_cli.engine import shapes
from keymgmt_cli.engine.mounts import Mount, now_rfc3339
from keymgmt_cli.engine.names import check_name
from keymgmt_cli.engine.routing import Response
from keymgmt_cli.errors import InvalidRequest, NotFound, NoValue, PreconditionFailed


def _reconcile():
    """The reconcile state machine (and through it the providers and on-demand rotation), loaded
    when a key is written, rotated or deleted: a ``read`` or ``list`` never needs it, and its
    imports would cost every read (tests/store/test_store_imports.py pins the read path)."""
    from keymgmt_cli.engine import reconcile

    return reconcile


def seal_version(*args, **kwargs):
    """``sealing.seal_version``, imported on first use for the same reason (cryptography)."""
    from keymgmt_cli.engine.sealing import seal_version as seal

    return seal(*args, **kwargs)


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView as Engine

MUTATION_LOCK_TIMEOUT = 600.0  # a distribution at AWS's 1/s import quota can take minutes


def load_key(engine: Engine, mount: Mount, name: str) -> dict[str, Any]:
    check_name("key", name)
    doc = shapes.load(engine.store, mount.doc("keys", name), shapes.key)
    if doc is None:
        raise NotFound(f"key {name!r} not found in {mount.path}",
                       hint=f"create it: keymgmt write {mount.path}key/{name} type=aes256-gcm96")
    return doc


def new_version(engine: Engine, mount: Mount, name: str, key_type: str) -> dict[str, Any]:
    if key_type in ("rsa-3072", "rsa-4096"):
        engine.progress(f"generating {key_type} key material")
    from keymgmt_cli.engine.keytypes import generate_material

    material, public_pem = generate_material(key_type)
    version: dict[str, Any] = {"creation_time": now_rfc3339(engine.clock())}
    if public_pem:
        version["public_key"] = public_pem
    version["_material"] = material  # sealed by store_version before it is written
    return version


# -- handlers --------------------------------------------------------------------------------------
def list_keys(engine: Engine, mount: Mount, values: dict[str, Any]) -> Response:
    return _listing(engine.store.list(mount.doc("keys")), mount.path + "key")


def read_key(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    doc = load_key(engine, mount, name)
    versions = {}
    for number, version in sorted(doc["versions"].items(), key=lambda kv: int(kv[0])):
        entry = {"creation_time": version["creation_time"]}
        if "public_key" in version:
            entry["public_key"] = version["public_key"]
        versions[number] = entry
    data: dict[str, Any] = {
        "deletion_allowed": doc["deletion_allowed"],
        "keys": versions,
        "latest_version": doc["latest_version"],
        "min_enabled_version": doc["min_enabled_version"],
        "name": doc["name"],
        "type": doc["type"],
    }
    if doc.get("replica_regions"):
        data["replica_regions"] = list(doc["replica_regions"])
    if doc.get("auto_rotate_period"):
        data["auto_rotate_period"] = doc["auto_rotate_period"]  # seconds, as Vault transit's JSON
    return Response(data)


def write_key(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    check_name("key", name)
    doc_id = mount.doc("keys", name)
    with engine.store.lock(mount.lock("key", name), timeout=MUTATION_LOCK_TIMEOUT):
        doc = shapes.load(engine.store, doc_id, shapes.key)
        if doc is None:
            return _create_key(engine, mount, name, values)
        return _update_key(engine, mount, name, doc, values)


def _create_key(engine: Engine, mount: Mount, name: str, values: dict[str, Any]) -> Response:
    from keymgmt_cli.engine.keytypes import DEFAULT_KEY_TYPE

    key_type = values.get("type", DEFAULT_KEY_TYPE)
    replicas = values.get("replica_regions") or []
    if replicas and key_type != "aes256-gcm96":
        raise InvalidRequest("replica_regions is supported only for aes256-gcm96 keys (AWS multi-Region keys)")
    min_enabled = values.get("min_enabled_version", 0)
    if min_enabled > 1:
        raise InvalidRequest(f"min_enabled_version {min_enabled} is above the latest version 1")
    version = seal_version(engine, mount, name, 1, new_version(engine, mount, name, key_type))
    doc = {
        "name": name, "type": key_type,
        "deletion_allowed": values.get("deletion_allowed", False),
        "min_enabled_version": min_enabled,
        "latest_version": 1,
        "replica_regions": replicas,
        "versions": {"1": version},
    }
    if values.get("auto_rotate_period"):
        doc["auto_rotate_period"] = values["auto_rotate_period"]
    engine.put(mount.doc("keys", name), doc)
    return Response()


def _update_key(engine: Engine, mount: Mount, name: str, doc: dict[str, Any], values: dict[str, Any]) -> Response:
    if "type" in values and values["type"] != doc["type"]:
        raise InvalidRequest(f"type cannot be changed after creation (key {name!r} is {doc['type']})")
    if "replica_regions" in values and values["replica_regions"] != doc.get("replica_regions", []):
        raise InvalidRequest("replica_regions cannot be changed after creation")
    if "min_enabled_version" in values and values["min_enabled_version"] > doc["latest_version"]:
        raise InvalidRequest(f"min_enabled_version {values['min_enabled_version']} is above the latest "
                             f"version {doc['latest_version']}")
    if values.get("min_enabled_version", 0) > 1:
        _check_min_enabled_on_demand(engine, mount, name, values["min_enabled_version"])
    changed = False
    for field in ("deletion_allowed", "min_enabled_version", "auto_rotate_period"):
        if field in values and values[field] != doc.get(field, 0):
            doc[field] = values[field]
            changed = True
    if changed:
        engine.put(mount.doc("keys", name), doc)
    # Always reconcile: re-running the same write finishes an enable/disable that failed halfway.
    _reconcile().sync_key(engine, mount, name, doc)
    if "min_enabled_version" in values:  # converge with AWS, as verify -fix does for this key
        from keymgmt_cli.engine.converge import converge_key

        converge_key(engine, mount, name, doc)
    if doc.get("pending"):  # the sync brought every distribution to the latest version: that rotation is done
        doc.pop("pending")
        engine.put(mount.doc("keys", name), doc)
    return Response()


def rotate_key(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    with engine.store.lock(mount.lock("key", name), timeout=MUTATION_LOCK_TIMEOUT):
        warnings = rotate_locked(engine, mount, name, load_key(engine, mount, name))
    return Response(warnings=warnings)


def rotate_locked(engine: Engine, mount: Mount, name: str, doc: dict[str, Any]) -> list[str]:
    """Rotate (or finish an interrupted rotation of) a key whose lock the caller holds."""
    warnings: list[str] = []
    pending = doc.get("pending")
    if pending and pending.get("op") == "rotate":
        warnings.append(f"finished the interrupted rotation to version {pending['version']}; "
                        "run rotate again for a new version")
    else:
        _check_rotatable(engine, mount, name)
        number = doc["latest_version"] + 1
        doc["versions"][str(number)] = seal_version(
            engine, mount, name, number, new_version(engine, mount, name, doc["type"]))
        doc["latest_version"] = number
        if _reconcile().distributed_to(engine, mount, name):
            # Journal: until every distribution holds the new version, a re-run finishes it.
            doc["pending"] = {"op": "rotate", "version": number, "since": now_rfc3339(engine.clock())}
        engine.put(mount.doc("keys", name), doc)
    _reconcile().sync_key(engine, mount, name, doc)
    if doc.get("pending"):
        doc.pop("pending")
        engine.put(mount.doc("keys", name), doc)
    return warnings


def _check_min_enabled_on_demand(engine: Engine, mount: Mount, name: str, minimum: int) -> None:
    """AWS cannot disable one material of a KMS key: with an on-demand distribution every version
    stays usable, so a min_enabled_version that would disable some is refused, not ignored."""
    for kms in _reconcile().distributed_to(engine, mount, name):
        dist = shapes.load(engine.store, mount.doc("dist", kms, name), shapes.distribution) or {}
        if dist.get("rotation_mode") == "on-demand" and dist.get("state") != "removing":
            raise InvalidRequest(f"min_enabled_version {minimum} cannot apply to {name!r} in KMS provider {kms!r}: "
                                 "it is distributed with rotation_mode=on-demand, one KMS key holds every version "
                                 "and AWS cannot disable one key material; only 0 or 1 (all enabled)",
                                 hint=f"suspend the whole key instead: keymgmt write -f "
                                      f"{mount.path}kms/{kms}/key/{name}/suspend")


def _check_rotatable(engine: Engine, mount: Mount, name: str) -> None:
    """Refuse a rotation before it starts when a distribution could not take the new version: a
    suspended one, or one whose absolute valid_to has passed (a duration never does)."""
    from keymgmt_cli.engine.durations import engine_now, parse_time, resolve_valid_to

    for kms in _reconcile().distributed_to(engine, mount, name):
        dist = shapes.load(engine.store, mount.doc("dist", kms, name), shapes.distribution) or {}
        if dist.get("suspended"):
            raise PreconditionFailed(f"key {name!r} is suspended in KMS provider {kms!r}; resume it first: "
                                     f"keymgmt write -f {mount.path}kms/{kms}/key/{name}/resume")
        if dist.get("rotation_mode") == "on-demand" and dist.get("state") != "removing":
            # One KMS key holds every version: AWS takes new material only while all of it is imported.
            expired = sorted(h["valid_to"] for rec in dist["versions"].values()
                             for h in [rec, *rec.get("replicas", {}).values()]
                             if h.get("valid_to") and parse_time(h["valid_to"]) <= engine_now(engine))
            if expired:
                raise PreconditionFailed(f"cannot rotate {name!r}: its KMS key in {kms!r} (rotation_mode=on-demand) "
                                         f"holds material that expired at {expired[0]}; AWS adds new material "
                                         "only to a key whose material is all imported",
                                         hint=f"renew it first: keymgmt write {mount.path}kms/{kms}/key/{name}/renew "
                                              "valid_to=90d")
        if dist.get("valid_to") and dist.get("state") != "removing":
            try:
                resolve_valid_to(dist["valid_to"], engine_now(engine))
            except InvalidRequest as error:
                raise InvalidRequest(f"cannot rotate {name!r}: the distribution to {kms!r} has valid_to "
                                     f"{dist['valid_to']}: {error}",
                                     hint=f"give it a duration relative to each import: keymgmt write "
                                          f"{mount.path}kms/{kms}/key/{name} purpose={','.join(dist['purpose'])} "
                                          "valid_to=90d") from None


def abandon_rotation(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    """Give up an interrupted rotation instead of finishing it: what it created in KMS is scheduled
    for deletion (7 days, the shortest window AWS allows) and the new version is dropped."""
    with engine.store.lock(mount.lock("key", name), timeout=MUTATION_LOCK_TIMEOUT):
        doc = load_key(engine, mount, name)
        pending = doc.get("pending")
        if not pending or pending.get("op") != "rotate":
            raise PreconditionFailed(f"key {name!r} has no unfinished rotation to abandon")
        version = pending["version"]
        _reconcile().abandon_version(engine, mount, doc, version)
        del doc["versions"][str(version)]
        doc["latest_version"] = version - 1
        doc["min_enabled_version"] = min(doc["min_enabled_version"], version - 1)
        doc.pop("pending")
        engine.put(mount.doc("keys", name), doc)
    return Response(warnings=[f"abandoned the rotation to version {version}; its KMS keys are scheduled "
                              "for deletion"])


def delete_key(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    check_name("key", name)
    with engine.store.lock(mount.lock("key", name), timeout=MUTATION_LOCK_TIMEOUT):
        doc = shapes.load(engine.store, mount.doc("keys", name), shapes.key)
        if doc is None:
            return Response()  # as Vault: "deleted (if it existed)"; re-running is safe
        if not doc["deletion_allowed"]:
            raise PreconditionFailed(f"key {name!r} cannot be deleted: deletion_allowed is false",
                                     hint=f"keymgmt write {mount.path}key/{name} deletion_allowed=true")
        where = _reconcile().distributed_to(engine, mount, name)
        if where:
            raise PreconditionFailed(
                f"key {name!r} is still distributed to KMS provider(s) {', '.join(where)}",
                hint=f"remove it first: keymgmt delete {mount.path}kms/{where[0]}/key/{name}")
        engine.store.delete(mount.doc("keys", name))
    return Response()


def list_key_kms(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    load_key(engine, mount, name)
    return _listing(_reconcile().distributed_to(engine, mount, name), f"{mount.path}key/{name}/kms")


def _listing(names: list[str], path: str) -> Response:
    if not names:
        # As Vault: an empty list is "No value found" (exit 2).
        raise NoValue(f"No value found at {path}")
    return Response({"keys": names})
