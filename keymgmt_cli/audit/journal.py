"""The calls of a running command, written down as they happen, so a ``kill -9`` loses none.

A command's response record lists every AWS call it made, but a process killed mid-distribution
writes no response: the next run closes its request as ``crashed``. So each call is also appended,
the moment it returns, to the open request's *journal*, and the crashed response carries what the
journal holds. After a response is written the journal is discarded.

* file trail: ``calls-<request id>.jsonl`` in the trail directory (0600, O_APPEND|O_NOFOLLOW, one
  fsynced line per call);
* document trail: one document per call, ``audit/calls/<request id>/<n>`` (created, never replaced).

Each entry is MAC'd under the chain key, bound to its request id and position: an entry edited,
moved to another request or reordered is left out of the crashed record, which then says how many
were refused. Entries hold what a response's ``aws_calls`` hold (operation, region, key id, request
id, outcome): never a secret.
"""

from __future__ import annotations

import json
import os
import re
import threading

from keymgmt_cli.audit import chain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.audit.keys import AuditKeys

_REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CALLS = "audit/calls"


def valid_request_id(request_id: Any) -> bool:
    """Only our own uuid4 ids name a journal (a file name or a document id: nothing to traverse)."""
    return isinstance(request_id, str) and bool(_REQUEST_ID.match(request_id))


def _payload(request_id: str, n: int, entry: dict[str, Any]) -> bytes:
    return b"call\x00" + request_id.encode() + b"\x00" + str(n).encode() + b"\x00" + chain.canonical(entry)


def _mac(keys: AuditKeys, request_id: str, n: int, entry: dict[str, Any]) -> str:
    return keys.mac(_payload(request_id, n, entry))


def _checked(keys: AuditKeys, request_id: str, items: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """The entries whose MAC verifies at their position, and how many did not."""
    good: list[dict[str, Any]] = []
    refused = 0
    for n, item in enumerate(items):
        entry = item.get("call") if isinstance(item, dict) else None
        if isinstance(entry, dict) and keys.check(_payload(request_id, n, entry), item.get("mac")):
            good.append(entry)
        else:
            refused += 1
    return good, refused


class FileJournal:
    def __init__(self, directory: str | os.PathLike[str], keys: AuditKeys, request_id: str):
        self.path = os.path.join(directory, f"calls-{request_id}.jsonl")
        self.keys, self.request_id = keys, request_id
        self._n = 0
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            line = (json.dumps({"call": entry, "mac": _mac(self.keys, self.request_id, self._n, entry)},
                               sort_keys=True) + "\n").encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            self._n += 1

    def read(self) -> tuple[list[dict[str, Any]], int]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return [], 0
        except OSError:
            return [], 1
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read()
        items: list[Any] = []
        for line in raw.split(b"\n"):
            if not line:
                continue
            try:
                items.append(json.loads(line))
            except ValueError:
                items.append(None)  # a line torn by the kill, or edited
        return _checked(self.keys, self.request_id, items)

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class DocJournal:
    def __init__(self, store: Any, keys: AuditKeys, request_id: str):
        self.store, self.keys, self.request_id = store, keys, request_id
        self.collection = f"{CALLS}/{request_id}"
        self._n = 0
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.store.put(f"{self.collection}/{self._n:06d}",
                           {"call": entry, "mac": _mac(self.keys, self.request_id, self._n, entry)})
            self._n += 1

    def read(self) -> tuple[list[dict[str, Any]], int]:
        names = sorted(self.store.list(self.collection))
        return _checked(self.keys, self.request_id, [self.store.get(f"{self.collection}/{n}") for n in names])

    def discard(self) -> None:
        for name in self.store.list(self.collection):
            self.store.delete(f"{self.collection}/{name}")
