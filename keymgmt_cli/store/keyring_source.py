"""The OS keyring as a master-key source: the only module that imports ``keyring``.

Imported lazily by ``masterkey`` (keyring discovers its backends through entry points, which is
slow, and it is never needed for ``read``/``list``). Every keyring failure becomes
``KeyringUnavailable`` here, so nothing above catches a library exception.
"""

from __future__ import annotations

from typing import Any

import keyring
from keyring.backends import chainer, fail, null

SERVICE = "keymgmt"


class KeyringUnavailable(Exception):
    """The keyring cannot be used; the message is one line and holds no secret."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def usable_backend(injected: Any = None) -> tuple[Any | None, str]:
    """The backend to use and its display name, or ``(None, reason)`` when there is none.

    Unusable: keyring's ``fail`` backend (no backend found), the ``null`` backend (disabled by
    the user), a chainer with nothing to chain, or any error while choosing.
    """
    try:
        backend = injected if injected is not None else keyring.get_keyring()
        if isinstance(backend, (fail.Keyring, null.Keyring)):
            return None, "no OS keyring backend is available"
        if isinstance(backend, chainer.ChainerBackend):
            chained = backend.backends
            if not chained:
                return None, "no OS keyring backend is available"
            return backend, chained[0].name
        return backend, backend.name
    except Exception as exc:  # noqa: BLE001 - any backend may fail in its own way
        return None, _one_line(exc)


def get_key(backend: Any, username: str) -> str | None:
    try:
        return backend.get_password(SERVICE, username)
    except Exception as exc:  # noqa: BLE001
        raise KeyringUnavailable(_one_line(exc)) from None


def set_key(backend: Any, username: str, value: str) -> None:
    """Store ``value`` and read it back: some backends accept a write they cannot keep."""
    try:
        backend.set_password(SERVICE, username, value)
        if backend.get_password(SERVICE, username) != value:
            raise KeyringUnavailable("the keyring did not keep the stored value")
    except KeyringUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001
        raise KeyringUnavailable(_one_line(exc)) from None
