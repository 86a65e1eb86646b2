"""The engine: resolves the mount, routes the path, types the fields, calls the handler.

It receives its dependencies (ARCHITECTURE.md example 9): a DocumentStore, a secret box that
seals and unseals under the master key (resolved only when first used), and a factory that
turns a ProviderConfig into a KmsProvider. It imports neither click, boto3 nor keyring.
"""

from __future__ import annotations

import time

from keymgmt_cli.engine import shapes
from keymgmt_cli.engine.mounts import Mount, now_rfc3339
from keymgmt_cli.engine.names import normalize_mount_path
from keymgmt_cli.engine.routing import OPERATIONS, Request, Response, match
from keymgmt_cli.errors import InvalidRequest, NotFound, PreconditionFailed, UnsupportedPath

TYPE_CHECKING = False  # typing costs milliseconds on the read path
if TYPE_CHECKING:
    from typing import Any, Callable

STATE_DOC = "state"
DEFAULT_MOUNT = "keymgmt/"
MOUNT_TYPES = ("keymgmt",)


def _new_uuid() -> str:
    import uuid  # only when a mount or the state is created

    return uuid.uuid4().hex


class Engine:
    def __init__(self, store: Any, secrets: Any = None, provider_factory: Callable[..., Any] | None = None,
                 *, clock: Callable[[], float] = time.time, progress: Callable[[str], None] | None = None):
        self.store = store
        self.secrets = secrets
        self.provider_factory = provider_factory
        self.clock = clock
        self.progress = progress or (lambda message: None)
        self._state_doc: dict[str, Any] | None = None

    # -- requests ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        from keymgmt_cli.engine.paths import ROUTES  # the table imports the handlers

        if request.operation not in OPERATIONS:
            raise InvalidRequest(f"unknown operation {request.operation!r}")
        mount, rel = self.resolve(request.path)
        _route, op, params = match(ROUTES, rel, request.operation, mount.path)
        values: dict[str, Any] = {}
        ignored: list[str] = []
        replaced: list[str] = []
        data = request.data
        if data:  # reads and lists carry none: they skip the schema machinery entirely
            from keymgmt_cli.engine.fields import parse_fields

            # As Vault's framework: the path's captures win over data of the same name, with a warning.
            replaced = sorted(k for k in params if k in data)
            data = {k: v for k, v in data.items() if k not in params}
            values, ignored = parse_fields(op.fields, data)
        response = op.handler(self, mount, values, **params)
        if replaced:
            response.warnings.insert(0, "Endpoint replaced the value of these parameters with the values "
                                        f"captured from the endpoint's path: [{' '.join(replaced)}]")
        if ignored:
            from keymgmt_cli.engine.fields import ignored_warning

            response.warnings.insert(0, ignored_warning(ignored))
        return response

    def resolve(self, path: str) -> tuple[Mount, str]:
        clean = path.lstrip("/")
        if not clean:
            raise UnsupportedPath("missing path", hint="paths start with a mount, as keymgmt/key/NAME")
        best: Mount | None = None
        for mount in self.mounts():
            if (clean + "/").startswith(mount.path) and (best is None or len(mount.path) > len(best.path)):
                best = mount
        if best is None:
            raise UnsupportedPath(f"no secrets engine is mounted at the path {clean!r}",
                                  hint="run 'keymgmt secrets list' to see the mounts")
        rel = (clean + "/")[len(best.path):].strip("/")
        return best, rel

    # -- state -------------------------------------------------------------------------------------
    # One document, "state", holds the state's id and its mount table, so resolving a path costs a
    # single read (one GetItem on DynamoDB) and its absence means "nothing written yet".
    def _state(self) -> dict[str, Any] | None:
        if self._state_doc is None:
            doc = self.store.get(STATE_DOC)
            if doc is not None and "mounts" in doc:
                shapes.state(STATE_DOC, doc)
            if doc is not None and "mounts" not in doc:
                # pre-release layout: one document per mount under mounts/ (rewritten on the next mount change)
                doc["mounts"] = {}
                for name in self.store.list("mounts"):
                    old = self.store.get("mounts/" + name) or {}
                    if "path" in old:
                        doc["mounts"][old["path"]] = {k: old.get(k, "") for k in ("uuid", "type", "description")}
            self._state_doc = doc
        return self._state_doc

    def initialized(self) -> bool:
        return self._state() is not None

    def ensure_initialized(self) -> None:
        """Create the state on the first change (never on a read: reads leave no trace)."""
        if self.initialized():
            return
        with self.store.lock("state"):
            self._state_doc = None
            if self.initialized():
                return
            doc = {"format": 1, "state_id": _new_uuid(), "created": now_rfc3339(),
                   "mounts": {DEFAULT_MOUNT: {"uuid": "default", "type": "keymgmt", "description": ""}}}
            self.store.put(STATE_DOC, doc)
            self._state_doc = doc

    def state_id(self) -> str:
        doc = self._state()
        return doc["state_id"] if doc else ""

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        self.ensure_initialized()
        self.store.put(doc_id, doc)

    # -- mounts ------------------------------------------------------------------------------------
    def mounts(self) -> list[Mount]:
        doc = self._state()
        if doc is None:
            return [Mount(DEFAULT_MOUNT, "default")]
        return sorted((Mount(path, m["uuid"], m.get("type", "keymgmt"), m.get("description", ""))
                       for path, m in doc["mounts"].items()), key=lambda m: m.path)

    def _update_mounts(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Read-modify-write the mount table under the state lock (parallel enables lose nothing)."""
        self.ensure_initialized()
        with self.store.lock("state"):
            self._state_doc = None
            doc = self._state()
            result = change(doc["mounts"])
            self.store.put(STATE_DOC, doc)
            return result

    def enable_mount(self, engine_type: str, path: str | None, description: str = "") -> Mount:
        if engine_type not in MOUNT_TYPES:
            raise InvalidRequest(f"unknown secrets engine type {engine_type!r}; allowed: {', '.join(MOUNT_TYPES)}")
        mount_path = normalize_mount_path(path or engine_type)

        def add(mounts: dict[str, Any]) -> Mount:
            for existing, entry in mounts.items():
                if existing == mount_path and entry["uuid"] == "default" and not entry.get("enabled"):
                    # keymgmt/ is there from the first run, unasked; Vault's documented first step,
                    # `secrets enable keymgmt`, adopts it once (its keys stay), then it is in use
                    entry["enabled"] = True
                    entry["description"] = description or entry.get("description", "")
                    return Mount(mount_path, "default", entry.get("type", "keymgmt"), entry["description"])
                if existing == mount_path:
                    raise PreconditionFailed(f"path is already in use at {mount_path}")
                if mount_path.startswith(existing) or existing.startswith(mount_path):
                    raise PreconditionFailed(f"mount path {mount_path} conflicts with the existing mount {existing}")
            mount = Mount(mount_path, _new_uuid(), engine_type, description)
            mounts[mount_path] = {"uuid": mount.uuid, "type": mount.type, "description": description}
            return mount

        return self._update_mounts(add)

    def disable_mount(self, path: str, force: bool = False) -> None:
        """Disable a mount and delete its data. Refused while keys are distributed (remove them
        first), and, unless ``force``, while any key has deletion_allowed=false: Vault deletes
        them silently; we do not (a documented difference)."""
        mount_path = normalize_mount_path(path)

        def remove(mounts: dict[str, Any]) -> Mount:
            if mount_path not in mounts:
                raise NotFound(f"no secrets engine is mounted at {mount_path}")
            mount = Mount(mount_path, mounts[mount_path]["uuid"])
            for kms in self.store.list(mount.doc("kms")):
                if self.store.list(mount.doc("dist", kms)):
                    raise PreconditionFailed(
                        f"cannot disable {mount_path}: keys are still distributed to KMS provider {kms!r}",
                        hint="remove them first: keymgmt delete " + mount_path + f"kms/{kms}/key/<name>")
            if not force:
                kept = [key for key in self.store.list(mount.doc("keys"))
                        if not (shapes.load(self.store, mount.doc("keys", key), shapes.key) or {}).get(
                            "deletion_allowed", False)]
                if kept:
                    raise PreconditionFailed(
                        f"cannot disable {mount_path}: {len(kept)} key(s) have deletion_allowed=false "
                        f"({', '.join(kept[:5])}{', ...' if len(kept) > 5 else ''})",
                        hint=f"allow it per key (keymgmt write {mount_path}key/{kept[0]} deletion_allowed=true) "
                             f"or disable with -force")
            del mounts[mount_path]
            return mount

        if not self.initialized() and normalize_mount_path(path) != DEFAULT_MOUNT:
            raise NotFound(f"no secrets engine is mounted at {mount_path}")
        # The mount table first: a crash afterwards leaves unreachable data, never a half mount.
        mount = self._update_mounts(remove)
        self.store.delete_collection(mount.doc())

    def status(self) -> dict[str, Any]:
        """Mounts with their counts, and every unfinished operation as a record a script can act
        on: operation, path, provider, since (when known), the command that finishes it and the one
        that abandons it (None where there is none)."""
        mounts = []
        unfinished: list[dict[str, Any]] = []
        for mount in self.mounts():
            keys = self.store.list(mount.doc("keys"))
            providers = self.store.list(mount.doc("kms"))
            dists = 0
            for kms in providers:
                for key in self.store.list(mount.doc("dist", kms)):
                    dists += 1
                    doc = shapes.load(self.store, mount.doc("dist", kms, key), shapes.distribution) or {}
                    path = f"{mount.path}kms/{kms}/key/{key}"
                    state = doc.get("state", "ready")
                    if state == "distributing":
                        unfinished.append(_unfinished("distribute", path, kms, doc.get("created"),
                                                      f"keymgmt write {path} purpose={','.join(doc['purpose'])}",
                                                      f"keymgmt delete {path}"))
                    elif state == "removing":
                        unfinished.append(_unfinished("remove", path, kms, doc.get("removing_since"),
                                                      f"keymgmt delete {path}", None))
                    if doc.get("renewing"):
                        unfinished.append(_unfinished("renew", path, kms, None,
                                                      f"keymgmt write {path}/renew valid_to={doc['renewing']['spec']}",
                                                      None))
                    if doc.get("suspended") and state == "ready":
                        # suspended on purpose is not unfinished; a half-done suspension is finished by repeating it
                        pass
            for key in keys:
                doc = shapes.load(self.store, mount.doc("keys", key), shapes.key) or {}
                pending = doc.get("pending")
                if pending:
                    path = f"{mount.path}key/{key}"
                    entry = _unfinished(pending.get("op", "rotate"), path, None, pending.get("since"),
                                        f"keymgmt write -f {path}/rotate", f"keymgmt delete {path}/rotate")
                    entry["version"] = pending.get("version")
                    unfinished.append(entry)
            mounts.append({"path": mount.path, "type": mount.type, "keys": len(keys),
                           "kms_providers": len(providers), "distributions": dists})
        return {"mounts": mounts, "unfinished": unfinished, "initialized": self.initialized()}


def _unfinished(operation: str, path: str, provider: str | None, since: str | None, finish: str,
                abandon: str | None) -> dict[str, Any]:
    return {"operation": operation, "path": path, "provider": provider, "since": since,
            "finish": finish, "abandon": abandon}
