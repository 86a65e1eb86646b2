"""The state store: JSON documents on disk, sealed secrets, master-key sources, in-memory twins.

Importing this package is cheap: ``cryptography`` (``seal``) and ``keyring``
(``keyring_source``) are imported only when a secret is sealed or unsealed, so ``read`` and
``list`` never pay for them.

Backends: the local directory (default), or a DynamoDB table shared by a team, chosen with
``KEYMGMT_STORAGE`` (``dynamodb://TABLE?region=R[&endpoint=URL]`` or ``file://PATH``), else the
``"storage"`` entry of the optional config file (``KEYMGMT_CONFIG``, else
``$XDG_CONFIG_HOME/keymgmt/config.json`` or ``~/.config/keymgmt/config.json``; JSON such as
``{"storage": "dynamodb://keymgmt?region=eu-west-1", "seal": "awskms://alias/keymgmt?region=eu-west-1"}``).
The environment wins over the file. ``KEYMGMT_SEAL`` (or ``"seal"``) seals the master key with
AWS KMS (``kmsseal.py``). botocore is imported only when one of those is in use.

Custody: ``open_store`` wraps every backend in ``auth.AuthStore`` (each document MAC'd under a
key derived from the master key, bound to its id and the state id, with revisions against
rollback); ``private_dir.py`` keeps the local directory private (no symlinks, no foreign or
writable directories); ``upgrade.py`` authenticates a state written before MACs, on request.
"""

from __future__ import annotations

import os
import sys

from ..errors import StoreError
from .auth import AuthStore
from .filestore import FileStore

TYPE_CHECKING = False  # typing costs milliseconds on the read path
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any

    from .masterkey import MasterKey
    from .seal import Sealer

__all__ = ["AuthStore", "FileStore", "SecretBox", "describe_master_key", "open_secret_box", "open_store",
           "open_store_url", "setting", "state_home"]

HOME_ENV = "KEYMGMT_HOME"
STORAGE_ENV = "KEYMGMT_STORAGE"
SEAL_ENV = "KEYMGMT_SEAL"
CONFIG_ENV = "KEYMGMT_CONFIG"
ENV_VAR = "KEYMGMT_MASTER_KEY"  # masterkey.ENV_VAR
_SETTINGS = {"storage": STORAGE_ENV, "seal": SEAL_ENV}


def _user_dir(environ: Mapping[str, str], xdg_var: str, linux_default: str, platformdirs_fn: str) -> str:
    """``<dir>/keymgmt`` by platformdirs' rule. On Linux it is computed here ($XDG_..., else the
    default), so reads do not pay for importing platformdirs. A string: reads import no pathlib."""
    if sys.platform.startswith("linux"):
        xdg = environ.get(xdg_var, "").strip()
        base = xdg if os.path.isabs(xdg) else os.path.expanduser(linux_default)
        return os.path.join(base, "keymgmt")
    import platformdirs

    return os.fspath(getattr(platformdirs, platformdirs_fn)("keymgmt", appauthor=False))


def state_home(environ: Mapping[str, str]) -> Path:
    """``state_dir`` as a ``Path``."""
    from pathlib import Path

    return Path(state_dir(environ))


def state_dir(environ: Mapping[str, str]) -> str:
    """``KEYMGMT_HOME`` if set (``~`` expanded, made absolute), else the user data dir.

    ``KEYMGMT_HOME=""`` (or blanks) is an error, not "the default": a script whose variable
    expanded to nothing must not silently act on another state.
    """
    configured = environ.get(HOME_ENV)
    if configured is not None:
        if not configured.strip():
            raise StoreError(f"{HOME_ENV} is set but empty; set it to the state directory or unset it",
                             hint="unset KEYMGMT_HOME to use the default state directory")
        return os.path.abspath(os.path.expanduser(configured))
    return _user_dir(environ, "XDG_DATA_HOME", "~/.local/share", "user_data_dir")


def open_store(environ: Mapping[str, str]) -> Any:
    """The configured store (``KEYMGMT_STORAGE``/config), by default the local directory,
    wrapped in ``AuthStore`` so that every document is authenticated (``auth.py``).

    The wrapper's key: the master key when it is cheap to have (``cheap_auth_key``: the
    ``KEYMGMT_MASTER_KEY`` of a local or env-sealed state, or ``master.key``), so the fast
    ``read``/``list`` verify MACs then; ``open_secret_box(store=...)`` makes it the secret box's
    master key, which every command with a box (all but the fast path) loads before its first
    change, verifying every document read until then (``AuthStore.require_key``).
    Nothing is created on disk (or in AWS) until the first write.
    """
    url = setting(environ, "storage")
    inner = FileStore(state_dir(environ)) if not url else open_store_url(url, environ)
    return AuthStore(inner, lambda: cheap_auth_key(inner, environ))


