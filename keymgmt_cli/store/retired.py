"""One state, never two: a state that moved elsewhere is marked retired and refuses changes.

``operator migrate`` (and ``operator snapshot restore -retire-source=URL``) writes
``meta/retired`` into the source: where the state now lives and when. From then on every
mutating command calls ``check_writable`` first and is refused with one line naming the new
home; reads keep working. A state with an unfinished rekey (``meta/rekey``) is refused too,
until ``keymgmt operator rekey`` finishes it.

``check_writable`` costs one ``get`` of a document that normally does not exist (a failed
``open`` on disk, one ``GetItem`` on DynamoDB) and is called only on the write path.

Two live copies of one state (a snapshot restored elsewhere while its source lives on) share a
state id, so the KMS keys' ``keymgmt:state_id`` tag cannot tell them apart. Each copy therefore
has its own **instance id** (``meta/instance``, authenticated, never carried by a snapshot): made
on the first key a state creates (``ensure_instance``), and new at every snapshot restore and
migration target. Keys keymgmt creates carry it as the tag ``keymgmt:instance``
(``engine/reconcile.py``), and ``meta/origin`` of a copy names the instance it was copied from and
which instances are known retired, so ``verify`` can tell a key inherited from a retired source
from one made by a copy that still lives (``engine/instances.py``).
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import PreconditionFailed

RETIRED_DOC = "meta/retired"
REKEY_DOC = "meta/rekey"


class Retired(PreconditionFailed):
    """A change asked of a retired state (exit 2)."""


def check_writable(store: Any) -> None:
    """Refuse a change to a retired state, or to one whose rekey is unfinished.

    The marker is authenticated (``auth.MARKERS``) and proven before it is obeyed: with the
    master key not at hand yet (OS keyring, KMS seal), it is loaded now, so a forged marker is
    refused as tampered (naming it) rather than pointing the operator at another state."""
    marker = store.get(RETIRED_DOC)
    if marker is not None:
        verify_now = getattr(store, "verify_now", None)
        if verify_now is not None:
            verify_now()  # StoreError when the marker was forged or edited
        from .locations import without_userinfo

        where = without_userinfo(str(marker.get("moved_to") or "another backend"))[:300]
        raise Retired(f"this state ({store.location}) is retired: it was moved to {where} on "
                      f"{marker.get('at', '?')}; reads work, changes are refused",
                      hint=f"point KEYMGMT_STORAGE at {where}")
    if store.get(REKEY_DOC) is not None:
        raise PreconditionFailed(f"a rekey of the state at {store.location} is unfinished; "
                                 "changes are refused until it is",
                                 hint="run 'keymgmt operator rekey' again to finish it")


def retire(store: Any, moved_to: str, state_id: str | None = None) -> None:
    """Mark ``store`` retired in favour of ``moved_to`` (idempotent: re-running rewrites it)."""
    store.get(RETIRED_DOC)  # DynamoDB: remember its version, so a re-run may replace it
    store.put(RETIRED_DOC, {"format": 1, "moved_to": moved_to, "state_id": state_id,
                            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def url_of(store: Any) -> str:
    """The state's address as KEYMGMT_STORAGE takes it (a DynamoDB location already is one)."""
    return f"file://{store.location}" if store.backend == "file" else str(store.location)



# -- instances and origins -----------------------------------------------------------------------

INSTANCE_DOC = "meta/instance"
ORIGIN_DOC = "meta/origin"  # snapshot.ORIGIN_DOC


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def instance_id(store: Any) -> str | None:
    """This copy's instance id, or None before it created its first key."""
    doc = store.get(INSTANCE_DOC)
    value = doc.get("instance_id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value else None


def ensure_instance(store: Any) -> str:
    """This copy's instance id, made (once, whoever races) if it has none yet.

    Local backends: under a store lock. DynamoDB: the put of a document read as absent is a
    conditional create, so of two runners racing one wins and the other reads its id."""
    found = instance_id(store)
    if found is not None:
        return found
    if store.backend in ("file", "memory"):
        with store.lock("instance"):
            found = instance_id(store)
            if found is None:
                found = new_instance(store)
        return found
    try:
        return new_instance(store)
    except Exception as exc:  # DynamoStore.ConcurrentUpdate: another runner made it first
        if type(exc).__name__ != "ConcurrentUpdate":
            raise
        forget = getattr(getattr(store, "inner", store), "_forget", None)
        if forget is not None:
            forget(INSTANCE_DOC)
        found = instance_id(store)
        if found is None:
            raise
        return found


def new_instance(store: Any, raw: Any = None) -> str:
    """Give ``store`` a new instance id (a restore or migration target is a new copy).

    ``raw``: the backend under ``store`` when the caller overwrites an id it did not read
    through ``store`` (DynamoDB remembers the version of what it read)."""
    import secrets

    value = secrets.token_hex(8)
    (raw if raw is not None else store).get(INSTANCE_DOC)
    store.put(INSTANCE_DOC, {"format": 1, "instance_id": value, "created": _now()})
    return value


def read_origin(store: Any) -> dict[str, Any] | None:
    doc = store.get(ORIGIN_DOC)
    return doc if isinstance(doc, dict) else None


def retired_instances(origin: dict[str, Any] | None) -> list[str]:
    """The instances a copy knows were retired (its source once retired, and theirs)."""
    values = (origin or {}).get("retired_instances")
    return [v for v in values if isinstance(v, str) and v] if isinstance(values, list) else []


def lineage(store: Any) -> dict[str, Any]:
    """What a copy of ``store`` must know about it: its instance id and the retired ones."""
    return {"id": instance_id(store), "retired": retired_instances(read_origin(store))}


def record_source_retired(store: Any, source_instance: str | None, raw: Any = None) -> None:
    """After its source was retired, a copy's origin says so: keys the source made before the copy
    are then inherited, not claimed by another live state (``engine/instances.py``)."""
    origin = dict(read_origin(store) or {"format": 1})
    retired = retired_instances(origin)
    if source_instance and source_instance not in retired:
        retired.append(source_instance)
    origin.update(source_retired=True, retired_instances=retired, source_retired_at=_now())
    if source_instance:
        origin["source_instance"] = source_instance
    (raw if raw is not None else store).get(ORIGIN_DOC)
    store.put(ORIGIN_DOC, origin)
