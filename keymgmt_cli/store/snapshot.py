"""Snapshots: the whole state in one authenticated file, and restoring it into an empty state.

The file itself (its layout, digest and MAC under a key derived from the master key) is
``snapshotfile.py``. The body holds every document as stored (format 2: with its ``_auth`` MAC
tag, and the ``meta/revisions/*`` rollback records; ``auth.py``): secrets stay sealed under the
master key, so a snapshot alone reveals nothing. ``save`` verifies every document through an
``AuthStore`` under the proven master key before recording the raw bytes of the backend, so a
state edited outside keymgmt is never snapshotted; ``restore`` verifies every document of the
snapshot (MAC, state id, revisions) before writing anything, writes them raw into the target's
backend (never through ``AuthStore.put``, which would re-MAC them) and verifies the restored state
before it is done. It also holds what a restore needs to open them: the state's seal (``local``:
the check value of the key in the keyring, key file or environment; ``env`` or ``awskms``: the
seal record, whose data key only AWS KMS can decrypt).

Consistency: ``save`` holds every lock the engine takes (each key and KMS provider of every
mount, then the state lock) while it reads, so no operation is half applied in a snapshot.

``restore`` refuses a modified file, a key that does not match the snapshot's check value, and
a non-empty target unless ``force``; it is resumable (a marker ``meta/restoring`` names the
snapshot until the last document is written) and records ``meta/origin``: this state is a copy
of state id X, restored from where and when, from which instance of it (``retired.py``), and
which instances are known retired; the copy gets an instance id of its own. Re-running a restore
that finished (its origin names the same snapshot) writes nothing, so that
``-retire-source`` can be finished by running the same command again.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from ..errors import PreconditionFailed, StoreError
from . import keysource
from .auth import AUTH_FIELD, AuthStore, derive_auth_key, is_authenticated, is_marker
from .masterkey import MasterKey
from .retired import INSTANCE_DOC, ORIGIN_DOC, lineage, new_instance, retired_instances
from .snapshotfile import FORMAT, encode, read, verify

RESTORING_DOC = "meta/restoring"
#: Documents a snapshot does not carry: this copy's own lifecycle markers and identity (a restore
#: makes a new instance id and origin; the body's "instance" says what the copy must know).
LOCAL_ONLY = frozenset({"meta/retired", "meta/rekey", RESTORING_DOC, INSTANCE_DOC, ORIGIN_DOC})
LOCK_TIMEOUT = 120.0


def _raw(store: Any) -> Any:
    """The backend under the document MACs (``AuthStore.inner``), or ``store`` itself."""
    return getattr(store, "inner", store) if isinstance(store, AuthStore) else store


def _checker(store: Any, master: bytes) -> AuthStore:
    """An ``AuthStore`` over ``store``'s backend that verifies under ``master`` (proven already)."""
    auth_key = derive_auth_key(master)
    return AuthStore(_raw(store), lambda: auth_key)


# -- enumerating and locking -----------------------------------------------------------------


def all_ids(store: Any) -> list[str]:
    """Every document id of a store, sorted."""
    return sorted(store.all_ids())


def _lock_names(store: Any) -> list[str]:
    state = store.get(keysource.STATE_DOC) or {}
    names = []
    mounts = state.get("mounts") if isinstance(state.get("mounts"), dict) else {}
    uuids = sorted({str(m.get("uuid")) for m in mounts.values() if isinstance(m, dict)})
    for kind, collection in (("key", "keys"), ("kms", "kms")):  # the engine's order: key, then kms
        for uuid in uuids:
            names += [f"{uuid}.{kind}.{n}" for n in store.list(f"ns/{uuid}/{collection}")]
    return names


