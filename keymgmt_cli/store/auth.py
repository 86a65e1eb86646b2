"""Authenticated documents: every state document carries a MAC under a key derived from the master key.

Sealing (``seal.py``) protects the secrets; this protects everything else the engine acts on
(``deletion_allowed``, the KMS key ids ``delete`` schedules for deletion, ``public_key``, the
mount table). ``AuthStore`` wraps any ``DocumentStore`` (file, memory, DynamoDB) and implements
the same protocol, so the engine is unchanged:

* ``put`` adds ``"_auth": {"v": 1, "rev": N, "mac": HEX}`` to the stored document;
* ``get`` checks it and removes it before the engine sees the document. A document without a
  tag, with a wrong MAC, or older than the state recorded is a ``StoreError`` naming it.

The MAC is HMAC-SHA256 under ``auth key = HKDF-SHA256(master key, salt "keymgmt-state",
info "keymgmt document authentication v1")`` over the state id, the document id, the revision
and the canonical JSON of the document (sorted keys, no whitespace). So a document edited by
hand, moved to another id, or copied from another state (even one with the same master key:
its state id differs) fails. The state document binds itself to the ``state_id`` it holds; a
state document swapped in from another state verifies, but then every other document fails.

Rollback: ``rev`` grows by one on every write of a document, and the highest revision written
is recorded in one of 16 revision records (``meta/revisions/<hex>``, chosen by a hash of the
document id, themselves MAC'd). A document whose revision is below the recorded one is an
older copy put back, and refused. What this does *not* detect: the whole state (documents and
revision records together) restored to an older consistent copy; a revision record deleted or
rolled back together with the documents it covers; a document deleted outright (``get`` sees
"no such document", as for one never written); and a copy older by less than one write after
a crash between writing a document and its revision record.

Documents under ``meta/`` other than the revision records and the markers in ``MARKERS`` are
passed through: the seal record is read to find the master key, and is proven by its check
value instead; the rekey journal holds both keys sealed under each other (a forged one opens
nothing). The markers (``meta/escrow``, ``meta/retired``, ``meta/origin``, ``meta/instance``)
are authenticated as every other document: a forged ``meta/retired`` would otherwise refuse
every change and point the operator at a state of the forger's choosing. States written before
they were (untagged markers in an authenticated state) are upgraded by ``operator upgrade``.

Without a key (``key_source`` returns None: the fast ``read``/``list`` path when the master key
is not cheaply at hand, see ``cheap_auth_key``) ``get`` still refuses a document without a tag,
but cannot check the MAC or the revision; ``put`` is refused.

Standard library only: the read path imports it. The MACs go through ``digests.py`` (HMAC over
CPython's builtin SHA-256, equal to ``hmac.digest``, without importing ``hmac`` and ``hashlib``,
which load OpenSSL and probe every digest), imported on the first MAC, so a read without the key at
hand loads no hash module at all; the canonical JSON is ``docjson.canonical`` (json's C encoder,
without importing json and re).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds on the read path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager
    from typing import Any

from ..errors import StoreError
from .docjson import canonical as _canonical_json

AUTH_FIELD = "_auth"
STATE_DOC = "state"
META_PREFIX = "meta/"
REVISIONS = "meta/revisions"
_SHARDS = "0123456789abcdef"
_SALT = b"keymgmt-state"
_INFO = b"keymgmt document authentication v1"
_MAC_CONTEXT = b"keymgmt-doc-v1\x00"
_TAMPERED_HINT = "restore it from a backup; it was changed outside keymgmt"
_UPGRADE_HINT = ("a state last written by keymgmt before authenticated documents needs a one-time "
                 "'keymgmt operator upgrade'; a state upgraded already was changed outside "
                 "keymgmt: restore it from a backup instead")


def _hmac_sha256(key: bytes, msg: bytes) -> bytes:
    from .digests import hmac_sha256  # SHA-256 is loaded on the first MAC, not on import

    return hmac_sha256(key, msg)


def _equal(a: str, b: str) -> bool:
    from .digests import equal

    return equal(a, b)


def derive_auth_key(master_key: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) of the master key, 32 bytes, for document MACs only."""
    prk = _hmac_sha256(_SALT, bytes(master_key))
    return _hmac_sha256(prk, _INFO + b"\x01")


def canonical(doc: dict[str, Any]) -> bytes:
    """``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)``
    as ASCII bytes (``docjson.canonical``)."""
    return _canonical_json(doc).encode("ascii")


