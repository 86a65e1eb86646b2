"""moto's per-key private keys, made only for the keys that need one.

moto 5.2's ``Key.__init__`` calls ``generate_private_key(key_spec)`` (``moto.kms.utils``, imported
by name into ``moto.kms.models``) for every key it makes: the RSA or EC pair of an asymmetric key,
and an RSA-2048 pair for every other spec (SYMMETRIC_DEFAULT, HMAC_*) that no AWS behaviour needs.
An RSA-2048 generation is ~30-150 ms of CPU (RSA-4096 up to ~1 s), and the local KMS runs on the
client's own cores: every CreateKey made the client wait for it, and for an EXTERNAL key the
double then threw the pair away (``keystate.sync_key``: no material until one is imported).

Here ``Key.private_key`` starts as a :class:`PairOnFirstUse` placeholder that generates moto's
pair the first time anything reads it, so that

* an AWS_KMS asymmetric key has its pair from CreateKey on, as in AWS (``realize``, called by
  ``backend_patches.create_key``);
* an EXTERNAL key never generates one: ``sync_key`` replaces the placeholder with None, and with
  the imported key once material is imported (imported material replaces it, as before);
* a symmetric or HMAC key pays for moto's RSA-2048 pair only if a moto code path reads it (moto's
  GetPublicKey and Sign do not check the key spec): the same answers as before, made only then.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.kms import models as moto_models
from moto.kms import utils as moto_utils

from .rules import key_family


class PairOnFirstUse:
    """Stands in for moto's ``AbstractPrivateKey`` of ``spec``; generated on the first attribute read."""

    __slots__ = ("_spec", "_pair", "_lock")

    def __init__(self, spec: str) -> None:
        self._spec = spec
        self._pair: Any = None
        self._lock = threading.Lock()  # the server is threaded: one generation, whoever asks first

    def materialize(self) -> Any:
        """moto's own private key object for the spec (generated now if not yet)."""
        with self._lock:
            if self._pair is None:
                self._pair = moto_utils.generate_private_key(self._spec)
            return self._pair

    def __getattr__(self, name: str) -> Any:  # sign, verify, public_key, key_size, private_key ...
        return getattr(self.materialize(), name)

    def __repr__(self) -> str:
        return f"PairOnFirstUse({self._spec!r}, generated={self._pair is not None})"


def realize(key: Any) -> None:
    """Generate the pair now when ``key`` is asymmetric (AWS makes it with the key)."""
    pair = getattr(key, "private_key", None)
    if isinstance(pair, PairOnFirstUse) and key_family(key.key_spec) in ("rsa", "ecc"):
        key.private_key = pair.materialize()


def install() -> None:
    """Make ``Key.__init__`` get a placeholder instead of a generated pair (process-wide)."""
    moto_models.generate_private_key = PairOnFirstUse  # type: ignore[assignment]
