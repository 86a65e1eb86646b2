"""Rekey: a new master key, every secret re-sealed under it, crash-safe and resumable.

The journal is the document ``meta/rekey``, written before anything changes::

    {"old_kcv", "new_kcv", "kind",
     "new_key": the new key sealed under the old one   (aad "meta/rekey#new_key"),
     "old_key": the old key sealed under the new one   (aad "meta/rekey#old_key"),
     "new_record": the new seal record (KMS seal: the new data key, encrypted by AWS KMS)}

So while it exists, whichever key the source holds (old or new) opens the other, and every
secret, each sealed under one of them, can be read. Steps, each safe to repeat:

1. journal written (nothing else changed yet);
2. every document re-sealed: a secret that unseals under the new key is left alone, one that
   unseals under the old key is sealed again under the new one (and every document passes
   through ``snapshot.reauthenticate``);
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
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import StoreError
from . import keysource, masterkey
from .masterkey import MasterKey, key_check_value
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


def _resume_keys(store: Any, environ: Mapping[str, str], journal: dict[str, Any],
                 keyring_backend: Any) -> tuple[MasterKey, bytes]:
    """(old, new) of an unfinished rekey, from whichever key the source holds."""
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


def _start(store: Any, environ: Mapping[str, str], keyring_backend: Any) -> tuple[dict[str, Any], MasterKey, bytes]:
    old = keysource.load_key(store, environ, keyring_backend=keyring_backend)
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
    return journal, old, new


# -- re-sealing --------------------------------------------------------------------------------


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, path + (str(k),))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, path + (str(i),))
    else:
        yield path, value


def _set(doc: Any, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    if isinstance(doc, list):
        doc[int(path[-1])] = value
    else:
        doc[path[-1]] = value


def reseal_document(doc_id: str, doc: dict[str, Any], old: bytes, new: bytes) -> int:
    """Re-seal, in place, every secret of ``doc`` still under ``old``; how many were."""
    old_box, new_box = _sealer(old), _sealer(new)
    changed = 0
    for path, value in list(_walk(doc)):
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
        _set(doc, path, new_box.seal(plaintext, aad))
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
    from .snapshot import all_ids, hold_all, reauthenticate

    state_id = keysource.state_id(store)
    with hold_all(store):
        journal = store.get(REKEY_DOC)
        resumed = journal is not None
        if journal is None:
            journal, old, new = _start(store, environ, keyring_backend)
        else:
            old, new = _resume_keys(store, environ, journal, keyring_backend)
        resealed = 0
        for doc_id in all_ids(store):
            if doc_id.startswith("meta/"):
                continue
            doc = store.get(doc_id)
            if doc is None:
                continue
            stored = json.dumps(doc, sort_keys=True)
            count = reseal_document(doc_id, doc, old.key, new)
            doc = reauthenticate(doc_id, doc, new)  # the document MACs' hook: every document passes
            if count or json.dumps(doc, sort_keys=True) != stored:
                store.put(doc_id, doc)
                resealed += count
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
    escrow.write_record(store, escrow_id, record["shares"], record["threshold"], key_check_value(new))
    return {"shares": record["shares"], "threshold": record["threshold"], "texts": shares}