def document_mac(key: bytes, state_id: str, doc_id: str, rev: int, body: dict[str, Any]) -> str:
    msg = b"\x00".join((_MAC_CONTEXT + state_id.encode("utf-8"), doc_id.encode("utf-8"),
                        str(rev).encode("ascii"), canonical(body)))
    return _hmac_sha256(key, msg).hex()


def _revision_record(doc_id: str) -> str:
    from .digests import sha256_hex

    return f"{REVISIONS}/{sha256_hex(doc_id.encode('utf-8'))[0]}"


AUDIT_PREFIX = "audit/"  # the document-store audit trail: its own hash chain, MAC'd under the master key
#: The ``meta/`` markers the engine and the CLI act on: authenticated like every other document.
MARKERS = frozenset({"meta/escrow", "meta/retired", "meta/origin", "meta/instance"})


def _passthrough(doc_id: str) -> bool:
    """Documents this wrapper leaves as they are: ``meta/`` but the revision records and the
    ``MARKERS`` (the seal record, proved by its check value; the rekey journal; the restore
    marker) and the audit trail's records, each of which the trail's own chain MAC
    authenticates (``audit/chain.py``; ``keymgmt audit verify``)."""
    return (doc_id.startswith(META_PREFIX) and not doc_id.startswith(REVISIONS + "/")
            and doc_id not in MARKERS) or doc_id.startswith(AUDIT_PREFIX)


def is_marker(doc_id: str) -> bool:
    """A ``meta/`` marker that is authenticated (``MARKERS``)."""
    return doc_id in MARKERS


def _parse_tag(tag: object) -> tuple[int, str] | None:
    if (isinstance(tag, dict) and tag.get("v") == 1 and type(tag.get("rev")) is int
            and tag["rev"] >= 1 and isinstance(tag.get("mac"), str) and len(tag["mac"]) == 64
            and tag["mac"].isascii()):  # equal() raises TypeError for a non-ASCII str
        return tag["rev"], tag["mac"]
    return None


def is_authenticated(doc_id: str) -> bool:
    """True for the documents ``AuthStore`` MACs (all but the seal record, the rekey journal and
    the restore marker under ``meta/``, and ``audit/``)."""
    return not _passthrough(doc_id)


