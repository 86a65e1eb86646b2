"""Where the master key comes from, and proof that it is the one that sealed the state.

Sources, first found wins:

1. ``KEYMGMT_MASTER_KEY``: base64 of exactly 32 bytes (CI, containers).
2. ``<home>/master.key`` if it exists. It is only ever created on a machine without a usable
   keyring, so when it is there it is the key of this state; looking at it first also spares
   headless machines the (slow) keyring import on every run.
3. The OS keyring (``keyring`` package), service ``keymgmt``, username the state directory.

With ``create=True`` and no key anywhere, a new random key goes into the keyring, or, when no
keyring is usable, into ``<home>/master.key`` (0600) with a one-time warning.

``<home>/seal.json`` (not secret) records which source created the key and its key check value
(KCV, ``HMAC-SHA256(key, "keymgmt-kcv")``, first 8 bytes in hex). Every load compares the
KCV, so a different key fails with a clear error instead of "tampered state" on every secret,
and a lost key is reported as lost rather than silently replaced by a new one. A missing
``seal.json`` is recorded afresh only while the state holds no sealed secret and no
authenticated document; otherwise it is an error (restore it from a backup), so nobody can
swap the key by deleting the check value. A corrupt one is always an error.

Standard library only: no ``cryptography``; ``keyring`` is imported only when it is consulted; the
check value is computed with ``digests.py`` (HMAC-SHA256 without ``hmac``/``hashlib``/OpenSSL) and
``seal.json`` parsed with ``docjson.py`` (without ``json`` and ``re``): reads with the key set import
this module.
"""

from __future__ import annotations

import binascii
import os
import sys
import time

TYPE_CHECKING = False  # typing and dataclasses cost milliseconds: the read path imports this module
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any

from ..errors import StoreError
from .digests import equal, hmac_sha256
from .docjson import loads
from .filestore import FileStore, write_file_atomic
from .private_dir import link_error, read_nofollow

ENV_VAR = "KEYMGMT_MASTER_KEY"
ENV_SOURCE = f"env:{ENV_VAR}"
KEY_FILE = "master.key"
SEAL_META = "seal.json"
KEY_BYTES = 32
_LOCK = "master-key"
_GENERATE_HINT = ("generate one with: python3 -c 'import base64,os; "
                  "print(base64.b64encode(os.urandom(32)).decode())'")


class MasterKey:
    """A master key and where it came from. Its repr never shows the key."""

    __slots__ = ("key", "source")

    def __init__(self, key: bytes, source: str):
        self.key = key
        #: "env:KEYMGMT_MASTER_KEY" | "keyring:<backend name>" | "file:<path>"
        self.source = source

    def __repr__(self) -> str:
        return f"MasterKey(source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, MasterKey) and equal(self.key, other.key)
                and self.source == other.source)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    @property
    def kcv(self) -> str:
        return key_check_value(self.key)


def key_check_value(key: bytes) -> str:
    return hmac_sha256(key, b"keymgmt-kcv").hex()[:16]


def _is_kcv(value: object) -> bool:
    """A key check value as ``key_check_value`` writes it: 16 lower-case hex digits."""
    return (isinstance(value, str) and len(value) == 16
            and all(c in "0123456789abcdef" for c in value))


def _warn_stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def load_master_key(home: Path, environ: Mapping[str, str], *, create: bool,
                    keyring_backend: Any = None,
                    warn: Callable[[str], None] = _warn_stderr) -> MasterKey:
    """The master key of the state in ``home``; StoreError when there is none or it is wrong.

    ``keyring_backend``: a ``keyring`` backend to use instead of the OS one (tests).
    """
    value = environ.get(ENV_VAR)
    if value is not None:  # every read with the key set: os.path strings, no pathlib
        found = MasterKey(_parse_env_key(value), ENV_SOURCE)
        _check_or_record(os.path.abspath(home), found, create)
        return found
    from pathlib import Path

    home = Path(os.path.abspath(home))

    keyring = _Keyring(keyring_backend)
    found = _find_stored(home, keyring)
    if found is None:
        if not create:
            _raise_missing(home, _read_meta(home), keyring)
        with FileStore(home).lock(_LOCK):
            found = _find_stored(home, keyring)  # another process may have just made it
            if found is None:
                _raise_if_lost(home, _read_meta(home), keyring)
                found = _create(home, keyring, warn)
                _write_meta(home, found)
                return found
    _check_or_record(home, found, create)
    return found


