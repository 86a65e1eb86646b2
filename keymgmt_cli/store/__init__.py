"""The state store: JSON documents on disk, sealed secrets, master-key sources, in-memory twins.

Importing this package is cheap: ``cryptography`` (``seal``) and ``keyring``
(``keyring_source``) are imported only when a secret is sealed or unsealed, so ``read`` and
``list`` never pay for them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .filestore import FileStore

TYPE_CHECKING = False  # typing costs milliseconds on the read path
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from .masterkey import MasterKey
    from .seal import Sealer

__all__ = ["FileStore", "SecretBox", "open_secret_box", "open_store", "state_home"]

HOME_ENV = "KEYMGMT_HOME"


def state_home(environ: Mapping[str, str]) -> Path:
    """``KEYMGMT_HOME`` if set (``~`` expanded, made absolute), else the user data dir."""
    configured = environ.get(HOME_ENV)
    if configured:
        return Path(os.path.abspath(os.path.expanduser(configured)))
    if sys.platform.startswith("linux"):
        # platformdirs' rule on Linux, without its import on every read: $XDG_DATA_HOME or ~/.local/share
        xdg = environ.get("XDG_DATA_HOME", "").strip()
        base = xdg if os.path.isabs(xdg) else os.path.expanduser("~/.local/share")
        return Path(base) / "keymgmt"
    import platformdirs

    return Path(platformdirs.user_data_dir("keymgmt", appauthor=False))


def open_store(environ: Mapping[str, str]) -> FileStore:
    """The local state store. Nothing is created on disk until the first write."""
    return FileStore(state_home(environ))


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

    def _load(self) -> Sealer:
        if self._sealer is None:
            from .seal import Sealer

            master = self._loader()
            self._sealer = Sealer(master.key)
            self._master = master
        return self._sealer

    @property
    def source(self) -> str:
        """Where the master key came from ("env:...", "keyring:...", "file:...")."""
        self._load()
        assert self._master is not None
        return self._master.source

    def seal(self, plaintext: bytes, aad: str) -> str:
        return self._load().seal(plaintext, aad)

    def unseal(self, token: str, aad: str) -> bytes:
        return self._load().unseal(token, aad)


def open_secret_box(home: Path, environ: Mapping[str, str], *, keyring_backend: Any = None,
                    warn: Callable[[str], None] | None = None) -> SecretBox:
    """The usual box: the master key of ``home``, created on first use if there is none."""

    def load() -> MasterKey:
        from .masterkey import load_master_key

        kwargs: dict[str, Any] = {"keyring_backend": keyring_backend}
        if warn is not None:
            kwargs["warn"] = warn
        return load_master_key(home, environ, create=True, **kwargs)

    return SecretBox(load)
