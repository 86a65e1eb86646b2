"""RSA wrapping key pairs and import tokens of the local KMS double.

Each ``GetParametersForImport`` takes a fresh wrapping key pair from :data:`POOL` and registers an
import token (:class:`Token`) on moto's per-account, per-region backend, so a token from another region
or account is unknown there and moto's backend reset drops the tokens.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from moto.kms.models import KmsBackend

from .clock import now
from .rules import RSA_BITS, TOKEN_VALIDITY_SECONDS

# --------------------------------------------------------------------------- wrapping key pool


class WrappingKeyPool:
    """Fresh RSA wrapping key pairs, each given out exactly once.

    RSA-4096 key generation takes 0.3–1 s.  After the first request for a spec,
    one spare pair of that spec is generated in a background daemon thread, so
    the next request usually gets a pair at once.  A pair is removed from the
    pool when it is given out.  It is never given out again, and it is dropped
    once its token has been used.  No pair is persisted.
    """

    SPARES = 1

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._spares: dict[str, deque[rsa.RSAPrivateKey]] = {s: deque() for s in RSA_BITS}
        self._wanted: set[str] = set()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _generate(spec: str) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[spec])

    def take(self, spec: str) -> rsa.RSAPrivateKey:
        with self._cv:
            self._wanted.add(spec)
            spare = self._spares[spec].popleft() if self._spares[spec] else None
            self._ensure_thread()
            self._cv.notify_all()
        return spare if spare is not None else self._generate(spec)

    def prewarm(self, specs: Iterable[str]) -> None:
        with self._cv:
            for spec in specs:
                if spec not in self._spares:
                    raise ValueError(f"unknown wrapping key spec {spec!r}")
                self._wanted.add(spec)
            self._ensure_thread()
            self._cv.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._fill, name="localkms-wrapping-keys", daemon=True)
            self._thread.start()

    def _fill(self) -> None:
        while True:
            with self._cv:
                todo = next((s for s in sorted(self._wanted) if len(self._spares[s]) < self.SPARES), None)
                if todo is None:
                    self._cv.wait()
                    continue
            pair = self._generate(todo)
            with self._cv:
                self._spares[todo].append(pair)


POOL = WrappingKeyPool()


def prewarm(specs: Iterable[str] = ("RSA_4096",)) -> None:
    """Start generating spare wrapping key pairs of these specs in the background."""
    POOL.prewarm(specs)


# --------------------------------------------------------------------------- import tokens


@dataclass
class Token:
    key_id: str
    algorithm: str
    wrapping_spec: str
    expires_at: float
    private_key: rsa.RSAPrivateKey | None
    used: bool = False


def tokens_of(backend: KmsBackend) -> dict[bytes, Token]:
    # Stored on the per-account, per-region backend.  A token from another region is
    # therefore unknown here, and moto's backend reset (mock_aws start/stop) drops the tokens.
    reg = backend.__dict__.get("_localkms_tokens")
    if reg is None:
        reg = backend.__dict__["_localkms_tokens"] = {}
    return reg


def prune(reg: dict[bytes, Token]) -> None:
    current = now()
    for tok, rec in list(reg.items()):
        if current >= rec.expires_at + TOKEN_VALIDITY_SECONDS:  # keep a day of tombstones for good error messages
            del reg[tok]

