"""The shape of each state document, checked before the engine acts on it.

A document that parses as JSON but has the wrong shape (hand-edited, truncated by a foreign tool,
written by a newer keymgmt) must give one line naming the document, never a traceback or an
``internal error (KeyError)`` halfway through a command. The checks are structural only (which
fields exist, of which JSON type); authenticity is the store's business (``store`` verifies each
document's MAC where the state is authenticated).

Plain dict/isinstance code, no schema library: this runs on the read path.
"""

from __future__ import annotations

from keymgmt_cli.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_STR = (str,)
_INT = (int,)
_BOOL = (bool,)
_LIST = (list,)
_DICT = (dict,)
_OPT_STR = (str, type(None))

KEY_FIELDS = {"name": _STR, "type": _STR, "deletion_allowed": _BOOL, "min_enabled_version": _INT,
              "latest_version": _INT, "versions": _DICT}
KEY_VERSION_FIELDS = {"creation_time": _STR, "material": _STR}
PROVIDER_FIELDS = {"name": _STR, "provider": _STR, "key_collection": _STR, "credentials": _OPT_STR}
DIST_FIELDS = {"key_name": _STR, "kms_name": _STR, "name": _STR, "alias": _STR, "purpose": _LIST,
               "protection": _STR, "key_spec": _STR, "key_usage": _STR, "versions": _DICT,
               "alias_target": _OPT_STR}
STATE_FIELDS = {"state_id": _STR, "mounts": _DICT}


class MalformedDocument(StoreError):
    """A state document has the wrong shape (a StoreError: exit 2 from the verbs, which exit 2 for any
    failed request as Vault's CLI does)."""


def _fail(doc_id: str, what: str) -> MalformedDocument:
    return MalformedDocument(f"state document {doc_id} is malformed: {what}",
                             hint="restore it from a backup of the state; keymgmt will not act on it")


def _fields(doc_id: str, doc: Any, fields: dict[str, tuple[type, ...]], where: str = "") -> None:
    if not isinstance(doc, dict):
        raise _fail(doc_id, f"{where or 'the document'} is not an object")
    for name, types in fields.items():
        value = doc.get(name)
        if name not in doc or not isinstance(value, types) or (bool not in types and isinstance(value, bool)
                                                               and int in types):
            raise _fail(doc_id, f"field {where}{name} is missing or of the wrong type")


def _numbered(doc_id: str, versions: dict[str, Any], where: str) -> None:
    for number, record in versions.items():
        if not number.isdigit() or int(number) < 1:
            raise _fail(doc_id, f"{where} has a version named {number[:20]!r}")
        if not isinstance(record, dict):
            raise _fail(doc_id, f"{where}.{number} is not an object")


def key(doc_id: str, doc: Any) -> dict[str, Any]:
    _fields(doc_id, doc, KEY_FIELDS)
    _numbered(doc_id, doc["versions"], "versions")
    for number, version in doc["versions"].items():
        _fields(doc_id, version, KEY_VERSION_FIELDS, f"versions.{number}.")
    if str(doc["latest_version"]) not in doc["versions"]:
        raise _fail(doc_id, "latest_version names no version")
    if not isinstance(doc.get("replica_regions", []), list):
        raise _fail(doc_id, "field replica_regions is of the wrong type")
    return doc


def provider(doc_id: str, doc: Any) -> dict[str, Any]:
    _fields(doc_id, doc, PROVIDER_FIELDS)
    return doc


def distribution(doc_id: str, doc: Any) -> dict[str, Any]:
    _fields(doc_id, doc, DIST_FIELDS)
    _numbered(doc_id, doc["versions"], "versions")
    for field in ("replica_regions",):
        if not isinstance(doc.get(field, []), list):
            raise _fail(doc_id, f"field {field} is of the wrong type")
    for field in ("replica_alias_targets", "replica_alias_names"):
        if not isinstance(doc.get(field, {}), dict):
            raise _fail(doc_id, f"field {field} is of the wrong type")
    return doc


def state(doc_id: str, doc: Any) -> dict[str, Any]:
    _fields(doc_id, doc, STATE_FIELDS)
    for path, mount in doc["mounts"].items():
        if not isinstance(mount, dict) or not isinstance(mount.get("uuid"), str):
            raise _fail(doc_id, f"mount {path[:40]!r} is malformed")
    return doc


def load(store: Any, doc_id: str, check: Any) -> dict[str, Any] | None:
    """``store.get`` plus the shape check (None when the document does not exist)."""
    doc = store.get(doc_id)
    return None if doc is None else check(doc_id, doc)
