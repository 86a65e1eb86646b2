"""Drift detection: compare the state with what AWS holds, for every distribution a path covers.

For each version's KMS key (and each replica): it exists, is not pending deletion, holds its
material (not PendingImport), has origin EXTERNAL and the recorded key spec and usage, is enabled
exactly when the version is at or above min_enabled_version, carries our tags, and, for
asymmetric keys, GetPublicKey equals the local public key. The alias points at the latest version.
Keys tagged with this state's id that the state does not know are reported as strays.

Each finding has a ``kind`` (one of ``KINDS``) and a ``fix``: the command that fixes it
(``keymgmt verify -fix PATH`` for what ``engine/repair.py`` converges, another keymgmt command, or
"report only: ..." with the aws CLI line to inspect what keymgmt will not touch, e.g. a stray).

Read-only towards AWS: DescribeKey, ListResourceTags, GetPublicKey, ListAliases, ListKeys.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from keymgmt_cli.engine import converge, kmsproviders, ondemand, reconcile, shapes
from keymgmt_cli.engine.keys import load_key
from keymgmt_cli.engine.mounts import Mount
from keymgmt_cli.errors import NotFound, ProviderError, UnsupportedPath

if TYPE_CHECKING:
    from keymgmt_cli.engine.mounts import EngineView as Engine

PENDING_DELETION = ("PendingDeletion", "PendingReplicaDeletion")

#: finding kinds that ``keymgmt verify -fix`` converges (engine/repair.py)
FIXABLE = frozenset({"not_imported", "enabled", "tag", "alias_missing", "alias_ours", "suspended_material"})
#: every kind of finding, for the tests and the JSON consumers
KINDS = FIXABLE | {"unfinished", "missing", "pending_deletion", "origin", "spec", "expired", "public_key",
                   "alias_foreign", "stray"}


def fix_for(kind: str, where: str, region: str, key_id: str | None, dist: dict[str, Any] | None = None) -> str:
    """The command that fixes a finding of ``kind`` at ``where`` (a distribution's path, or a
    provider's for a stray); "report only: ..." where keymgmt will not act, with the aws CLI line
    that shows the operator what is there."""
    inspect = f"aws kms describe-key --key-id {key_id} --region {region}"
    if kind in FIXABLE:
        return f"keymgmt verify -fix {where}"
    if kind == "unfinished":
        if dist is not None and dist.get("state") == "removing":
            return (f"keymgmt delete {where} (if the provider can no longer be reached: "
                    f"keymgmt delete -forget {where})")
        purpose = ",".join(dist["purpose"]) if dist else "PURPOSE"
        return f"keymgmt write {where} purpose={purpose}"
    if kind == "missing":
        purpose = ",".join(dist["purpose"]) if dist else "PURPOSE"
        return (f"keymgmt delete {where}, then keymgmt write {where} purpose={purpose} "
                "(the KMS key is gone from AWS and cannot be brought back: the distribution is made again "
                "with new KMS keys, and the other versions' KMS keys are scheduled for deletion)")
    if kind == "pending_deletion":
        return f"aws kms cancel-key-deletion --key-id {key_id} --region {region}, then keymgmt verify -fix {where}"
    if kind == "expired":
        return f"keymgmt write {where}/renew valid_to=DURATION"
    if kind == "material_current" and dist is not None:
        # an on-demand rotation cut short before RotateKeyOnDemand: the next rotate finishes it first
        mount_path = where.split("kms/", 1)[0]
        return (f"keymgmt write {mount_path}key/{dist.get('key_name') or 'NAME'}/rotate (finishes an interrupted "
                f"on-demand rotation before it makes a new version; if none was interrupted, report only: {inspect})")
    if kind == "public_key":
        return (f"report only: aws kms get-public-key --key-id {key_id} --region {region} "
                "(material that is not ours cannot be replaced in the same KMS key)")
    if kind == "alias_foreign":
        return (f"report only: aws kms list-aliases --key-id {key_id} --region {region} "
                "(the alias points to a key that is not this distribution's: keymgmt does not take it over)")
    if kind == "stray":
        return (f"report only: {inspect}; aws kms list-resource-tags --key-id {key_id} --region {region} "
                "(keymgmt does not delete keys it has no record of)")
    return f"report only: {inspect}"  # origin, spec: not what keymgmt created there


def _targets(engine: Engine, path: str | None) -> tuple[list[tuple[Mount, str, str]], list[tuple[Mount, str]]]:
    """(distributions to check, providers whose strays to look for) covered by ``path``."""
    if not path:
        mounts = engine.mounts()
        rel_parts: list[str] = []
    else:
        mount, rel = engine.resolve(path)
        mounts = [mount]
        rel_parts = [p for p in rel.split("/") if p]
    dists: list[tuple[Mount, str, str]] = []
    providers: list[tuple[Mount, str]] = []
    for mount in mounts:
        all_kms = engine.store.list(mount.doc("kms"))
        if not rel_parts:
            providers += [(mount, kms) for kms in all_kms]
            dists += [(mount, kms, key) for kms in all_kms for key in engine.store.list(mount.doc("dist", kms))]
        elif rel_parts[0] == "kms" and len(rel_parts) == 2:
            kmsproviders.load_provider(engine, mount, rel_parts[1])
            providers.append((mount, rel_parts[1]))
            dists += [(mount, rel_parts[1], key) for key in engine.store.list(mount.doc("dist", rel_parts[1]))]
        elif rel_parts[0] == "kms" and len(rel_parts) == 4 and rel_parts[2] == "key":
            if engine.store.get(mount.doc("dist", rel_parts[1], rel_parts[3])) is None:
                raise NotFound(f"key {rel_parts[3]!r} is not distributed to KMS provider {rel_parts[1]!r}")
            dists.append((mount, rel_parts[1], rel_parts[3]))
        elif rel_parts[0] == "key" and len(rel_parts) == 2:
            load_key(engine, mount, rel_parts[1])
            dists += [(mount, kms, rel_parts[1])
                      for kms in reconcile.distributed_to(engine, mount, rel_parts[1])]
        else:
            raise UnsupportedPath(f"verify covers a mount, key/NAME, kms/NAME or kms/NAME/key/KEY, not {path}")
    return dists, providers


def verify(engine: Engine, path: str | None = None) -> dict[str, Any]:
    dists, providers = _targets(engine, path)
    from keymgmt_cli.engine.instances import Copies

    copies = Copies(engine.store, engine.state_id())  # two live copies of this state (instances.py)
    drift: list[dict[str, Any]] = []
    known: dict[tuple[str, str], set[str]] = {}  # (mount uuid, kms) → key ids the state knows
    connections: dict[tuple[str, str], Any] = {}
    kms_keys = 0

    def connect(mount: Mount, kms: str) -> Any:
        if (mount.uuid, kms) not in connections:
            doc = kmsproviders.load_provider(engine, mount, kms)
            connections[(mount.uuid, kms)] = reconcile.connect(engine, mount, doc)
        return connections[(mount.uuid, kms)]

    unchecked: dict[tuple[str, str], dict[str, Any]] = {}  # providers that could not be asked

    def could_not_check(mount: Mount, kms: str, error: ProviderError) -> None:
        region = kmsproviders.load_provider(engine, mount, kms)["key_collection"]
        path = f"{mount.path}kms/{kms}"
        unchecked.setdefault((mount.uuid, kms), {"path": path, "region": region, "cause": str(error),
                                                 "fix": f"check {path}'s endpoint and credentials, then keymgmt "
                                                        f"verify {path}; if it is gone for good: keymgmt delete "
                                                        f"-forget {path}/key/KEY"})

    def check_distribution(mount: Mount, kms: str, key_name: str) -> None:
        nonlocal kms_keys
        dist = shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)
        key = shapes.load(engine.store, mount.doc("keys", key_name), shapes.key)
        if dist is None or key is None:
            return
        where = f"{mount.path}kms/{kms}/key/{key_name}"
        provider = connect(mount, kms)
        ids = known.setdefault((mount.uuid, kms), set())

        def report(kind: str, problem: str, version: int | None = None, region: str | None = None,
                   key_id: str | None = None) -> None:
            drift.append({"path": where, "version": version, "region": region or provider.region,
                          "key_id": key_id, "problem": problem, "kind": kind,
                          "fix": fix_for(kind, where, region or provider.region, key_id, dist)})

        if dist.get("state") != "ready":
            report("unfinished", f"unfinished operation ({dist.get('state')}); re-run the command that started it")
        regions = [(provider.region, provider, None)] + [
            (r, provider.in_region(r), r) for r in dist.get("replica_regions", [])]
        latest = str(key["latest_version"])
        for region, regional, replica_region in regions:
            for v, rec in reconcile.versions(dist):
                key_id = rec.get("key_id")
                if not key_id or rec.get("deleted"):
                    continue
                sub = rec if replica_region is None else rec.get("replicas", {}).get(replica_region)
                if replica_region is not None and not (sub and sub.get("created")):
                    continue
                if ondemand.shares_first_key(dist, v):
                    continue  # rotation_mode=on-demand: version 1's KMS key, checked once (and its material below)
                ids.add(key_id)
                kms_keys += 1
                seen: dict[str, dict[str, str]] = {}
                for kind, problem in _check_key(regional, key, dist, v, key_id, sub, seen):
                    report(kind, problem, v, region, key_id)
                if key_id in seen:
                    copies.known(where, region, key_id, seen[key_id])
            latest_rec = dist["versions"].get(latest, {})
            want = latest_rec.get("key_id")
            problem = ondemand.current_material_drift(regional, dist, latest_rec, replica_region)
            if problem:
                report("material_current", problem, int(latest), region, want)
            if replica_region is not None and not latest_rec.get("replicas", {}).get(replica_region, {}).get("imported"):
                continue
            alias = reconcile.alias_name(dist, replica_region)
            target = regional.get_alias_target(alias)
            if target is None:
                report("alias_missing", f"alias {alias} is missing", int(latest), region, want)
            elif target != want:
                # ours (a version of this distribution, or a key carrying its tags): -fix repoints it;
                # anything else is someone else's now, and keymgmt never takes an alias over
                mine = reconcile.ours(regional, target, dist, reconcile.key_tags(engine, mount, kms, key_name, int(latest)))
                report("alias_ours" if mine else "alias_foreign",
                       f"alias {alias} points to {target}, expected version {latest} ({want})",
                       int(latest), region, want if mine else target)
                copies.alias(where, region, alias, target, _tags_of(regional, target))


    for mount, kms, key_name in dists:
        if (mount.uuid, kms) in unchecked:
            continue  # one refusal per provider is enough: the others are checked still
        try:
            check_distribution(mount, kms, key_name)
        except ProviderError as error:  # unreachable, no credentials, refused: say so and go on
            could_not_check(mount, kms, error)

    state_id = engine.state_id()
    searches: list[dict[str, Any]] = []  # per provider: which path found the keys tagged as ours
    for mount, kms in providers:
        if (mount.uuid, kms) in unchecked:
            continue
        try:
            _strays(engine, connect(mount, kms), mount, kms, state_id, known, drift, copies)
        except ProviderError as error:
            could_not_check(mount, kms, error)
        note = getattr(connections.get((mount.uuid, kms)), "tag_search_note", None)
        if note:  # said once per provider: a refused tag:GetResources makes verify cost N calls
            searches.append({"path": f"{mount.path}kms/{kms}", "note": note})
    # in sync only when every provider was asked and nothing drifted
    return {"in_sync": not drift and not unchecked, "distributions": len(dists), "kms_keys": kms_keys,
            "drift": drift, "unchecked": list(unchecked.values()), "tag_search": searches,
            "conflicts": copies.conflicts()}


def _tags_of(provider: Any, key_id: str) -> dict[str, str]:
    """A key's tags, or none when they cannot be read (a key we may not read is not ours)."""
    try:
        return provider.list_resource_tags(key_id)
    except ProviderError:
        return {}


def _strays(engine: Engine, provider: Any, mount: Mount, kms: str, state_id: str,
            known: dict[tuple[str, str], set[str]], drift: list[dict[str, Any]], copies: Any = None) -> None:
    """Keys tagged with this state's id, mount and provider that the state does not know."""
    ids = known.get((mount.uuid, kms), set())
    # tag:GetResources where allowed, else a concurrent listing (provider.tag_search_note)
    for key_id in provider.find_tagged({"keymgmt:state_id": state_id,
                                        "keymgmt:mount": mount.path, "keymgmt:kms": kms}):
        if key_id in ids:
            continue
        description = provider.describe_key(key_id)
        if description is None or description.state in PENDING_DELETION:
            continue  # already on its way out
        where = f"{mount.path}kms/{kms}"
        drift.append({"path": where, "version": None, "region": provider.region,
                      "key_id": key_id, "problem": f"stray key tagged as ours that the state does not "
                                                  f"know ({description.state})",
                      "kind": "stray", "fix": fix_for("stray", where, provider.region, key_id)})
        if copies is not None:  # made by another live copy of this state? (instances.py)
            copies.stray(where, provider.region, key_id, _tags_of(provider, key_id))


def _check_key(provider: Any, key: dict[str, Any], dist: dict[str, Any], v: int, key_id: str,
               sub: dict[str, Any] | None, seen: dict[str, dict[str, str]] | None = None) -> list[tuple[str, str]]:
    """(kind, problem) for each way the KMS key differs from the record; ``seen`` collects the
    tags read (for the instance check, instances.py: no second ListResourceTags)."""
    desc = provider.describe_key(key_id)
    if desc is None:
        return [("missing", "missing in AWS")]
    if desc.state in PENDING_DELETION:
        return [("pending_deletion", f"is {desc.state} in AWS but in use in the state")]
    problems: list[tuple[str, str]] = []
    if desc.origin != "EXTERNAL":
        problems.append(("origin", f"origin is {desc.origin}, expected EXTERNAL"))
    if desc.key_spec != dist["key_spec"] or desc.key_usage != dist["key_usage"]:
        problems.append(("spec", f"is {desc.key_spec}/{desc.key_usage}, expected {dist['key_spec']}/{dist['key_usage']}"))
    if sub is not None and (sub.get("suspended") or dist.get("suspended")):
        # suspended on purpose (the kill switch): in sync exactly when the material is gone
        if desc.state != "PendingImport":
            problems.append(("suspended_material", f"is {desc.state}, expected PendingImport (the key is suspended)"))
        return problems
    if desc.state == "PendingImport":
        expired = sub.get("valid_to") if sub else None
        problems.append(("expired", f"key material expired at {expired} (PendingImport); renew it")
                        if expired and expired <= _now_text() else
                        ("not_imported", "key material is not imported (PendingImport)"))
    elif desc.state in ("Enabled", "Disabled"):
        want_enabled = v >= key["min_enabled_version"]
        if desc.enabled != want_enabled:
            problems.append(("enabled", f"is {desc.state}, expected {'Enabled' if want_enabled else 'Disabled'} "
                                        f"(min_enabled_version {key['min_enabled_version']})"))
    tags = provider.list_resource_tags(key_id)
    if seen is not None:
        seen[key_id] = tags
    for tag, value in converge.checked_tags(key, dist, v).items():
        if tags.get(tag) != value:
            problems.append(("tag", f"tag {tag} is {tags.get(tag)!r}, expected {value!r}"))
    local_pem = key["versions"].get(str(v), {}).get("public_key")
    if local_pem and desc.state in ("Enabled", "Disabled") and desc.enabled:
        if provider.get_public_key(key_id) != _pem_to_der(local_pem):
            problems.append(("public_key", "GetPublicKey differs from the local public key: the material in KMS is not ours"))
    return problems


def _now_text() -> str:
    from keymgmt_cli.engine.durations import rfc3339, utc_now

    return rfc3339(utc_now())


def _pem_to_der(pem: str) -> bytes:
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)