@contextmanager
def hold_all(store: Any, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold every lock the engine takes, so no operation runs meanwhile (not reentrant)."""
    with ExitStack() as stack:
        held: set[str] = set()
        while True:
            wanted = [n for n in _lock_names(store) if n not in held]
            if not wanted:
                break
            for name in wanted:  # new keys can appear while we wait: loop until none is new
                stack.enter_context(store.lock(name, timeout=timeout))
                held.add(name)
        stack.enter_context(store.lock("state", timeout=timeout))
        yield


# -- save ------------------------------------------------------------------------------------


def _seal_of(store: Any, environ: Mapping[str, str], master: MasterKey) -> dict[str, Any]:
    seal = keysource.state_seal(store, environ)
    if seal.kind == "local":
        return {"kind": "local", "kcv": master.kcv}
    return {"kind": seal.kind, "kcv": master.kcv, "record": seal.record}


def save(store: Any, environ: Mapping[str, str], path: str, *,
         load: Callable[[], MasterKey] | None = None) -> dict[str, Any]:
    """Write the snapshot of ``store`` to ``path`` (0600, atomic); a summary for the CLI."""
    from .filestore import write_file_atomic

    master = (load or (lambda: keysource.load_key(store, environ)))()
    raw = _raw(store)
    checker = _checker(raw, master.key)
    state_id = keysource.state_id(checker)
    with hold_all(raw):
        if raw.get("meta/rekey") is not None:
            raise PreconditionFailed(f"a rekey of {store.location} is unfinished; a snapshot now "
                                     "would mix two keys", hint="run 'keymgmt operator rekey' to finish it first")
        docs = {}
        for doc_id in all_ids(raw):
            if doc_id in LOCAL_ONLY or doc_id == keysource.SEAL_DOC:
                continue
            doc = raw.get(doc_id)
            if doc is None:
                continue
            docs[doc_id] = json.loads(json.dumps(doc))  # as stored: with its MAC tag
            # a tampered, copied or rolled-back document is refused here, never snapshotted
            checker.get(doc_id)
        instance = lineage(checker)  # who made the keys the copy inherits, and who retired
    body = {"keymgmt_snapshot": FORMAT, "state_id": state_id, "backend": store.backend,
            "location": store.location,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seal": _seal_of(store, environ, master), "instance": instance, "documents": docs}
    data = encode(body, master.key)
    target = os.path.abspath(os.path.expanduser(path))
    try:
        write_file_atomic(target, data, os.path.dirname(target))
    except OSError as exc:
        raise StoreError(f"cannot write snapshot {target}: {exc.strerror or type(exc).__name__}") from None
    return {"path": target, "state_id": state_id, "documents": len(docs), "bytes": len(data)}


# -- restore ---------------------------------------------------------------------------------


class _RecordOnly:
    """Just enough of a store for ``load_shared_master_key`` to open a snapshot's seal record."""

    backend = "snapshot"

    def __init__(self, record: dict[str, Any], location: str):
        self._record, self.location = record, location

    def get(self, doc_id: str) -> dict[str, Any] | None:
        return self._record if doc_id == keysource.SEAL_DOC else None


def snapshot_key(body: dict[str, Any], store: Any, environ: Mapping[str, str], path: str, *,
                 keyring_backend: Any = None) -> MasterKey:
    """The master key that opens the snapshot, proven against its check value."""
    seal = body["seal"]
    kcv = str(seal.get("kcv"))
    if seal.get("kind") == "awskms":
        from . import setting
        from .kmsseal import load_shared_master_key

        configured = setting(environ, "seal")
        if configured is None:
            _check_recorded_endpoint(seal.get("record") or {}, path)
        # with KEYMGMT_SEAL set, KMS is asked at the configured key and endpoint, not the recorded
        return load_shared_master_key(_RecordOnly(seal["record"], path), environ, configured)
    from . import masterkey

    if environ.get(masterkey.ENV_VAR) is not None:
        master = MasterKey(masterkey._parse_env_key(environ[masterkey.ENV_VAR]), masterkey.ENV_SOURCE)
    elif store.backend in ("file", "memory") and hasattr(store, "home"):
        master = masterkey._find_stored(store.home, masterkey._Keyring(keyring_backend))
    else:
        master = None
    if master is None:
        raise PreconditionFailed(f"no master key for the snapshot's state (kcv {kcv}): set "
                                 f"{masterkey.ENV_VAR}, or put it back with 'keymgmt operator "
                                 f"recover -snapshot={path}' and the escrow shares")
    if not hmac.compare_digest(master.kcv, kcv):
        raise PreconditionFailed(f"the master key from {master.source} does not open this snapshot "
                                 f"(kcv {master.kcv}, the snapshot's is {kcv}); nothing was restored")
    return master


def _check_recorded_endpoint(record: dict[str, Any], path: str) -> None:
    """A snapshot names the KMS endpoint that opens it; whoever can edit the file could name his
    own, hand back a data key he knows and forge the MAC with it. Plain http only to loopback."""
    from urllib.parse import urlsplit

    endpoint = record.get("endpoint")
    if not endpoint:
        return
    parts = urlsplit(str(endpoint))
    host = (parts.hostname or "").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise PreconditionFailed(f"{path} names a KMS endpoint that is neither https nor loopback "
                                 "for its seal; nothing was restored",
                                 hint="set KEYMGMT_SEAL=awskms://KEY?region=R to the seal key you trust")


def _existing(store: Any) -> list[str]:
    return [i for i in all_ids(store) if i not in LOCAL_ONLY]


def restore(store: Any, environ: Mapping[str, str], path: str, *, force: bool = False,
            keyring_backend: Any = None) -> dict[str, Any]:
    """Restore the snapshot at ``path`` into ``store``; a summary for the CLI."""
    raw, body, trailer = read(path)
    master = snapshot_key(body, store, environ, path, keyring_backend=keyring_backend)
    verify(raw, trailer, master.key, path)
    digest = trailer["sha256"]
    seal = body["seal"]
    # a snapshot made before the copy's identity was local carries an (untagged) origin: dropped
    docs = {i: d for i, d in body["documents"].items() if i not in LOCAL_ONLY}
    _verify_documents(docs, body["state_id"], master.key, path)
    # markers saved before they were authenticated: the snapshot's own MAC proves them; signed below
    legacy = {i for i, d in docs.items() if is_marker(i) and isinstance(d, dict) and AUTH_FIELD not in d}
    raw = _raw(store)
    with hold_all(raw):
        marker = raw.get(RESTORING_DOC)
        resuming = marker is not None and marker.get("sha256") == digest
        if marker is None and not force and _restored_already(raw, master.key, digest):
            return {"state_id": body["state_id"], "documents": 0, "location": store.location,
                    "master_key": master.source, "already": True}
        existing = _existing(raw)
        if existing and not resuming:
            if not force:
                raise PreconditionFailed(
                    f"the target {store.location} is not empty ({len(existing)} documents, e.g. "
                    f"{existing[0]}); restore refuses to overwrite a state",
                    hint="restore into a new directory or table, or add -force to replace it")
            for doc_id in existing:
                raw.get(doc_id)
                raw.delete(doc_id)
        _check_target_seal(raw, seal, master, force or resuming)
        raw.get(RESTORING_DOC)
        raw.put(RESTORING_DOC, {"format": 1, "sha256": digest, "state_id": body["state_id"]})
        _write_seal(raw, seal, master)
        # byte for byte as saved, MAC tags included (AuthStore.put would refuse them and re-MAC)
        for doc_id in sorted(docs, key=lambda i: (2 if i == "state" else 1 if i.startswith("mounts/") else 0, i)):
            if doc_id in legacy:
                continue
            raw.get(doc_id)
            raw.put(doc_id, json.loads(json.dumps(docs[doc_id])))
        checker = _checker(raw, master.key)
        for doc_id in sorted(legacy):
            raw.get(doc_id)
            checker.put(doc_id, json.loads(json.dumps(docs[doc_id])))
        source = body.get("instance") if isinstance(body.get("instance"), dict) else {}
        raw.get(ORIGIN_DOC)
        checker.put(ORIGIN_DOC, {"format": 1, "copy_of": body["state_id"],
                                 "restored_from": body.get("location"),
                                 "snapshot_created": body.get("created"), "snapshot_sha256": digest,
                                 "source_instance": source.get("id"),
                                 "retired_instances": retired_instances({"retired_instances": source.get("retired")}),
                                 "source_retired": False,
                                 "restored_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        new_instance(checker, raw=raw)  # a copy is an instance of its own
        raw.get("meta/retired")
        raw.delete("meta/retired")  # a restored copy is live, whatever the target was before
        for doc_id in sorted(docs):
            checker.get(doc_id)  # the restored state opens under the snapshot's key
        raw.delete(RESTORING_DOC)
    return {"state_id": body["state_id"], "documents": len(docs), "location": store.location,
            "master_key": master.source}


def _restored_already(raw: Any, master: bytes, digest: str) -> bool:
    """The target is this very snapshot's restore, finished (its authenticated origin names it)."""
    if raw.get(ORIGIN_DOC) is None:
        return False
    try:
        origin = _checker(raw, master).get(ORIGIN_DOC) or {}
    except StoreError:
        return False  # not this snapshot's copy (another state, an edited origin): "not empty"
    return origin.get("snapshot_sha256") == digest


def retire_source(store: Any, environ: Mapping[str, str], path: str, source: Any, *,
                  keyring_backend: Any = None) -> str:
    """``restore -retire-source``: mark ``source`` retired in favour of ``store`` (the restore of the
    snapshot at ``path``), then record in the copy's origin that it was; the source's location.

    The marker is authenticated under the source's own master key (it may have been rekeyed since
    the snapshot). In this order, so that a crash in between is finished by running the same
    restore again: the copy never believes a source retired that is not."""
    from .retired import instance_id, record_source_retired, retire, url_of

    _, body, _ = read(path)
    src_raw = _raw(source)
    src_key = derive_auth_key(keysource.load_key(src_raw, environ, keyring_backend=keyring_backend).key)
    src = AuthStore(src_raw, lambda: src_key)
    if src.get(keysource.STATE_DOC) is not None and keysource.state_id(src) != body["state_id"]:
        raise PreconditionFailed(f"{src_raw.location} holds another state than the snapshot; "
                                 "it was not retired")
    src_instance = instance_id(src)
    retire(src, url_of(_raw(store)), body["state_id"])
    target_raw = _raw(store)
    target_key = derive_auth_key(keysource.load_key(target_raw, environ, keyring_backend=keyring_backend).key)
    record_source_retired(AuthStore(target_raw, lambda: target_key), src_instance, raw=target_raw)
    return str(src_raw.location)


def _verify_documents(docs: dict[str, Any], state_id: str, master: bytes, path: str) -> None:
    """Every document of a snapshot authenticates under its key and state id, before any write.

    The snapshot's own MAC proves the file; this proves that what it holds is an authenticated
    state (a snapshot forged under the same master key still cannot carry an unsigned document)."""
    from .memory import MemoryStore

    memory = MemoryStore()
    for doc_id, doc in docs.items():
        if not isinstance(doc, dict):
            raise PreconditionFailed(f"{path}: document {doc_id} is not a JSON object; nothing was restored")
        if is_authenticated(doc_id) and not is_marker(doc_id) and AUTH_FIELD not in doc:
            raise PreconditionFailed(f"{path}: document {doc_id} carries no MAC tag (a snapshot made "
                                     "before authenticated documents?); nothing was restored")
        memory.put(doc_id, json.loads(json.dumps(doc)))
    checker = _checker(memory, master)
    state = checker.get(keysource.STATE_DOC) if keysource.STATE_DOC in docs else None
    if state is None or state.get("state_id") != state_id:
        raise PreconditionFailed(f"{path} does not hold the state {state_id} it names; nothing was restored")
    try:
        for doc_id in sorted(docs):
            if not (is_marker(doc_id) and AUTH_FIELD not in docs[doc_id]):  # proven by the file's MAC
                checker.get(doc_id)
    except StoreError as exc:
        raise PreconditionFailed(f"{path}: {exc.args[0] if exc.args else exc}; nothing was restored") from None


def _check_target_seal(store: Any, seal: dict[str, Any], master: MasterKey, replace: bool) -> None:
    current = store.get(keysource.SEAL_DOC)
    if current is not None and str(current.get("kcv")) != master.kcv and not replace:
        raise PreconditionFailed(f"the target {store.location} is sealed by another master key "
                                 f"(kcv {current.get('kcv')}); nothing was restored",
                                 hint="restore into a new directory or table, or add -force")
    if store.backend == "file":
        from . import masterkey

        meta = masterkey._read_meta(store.home)
        if meta is not None and str(meta["kcv"]) != master.kcv and not replace:
            raise PreconditionFailed(f"the target {store.location} is sealed by another master key "
                                     f"(kcv {meta['kcv']}); nothing was restored",
                                     hint="restore into a new directory, or add -force")


def _write_seal(store: Any, seal: dict[str, Any], master: MasterKey) -> None:
    """Make the target open with the snapshot's key: its seal record, or its check value."""
    record = seal.get("record") if seal["kind"] in ("env", "awskms") else None
    if record is None and store.backend not in ("file", "memory"):
        # a local state restored into DynamoDB: the team shares the key as KEYMGMT_MASTER_KEY
        record = {"format": 1, "kind": "env", "kcv": master.kcv,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if record is not None:
        store.get(keysource.SEAL_DOC)
        store.put(keysource.SEAL_DOC, record)
        return
    store.get(keysource.SEAL_DOC)
    store.delete(keysource.SEAL_DOC)
    if store.backend == "file":
        from . import masterkey

        masterkey._write_meta(store.home, master)
