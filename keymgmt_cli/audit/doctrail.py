"""The document-store backend: the trail as documents of the state's own store (DynamoDB for a
team, the in-memory store in tests), so runners on many machines write one chain.

Record ``n`` is the document ``audit/rec/<n, 12 digits>``; the head is ``audit/head``. Writers
hold the store lock ``audit`` (a lease on DynamoDB) and read the head before appending. The
record documents are *created*, never replaced: on DynamoDB ``put`` of a document never read is
a conditional create (``attribute_not_exists``), so two writers that somehow both held the lease
cannot both write record ``n``; the second is refused and writes nothing (no fork, no gap). A
refused request record stops its command before it runs; a refused response record leaves the
request open, and a later run on the same host closes it as crashed.
"""

from __future__ import annotations

from contextlib import contextmanager

from keymgmt_cli.audit import chain
from keymgmt_cli.audit.filetrail import new_head, track
from keymgmt_cli.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from keymgmt_cli.audit.keys import AuditKeys

HEAD_DOC = "audit/head"
RECORDS = "audit/rec"
LOCK = "audit"


def record_doc(seq: int) -> str:
    return f"{RECORDS}/{seq:012d}"


class DocTrail:
    def __init__(self, store: Any, keys: AuditKeys):
        self.store = store
        self.keys = keys
        self.backend = store.backend
        self.location = f"{store.location} ({RECORDS}/)"

    def head(self) -> dict[str, Any] | None:
        return self.store.get(HEAD_DOC)

    def records(self) -> Iterator[tuple[str, Any]]:
        for name in self.store.list(RECORDS):
            yield f"document {RECORDS}/{name}", self.store.get(f"{RECORDS}/{name}")

    def journal(self, request_id: str) -> Any:
        """Where the calls of the open request ``request_id`` are written as they happen (``journal``)."""
        from keymgmt_cli.audit.journal import DocJournal

        return DocJournal(self.store, self.keys, request_id)

    @contextmanager
    def transaction(self) -> Iterator[_DocTx]:
        with self.store.lock(LOCK):
            head = self.head()
            if head is None:
                if self.store.list(RECORDS):
                    raise StoreError(f"the audit trail in {self.location} has records but no head (deleted?); "
                                     "refusing to write", hint="run 'keymgmt audit verify'")
                head = new_head()
            elif not chain.head_ok(head, self.keys):
                raise StoreError(f"the audit trail head in {self.location} does not verify under this master key "
                                 "(edited, or the wrong master key); refusing to write",
                                 hint="run 'keymgmt audit verify'")
            head = {k: v for k, v in head.items() if k != "head_mac"}
            # a writer that died between creating its record and updating the head
            following = self.store.get(record_doc(head["seq"] + 1))
            if following is not None:
                meta = following.get("keymgmt", {}) if isinstance(following, dict) else {}
                if not chain.record_mac_ok(following, self.keys) or meta.get("prev") != head["mac"]:
                    raise StoreError(f"the audit trail in {self.location} holds a record its head does not name "
                                     "and that does not follow the chain; refusing to write",
                                     hint="run 'keymgmt audit verify'")
                head["seq"], head["mac"] = meta["seq"], meta["mac"]
                track(head, following)
            tx = _DocTx(self, head)
            yield tx
            if tx.dirty or following is not None:
                self.store.put(HEAD_DOC, chain.sign_head(tx.head, self.keys))


class _DocTx:
    def __init__(self, trail: DocTrail, head: dict[str, Any]):
        self.trail, self.head, self.dirty = trail, head, False

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        seq = self.head["seq"] + 1
        linked = chain.link(record, seq, self.head["mac"], self.trail.keys)
        self.trail.store.put(record_doc(seq), linked)  # never read: a conditional create on DynamoDB
        self.head["seq"], self.head["mac"] = seq, linked["keymgmt"]["mac"]
        track(self.head, linked)
        self.dirty = True
        return linked

    def remember(self, name: str, value: Any) -> None:
        self.head["identities"][name] = value
        self.dirty = True
