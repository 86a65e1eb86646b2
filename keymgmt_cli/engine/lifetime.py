"""Keys over time: material that expires (``valid_to``), renewal, rotation on a schedule
(``auto_rotate_period``), the kill switch (suspend/resume), and ``due``, the list of what needs
action (issue 13; user pains P5 to P7).

Imported material is the one kind AWS deletes on its own at ``ValidTo`` (the key goes
``PendingImport``) and cannot recover; only the holder of the original material can re-import it.
Every operation here is a reconcile over per-holder records (a version record or a replica
record), so each is resumable and safe to repeat:

* ``holder["valid_to"]``: the expiry of the material imported there (RFC 3339, UTC), or absent;
* ``holder["suspended"]``: its material was deleted by ``suspend`` and not yet re-imported.

Durations and times: ``durations.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from keymgmt_cli.engine import kmsproviders, ondemand, reconcile, shapes
from keymgmt_cli.engine.durations import (engine_now, format_duration, is_duration, parse_time, resolve_valid_to,
                                          rfc3339, round_validity)
from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT, load_key, rotate_locked
from keymgmt_cli.engine.mounts import Mount
from keymgmt_cli.engine.routing import Response
from keymgmt_cli.engine.sealing import unseal_all
from keymgmt_cli.errors import InvalidRequest, NotFound, PreconditionFailed

DEFAULT_WITHIN = 30 * 86400

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView as Engine

# -- holders ---------------------------------------------------------------------------------------
def holders(dist: dict[str, Any]) -> list[tuple[int, str | None, dict[str, Any], dict[str, Any]]]:
    """Every live place the distribution's material is imported: (version, replica region or None
    for the primary, the version record, the holder record)."""
    out = []
    for v, rec in reconcile.versions(dist):
        if not rec.get("key_id") or rec.get("deleted"):
            continue
        out.append((v, None, rec, rec))
        for region, replica in sorted(rec.get("replicas", {}).items()):
            if replica.get("created") and not replica.get("deleted"):
                out.append((v, region, rec, replica))
    return out


def _load(engine: Engine, mount: Mount, kms: str, key_name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    kms_doc = kmsproviders.load_provider(engine, mount, kms)
    key = load_key(engine, mount, key_name)
    dist = shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)
    if dist is None or dist.get("state") == "removing":
        raise NotFound(f"key {key_name!r} is not distributed to KMS provider {kms!r}")
    return kms_doc, key, dist


def _reimport(engine: Engine, mount: Mount, kms: str, key: dict[str, Any], dist: dict[str, Any],
              kms_doc: dict[str, Any], needs: Any, mark: Any, label: str, valid_to: Any) -> None:
    """Import the same material again into every holder for which ``needs(holder)``, recording
    ``mark(holder)`` after each import, then re-apply min_enabled_version (AWS re-enables a key
    whose material comes back)."""
    dist_id = mount.doc("dist", kms, key["name"])

    def save() -> None:
        engine.put(dist_id, dist)

    materials = unseal_all(engine, mount, key)
    provider = reconcile.connect(engine, mount, kms_doc)
    for v, region, _rec, holder in holders(dist):
        if not needs(holder):
            continue
        where = provider if region is None else provider.in_region(region)
        engine.progress(f"{kms}: {label} version {v}" + (f" in {region}" if region else ""))
        reconcile.import_material(engine, where, holder, _rec["key_id"], materials[v], dist, valid_to)
        holder["enabled"] = True
        mark(holder)
        save()
    reconcile.apply_min_enabled(provider, dist, key, None, save)
    for region in dist.get("replica_regions", []):
        reconcile.apply_min_enabled(provider.in_region(region), dist, key, region, save)


# -- handlers: renew, suspend, resume --------------------------------------------------------------
def renew(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    """Re-import the same material with a new expiry into every version key, region and replica."""
    spec = values.get("valid_to")
    if not spec:
        raise InvalidRequest("missing required field 'valid_to' (a duration such as 90d, or an RFC 3339 time)")
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        kms_doc, key, dist = _load(engine, mount, name, key_name)
        if dist.get("suspended"):
            raise PreconditionFailed(f"key {key_name!r} is suspended in {name!r}; resume it first: "
                                     f"keymgmt write -f {mount.path}kms/{name}/key/{key_name}/resume")
        pending = dist.get("renewing")
        if pending is None or pending.get("spec") != spec:
            target = resolve_valid_to(spec, engine_now(engine))
            dist["renewing"] = {"spec": spec, "valid_to": rfc3339(target),  # the journal: re-runs finish this
                                "at": rfc3339(engine_now(engine))}
            engine.put(mount.doc("dist", name, key_name), dist)
        target_text = dist["renewing"]["valid_to"]
        _reimport(engine, mount, name, key, dist, kms_doc, needs=lambda h: h.get("valid_to") != target_text,
                  mark=lambda h: None, label="renewing", valid_to=parse_time(target_text))
        dist["valid_to"] = spec if is_duration(spec) else target_text
        if is_duration(spec):
            dist.pop("valid_for", None)
        else:  # an absolute time: what due -apply renews for next time is this length, not the date
            at = dist["renewing"].get("at")
            dist["valid_for"] = (round_validity(int((parse_time(target_text) - parse_time(at)).total_seconds()))
                                 if at else dist.get("valid_for"))
        dist.pop("renewing")
        engine.put(mount.doc("dist", name, key_name), dist)
    return Response()


def suspend(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    """The kill switch: DeleteImportedKeyMaterial for every version key in every region and
    replica. ARNs and aliases stay; the key is unusable at once (PendingImport) until resumed."""
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        kms_doc, key, dist = _load(engine, mount, name, key_name)
        dist_id = mount.doc("dist", name, key_name)
        if dist.get("state") != "ready":
            raise PreconditionFailed(f"key {key_name!r} has an unfinished operation in {name!r}; finish or "
                                     "abandon it first (keymgmt status)")
        dist["suspended"] = True  # the intent first: a crash leaves a suspension that a re-run finishes
        engine.put(dist_id, dist)
        provider = reconcile.connect(engine, mount, kms_doc)
        for v, region, rec, holder in holders(dist):
            if holder.get("suspended") or not holder.get("imported"):
                continue
            where = provider if region is None else provider.in_region(region)
            if not (region is not None and ondemand.staged_only(rec) and rec.get("suspended")):
                # (else AWS dropped the replicas' copies with the primary's staged material)
                engine.progress(f"{name}: deleting the material of version {v}" + (f" in {region}" if region else ""))
                if ondemand.is_on_demand(dist):  # one key, many materials: delete each by its id
                    where.delete_imported_key_material(rec["key_id"], holder.get("material_id") or rec.get("material_id"))
                else:
                    where.delete_imported_key_material(rec["key_id"])
            holder["suspended"] = True
            holder.pop("valid_to", None)
            engine.put(dist_id, dist)
    return Response(warnings=[f"key {key_name!r} is suspended in {name!r}: every version's material is deleted "
                              f"from AWS; resume with keymgmt write -f {mount.path}kms/{name}/key/{key_name}/resume"])


def resume(engine: Engine, mount: Mount, values: dict[str, Any], name: str, key_name: str) -> Response:
    """Undo suspend: re-import the same material and restore what min_enabled_version asks for."""
    with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
        kms_doc, key, dist = _load(engine, mount, name, key_name)
        if not dist.get("suspended") and not any(h.get("suspended") for *_, h in holders(dist)):
            return Response()  # not suspended: nothing to do, safe to repeat
        _reimport(engine, mount, name, key, dist, kms_doc, needs=lambda h: bool(h.get("suspended")),
                  mark=lambda h: h.pop("suspended", None), label="re-importing",
                  valid_to=resolve_valid_to(dist.get("valid_to"), engine_now(engine)))
        dist.pop("suspended", None)
        engine.put(mount.doc("dist", name, key_name), dist)
    return Response()


# -- due -------------------------------------------------------------------------------------------
def _item(kind: str, path: str, deadline: datetime | None, fix: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "path": path, "deadline": rfc3339(deadline) if deadline else None, "fix": fix, **extra}


ABSOLUTE_FIX = "<the next expiry: a duration such as 90d>"


def _renew_spec(dist: dict[str, Any]) -> str:
    """What a renewal asks for: a duration given at distribution is given again; an absolute time
    (a date now near or past) gives the same validity length as the import that set it, which a
    careful user expects of a renewal (not AWS's 365-day maximum); without that length on record
    (a distribution recorded before it was kept) nothing is guessed: the user names it."""
    spec = dist.get("valid_to") or ""
    if spec and is_duration(spec):
        return spec
    if dist.get("valid_for"):
        return format_duration(int(dist["valid_for"]))
    return ABSOLUTE_FIX


def rotation_deadline(key: dict[str, Any]) -> datetime | None:
    period = key.get("auto_rotate_period") or 0
    if period <= 0:
        return None
    latest = key["versions"][str(key["latest_version"])]
    return parse_time(latest["creation_time"]) + timedelta(seconds=period)


def due(engine: Engine, path: str | None = None, within: int = DEFAULT_WITHIN,
        now: datetime | None = None) -> list[dict[str, Any]]:
    """What needs action, soonest first: material expired or expiring within ``within`` seconds,
    rotations due by auto_rotate_period, operations left half-done. Reads the state only."""
    now = now or engine_now(engine)
    horizon = now + timedelta(seconds=within)
    items: list[dict[str, Any]] = []
    for mount in _mounts(engine, path):
        for key_name in engine.store.list(mount.doc("keys")):
            key = shapes.load(engine.store, mount.doc("keys", key_name), shapes.key)
            if key is None:
                continue
            when = rotation_deadline(key)
            if when is not None and when <= horizon:
                items.append(_item("rotation", f"{mount.path}key/{key_name}", when,
                                   f"keymgmt write -f {mount.path}key/{key_name}/rotate",
                                   overdue=when <= now))
            if key.get("pending"):
                items.append(_item("unfinished", f"{mount.path}key/{key_name}", None,
                                   f"keymgmt write -f {mount.path}key/{key_name}/rotate"))
        for kms in engine.store.list(mount.doc("kms")):
            for key_name in engine.store.list(mount.doc("dist", kms)):
                dist = shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)
                if dist is None:
                    continue
                where = f"{mount.path}kms/{kms}/key/{key_name}"
                if dist.get("state", "ready") != "ready" or dist.get("renewing"):
                    items.append(_item("unfinished", where, None,
                                       f"keymgmt write {where} purpose={','.join(dist['purpose'])}"
                                       if dist.get("state") == "distributing" else
                                       f"keymgmt delete {where}" if dist.get("state") == "removing" else
                                       f"keymgmt write {where}/renew valid_to={dist.get('renewing', {}).get('spec')}"))
                    continue
                if dist.get("suspended"):
                    continue  # suspended on purpose: no material to expire
                for v, region, rec, holder in holders(dist):
                    if not holder.get("valid_to"):
                        continue
                    expiry = parse_time(holder["valid_to"])
                    if expiry <= horizon:
                        items.append(_item("expired" if expiry <= now else "expiring", where, expiry,
                                           f"keymgmt write {where}/renew valid_to={_renew_spec(dist)}",
                                           version=v, region=region or kms_region(engine, mount, kms),
                                           key_id=rec["key_id"]))
    items.sort(key=lambda i: (i["deadline"] is None, i["deadline"] or "", i["path"]))
    return items


def kms_region(engine: Engine, mount: Mount, kms: str) -> str:
    doc = kmsproviders.load_provider(engine, mount, kms)
    return doc["key_collection"]


def _mounts(engine: Engine, path: str | None) -> list[Mount]:
    if not path:
        return engine.mounts()
    mount, rel = engine.resolve(path)
    if rel:
        raise InvalidRequest(f"due covers a whole mount, as keymgmt/, not {path}")
    return [mount]


def apply_due(engine: Engine, path: str | None = None, within: int = DEFAULT_WITHIN) -> list[dict[str, Any]]:
    """Perform what is due: rotate keys past their period, renew material expiring within the
    window. Each action re-checks under the key's lock, so runners on several machines (or a cron
    line every few minutes) never rotate twice. Returns each item with its ``outcome``."""
    from keymgmt_cli.errors import KeymgmtError

    results = []
    renewed: set[str] = set()
    for item in due(engine, path, within):
        outcome = "not applied: " + item["fix"]
        try:
            if item["kind"] == "rotation" and item.get("overdue"):
                mount, rel = engine.resolve(item["path"])
                outcome = "rotated" if _rotate_if_due(engine, mount, rel.split("/")[1]) else "already rotated"
            elif item["kind"] in ("expired", "expiring"):
                if item["path"] in renewed:
                    outcome = "renewed"
                else:
                    mount, rel = engine.resolve(item["path"])
                    _, kms, _, key_name = rel.split("/")
                    spec = item["fix"].rsplit("valid_to=", 1)[1]
                    if spec == ABSOLUTE_FIX:
                        raise PreconditionFailed(f"valid_to of {item['path']} was an absolute time and its "
                                                 "length is not on record; renew it once by hand: " + item["fix"])
                    renew(engine, mount, {"valid_to": spec}, kms, key_name)
                    renewed.add(item["path"])
                    outcome = "renewed"
            elif item["kind"] == "rotation":
                outcome = "not yet due"
            elif item["kind"] == "unfinished" and item["path"].split("/")[-2] == "key":
                mount, rel = engine.resolve(item["path"])
                outcome = "finished" if _finish_rotation(engine, mount, rel.split("/")[1]) else "finished elsewhere"
        except KeymgmtError as error:
            outcome = f"failed: {error}"
        results.append({**item, "outcome": outcome})
    return results


def _finish_rotation(engine: Engine, mount: Mount, name: str) -> bool:
    """Finish an interrupted rotation (what ``rotate`` would do), unless another runner, holding
    the lock until now, finished it."""
    with engine.store.lock(mount.lock("key", name), timeout=MUTATION_LOCK_TIMEOUT):
        key = load_key(engine, mount, name)
        if not key.get("pending"):
            return False
        rotate_locked(engine, mount, name, key)
    return True


def _rotate_if_due(engine: Engine, mount: Mount, name: str) -> bool:
    with engine.store.lock(mount.lock("key", name), timeout=MUTATION_LOCK_TIMEOUT):
        key = load_key(engine, mount, name)
        when = rotation_deadline(key)
        if when is None or when > engine_now(engine):
            return False  # another runner rotated it meanwhile
        rotate_locked(engine, mount, name, key)
    return True
