"""The dry run: the real engine code, run against a copy-on-write overlay of the store and a
planning provider, so that nothing is changed and the plan is what the real run would do.

- ``OverlayStore`` answers reads from the real store and keeps every write, delete and collection
  delete in memory; locks are process-local (no lock file is created). ``changes()`` lists each
  document the command would create, update or delete, with the names of the fields that change
  (never their values: sealed secrets and material stay out of the plan).
- ``PlanningFactory`` wraps the real provider factory. Its providers send the read-only calls the
  engine needs (ListAliases, ListKeys, ListResourceTags, DescribeKey, GetPublicKey) to the real
  provider, and answer every mutating call (and GetParametersForImport, which needs a key that
  does not exist yet) with a synthetic result kept in a planned world (new key ids, alias targets,
  enabled/imported/deleted flags), which later reads in the same run see. Every call, sent or
  planned, is listed per region in the order made; the bulk ListResourceTags of a recovery
  search (``list_tags_of_keys``) is one call with its number of ``keys``, as the run records it.

What a plan cannot foresee: AWS refusing a call (permissions, quotas, an alias taken meanwhile) and
other runners changing the state or AWS between the plan and the run.
"""

from __future__ import annotations

import copy
import threading
import uuid
from contextlib import contextmanager

from keymgmt_cli.audit.calls import BULK, OPERATIONS, bulk_keys, key_id_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Callable


class OverlayStore:
    """A copy-on-write view of a DocumentStore: reads see the base plus the overlay, writes stay here."""

    def __init__(self, base: Any):
        self.base = base
        self.backend = base.backend
        self.location = base.location
        self._docs: dict[str, dict[str, Any] | None] = {}
        self._dropped: list[str] = []  # collection prefixes deleted ("ns/u1/")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._order: list[str] = []

    def __getattr__(self, name: str) -> Any:  # home and other descriptive attributes
        return getattr(self.base, name)

    def _gone(self, doc_id: str) -> bool:
        return any(doc_id.startswith(prefix) for prefix in self._dropped)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        with self._guard:
            if doc_id in self._docs:
                doc = self._docs[doc_id]
                return copy.deepcopy(doc) if doc is not None else None
            if self._gone(doc_id):
                return None
        return self.base.get(doc_id)

    def list(self, collection: str) -> list[str]:
        prefix = collection.rstrip("/") + "/"
        with self._guard:
            names = set() if self._gone(prefix) else set(self.base.list(collection))
            for doc_id, doc in self._docs.items():
                if doc_id.startswith(prefix) and "/" not in doc_id[len(prefix):]:
                    (names.add if doc is not None else names.discard)(doc_id[len(prefix):])
            return sorted(names)

    def _touch(self, doc_id: str) -> None:
        if doc_id not in self._order:
            self._order.append(doc_id)

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        with self._guard:
            self._docs[doc_id] = copy.deepcopy(doc)
            self._touch(doc_id)

    def delete(self, doc_id: str) -> bool:
        existed = self.get(doc_id) is not None
        with self._guard:
            self._docs[doc_id] = None
            self._touch(doc_id)
        return existed

    def delete_collection(self, collection: str) -> None:
        prefix = collection.rstrip("/") + "/"
        doomed = self._walk(collection)
        with self._guard:
            for doc_id in doomed:
                self._docs[doc_id] = None
                self._touch(doc_id)
            self._dropped.append(prefix)

    def _walk(self, collection: str) -> list[str]:
        out = []
        for name in self.list(collection):
            doc_id = f"{collection.rstrip('/')}/{name}"
            out.append(doc_id)
        # sub-collections: every name that is also a collection (the base lists documents only)
        for name in self._subcollections(collection):
            out += self._walk(f"{collection.rstrip('/')}/{name}")
        return out

    def _subcollections(self, collection: str) -> list[str]:
        names = set()
        root = getattr(self.base, "home", None)
        if root is not None and self.backend == "file":
            import os

            path = os.path.join(str(root), *collection.strip("/").split("/"))
            try:
                names = {n.rstrip("~") for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))}
            except OSError:
                names = set()
        elif hasattr(self.base, "_docs"):  # the in-memory store
            prefix = collection.rstrip("/") + "/"
            names = {k[len(prefix):].split("/")[0] for k in self.base._docs if k.startswith(prefix)
                     and "/" in k[len(prefix):]}
        return sorted(n for n in names if not n.startswith("."))

    @contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def changes(self) -> list[dict[str, Any]]:
        """Each document the run would change, in first-touched order: action and changed field names."""
        out = []
        for doc_id in self._order:
            after = self._docs.get(doc_id)
            before = self.base.get(doc_id)
            if before is None and after is None:
                continue
            if after is None:
                out.append({"document": doc_id, "action": "delete", "fields": sorted(before or {})})
            elif before is None:
                out.append({"document": doc_id, "action": "create", "fields": sorted(after)})
            else:
                changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                if changed:
                    out.append({"document": doc_id, "action": "update", "fields": changed})
        return out


