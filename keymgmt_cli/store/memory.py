"""The in-memory twin of the file store, for engine tests.

Documents are kept as the same serialised bytes the file store writes, so a document comes
back exactly as it would from disk (a deep copy; tuples become lists; values JSON cannot hold
are refused on ``put``). Locks are ``threading.Lock``s: they exclude threads, not processes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import check_store_id, encode_document, lock_busy_error


class MemoryStore:
    """``DocumentStore`` in a dict; passes the same contract test as ``FileStore``."""

    backend = "memory"
    location = "memory"

    def __init__(self) -> None:
        self._docs: dict[str, bytes] = {}
        self._mutex = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def all_ids(self) -> list[str]:
        with self._mutex:
            return sorted(self._docs)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        check_store_id(doc_id)
        with self._mutex:
            raw = self._docs.get(doc_id)
        return None if raw is None else json.loads(raw)

    def list(self, collection: str) -> list[str]:
        check_store_id(collection)
        prefix = collection + "/"
        with self._mutex:
            ids = list(self._docs)
        return sorted(i[len(prefix):] for i in ids if i.startswith(prefix) and "/" not in i[len(prefix):])

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        check_store_id(doc_id)
        raw = encode_document(doc)
        with self._mutex:
            self._docs[doc_id] = raw

    def delete(self, doc_id: str) -> bool:
        check_store_id(doc_id)
        with self._mutex:
            return self._docs.pop(doc_id, None) is not None

    def delete_collection(self, collection: str) -> None:
        check_store_id(collection)
        prefix = collection + "/"
        with self._mutex:
            for doc_id in [i for i in self._docs if i.startswith(prefix)]:
                del self._docs[doc_id]

    @contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        if not name:
            raise ValueError("empty lock name")
        with self._mutex:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=max(timeout, 0)):
            raise lock_busy_error(name)
        try:
            yield
        finally:
            lock.release()