def sign_document(key: bytes, state_id: str, doc_id: str, rev: int, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as ``AuthStore.put`` stores it at revision ``rev`` (for rekey: re-MAC in place)."""
    stored = dict(body)
    stored.pop(AUTH_FIELD, None)
    stored[AUTH_FIELD] = {"v": 1, "rev": rev, "mac": document_mac(key, state_id, doc_id, rev, stored)}
    return stored


def check_document(key: bytes, state_id: str, doc_id: str, doc: dict[str, Any]) -> int | None:
    """The revision of a stored (tagged) document whose MAC verifies under ``key``, else None.

    The caller checks the revision against the revision records; an untagged document is None."""
    parsed = _parse_tag(doc.get(AUTH_FIELD))
    if parsed is None:
        return None
    rev, mac = parsed
    body = {k: v for k, v in doc.items() if k != AUTH_FIELD}
    try:
        want = document_mac(key, state_id, doc_id, rev, body)
    except (TypeError, ValueError):
        return None
    return rev if _equal(want, mac) else None


class AuthStore:
    """``DocumentStore`` that authenticates every document of ``inner`` (see the module doc).

    ``key_source`` returns the 32-byte auth key (``derive_auth_key``) or None when none is at
    hand; it is called once, on the first document that needs it. ``state_id``: bind documents
    to this state id instead of the one in the state document (``operator migrate`` writes the
    state document last). ``legacy``: accept documents without a tag (``upgrade_state`` only).
    """

    def __init__(self, inner: Any, key_source: Callable[[], bytes | None], *,
                 state_id: str | None = None, legacy: bool = False):
        self.inner = inner
        self._key_source = key_source
        self._required_source: Callable[[], bytes] | None = None
        self._key: bytes | None = None
        self._key_loaded = False
        self._cheap_tried = False
        self._pending: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self._bound_state = state_id
        self._state_id: str | None = None
        self._seen: dict[str, int] = {}  # doc id -> revision read or written
        self._floors: dict[str, dict[str, int]] = {}  # revision record id -> its revisions
        self._legacy = legacy
        self.legacy_seen: list[str] = []

    # The rest of the store's surface (backend, location, home, ensure_table, all_ids, ...).
    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"AuthStore({self.inner!r})"

    def verify_now(self) -> bool:
        """Load the key now if it is not at hand (the required source) and verify every document
        read so far; False when there is no key to verify with. For a marker that refuses
        changes (``retired.check_writable``): it is proven before it is obeyed."""
        return self._auth_key(need=True) is not None

    def require_key(self, key_source: Callable[[], bytes]) -> None:
        """Before any change (``put``, ``delete``, ``lock``) load the key from ``key_source`` (the
        CLI's secret box) if the cheap one gave none, and verify every document read so far.

        Reads alone then cost no keyring lookup or KMS call, and what the engine acts on is
        verified before it takes its first lock: every change it makes happens under a lock."""
        self._required_source = key_source

    def _auth_key(self, need: bool = False) -> bytes | None:
        if not self._key_loaded and not self._cheap_tried:
            self._cheap_tried = True
            self._set_key(self._key_source())
        if not self._key_loaded and need and self._required_source is not None:
            self._set_key(self._required_source())
        return self._key

    def _set_key(self, key: bytes | None) -> None:
        if key is None:
            return
        if len(key) != 32:
            raise ValueError("the auth key must be 32 bytes")
        self._key, self._key_loaded = key, True
        pending, self._pending = self._pending, []
        for doc_id, tag, body in pending:  # read before the key was at hand: check them now
            self._verify(doc_id, dict(body, **{AUTH_FIELD: tag}))

    def _before_change(self) -> bytes | None:
        key = self._auth_key(need=True)
        return key

    # -- state id ----------------------------------------------------------------------------
    def current_state_id(self) -> str:
        """The state id documents are bound to: "" before the state document exists."""
        if self._bound_state is not None:
            return self._bound_state
        if self._state_id is None:
            self.get(STATE_DOC)  # sets _state_id when the state document exists and verifies
        return self._state_id or ""

    def _doc_state_id(self, doc_id: str, body: dict[str, Any]) -> str:
        if doc_id == STATE_DOC and self._bound_state is None:
            state_id = body.get("state_id")
            if not isinstance(state_id, str) or not state_id:
                raise StoreError(f"state document {STATE_DOC} in {self.inner.location} has no "
                                 "state id", hint=_TAMPERED_HINT)
            return state_id
        return self.current_state_id()

    # -- documents ---------------------------------------------------------------------------
    def get(self, doc_id: str) -> dict[str, Any] | None:
        doc = self.inner.get(doc_id)
        if doc is None or _passthrough(doc_id):
            return doc
        return self._verify(doc_id, doc)

    def _verify(self, doc_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        where = f"state document {doc_id} in {self.inner.location}"
        if AUTH_FIELD not in doc:
            if self._legacy:
                self.legacy_seen.append(doc_id)
                return doc
            raise StoreError(f"{where} is not authenticated (no {AUTH_FIELD} tag)", hint=_UPGRADE_HINT)
        parsed = _parse_tag(doc.pop(AUTH_FIELD))
        if parsed is None:
            raise StoreError(f"{where} has a malformed {AUTH_FIELD} tag", hint=_TAMPERED_HINT)
        rev, mac = parsed
        key = self._auth_key()
        if key is None and self._required_source is not None:  # not on the fast read path
            import json  # a deep copy, checked once the key is loaded

            self._pending.append((doc_id, {"v": 1, "rev": rev, "mac": mac}, json.loads(json.dumps(doc))))
        if key is not None:
            state_id = self._doc_state_id(doc_id, doc)
            try:
                want = document_mac(key, state_id, doc_id, rev, doc)
            except (TypeError, ValueError):
                want = ""
            if not _equal(want, mac):
                raise StoreError(f"{where} failed authentication (edited outside keymgmt, copied "
                                 "from another state, or written under another master key)",
                                 hint=_TAMPERED_HINT)
            if doc_id == STATE_DOC and self._bound_state is None:
                self._state_id = state_id  # before _floor, which binds the revision record to it
            floor = self._floor(doc_id)
            if rev < floor:
                raise StoreError(f"{where} is an older copy put back (revision {rev}; the state "
                                 f"recorded revision {floor})", hint="restore the current copy "
                                 "from a backup; an older one was put in its place")
        self._seen[doc_id] = rev
        return doc

    def list(self, collection: str) -> list[str]:
        return self.inner.list(collection)

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        if _passthrough(doc_id):
            self.inner.put(doc_id, doc)
            return
        if not isinstance(doc, dict):
            raise TypeError(f"a document must be a dict, not {type(doc).__name__}")
        if AUTH_FIELD in doc:
            raise ValueError(f"{AUTH_FIELD} is reserved for the store")
        key = self._before_change()
        if key is None:
            raise StoreError(f"cannot write state document {doc_id}: no master key to "
                             "authenticate it")
        body = dict(doc)
        state_id = self._doc_state_id(doc_id, body)
        rev = max(self._seen.get(doc_id, 0), self._floor(doc_id)) + 1
        stored = dict(body)
        stored[AUTH_FIELD] = {"v": 1, "rev": rev, "mac": document_mac(key, state_id, doc_id, rev, body)}
        self.inner.put(doc_id, stored)
        self._seen[doc_id] = rev
        if doc_id == STATE_DOC and self._bound_state is None:
            self._state_id = state_id
        self._record(doc_id, rev)

    def delete(self, doc_id: str) -> bool:
        # The revision record keeps the document's last revision: a copy put back later is older
        # than the next one written under that id.
        self._before_change()
        self._seen.pop(doc_id, None)
        return self.inner.delete(doc_id)

    def delete_collection(self, collection: str) -> None:
        self._before_change()
        prefix = collection + "/"
        for doc_id in [d for d in self._seen if d.startswith(prefix)]:
            del self._seen[doc_id]
        self.inner.delete_collection(collection)

    def lock(self, name: str, timeout: float = 60.0) -> AbstractContextManager[None]:
        self._before_change()
        return self.inner.lock(name, timeout)

    # -- revision records --------------------------------------------------------------------
    def _read_record(self, record_id: str) -> dict[str, int]:
        key = self._auth_key()
        doc = self.inner.get(record_id)
        if doc is None or key is None:
            return {}
        where = f"revision record {record_id} in {self.inner.location}"
        parsed = _parse_tag(doc.pop(AUTH_FIELD, None))
        revs = doc.get("revs")
        if parsed is None or not isinstance(revs, dict):
            raise StoreError(f"{where} is not authenticated", hint=_TAMPERED_HINT)
        rev, mac = parsed
        try:
            want = document_mac(key, self.current_state_id(), record_id, rev, doc)
        except (TypeError, ValueError):  # no canonical JSON (NaN, Infinity): not what keymgmt wrote
            want = ""
        if not _equal(want, mac):
            raise StoreError(f"{where} failed authentication", hint=_TAMPERED_HINT)
        self._seen[record_id] = rev
        return {k: v for k, v in revs.items() if type(v) is int}

    def _floor(self, doc_id: str) -> int:
        record_id = _revision_record(doc_id)
        if record_id not in self._floors:
            self._floors[record_id] = self._read_record(record_id)
        return self._floors[record_id].get(doc_id, 0)

    def _record(self, doc_id: str, rev: int) -> None:
        """Raise the recorded revision of ``doc_id`` to ``rev`` (never lower it).

        Read-modify-write of the revision record: under a store lock on local backends (cheap
        there), optimistically on shared ones (DynamoDB's conditional put refuses a write over a
        record changed since it was read; then it is read again)."""
        record_id = _revision_record(doc_id)
        if self.inner.backend in ("file", "memory"):
            with self.inner.lock(record_id.replace("/", ".")):
                self._write_record(record_id, doc_id, rev)
            return
        for attempt in range(8):
            try:
                # first from what this process last read or wrote (DynamoStore's conditional put
                # refuses it if another runner changed the record since): one GetItem fewer
                self._write_record(record_id, doc_id, rev, cached=attempt == 0)
                return
            except StoreError as exc:
                # only DynamoStore's ConcurrentUpdate (another runner wrote the record) is retried
                if attempt == 7 or type(exc).__name__ != "ConcurrentUpdate":
                    raise
                self._seen.pop(record_id, None)
                forget = getattr(self.inner, "_forget", None)
                if forget is not None:
                    forget(record_id)

    def _write_record(self, record_id: str, doc_id: str, rev: int, cached: bool = False) -> None:
        if cached and record_id in self._floors and record_id in self._seen:
            revs = dict(self._floors[record_id])
        else:
            revs = self._read_record(record_id)
        if revs.get(doc_id, 0) >= rev:
            self._floors[record_id] = revs
            return
        revs[doc_id] = rev
        key = self._auth_key()
        assert key is not None
        record_rev = self._seen.get(record_id, 0) + 1
        body = {"revs": dict(sorted(revs.items()))}
        stored = dict(body)
        stored[AUTH_FIELD] = {"v": 1, "rev": record_rev,
                              "mac": document_mac(key, self.current_state_id(), record_id, record_rev, body)}
        self.inner.put(record_id, stored)
        self._seen[record_id] = record_rev
        self._floors[record_id] = revs


def document_ids(store: Any) -> Iterator[str]:
    """Every document id of a backend (the file, memory and DynamoDB stores), sorted."""
    yield from sorted(store.all_ids())


def authenticated(store: Any, box: Any, *, state_id: str | None = None) -> AuthStore:  # noqa: D401
    """``store`` wrapped so that its documents are verified (and written) under ``box``'s master key."""
    return AuthStore(store, box.auth_key, state_id=state_id)