def cheap_auth_key(store: Any, environ: Mapping[str, str]) -> bytes | None:
    """The auth key when the master key costs no keyring lookup and no KMS call, else None.

    Cheap: ``KEYMGMT_MASTER_KEY`` for a local state or a shared state sealed with it (checked
    against the recorded check value), or the local ``master.key`` file. A wrong key is the
    usual "does not match" error.
    """
    from .auth import derive_auth_key

    value = environ.get(ENV_VAR)
    if setting(environ, "seal") or store.backend not in ("file", "memory") or _has_seal_record(store):
        record = store.get(SEAL_RECORD)
        if value is None or record is None or record.get("kind") != "env":
            return None
        from .masterkey import ENV_SOURCE, MasterKey, _is_kcv, _parse_env_key

        master = MasterKey(_parse_env_key(value), ENV_SOURCE)
        from .digests import equal

        if not _is_kcv(record.get("kcv")):  # as kmsseal reads it (equal() raises on a non-ASCII str)
            raise StoreError(f"the seal record {SEAL_RECORD} in {store.location} is corrupt (its key "
                             "check value is missing or malformed); refusing a master key it "
                             "cannot prove", hint="restore it from a backup (it holds no secret)")

        if not equal(str(record.get("kcv", "")), master.kcv):
            raise StoreError(f"master key from {ENV_SOURCE} does not match the one that sealed "
                             f"the state in {store.location} (kcv {master.kcv}, expected "
                             f"{record.get('kcv')})", hint="use the key the state was initialised with")
        return derive_auth_key(master.key)
    home = store.location if store.backend == "file" else store.home  # FileStore's directory, no pathlib
    if value is None and not os.path.lexists(os.path.join(home, _KEY_FILE)):
        return None  # the OS keyring: not cheap (and a read without a key imports no masterkey, no hash module)
    from .masterkey import load_master_key

    # create=True never makes a key here (one was found); it records the check value of a new state
    return derive_auth_key(load_master_key(home, environ, create=True).key)


def config_path(environ: Mapping[str, str]) -> str:
    """``KEYMGMT_CONFIG``, else ``<user config dir>/keymgmt/config.json``."""
    configured = environ.get(CONFIG_ENV)
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    return os.path.join(_user_dir(environ, "XDG_CONFIG_HOME", "~/.config", "user_config_dir"), "config.json")


def setting(environ: Mapping[str, str], name: str) -> str | None:
    """``storage`` or ``seal``: the environment variable, else the config file's entry, else None."""
    value = environ.get(_SETTINGS[name])
    if value is not None and value.strip():
        return value.strip()
    path = config_path(environ)
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StoreError(f"cannot read config file {path}: {exc.strerror or type(exc).__name__}") from None
    from .docjson import loads

    try:
        config = loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: valid JSON nested too deeply
        config = None
    if not isinstance(config, dict) or not all(isinstance(config.get(k, ""), str) for k in _SETTINGS):
        raise StoreError(f"config file {path} is not a JSON object of strings "
                         '(expected {"storage": "dynamodb://TABLE?region=R", "seal": "awskms://KEY?region=R"})')
    return (config.get(name) or "").strip() or None


def open_store_url(url: str, environ: Mapping[str, str]) -> Any:
    """A store from a URL: ``file://PATH`` (or a plain path), ``dynamodb://TABLE?region=R[&endpoint=URL]``."""
    from .locations import refuse_userinfo, without_userinfo  # not on the read path: a URL is rare

    text = url.strip()
    shown = without_userinfo(text)[:80]
    if text.startswith("file://") or "://" not in text:
        path = text[len("file://"):] if text.startswith("file://") else text
        if not path:
            raise StoreError(f"storage URL {shown!r} names no directory; expected file:///PATH")
        return FileStore(os.path.abspath(os.path.expanduser(path)))
    if not text.startswith("dynamodb://"):
        raise StoreError(f"storage {shown!r} is not supported; expected dynamodb://TABLE?region=R"
                         "[&endpoint=URL] or file:///PATH")
    from urllib.parse import parse_qs

    table, _, query = text[len("dynamodb://"):].partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - {"region", "endpoint"})
    if unknown:
        raise StoreError(f"storage {shown!r}: unknown parameter {unknown[0]!r} (allowed: region, endpoint)")
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table):
        raise StoreError(f"storage {shown!r}: {without_userinfo('//' + table)[2:]!r} is not a DynamoDB table name "
                         "(3-255 of A-Z a-z 0-9 _ . -)")
    region = params.get("region", "").strip()
    if not region:
        raise StoreError(f"storage dynamodb://{table} needs ?region=R (the table's AWS region)")
    endpoint = params.get("endpoint") or None
    if endpoint is not None:
        refuse_userinfo(endpoint, f"storage dynamodb://{table}: endpoint")
    from .dynamoleases import lease_seconds_from
    from .dynamostore import DynamoStore

    return DynamoStore(table, region, endpoint, home=state_home(environ),
                       lease_seconds=lease_seconds_from(environ))


