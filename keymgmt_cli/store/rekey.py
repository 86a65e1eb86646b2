"""Rekey: a new master key, every secret re-sealed under it, crash-safe and resumable.

The journal is the document ``meta/rekey``, written before anything changes::

    {"old_kcv", "new_kcv", "kind",
     "new_key": the new key sealed under the old one   (aad "meta/rekey#new_key"),
     "old_key": the old key sealed under the new one   (aad "meta/rekey#old_key"),
     "new_record": the new seal record (KMS seal: the new data key, encrypted by AWS KMS)}

So while it exists, whichever key the source holds (old or new) opens the other, and every
secret, each sealed under one of them, can be read. Steps, each safe to repeat:

1. every document verified under the old key (a tampered state is never rekeyed), then the
   journal written (nothing else changed yet);
2. every document of the raw backend (``AuthStore.inner``) re-sealed and re-authenticated: a
   document's MAC is accepted under the old or the new key (and its revision checked against the
   revision records), its secrets still under the old key are sealed again under the new one,
   and it is written back under the new key's MAC with the same revision; the revision records
   (``meta/revisions/*``) and the markers (``auth.MARKERS``: escrow, retired, origin, instance)
   likewise. Documents under ``meta/`` carry no document secrets.
   The audit trail (in the state's documents, or the file trail beside a local state) is
   re-linked under the new chain key (``rekey_trail.py``);
3. the new key goes to the source (OS keyring or ``master.key``; the environment cannot be
   written, so the new key is printed for the secret store, before anything refers to it);
4. the check value (``seal.json``, or the seal record ``meta/seal``) names the new key, from
   here on the old key is refused;
5. with escrow, new shares are made, printed and recorded (the old ones rebuild the old key,
   which the check value now refuses);
6. the journal is removed.

A ``kill -9`` anywhere leaves a state that the next ``keymgmt operator rekey`` finishes, with
either key in the source. While the journal exists, ``retired.check_writable`` refuses changes.
Every engine lock is held throughout, so no other keymgmt process writes meanwhile.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import StoreError
from . import keysource, masterkey
from .masterkey import MasterKey, key_check_value
from .migrate import set_at, walk_leaves
from .retired import REKEY_DOC

TOKEN_RE = re.compile(r"^v1\.[A-Za-z0-9_-]{38,}$")
#: Fields the engine seals: they must unseal under one of the two keys, or the rekey stops.
KNOWN_SEALED = (
    (re.compile(r"^ns/[^/]+/keys/[^/]+$"), re.compile(r"^versions/[^/]+/material$")),
    (re.compile(r"^ns/[^/]+/kms/[^/]+$"), re.compile(r"^credentials$")),
)
_NEW_AAD, _OLD_AAD = f"{REKEY_DOC}#new_key", f"{REKEY_DOC}#old_key"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _sealer(key: bytes) -> Any:
    from .seal import Sealer

    return Sealer(key)


# -- the two keys ------------------------------------------------------------------------------


def _candidate(store: Any, environ: Mapping[str, str], kind: str, keyring_backend: Any) -> MasterKey | None:
    """The key the source holds now, not yet checked against anything."""
    if environ.get(masterkey.ENV_VAR) is not None:
        return MasterKey(masterkey._parse_env_key(environ[masterkey.ENV_VAR]), masterkey.ENV_SOURCE)
    if kind == "local":
        return masterkey._find_stored(store.home, masterkey._Keyring(keyring_backend))
    return None


def _kms_key(store: Any, environ: Mapping[str, str], record: dict[str, Any]) -> MasterKey:
    from .kmsseal import load_shared_master_key
    from .snapshot import _RecordOnly

    return load_shared_master_key(_RecordOnly(record, store.location), environ, None)


def _checked_journal(store: Any, journal: Any) -> dict[str, Any]:
    """The rekey journal as ``_start`` writes it, else a StoreError naming it. It is not MAC'd (it
    holds each key sealed under the other, and a forged one opens nothing), so its fields are
    checked before they are compared or unsealed: a hand-edited value must give this one line, not
    a TypeError from the constant-time comparison or a KeyError."""
    kind = journal.get("kind") if isinstance(journal, dict) else None
    sound = (kind in ("local", "awskms") and masterkey._is_kcv(journal.get("old_kcv"))
             and masterkey._is_kcv(journal.get("new_kcv"))
             and isinstance(journal.get("old_key"), str) and isinstance(journal.get("new_key"), str)
             and (kind == "local" or isinstance(journal.get("new_record"), dict)))
    if not sound:
        raise StoreError(f"the rekey journal {REKEY_DOC} of {store.location} is corrupt",
                         hint="restore the state from a backup (operator snapshot restore); it was "
                              "changed outside keymgmt")
    return journal


def _resume_keys(store: Any, environ: Mapping[str, str], journal: dict[str, Any],
                 keyring_backend: Any) -> tuple[MasterKey, bytes]:
    """(old, new) of an unfinished rekey, from whichever key the source holds."""
    journal = _checked_journal(store, journal)
    kind = journal["kind"]
    if kind == "awskms":
        seal = keysource.state_seal(store, environ)
        assert seal.record is not None
        current = _kms_key(store, environ, seal.record)
        new = _kms_key(store, environ, journal["new_record"]).key
        if hmac.compare_digest(current.kcv, journal["new_kcv"]):  # crashed after step 4
            return MasterKey(_sealer(new).unseal(journal["old_key"], _OLD_AAD), current.source), new
        return current, new
    found = _candidate(store, environ, kind, keyring_backend)
    if found is None:
        raise StoreError(f"a rekey of {store.location} is unfinished and no master key is "
                         f"available (neither kcv {journal['old_kcv']} nor {journal['new_kcv']})",
                         hint=f"restore the key, or set {masterkey.ENV_VAR}")
    if hmac.compare_digest(found.kcv, journal["old_kcv"]):
        return found, _sealer(found.key).unseal(journal["new_key"], _NEW_AAD)
    if hmac.compare_digest(found.kcv, journal["new_kcv"]):
        old = _sealer(found.key).unseal(journal["old_key"], _OLD_AAD)
        return MasterKey(old, found.source), found.key
    raise StoreError(f"the master key from {found.source} (kcv {found.kcv}) is neither the old "
                     f"({journal['old_kcv']}) nor the new ({journal['new_kcv']}) key of the "
                     f"unfinished rekey of {store.location}")


def _start(store: Any, environ: Mapping[str, str], old: MasterKey) -> tuple[dict[str, Any], bytes]:
    seal = keysource.state_seal(store, environ)
    journal: dict[str, Any] = {"format": 1, "kind": seal.kind, "old_kcv": old.kcv, "started": _now()}
    if seal.kind == "awskms":
        from .kmsseal import KmsSeal, _spec_of

        assert seal.record is not None
        new, blob, arn = KmsSeal(_spec_of(seal.record)).generate()
        journal["new_record"] = {**seal.record, "key_arn": arn,
                                 "encrypted_key": base64.b64encode(blob).decode("ascii"),
                                 "kcv": key_check_value(new), "rekeyed": _now()}
    else:
        new = os.urandom(32)
    journal["new_kcv"] = key_check_value(new)
    journal["new_key"] = _sealer(old.key).seal(new, _NEW_AAD)
    journal["old_key"] = _sealer(new).seal(old.key, _OLD_AAD)
    store.get(REKEY_DOC)
    store.put(REKEY_DOC, journal)
    return journal, new


# -- re-sealing --------------------------------------------------------------------------------


def reseal_document(doc_id: str, doc: dict[str, Any], old: bytes, new: bytes) -> int:
    """Re-seal, in place, every secret of ``doc`` still under ``old``; how many were."""
    old_box, new_box = _sealer(old), _sealer(new)
    changed = 0
    for path, value in list(walk_leaves(doc)):
        field = "/".join(path)
        known = any(d.match(doc_id) and f.match(field) for d, f in KNOWN_SEALED)
        if not (isinstance(value, str) and TOKEN_RE.match(value)):
            if known and value is not None:
                raise StoreError(f"cannot rekey {doc_id}#{field}: not a sealed value (corrupt state)")
            continue
        aad = f"{doc_id}#{field}"
        try:
            new_box.unseal(value, aad)
            continue  # done on an earlier run
        except StoreError:
            pass
        try:
            plaintext = old_box.unseal(value, aad)
        except StoreError:
            if known:
                raise StoreError(f"cannot rekey {aad}: it unseals under neither the old nor "
                                 "the new master key (tampered state)") from None
            continue  # a value shaped like a token that is not a secret of ours
        set_at(doc, path, new_box.seal(plaintext, aad))
        changed += 1
    return changed


# -- the whole -------------------------------------------------------------------------------


def rekey(store: Any, environ: Mapping[str, str], *, keyring_backend: Any = None,
          report: Callable[[dict[str, Any]], None] = lambda summary: None) -> dict[str, Any]:
    """Rekey (or finish an unfinished rekey of) ``store``; the summary.

    ``report(summary)`` is called before the journal is removed, so that what the user must
    keep is shown while a re-run could still show it again: ``summary["master_key"]`` (bytes)
    when the source is the environment, ``summary["shares"]`` with escrow. If it raises, the
    rekey stays unfinished (the next run finishes it and reports again).
    """
    from .auth import AuthStore, derive_auth_key
    from .snapshot import _raw, all_ids, hold_all

    store = _raw(store)  # documents are read and re-MAC'd here, as stored, under either key
    with hold_all(store):
        journal = store.get(REKEY_DOC)
        resumed = journal is not None
        if journal is None:
            old = keysource.load_key(store, environ, keyring_backend=keyring_backend)
            auth_key = derive_auth_key(old.key)
            checker = AuthStore(store, lambda: auth_key)
            for doc_id in all_ids(store):  # nothing tampered with is re-MAC'd under the new key
                checker.get(doc_id)
            journal, new = _start(store, environ, old)
        else:
            old, new = _resume_keys(store, environ, journal, keyring_backend)
        state_id = _state_id(store, old.key, new)
        resealed = reauthenticate_all(store, state_id, old.key, new)
        from .rekey_trail import relink_audit_trail, relink_file_trail

        relink_audit_trail(store, old.key, new)  # before the source holds the new key
        relink_file_trail(store, environ, old.key, new)
        source = _commit(store, environ, journal, new, keyring_backend)
        summary: dict[str, Any] = {"resumed": resumed, "resealed": resealed,
                                   "kcv": key_check_value(new), "source": source, "escrow": None}
        if source == masterkey.ENV_SOURCE:
            summary["master_key"] = new
        summary["escrow"] = _re_escrow(store, new, state_id)
        report(summary)
        store.get(REKEY_DOC)
        store.delete(REKEY_DOC)
    summary.pop("master_key", None)  # shown once, by report; not kept around
    if summary["escrow"] is not None:
        summary["escrow"].pop("texts", None)
    return summary


def _state_id(store: Any, old: bytes, new: bytes) -> str:
    """The state id of the state document, whose MAC verifies under the old or the new key."""
    from .auth import check_document, derive_auth_key

    doc = store.get(keysource.STATE_DOC)
    state_id = doc.get("state_id") if isinstance(doc, dict) else None
    if not isinstance(state_id, str) or not state_id or not any(
            check_document(derive_auth_key(k), state_id, keysource.STATE_DOC, doc) for k in (old, new)):
        raise StoreError(f"state document {keysource.STATE_DOC} in {store.location} is missing or "
                         "fails authentication under both keys of the rekey",
                         hint="restore it from a backup; it was changed outside keymgmt")
    return state_id


def _open(store: Any, doc_id: str, doc: dict[str, Any], state_id: str,
          keys: tuple[bytes, bytes]) -> tuple[int, bool]:
    """(revision, already under the new key) of a stored document; StoreError if neither key."""
    from .auth import check_document

    old_auth, new_auth = keys
    rev = check_document(new_auth, state_id, doc_id, doc)
    if rev is not None:
        return rev, True
    rev = check_document(old_auth, state_id, doc_id, doc)
    if rev is not None:
        return rev, False
    raise StoreError(f"state document {doc_id} in {store.location} fails authentication under "
                     "both the old and the new master key (edited outside keymgmt)",
                     hint="restore it from a backup; it was changed outside keymgmt")


def reauthenticate_all(store: Any, state_id: str, old: bytes, new: bytes) -> int:
    """Re-seal every secret and re-MAC every authenticated document (and revision record) of
    the raw backend ``store`` under ``new``, keeping revisions; how many secrets were re-sealed.

    Safe to repeat after a crash: a document may carry a MAC under either key (it is accepted
    under either, checked against the revision records, and written under the new one)."""
    from .auth import AUTH_FIELD, REVISIONS, derive_auth_key, is_authenticated, is_marker, sign_document
    from .snapshot import all_ids

    keys = (derive_auth_key(old), derive_auth_key(new))
    ids = all_ids(store)
    records = [i for i in ids if i.startswith(REVISIONS + "/")]
    floors: dict[str, int] = {}
    for record_id in records:
        doc = store.get(record_id)
        if doc is None:
            continue
        rev, done = _open(store, record_id, doc, state_id, keys)
        body = {k: v for k, v in doc.items() if k != AUTH_FIELD}
        revs = body.get("revs")
        if isinstance(revs, dict):
            floors.update({k: v for k, v in revs.items() if type(v) is int})
        if not done:
            store.put(record_id, sign_document(keys[1], state_id, record_id, rev, body))
    resealed = 0
    for doc_id in ids:
        if doc_id.startswith(REVISIONS + "/") or (doc_id.startswith("meta/") and not is_marker(doc_id)):
            continue  # revision records (above); the seal record, the journal: no document MAC
        doc = store.get(doc_id)
        if doc is None:
            continue
        if not is_authenticated(doc_id):  # the audit trail: re-sealed if it held a secret
            count = reseal_document(doc_id, doc, old, new)
            if count:
                store.put(doc_id, doc)
                resealed += count
            continue
        rev, done = _open(store, doc_id, doc, state_id, keys)
        if rev < floors.get(doc_id, 0):
            raise StoreError(f"state document {doc_id} in {store.location} is an older copy put "
                             f"back (revision {rev}; the state recorded {floors[doc_id]})",
                             hint="restore the current copy from a backup")
        body = {k: v for k, v in doc.items() if k != AUTH_FIELD}
        count = reseal_document(doc_id, body, old, new)
        if count or not done:
            store.put(doc_id, sign_document(keys[1], state_id, doc_id, rev, body))
            resealed += count
    return resealed


def _commit(store: Any, environ: Mapping[str, str], journal: dict[str, Any], new: bytes,
            keyring_backend: Any) -> str:
    kind = journal["kind"]
    if kind == "awskms":
        store.get(keysource.SEAL_DOC)
        store.put(keysource.SEAL_DOC, journal["new_record"])
        return f"awskms:{journal['new_record'].get('key_arn')} (new data key)"
    if environ.get(masterkey.ENV_VAR) is not None:
        # the environment cannot be written: the key is reported before the journal (which
        # keeps it, sealed under the old key) is removed
        source = masterkey.ENV_SOURCE
    else:
        source = _store_local(store.home, new, keyring_backend)
    if kind == "env":
        seal = keysource.state_seal(store, environ)
        store.get(keysource.SEAL_DOC)
        store.put(keysource.SEAL_DOC, {**(seal.record or {}), "kcv": key_check_value(new),
                                       "rekeyed": _now()})
    else:
        masterkey._write_meta(store.home, MasterKey(new, source))
    return source


def _store_local(home: Any, new: bytes, keyring_backend: Any) -> str:
    from .filestore import write_file_atomic

    text = base64.b64encode(new).decode("ascii")
    key_file = home / masterkey.KEY_FILE
    if not key_file.exists():
        keyring = masterkey._Keyring(keyring_backend)
        if keyring.put(home, text):
            return f"keyring:{keyring.name}"
    try:
        write_file_atomic(key_file, (text + "\n").encode("ascii"), str(home))
    except OSError as exc:
        raise StoreError(f"cannot write master key file {key_file}: "
                         f"{exc.strerror or type(exc).__name__}") from None
    return f"file:{key_file}"


def _re_escrow(store: Any, new: bytes, state_id: str) -> dict[str, Any] | None:
    from . import escrow

    record = escrow.read_record(store)
    if record is None:
        return None
    # A run that crashed after this point printed shares that may be lost: every run makes
    # (and prints) a fresh set; an earlier set of the new key keeps working too.
    escrow_id, shares = escrow.split(new, record["shares"], record["threshold"], state_id)
    from .auth import AuthStore, derive_auth_key

    auth_key = derive_auth_key(new)  # the record is authenticated (auth.MARKERS), now under the new key
    escrow.write_record(AuthStore(store, lambda: auth_key), escrow_id, record["shares"], record["threshold"],
                        key_check_value(new))
    return {"shares": record["shares"], "threshold": record["threshold"], "texts": shares}
