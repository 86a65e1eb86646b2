"""One state, never two: a state that moved elsewhere is marked retired and refuses changes.

``operator migrate`` (and ``operator snapshot restore -retire-source=URL``) writes
``meta/retired`` into the source: where the state now lives and when. From then on every
mutating command calls ``check_writable`` first and is refused with one line naming the new
home; reads keep working. A state with an unfinished rekey (``meta/rekey``) is refused too,
until ``keymgmt operator rekey`` finishes it.

``check_writable`` costs one ``get`` of a document that normally does not exist (a failed
``open`` on disk, one ``GetItem`` on DynamoDB) and is called only on the write path.
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
    """Refuse a change to a retired state, or to one whose rekey is unfinished."""
    marker = store.get(RETIRED_DOC)
    if marker is not None:
        where = str(marker.get("moved_to") or "another backend")[:300]
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


def retired_to(store: Any) -> str | None:
    marker = store.get(RETIRED_DOC)
    return None if marker is None else str(marker.get("moved_to"))
