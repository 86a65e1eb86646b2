"""How runners on several machines share one DynamoDB table: leases for the store's locks, and
versioned (conditional) writes for its documents. ``DynamoStore`` stands on ``LeasedWrites``.

Locks are *leases*: an item ``(#lease, name)`` created with a conditional ``PutItem`` (absent, or
expired by the taker's clock), renewed by a background thread every third of its duration while
held (so a long AWS operation keeps it), released with a ``DeleteItem`` conditional on the
owner. A runner that dies (kill -9, lost machine) stops renewing; its lease expires after
``KEYMGMT_LEASE_SECONDS`` (default 30) and the next runner takes it over. A runner stalled for
longer than that loses its lease; its next ``put`` is refused. Machines' clocks must agree to
within a few seconds (NTP). Lease items carry ``owner`` (host:pid:random of the holder),
``expires`` (epoch seconds, the holder's clock) and ``lease_ttl`` (DynamoDB's TTL attribute, so
dead leases are eventually removed).

Versions: the store remembers the version of every document it has read or written
(``_remember``); its ``put`` and ``delete`` are conditional on it, and a refused condition
(``ConditionFailed``) becomes ``ConcurrentUpdate`` naming who wrote the item and when. The errors
here are the shared state's refusals: exit 2, not a local problem.

Apart from ``dynamostore.py``, which holds the document protocol on the item layout; this is the
machinery that keeps two runners from overwriting each other, read in one place.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ProviderError, StoreError
from .awsclient import CONNECT_TIMEOUT, READ_TIMEOUT
from .base import lock_busy_error

LEASE_PK = "#lease"
DEFAULT_LEASE_SECONDS = 30.0
LEASE_ENV = "KEYMGMT_LEASE_SECONDS"
TTL_ATTRIBUTE = "lease_ttl"


class SharedStateError(StoreError):
    """The shared state refused a write or a lock: exit 2 (``exit_code``), not a local problem.

    A StoreError so that every backend raises the same class for a busy lock (the contract).
    """

    exit_code = 2


class ConcurrentUpdate(SharedStateError):
    """The item changed since this runner read it."""


class LeaseHeld(SharedStateError):
    """A lease could not be had in time."""


class LeaseLost(SharedStateError):
    """This runner held a lease and lost it (stalled longer than the lease)."""


class ConditionFailed(Exception):
    """A conditional write refused: ``item`` is the item as it is now (when DynamoDB returned it)."""

    def __init__(self, item: dict[str, Any] | None):
        super().__init__("conditional check failed")
        self.item = item


def runner_id() -> str:
    """host:pid of this process, as leases and writes record it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def utc_text(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def lease_seconds_from(environ: Any) -> float:
    raw = (environ or {}).get(LEASE_ENV)
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 3600.0:
        raise StoreError(f"{LEASE_ENV}={raw!r} is not a number of seconds between 1 and 3600")
    return value


class _Lease:
    """A held lease and the thread that renews it."""

    def __init__(self, store: LeasedWrites, name: str, sk: str, owner: str, expires: float):
        self.store, self.name, self.sk, self.owner = store, name, sk, owner
        self.expires = expires
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"keymgmt-lease-{name[:40]}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=READ_TIMEOUT + CONNECT_TIMEOUT)

    def _run(self) -> None:
        interval = max(self.store.lease_seconds / 3.0, 0.1)
        while not self._stop.wait(interval):
            now = time.time()
            try:
                self.expires = self.store._renew(self.sk, self.owner, now)
            except ConditionFailed:
                self.lost = True
                return
            except Exception:  # transient (network, throttling): try again at the next tick
                if time.time() >= self.expires:
                    self.lost = True
                    return


class LeasedWrites:
    """Leases and versions of one store. The store provides ``_call`` (one DynamoDB request, its
    failures worded, a refused condition raised as ``ConditionFailed``), ``table`` and
    ``lease_seconds``."""

    _call: Any
    table: str
    lease_seconds: float

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}  # doc id -> version last read/written; 0 = missing
        self._seen_lock = threading.Lock()
        self._leases: set[_Lease] = set()
        self._runner = runner_id()

    # -- versions ----------------------------------------------------------------------------

    def _remember(self, doc_id: str, version: int) -> None:
        with self._seen_lock:
            self._seen[doc_id] = version

    def _forget(self, doc_id: str) -> None:
        with self._seen_lock:
            self._seen.pop(doc_id, None)

    def _conflict(self, doc_id: str, item: dict[str, Any] | None, created: bool) -> ConcurrentUpdate:
        who = ""
        if item and "by" in item:
            when = item.get("at", {}).get("N")
            who = f" ({item['by'].get('S', '?')}" + (
                f" at {utc_text(float(when))})" if when else ")")
        what = "created meanwhile" if created else "updated meanwhile"
        return ConcurrentUpdate(f"concurrent update of {doc_id} by another runner{who}: it was "
                                f"{what}, so this write was refused; re-run the command",
                                hint="nothing was overwritten; the re-run starts from the "
                                     "current state")

    # -- leases ------------------------------------------------------------------------------

    def _check_leases(self) -> None:
        with self._seen_lock:
            lost = [lease for lease in self._leases if lease.lost]
        if lost:
            raise LeaseLost(f"lease {lost[0].name} was lost (this runner stalled for more than "
                            f"{self.lease_seconds:g} s and another may have taken it); "
                            "nothing more is written; re-run the command")

    @staticmethod
    def _lease_sk(name: str) -> str:
        if not name:
            raise ValueError("empty lock name")
        if len(name.encode("utf-8")) > 900:  # the sort key may hold 1024 bytes
            import hashlib

            return name[:200] + "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()
        return name

    @contextmanager
    def lock(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        sk = self._lease_sk(name)
        owner = f"{self._runner}:{os.urandom(4).hex()}"
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = 0.02
        while True:
            now = time.time()
            expires = now + self.lease_seconds
            try:
                self._call(
                    "PutItem", TableName=self.table,
                    Item={"pk": {"S": LEASE_PK}, "sk": {"S": sk}, "name": {"S": name[:1000]},
                          "owner": {"S": owner}, "expires": {"N": f"{expires:.3f}"},
                          TTL_ATTRIBUTE: {"N": str(int(expires) + 60)},
                          "acquired": {"S": utc_text(now)}},
                    ConditionExpression="attribute_not_exists(#pk) OR #exp < :now",
                    ExpressionAttributeNames={"#pk": "pk", "#exp": "expires"},
                    ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")
                break
            except ConditionFailed as failed:
                holder = failed.item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._busy(name, sk, holder)
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.6, 0.25)
        lease = _Lease(self, name, sk, owner, expires)
        with self._seen_lock:
            self._leases.add(lease)
        lease.start()
        try:
            yield
        finally:
            lease.stop()
            with self._seen_lock:
                self._leases.discard(lease)
            if not lease.lost:
                try:
                    self._call("DeleteItem", TableName=self.table,
                               Key={"pk": {"S": LEASE_PK}, "sk": {"S": sk}},
                               ConditionExpression="#own = :me",
                               ExpressionAttributeNames={"#own": "owner"},
                               ExpressionAttributeValues={":me": {"S": owner}})
                except ConditionFailed:
                    pass  # expired and taken over: nothing of ours to release
                except ProviderError:
                    pass  # it expires on its own; do not hide the block's own outcome

    def _busy(self, name: str, sk: str, holder: dict[str, Any] | None) -> LeaseHeld:
        if not holder:  # older DynamoDB-compatible endpoints do not return the old item
            holder = self._call("GetItem", TableName=self.table, ConsistentRead=True,
                                Key={"pk": {"S": LEASE_PK}, "sk": {"S": sk}}).get("Item")
        base = lock_busy_error(name)
        if not holder:
            return LeaseHeld(str(base), base.hint)
        owner = holder.get("owner", {}).get("S", "?")
        who = ":".join(owner.split(":")[:2])
        until = utc_text(float(holder.get("expires", {}).get("N", "0")))
        return LeaseHeld(f"{base}: lease {name} held by {who} until {until}",
                         hint=f"a lease left by a runner that died expires on its own "
                              f"(after {self.lease_seconds:g} s without renewal)")

    def _renew(self, sk: str, owner: str, now: float) -> float:
        expires = now + self.lease_seconds
        self._call("UpdateItem", TableName=self.table,
                   Key={"pk": {"S": LEASE_PK}, "sk": {"S": sk}},
                   UpdateExpression="SET #exp = :e, #ttl = :t",
                   ConditionExpression="#own = :me",
                   ExpressionAttributeNames={"#exp": "expires", "#ttl": TTL_ATTRIBUTE,
                                             "#own": "owner"},
                   ExpressionAttributeValues={":e": {"N": f"{expires:.3f}"},
                                              ":t": {"N": str(int(expires) + 60)},
                                              ":me": {"S": owner}})
        return expires

    def lease_holder(self, name: str) -> dict[str, Any] | None:
        """The lease item for ``name`` (owner, expires) or None; for status and tests."""
        item = self._call("GetItem", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": LEASE_PK}, "sk": {"S": self._lease_sk(name)}}).get("Item")
        if not item:
            return None
        return {"owner": item["owner"]["S"], "expires": float(item["expires"]["N"])}
