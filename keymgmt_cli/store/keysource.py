"""Which master key seals a state, its check value, and putting a recovered key back.

Small calls over ``masterkey.py`` (local states: env, key file, OS keyring, ``seal.json``) and
``kmsseal.py`` (states with a seal record ``meta/seal``: AWS KMS or a shared
``KEYMGMT_MASTER_KEY``), for escrow, recovery, snapshots and rekey. Nothing here prints a key.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PreconditionFailed, StoreError
from . import masterkey
from .masterkey import MasterKey, key_check_value

SEAL_DOC = "meta/seal"
STATE_DOC = "state"


@dataclass(frozen=True)
class StateSeal:
    #: "local" (seal.json beside the state), "env" or "awskms" (a seal record in the state)
    kind: str
    kcv: str | None
    record: dict[str, Any] | None


def shared(store: Any, environ: Mapping[str, str]) -> bool:
    """True when the state's master key comes from a seal record (as ``open_secret_box`` decides)."""
    from . import setting

    return bool(setting(environ, "seal")) or store.backend not in ("file", "memory") \
        or store.get(SEAL_DOC) is not None


def state_seal(store: Any, environ: Mapping[str, str]) -> StateSeal:
    if shared(store, environ):
        from .kmsseal import read_record

        record = read_record(store)
        if record is None:
            return StateSeal("awskms", None, None)
        return StateSeal(str(record["kind"]), record.get("kcv"), record)
    meta = masterkey._read_meta(store.home)
    return StateSeal("local", None if meta is None else str(meta["kcv"]), meta)


def load_key(store: Any, environ: Mapping[str, str], *, keyring_backend: Any = None) -> MasterKey:
    """The state's current master key, proven against its check value (never created)."""
    if shared(store, environ):
        from . import setting
        from .kmsseal import load_shared_master_key

        return load_shared_master_key(store, environ, setting(environ, "seal"))
    return masterkey.load_master_key(store.home, environ, create=False,
                                     keyring_backend=keyring_backend)


def state_id(store: Any) -> str:
    doc = store.get(STATE_DOC)
    if not isinstance(doc, dict) or not isinstance(doc.get("state_id"), str) or not doc["state_id"]:
        raise PreconditionFailed(f"there is no state at {store.location} (nothing written yet)",
                                 hint="write a key first, or restore a snapshot")
    return doc["state_id"]


def prove(key: bytes, expected_kcv: str | None, location: str) -> None:
    """The rebuilt key is the one that sealed the state; PreconditionFailed otherwise."""
    if expected_kcv is None:
        raise PreconditionFailed(f"the state at {location} records no master-key check value; "
                                 "a rebuilt key cannot be proven",
                                 hint="restore seal.json (or meta/seal) from a backup or snapshot")
    if not hmac.compare_digest(key_check_value(key), str(expected_kcv)):
        raise PreconditionFailed(f"the shares rebuild a key that does not open the state at "
                                 f"{location} (kcv {key_check_value(key)}, expected {expected_kcv}); "
                                 "they are from before a rekey, or one share was altered",
                                 hint="use the shares of the current escrow ('keymgmt status' says when it was made)")


def put_recovered(store: Any, environ: Mapping[str, str], key: bytes, *,
                  keyring_backend: Any = None) -> str:
    """Store a proven key of a local state where ``load_master_key`` will find it; where, as a line.

    The keyring when usable, else ``<home>/master.key`` (0600). A key already stored there that
    opens the state is left alone; one that does not is refused (it would shadow the recovered one).
    """
    from .filestore import FileStore, write_file_atomic

    home = store.home
    if environ.get(masterkey.ENV_VAR) is not None:
        raise PreconditionFailed(f"{masterkey.ENV_VAR} is set: the configured source is the "
                                 "environment, which keymgmt cannot write",
                                 hint="run with -print and put the key into your secret store, or unset it")
    keyring = masterkey._Keyring(keyring_backend)
    with FileStore(home).lock(masterkey._LOCK):
        try:
            found = masterkey._find_stored(home, keyring)
        except StoreError:
            found = None
            if (home / masterkey.KEY_FILE).exists():
                raise PreconditionFailed(f"{home / masterkey.KEY_FILE} exists but is corrupt",
                                         hint="move it away, then recover again") from None
        if found is not None:
            if hmac.compare_digest(found.kcv, key_check_value(key)):
                return f"already in place ({found.source}); nothing written"
            raise PreconditionFailed(f"{found.source} holds another master key, which would "
                                     "shadow the recovered one",
                                     hint="move that key away (it does not open this state), then recover again")
        text = base64.b64encode(key).decode("ascii")
        if keyring.put(home, text):
            return f"keyring:{keyring.name}"
        key_file = home / masterkey.KEY_FILE
        try:
            write_file_atomic(key_file, (text + "\n").encode("ascii"), str(home))
        except OSError as exc:
            raise StoreError(f"cannot write master key file {key_file}: "
                             f"{exc.strerror or type(exc).__name__}") from None
        return f"file:{key_file}"