def describe_source(home: Path, environ: Mapping[str, str], *, keyring_backend: Any = None) -> str:
    """One line for ``keymgmt status``: the source ``load_master_key`` would really use, or that
    none is available now (and what to do), or where a first write would put one.

    Looks where the load looks, in its order (the environment, ``master.key``, the OS keyring),
    and compares what it finds with the check value on record (an HMAC of the key: nothing is
    unsealed, no secret is shown). Imports ``keyring`` only when neither of the first two is there.
    """
    from pathlib import Path

    home = Path(os.path.abspath(home))
    try:
        meta = _read_meta(home)
    except StoreError as exc:
        return f"unknown ({exc})"
    value = environ.get(ENV_VAR)
    if value is not None:
        try:
            found = MasterKey(_parse_env_key(value), ENV_SOURCE)
        except StoreError as exc:
            return f"{ENV_SOURCE} (unusable: {exc})"
        return found.source + _mismatch(found, meta)
    keyring = _Keyring(keyring_backend)
    try:
        found = _find_stored(home, keyring)
    except StoreError as exc:
        return f"unusable ({exc})"
    if found is not None:
        return found.source + _mismatch(found, meta)
    if meta is not None:
        source = str(meta.get("source", "unknown"))
        why = f" (keyring: {keyring.name})" if source.startswith("keyring:") and not keyring.usable() else ""
        return (f"none available: the state was sealed with a key from {_describe(source)} (kcv "
                f"{meta['kcv']}), which is not there now{why}; rebuild it with 'keymgmt operator "
                f"recover' and the escrow shares, or set {ENV_VAR} to it")
    key_file = home / KEY_FILE
    target = f"keyring:{keyring.name}" if keyring.usable() else f"file:{key_file}"
    return f"none yet (the first write creates one in {target})"


def describe_shared(record: dict[str, Any] | None, location: str, environ: Mapping[str, str]) -> str | None:
    """``describe_source`` for a state sealed with a shared ``KEYMGMT_MASTER_KEY`` (seal record of
    kind "env"); None for any other record (``kmsseal.describe_record`` names the KMS key)."""
    if not isinstance(record, dict) or record.get("kind") != "env":
        return None
    kcv = record.get("kcv")
    value = environ.get(ENV_VAR)
    if value is None:
        return (f"none available: the state in {location} is sealed with {ENV_VAR} (kcv {kcv}), "
                f"which is not set; set it to the team's key, or rebuild it with 'keymgmt operator "
                "recover -print' and the escrow shares")
    try:
        found = MasterKey(_parse_env_key(value), ENV_SOURCE)
    except StoreError as exc:
        return f"{ENV_SOURCE} (unusable: {exc})"
    return f"{ENV_SOURCE} (kcv {kcv} recorded in {location})" + _mismatch(found, {"kcv": kcv})


def _mismatch(found: MasterKey, meta: dict[str, Any] | None) -> str:
    if meta is None or equal(str(meta.get("kcv")), found.kcv):
        return ""
    return (f" (does NOT open this state: its kcv is {found.kcv}, the state's {meta.get('kcv')}; "
            "every command that needs the key refuses it)")


# -- sources ---------------------------------------------------------------------------------


def _parse_env_key(value: str) -> bytes:
    """Decode ``KEYMGMT_MASTER_KEY``; errors never quote the value."""
    text = value.strip()
    if not text:
        raise StoreError(f"{ENV_VAR} is set but empty; expected base64 of 32 random bytes",
                         hint=_GENERATE_HINT)
    key = _b64decode(text)
    if key is None:
        raise StoreError(f"{ENV_VAR} is not valid base64; expected base64 of 32 random bytes",
                         hint=_GENERATE_HINT)
    if len(key) != KEY_BYTES:
        raise StoreError(f"{ENV_VAR} decodes to {len(key)} bytes; expected 32 random bytes",
                         hint=_GENERATE_HINT)
    return key