# -- the planning provider -------------------------------------------------------------------------
_WRAPPING: dict[str, bytes] = {}
_WRAPPING_LOCK = threading.Lock()


def _wrapping_public_key(spec: str) -> bytes:
    """A throwaway RSA-2048 public key (whatever the spec: the wrapped bytes are thrown away, and
    generating RSA-4096 costs seconds), so the engine wraps material exactly as in a real run."""
    with _WRAPPING_LOCK:
        if "rsa" not in _WRAPPING:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _WRAPPING["rsa"] = private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return _WRAPPING["rsa"]


class PlanWorld:
    """What the plan has done so far: keys it created, flags it changed, aliases it set; the calls."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.keys: dict[tuple[str, str], dict[str, Any]] = {}
        self.aliases: dict[tuple[str, str], str | None] = {}
        self.calls: list[dict[str, Any]] = []

    def record(self, region: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any,
               sent: bool) -> None:
        operation, mutating = OPERATIONS[method]
        call = {"region": region, "operation": operation, "key_id": key_id_of(method, args, kwargs, result),
                "mutating": mutating, "sent": sent}
        if method in BULK:  # one operation for many keys, listed once as the audit trail records it
            call["keys"] = bulk_keys(args, kwargs)
        with self.lock:
            self.calls.append(call)

    def by_region(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for call in self.calls:
            out.setdefault(call["region"], []).append({k: v for k, v in call.items() if k != "region"})
        return out


class PlanningProvider:
    def __init__(self, inner: Any, region: str, world: PlanWorld):
        self._inner, self.region, self._world = inner, region, world

    def in_region(self, region: str) -> PlanningProvider:
        return PlanningProvider(self._inner.in_region(region) if self._inner is not None else None, region,
                                self._world)

    def _sent(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self._inner, method)(*args, **kwargs)
        self._world.record(self.region, method, args, kwargs, result, True)
        return result

    def _planned(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any = None) -> Any:
        self._world.record(self.region, method, args, kwargs, result, False)
        return result

    def _key(self, key_id: str) -> dict[str, Any] | None:
        return self._world.keys.get((self.region, key_id))

    # mutating calls: answered here
    def create_key(self, *, key_spec: str, key_usage: str, description: str, tags: dict[str, str],
                   multi_region: bool = False) -> str:
        key_id = f"mrk-{uuid.uuid4().hex}" if multi_region else str(uuid.uuid4())
        with self._world.lock:
            self._world.keys[(self.region, key_id)] = {"key_spec": key_spec, "key_usage": key_usage,
                                                       "tags": dict(tags), "enabled": False, "imported": False,
                                                       "state": "PendingImport", "multi_region": multi_region,
                                                       "description": description}
        return self._planned("create_key", (), {}, key_id)

    def get_parameters_for_import(self, key_id: str, wrapping_algorithm: str, wrapping_key_spec: str) -> Any:
        from keymgmt_cli.providers.base import ImportParameters

        params = ImportParameters(key_id=key_id, public_key_der=_wrapping_public_key(wrapping_key_spec),
                                  import_token=b"planned-import-token")
        self._planned("get_parameters_for_import", (key_id,), {})
        return params

    def import_key_material(self, key_id: str, import_token: bytes, encrypted_key_material: bytes,
                            valid_to: Any = None, import_type: str | None = None) -> str | None:
        self._set(key_id, imported=True, enabled=True, state="Enabled")
        kwargs = {"import_type": import_type} if import_type else {}
        self._planned("import_key_material", (key_id,), kwargs)
        key = self._key(key_id) or {}  # a key the plan did not make, or a replica of one, has no spec here
        return uuid.uuid4().hex * 2 if (key.get("key_spec") or "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT" else None

    def delete_imported_key_material(self, key_id: str, key_material_id: str | None = None) -> None:
        self._set(key_id, imported=False, enabled=False, state="PendingImport")
        self._planned("delete_imported_key_material", (key_id,), {})

    def rotate_key_on_demand(self, key_id: str) -> None:
        self._planned("rotate_key_on_demand", (key_id,), {})

    def enable_key(self, key_id: str) -> None:
        self._set(key_id, enabled=True, state="Enabled")
        self._planned("enable_key", (key_id,), {})

    def disable_key(self, key_id: str) -> None:
        self._set(key_id, enabled=False, state="Disabled")
        self._planned("disable_key", (key_id,), {})

    def schedule_key_deletion(self, key_id: str, pending_window_days: int) -> None:
        self._set(key_id, enabled=False, state="PendingDeletion")
        self._planned("schedule_key_deletion", (key_id,), {})

    def create_alias(self, alias_name: str, key_id: str) -> None:
        with self._world.lock:
            self._world.aliases[(self.region, alias_name)] = key_id
        self._planned("create_alias", (alias_name, key_id), {})

    def update_alias(self, alias_name: str, key_id: str) -> None:
        with self._world.lock:
            self._world.aliases[(self.region, alias_name)] = key_id
        self._planned("update_alias", (alias_name, key_id), {})

    def delete_alias(self, alias_name: str) -> None:
        with self._world.lock:
            self._world.aliases[(self.region, alias_name)] = None
        self._planned("delete_alias", (alias_name,), {})

    def tag_resource(self, key_id: str, tags: dict[str, str]) -> None:
        with self._world.lock:
            key = self._world.keys.get((self.region, key_id))
            if key is not None and not key.get("planned_only"):
                key["tags"].update(tags)
        self._planned("tag_resource", (key_id,), {})

    def replicate_key(self, key_id: str, replica_region: str, *, description: str, tags: dict[str, str]) -> str:
        with self._world.lock:
            source = dict(self._key(key_id) or {"key_spec": "", "key_usage": "", "multi_region": True})
            source.update(tags=dict(tags), enabled=False, imported=False, state="PendingImport",
                          description=description)
            self._world.keys[(replica_region, key_id)] = source
        self._planned("replicate_key", (key_id,), {})
        return key_id

    def _set(self, key_id: str, **flags: Any) -> None:
        with self._world.lock:
            self._world.keys.setdefault((self.region, key_id), {"tags": {}, "planned_only": True}).update(flags)

    # read-only calls: the real provider, seen through what the plan has done
    def get_alias_target(self, alias_name: str) -> str | None:
        with self._world.lock:
            known = (self.region, alias_name) in self._world.aliases
            target = self._world.aliases.get((self.region, alias_name))
        if known:
            return self._answer("get_alias_target", alias_name, target)
        return self._sent("get_alias_target", alias_name)

    def _answer(self, method: str, arg: str, value: Any) -> Any:
        # the real run sends this read; the plan knows its answer already and still lists it
        self._world.record(self.region, method, (arg,), {}, value, False)
        return value

    def list_keys(self) -> list[str]:
        found = list(self._sent("list_keys"))
        with self._world.lock:
            found += [k for (region, k), v in self._world.keys.items() if region == self.region
                      and not v.get("planned_only") and k not in found]
        return found

    def list_resource_tags(self, key_id: str) -> dict[str, str]:
        key = self._key(key_id)
        if key is not None and not key.get("planned_only"):
            return self._answer("list_resource_tags", key_id, dict(key["tags"]))
        return self._sent("list_resource_tags", key_id)

    def list_tags_of_keys(self, key_ids: list[str]) -> Any:
        """One bulk read, as the run makes it: the keys the plan made are answered from the plan's
        world, the rest sent in one ``list_tags_of_keys``; listed as one call, as the run records it."""
        from keymgmt_cli.providers.base import TagReading

        with self._world.lock:
            planned = {k: dict(key["tags"]) for k in key_ids
                       if (key := self._key(k)) is not None and not key.get("planned_only")}
        real = [k for k in key_ids if k not in planned]
        reading = self._inner.list_tags_of_keys(real) if real else TagReading(tags={})
        reading.tags.update(planned)
        self._world.record(self.region, "list_tags_of_keys", (key_ids,), {}, reading, bool(real))
        return reading

    def describe_key(self, key_id: str) -> Any:
        key = self._key(key_id)
        if key is not None and not key.get("planned_only"):
            from keymgmt_cli.providers.base import KeyDescription

            return self._answer("describe_key", key_id, KeyDescription(
                key_id=key_id, arn=f"arn:aws:kms:{self.region}:000000000000:key/{key_id}", state=key["state"],
                enabled=key["enabled"], key_spec=key.get("key_spec", ""), key_usage=key.get("key_usage", ""),
                origin="EXTERNAL", multi_region=bool(key.get("multi_region")), description=key.get("description", "")))
        desc = self._sent("describe_key", key_id)
        if desc is not None and key is not None:
            import dataclasses

            desc = dataclasses.replace(desc, **{k: key[k] for k in ("state", "enabled") if k in key})
        return desc

    def get_public_key(self, key_id: str) -> bytes:
        return self._sent("get_public_key", key_id)


class PlanningFactory:
    def __init__(self, factory: Callable[[Any], Any] | None, world: PlanWorld):
        self.factory, self.world = factory, world

    def __call__(self, config: Any) -> PlanningProvider:
        from keymgmt_cli.errors import EngineError

        if self.factory is None:
            raise EngineError("no KMS provider factory configured")
        return PlanningProvider(self.factory(config), config.region, self.world)


def plan(engine: Any, call: Callable[[Any], Any]) -> dict[str, Any]:
    """Run ``call(planning_engine)`` on a planning copy of ``engine``; the plan of what it would do.

    ``engine`` itself (its store, its provider factory) is left as it was.
    """
    world = PlanWorld()
    overlay = OverlayStore(engine.store)
    planner = copy.copy(engine)
    planner.store = overlay
    planner.provider_factory = PlanningFactory(engine.provider_factory, world)
    if hasattr(planner, "_state_doc"):
        planner._state_doc = None
    response = call(planner)
    data = getattr(response, "data", None)
    return {"dry_run": True, "state_changes": overlay.changes(), "aws_calls": world.by_region(),
            "mutating_calls": sum(1 for c in world.calls if c["mutating"]),
            "warnings": list(getattr(response, "warnings", []) or []),
            "response": data}
