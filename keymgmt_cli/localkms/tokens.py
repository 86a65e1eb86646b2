"""RSA wrapping key pairs and import tokens of the local KMS double.

Each ``GetParametersForImport`` takes a fresh wrapping key pair from :data:`POOL` and registers an
import token (:class:`Token`) on moto's per-account, per-region backend, so a token from another region
or account is unknown there and moto's backend reset drops the tokens.
"""

from __future__ import annotations

import threading
import time
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

    RSA key generation takes 0.03-0.15 s (RSA-2048) to 0.3-1 s (RSA-4096) of CPU, on the
    client's own cores when the local KMS runs beside it; AWS has its wrapping keys ready on its
    own machines. So once a spec has been asked for, spare pairs of it are generated in a
    background daemon thread: as many as the largest burst of requests seen for that spec
    (requests less than ``BURST_WINDOW`` seconds after the previous one belong to its burst; a
    4-region rotation asks 4 at once), at least ``MIN_SPARES``, at most ``SPARES``. A request
    that finds no spare generates its pair at once. A pair is removed from the pool when it is
    given out; it is never given out again, and it is dropped once its token has been used. No
    pair is persisted.
    """

    MIN_SPARES = 1
    SPARES = 4
    BURST_WINDOW = 1.0

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._spares: dict[str, deque[rsa.RSAPrivateKey]] = {s: deque() for s in RSA_BITS}
        self._wanted: dict[str, int] = {}  # spec -> how many spares to keep ready
        self._last: dict[str, tuple[float, int]] = {}  # spec -> (time of the last request, its burst's size)
        self._thread: threading.Thread | None = None

    @staticmethod
    def _generate(spec: str) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[spec])

    def take(self, spec: str) -> rsa.RSAPrivateKey:
        with self._cv:
            at = time.monotonic()
            last, burst = self._last.get(spec, (float("-inf"), 0))
            burst = burst + 1 if at - last < self.BURST_WINDOW else 1
            self._last[spec] = (at, burst)
            self._want(spec, burst)
            spare = self._spares[spec].popleft() if self._spares[spec] else None
            self._ensure_thread()
            self._cv.notify_all()
        return spare if spare is not None else self._generate(spec)

    def ready(self, spec: str) -> int:
        """How many spare pairs of ``spec`` are ready now."""
        with self._cv:
            return len(self._spares[spec])

    def wanted(self, spec: str) -> int:
        """How many spare pairs of ``spec`` the pool keeps ready (0: never asked for)."""
        with self._cv:
            return self._wanted.get(spec, 0)

    def prewarm(self, specs: Iterable[str]) -> None:
        with self._cv:
            for spec in specs:
                if spec not in self._spares:
                    raise ValueError(f"unknown wrapping key spec {spec!r}")
                self._want(spec, 1)
            self._ensure_thread()
            self._cv.notify_all()

    def _want(self, spec: str, count: int) -> None:
        """Keep at least ``count`` spares of ``spec`` (within MIN_SPARES..SPARES); caller holds _cv."""
        self._wanted[spec] = max(self._wanted.get(spec, 0), min(self.SPARES, max(self.MIN_SPARES, count)))

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._fill, name="localkms-wrapping-keys", daemon=True)
            self._thread.start()

    def _fill(self) -> None:
        while True:
            with self._cv:
                todo = next((s for s in sorted(self._wanted) if len(self._spares[s]) < self._wanted[s]), None)
                if todo is None:
                    self._cv.wait()
                    continue
            pair = self._generate(todo)
            with self._cv:
                self._spares[todo].append(pair)
                self._cv.notify_all()


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