class SecretBox:
    """Seals and unseals state secrets, resolving the master key only on first use.

    ``loader`` returns the ``MasterKey`` (normally ``load_master_key`` bound to a home and an
    environment); it is called at most once, and only by ``seal``, ``unseal`` or ``source``.
    """

    def __init__(self, loader: Callable[[], MasterKey]):
        self._loader = loader
        self._master: MasterKey | None = None
        self._sealer: Sealer | None = None

    def __repr__(self) -> str:
        state = self._master.source if self._master else "not loaded"
        return f"SecretBox({state})"

    def _load_master(self) -> MasterKey:
        if self._master is None:
            self._master = self._loader()
        return self._master

    def _load(self) -> Sealer:
        if self._sealer is None:
            from .seal import Sealer

            self._sealer = Sealer(self._load_master().key)
        return self._sealer

    @property
    def source(self) -> str:
        """Where the master key came from ("env:...", "keyring:...", "file:...")."""
        return self._load_master().source

    def auth_key(self) -> bytes:
        """The document authentication key derived from the master key (``auth.py``); loads the
        master key but not ``cryptography``."""
        from .auth import derive_auth_key

        return derive_auth_key(self._load_master().key)

    def seal(self, plaintext: bytes, aad: str) -> str:
        return self._load().seal(plaintext, aad)

    def unseal(self, token: str, aad: str) -> bytes:
        return self._load().unseal(token, aad)


def open_secret_box(home: Path, environ: Mapping[str, str], *, keyring_backend: Any = None,
                    warn: Callable[[str], None] | None = None, store: Any = None) -> SecretBox:
    """The usual box, resolved on first use.

    A local state without ``KEYMGMT_SEAL``: the master key of ``home`` (env, key file, OS
    keyring), created on first use if there is none. A state with a seal record (DynamoDB, or
    any state initialised with ``KEYMGMT_SEAL``): the data key sealed by AWS KMS, or the team's
    ``KEYMGMT_MASTER_KEY``, checked against the record. ``store`` is the state's store (default:
    the configured one for DynamoDB, ``FileStore(home)`` otherwise).
    """

    raw = store.inner if isinstance(store, AuthStore) else store  # the seal record is read raw

    def load() -> MasterKey:
        target = raw
        if target is None:
            url = setting(environ, "storage")
            target = open_store_url(url, environ) if url else FileStore(home)
        seal_url = setting(environ, "seal")
        if seal_url or target.backend not in ("file", "memory") or _has_seal_record(target):
            from .kmsseal import load_shared_master_key

            return load_shared_master_key(target, environ, seal_url)
        from .masterkey import load_master_key

        kwargs: dict[str, Any] = {"keyring_backend": keyring_backend}
        if warn is not None:
            kwargs["warn"] = warn
        return load_master_key(home, environ, create=True, **kwargs)

    box = SecretBox(load)
    if isinstance(store, AuthStore):
        store.require_key(box.auth_key)  # before any change, every document read is verified
    return box


SEAL_RECORD = "meta/seal"  # kmsseal.SEAL_DOC, without importing botocore
_KEY_FILE = "master.key"  # masterkey.KEY_FILE, without importing masterkey (and SHA-256) on a read


def _has_seal_record(store: Any) -> bool:
    return store.get(SEAL_RECORD) is not None


def describe_master_key(store: Any, environ: Mapping[str, str]) -> str:
    """One line for ``keymgmt status``: where the master key comes from. Calls no KMS."""
    if setting(environ, "seal") or store.backend not in ("file", "memory") or _has_seal_record(store):
        from .kmsseal import describe_record, read_record
        from .masterkey import describe_shared

        record = read_record(store)  # a shared KEYMGMT_MASTER_KEY: whether it is set (and opens it)
        return describe_shared(record, store.location, environ) or describe_record(record, store.location)
    from .masterkey import describe_source

    return describe_source(store.home, environ)
