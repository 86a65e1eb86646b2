"""The engine: resolves the mount, routes the path, types the fields, calls the handler.

It receives its dependencies (ARCHITECTURE.md example 9): a DocumentStore, a secret box that
seals and unseals under the master key (resolved only when first used), and a factory that
turns a ProviderConfig into a KmsProvider. It imports neither click, boto3 nor keyring.
"""

from __future__ import annotations

import time

from keymgmt_cli.engine.fields import ignored_warning, parse_fields
from keymgmt_cli.engine.names import normalize_mount_path
from keymgmt_cli.engine.routing import OPERATIONS, Request, Response, match
from keymgmt_cli.errors import InvalidRequest, NotFound, PreconditionFailed, UnsupportedPath

TYPE_CHECKING = False  # typing costs milliseconds on the read path
if TYPE_CHECKING:
    from typing import Any, Callable

STATE_DOC = "state"
DEFAULT_MOUNT = "keymgmt/"
MOUNT_TYPES = ("keymgmt",)


class Mount:
    """A mount: its path ("keymgmt/") and the uuid that names its namespace in the store."""

    __slots__ = ("path", "uuid", "type", "description")

    def __init__(self, path: str, uuid: str, type: str = "keymgmt", description: str = ""):
        self.path, self.uuid, self.type, self.description = path, uuid, type, description

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and (self.path, self.uuid) == (other.path, other.uuid)

    def __repr__(self) -> str:
        return f"Mount({self.path!r}, {self.uuid!r})"

    def doc(self, *parts: str) -> str:
        return "/".join(("ns", self.uuid) + parts)

    def lock(self, kind: str, name: str) -> str:
        return f"{self.uuid}.{kind}.{name}"