def _b64decode(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional."""
    body = text.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    try:
        data = padded.encode("ascii")
    except UnicodeEncodeError:
        return None
    for table in (None, _URLSAFE):
        try:
            # what base64.b64decode(validate=True) does (3.11+), without importing base64 on a read
            return binascii.a2b_base64(data if table is None else data.translate(table), strict_mode=True)
        except (binascii.Error, ValueError):
            continue
    return None


_URLSAFE = bytes.maketrans(b"-_", b"+/")


class _Keyring:
    """The keyring source, imported and probed only on first use."""

    def __init__(self, injected: Any):
        self._injected = injected
        self._probed = False
        self._backend: Any = None
        self.name = ""

    def _probe(self) -> None:
        if not self._probed:
            from . import keyring_source

            self._backend, self.name = keyring_source.usable_backend(self._injected)
            self._probed = True

    def usable(self) -> bool:
        self._probe()
        return self._backend is not None

    def get(self, home: Path) -> str | None:
        """The stored key text; None when absent or the keyring cannot be used."""
        if not self.usable():
            return None
        from .keyring_source import KeyringUnavailable, get_key

        try:
            return get_key(self._backend, str(home))
        except KeyringUnavailable as exc:
            self._backend, self.name = None, str(exc)
            return None

    def put(self, home: Path, text: str) -> bool:
        if not self.usable():
            return False
        from .keyring_source import KeyringUnavailable, set_key

        try:
            set_key(self._backend, str(home), text)
            return True
        except KeyringUnavailable as exc:
            self._backend, self.name = None, str(exc)
            return False


def _find_stored(home: Path, keyring: _Keyring) -> MasterKey | None:
    key_file = home / KEY_FILE
    try:
        text = read_nofollow(str(key_file)).decode("ascii")
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        reason = link_error(exc) if isinstance(exc, OSError) else "not base64 text"
        raise StoreError(f"cannot read master key file {key_file}: {reason}") from None
    else:
        key = _b64decode(text.strip())
        if key is None or len(key) != KEY_BYTES:
            raise StoreError(f"master key file {key_file} is corrupt "
                             "(expected base64 of 32 bytes)")
        return MasterKey(key, f"file:{key_file}")

    text = keyring.get(home)
    if text is None:
        return None
    key = _b64decode(text.strip())
    if key is None or len(key) != KEY_BYTES:
        raise StoreError(f"the master key in the OS keyring ({keyring.name}, service keymgmt, "
                         f"user {home}) is corrupt (expected base64 of 32 bytes)")
    return MasterKey(key, f"keyring:{keyring.name}")


def _create(home: Path, keyring: _Keyring, warn: Callable[[str], None]) -> MasterKey:
    key = os.urandom(KEY_BYTES)
    import base64

    text = base64.b64encode(key).decode("ascii")
    if keyring.put(home, text):
        return MasterKey(key, f"keyring:{keyring.name}")
    key_file = home / KEY_FILE
    try:
        write_file_atomic(key_file, (text + "\n").encode("ascii"), str(home))
    except OSError as exc:
        raise StoreError(f"cannot write master key file {key_file}: "
                         f"{exc.strerror or type(exc).__name__}") from None
    warn(f"WARNING! no OS keyring available; the master key is stored in {key_file} (0600). "
         f"Set {ENV_VAR} in CI.")
    return MasterKey(key, f"file:{key_file}")


# -- seal.json -------------------------------------------------------------------------------


def _read_meta(home: Path | str) -> dict[str, Any] | None:
    path = os.path.join(home, SEAL_META)
    try:
        meta = loads(read_nofollow(str(path)))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {link_error(exc)}") from None
    except (ValueError, RecursionError):  # RecursionError: valid JSON nested too deeply
        meta = None
    if not isinstance(meta, dict) or not _is_kcv(meta.get("kcv")):
        raise StoreError(f"{path} is corrupt (expected a JSON object with a \"kcv\")",
                         hint="it records which master key sealed this state; restore it "
                              "from a backup")
    return meta


def _write_meta(home: Path, key: MasterKey) -> None:
    meta = {
        "version": 1,
        "source": key.source,
        "kcv": key.kcv,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = home / SEAL_META
    try:
        import json  # a write: only when a state gets its first key

        write_file_atomic(path, (json.dumps(meta, indent=1) + "\n").encode(), str(home))
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None


def _describe(source: str) -> str:
    kind, _, detail = source.partition(":")
    return {"env": detail, "keyring": f"the OS keyring ({detail})"}.get(kind, detail)


def _verify(home: Path, meta: dict[str, Any], key: MasterKey) -> None:
    if not equal(str(meta["kcv"]), key.kcv):
        raise StoreError(
            f"master key from {_describe(key.source)} does not match the one that sealed this "
            f"state (kcv {key.kcv}, expected {meta['kcv']} from "
            f"{_describe(str(meta.get('source', 'unknown')))})",
            hint=f"use the key that sealed the state in {home}")


def _check_or_record(home: Path, key: MasterKey, create: bool) -> None:
    """Compare the key with the recorded check value; record it only for a state with no secret.

    A missing ``seal.json`` in a state that already holds a sealed secret (or an authenticated
    document) is an error, never re-created: accepting an unproven key there would seal the
    state under two keys (issue 9, item 2).
    """
    meta = _read_meta(home)
    if meta is None:
        from pathlib import Path

        home = Path(home)
        with FileStore(home).lock(_LOCK):
            meta = _read_meta(home)
            if meta is None:
                _refuse_unproven(home)
                if create:
                    _write_meta(home, key)
                return
    _verify(home, meta, key)


_TOKEN_PREFIX = "v1."  # seal.TOKEN_PREFIX, without importing cryptography
_AUTH_FIELD = "_auth"  # auth.AUTH_FIELD: a document authenticated under the master key


def sealed_evidence(home: Path) -> str | None:
    """The first document of the local state in ``home`` that proves a master key was in use
    (it holds a sealed token or an authentication tag), or None. Only called when ``seal.json``
    is missing, so its cost (a walk of the state) is paid only then."""
    root = str(home)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".json") or (dirpath == root and name == SEAL_META):
                continue
            path = os.path.join(dirpath, name)
            try:
                doc = loads(read_nofollow(path))
            except (OSError, ValueError, RecursionError):
                return path  # unreadable: cannot show it holds no secret
            if _holds_secret(doc):
                return path
    return None


def _holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return _AUTH_FIELD in value or any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return isinstance(value, str) and value.startswith(_TOKEN_PREFIX) and len(value) >= 40


def _refuse_unproven(home: Path) -> None:
    evidence = sealed_evidence(home)
    if evidence is not None:
        raise StoreError(
            f"{home / SEAL_META} is missing, but the state in {home} holds sealed data "
            f"({evidence}); refusing a master key whose check value cannot be proven",
            hint=f"restore {home / SEAL_META} from a backup (it holds no secret); it records "
                 "which master key sealed this state")


def _raise_if_lost(home: Path, meta: dict[str, Any] | None, keyring: _Keyring) -> None:
    """Never replace a lost key with a new one: the secrets sealed under it would be garbage."""
    if meta is not None:
        source = str(meta.get("source", "unknown"))
        why = ""
        if source.startswith("keyring:") and not keyring.usable():
            why = f" (keyring: {keyring.name})"
        raise StoreError(
            f"no master key: the state in {home} was sealed with a key from "
            f"{_describe(source)} (kcv {meta['kcv']}), which is not available now{why}",
            hint=(f"set {ENV_VAR}" if source == ENV_SOURCE else
                  f"restore that key, or set {ENV_VAR} to it"))


def _raise_missing(home: Path, meta: dict[str, Any] | None, keyring: _Keyring) -> None:
    _raise_if_lost(home, meta, keyring)
    raise StoreError(f"no master key: {ENV_VAR} is not set, and there is none in the OS keyring "
                     f"or in {home / KEY_FILE}")
