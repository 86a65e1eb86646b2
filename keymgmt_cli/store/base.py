"""The state store's interface: JSON documents addressed by ids such as ``<mount>/keys/<name>``.

Every backend (the local directory, its in-memory twin, later DynamoDB) implements this protocol
and passes the one contract test in ``tests/store/test_store_contract.py``.

Document ids are ``/``-separated segments; each segment is ``is_segment``. A *collection*
is an id prefix: ``list("m1/keys")`` names the documents ``m1/keys/<name>`` directly inside it.
Stores validate ids with ``check_store_id``, which also refuses the top-level names the file
store keeps for itself (a first segment starting with ``.``, ``seal``, ``master.key``); a bad id
is a ValueError, a programming error, never user input.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds on the read path; the protocol is for checkers
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import Any, Protocol
else:
    Protocol = object

from ..errors import StoreError

#: The characters of a segment, ``[A-Za-z0-9_.:@%+-]``; a set, not a regex: the read path
#: (``FileStore.list`` checks every name it returns) imports no ``re``.
SEGMENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@%+-")
SEGMENT_MAX = 240


def is_segment(part: str) -> bool:
    """1 to ``SEGMENT_MAX`` characters of ``SEGMENT_CHARS`` (no trailing newline either)."""
    return 0 < len(part) <= SEGMENT_MAX and SEGMENT_CHARS.issuperset(part)


def check_doc_id(doc_id: str) -> list[str]:
    """Split and validate an id; raise ValueError (a programming error, never user input)."""
    parts = doc_id.split("/")
    for part in parts:
        if not is_segment(part) or part in (".", ".."):
            raise ValueError(f"invalid document id segment: {part!r}")
    return parts


#: Names the file store keeps for itself at the top of its directory (``seal.json``,
#: ``master.key``, ``.locks/``, temp files). Every store refuses them, so the twins agree.
RESERVED_ROOT_IDS = frozenset({"seal", "master.key"})


def check_store_id(doc_id: str) -> list[str]:
    """``check_doc_id`` plus the reserved top-level names (first segment ``.*``, ``seal``, ``master.key``)."""
    parts = check_doc_id(doc_id)
    if parts[0].startswith(".") or parts[0] in RESERVED_ROOT_IDS:
        raise ValueError(f"reserved document id: {doc_id!r}")
    return parts


def encode_document(doc: dict[str, Any]) -> bytes:
    """The one serialisation every store uses, so a document round-trips the same everywhere.

    Raises TypeError/ValueError for a non-dict or a value JSON cannot hold (programming errors).
    """
    if not isinstance(doc, dict):
        raise TypeError(f"a document must be a dict, not {type(doc).__name__}")
    import json  # writes only: reads parse with docjson, without json's import of re

    return (json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
            + "\n").encode("utf-8")


def lock_busy_error(name: str, hint: str | None = None) -> StoreError:
    """The one message for a lock that could not be had in time, whatever the backend."""
    return StoreError(f"state is locked by another keymgmt process (lock {name}); "
                      "retry or check for a stuck process", hint)


class DocumentStore(Protocol):
    """A set of JSON documents with atomic single-document writes and named exclusive locks."""

    #: Where the state lives, for ``keymgmt status`` ("/home/u/.local/share/keymgmt", "memory").
    location: str
    #: Backend name for ``keymgmt status`` ("file", "memory", "dynamodb").
    backend: str

    def get(self, doc_id: str) -> dict[str, Any] | None:
        """The document, or None when it does not exist."""

    def list(self, collection: str) -> list[str]:
        """Sorted names of the documents directly inside ``collection`` ([] when none)."""

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        """Create or replace the document atomically: readers see the old or the new, never a mix."""

    def delete(self, doc_id: str) -> bool:
        """Remove the document; True when it existed."""

    def delete_collection(self, collection: str) -> None:
        """Remove every document under ``collection`` (recursively)."""

    def lock(self, name: str, timeout: float = 60.0) -> AbstractContextManager[None]:
        """Hold an exclusive lock named ``name`` across processes (and threads) until the block ends.

        Not reentrant. Raises StoreError when it cannot be had within ``timeout`` seconds.
        """