def _mount_doc_id(path: str) -> str:
    # mount paths hold only [A-Za-z0-9_.-/]; '/' becomes '%2F' to stay one id segment
    return "mounts/" + path.rstrip("/").replace("/", "%2F")


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

    # -- requests ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        from keymgmt_cli.engine.paths import ROUTES  # the table imports the handlers

        if request.operation not in OPERATIONS:
            raise InvalidRequest(f"unknown operation {request.operation!r}")
        mount, rel = self.resolve(request.path)
        _route, op, params = match(ROUTES, rel, request.operation, mount.path)
        values, ignored = parse_fields(op.fields, request.data)
        response = op.handler(self, mount, values, **params)
        if ignored:
            response.warnings.insert(0, ignored_warning(ignored))
        return response

    def resolve(self, path: str) -> tuple[Mount, str]:
        clean = path.strip().lstrip("/")
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
    def initialized(self) -> bool:
        return self.store.get(STATE_DOC) is not None

    def ensure_initialized(self) -> None:
        """Create the state on the first change (never on a read: reads leave no trace)."""
        if self.initialized():
            return
        with self.store.lock("state"):
            if self.initialized():
                return
            # read first: a backend with conditional writes (DynamoDB) conditions a put on what was read,
            # and a crash between these two puts must not leave a mount no later put can replace
            self.store.get(_mount_doc_id(DEFAULT_MOUNT))
            self.store.put(_mount_doc_id(DEFAULT_MOUNT), {"path": DEFAULT_MOUNT, "uuid": "default",
                                                          "type": "keymgmt", "description": ""})
            self.store.put(STATE_DOC, {"format": 1, "state_id": _new_uuid(), "created": now_rfc3339()})

    def state_id(self) -> str:
        doc = self.store.get(STATE_DOC)
        return doc["state_id"] if doc else ""

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        self.ensure_initialized()
        self.store.put(doc_id, doc)

    # -- mounts ------------------------------------------------------------------------------------
    def mounts(self) -> list[Mount]:
        if not self.initialized():
            return [Mount(DEFAULT_MOUNT, "default")]
        out = []
        for name in self.store.list("mounts"):
            doc = self.store.get("mounts/" + name)
            if doc:
                out.append(Mount(doc["path"], doc["uuid"], doc.get("type", "keymgmt"), doc.get("description", "")))
        return sorted(out, key=lambda m: m.path)

    def enable_mount(self, engine_type: str, path: str | None, description: str = "") -> Mount:
        if engine_type not in MOUNT_TYPES:
            raise InvalidRequest(f"unknown secrets engine type {engine_type!r}; allowed: {', '.join(MOUNT_TYPES)}")
        mount_path = normalize_mount_path(path or engine_type)
        self.ensure_initialized()
        with self.store.lock("mounts"):
            for existing in self.mounts():
                if existing.path == mount_path:
                    raise PreconditionFailed(f"path is already in use at {mount_path}")
                if mount_path.startswith(existing.path) or existing.path.startswith(mount_path):
                    raise PreconditionFailed(
                        f"mount path {mount_path} conflicts with the existing mount {existing.path}")
            mount = Mount(mount_path, _new_uuid(), engine_type, description)
            self.put(_mount_doc_id(mount_path), {"path": mount.path, "uuid": mount.uuid,
                                                 "type": mount.type, "description": description})
        return mount

    def disable_mount(self, path: str) -> None:
        mount_path = normalize_mount_path(path)
        with self.store.lock("mounts"):
            mount = next((m for m in self.mounts() if m.path == mount_path), None)
            if mount is None:
                raise NotFound(f"no secrets engine is mounted at {mount_path}")
            for kms in self.store.list(mount.doc("kms")):
                if self.store.list(mount.doc("dist", kms)):
                    raise PreconditionFailed(
                        f"cannot disable {mount_path}: keys are still distributed to KMS provider {kms!r}",
                        hint="remove them first: keymgmt delete " + mount_path + f"kms/{kms}/key/<name>")
            self.ensure_initialized()
            # Mount document first: a crash afterwards leaves unreachable data, never a half mount.
            self.store.delete(_mount_doc_id(mount_path))
            self.store.delete_collection(mount.doc())

    def status(self) -> dict[str, Any]:
        mounts = []
        unfinished = []
        for mount in self.mounts():
            keys = self.store.list(mount.doc("keys"))
            providers = self.store.list(mount.doc("kms"))
            dists = 0
            for kms in providers:
                for key in self.store.list(mount.doc("dist", kms)):
                    dists += 1
                    doc = self.store.get(mount.doc("dist", kms, key)) or {}
                    if doc.get("state", "ready") == "distributing":
                        unfinished.append(f"{mount.path}kms/{kms}/key/{key}: distributing; finish: keymgmt write "
                                          f"{mount.path}kms/{kms}/key/{key} purpose={','.join(doc['purpose'])}"
                                          f"  abandon: keymgmt delete {mount.path}kms/{kms}/key/{key}")
                    elif doc.get("state", "ready") == "removing":
                        unfinished.append(f"{mount.path}kms/{kms}/key/{key}: removing; finish: keymgmt delete "
                                          f"{mount.path}kms/{kms}/key/{key}")
            for key in keys:
                doc = self.store.get(mount.doc("keys", key)) or {}
                if doc.get("pending"):
                    unfinished.append(f"{mount.path}key/{key}: {doc['pending'].get('op')} "
                                      f"to version {doc['pending'].get('version', '?')}; finish: keymgmt write -f "
                                      f"{mount.path}key/{key}/rotate  abandon: keymgmt delete {mount.path}key/{key}/rotate")
            mounts.append({"path": mount.path, "type": mount.type, "keys": len(keys),
                           "kms_providers": len(providers), "distributions": dists})
        return {"mounts": mounts, "unfinished": unfinished, "initialized": self.initialized()}


def now_rfc3339() -> str:
    """Vault's creation_time shape: 2020-11-02T15:54:58.768473-08:00 (local offset)."""
    from datetime import datetime, timezone  # writes only: reads never format times

    return datetime.now(timezone.utc).astimezone().isoformat()

