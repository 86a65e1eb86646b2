"""The wrapping key pool keeps as many spare pairs ready as the largest burst of requests asked for
(localkms/tokens.py), and never gives a pair out twice."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from keymgmt_cli.localkms.tokens import WrappingKeyPool


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> WrappingKeyPool:
    """A pool of its own whose "pairs" are numbers (the pool's logic, not RSA's speed)."""
    counter = itertools.count(1)
    fresh = WrappingKeyPool()
    monkeypatch.setattr(fresh, "_generate", lambda spec: (spec, next(counter)))
    return fresh


def _settle(pool: WrappingKeyPool, spec: str, want: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while pool.ready(spec) < want and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and nothing more comes
    return pool.ready(spec)


def test_one_spare_after_single_requests(pool: WrappingKeyPool) -> None:
    pool.BURST_WINDOW = 0.0  # every request is a burst of its own
    given: list[Any] = [pool.take("RSA_2048") for _ in range(3)]
    assert pool.wanted("RSA_2048") == 1
    assert _settle(pool, "RSA_2048", 1) == 1
    assert pool.ready("RSA_3072") == 0 and pool.wanted("RSA_3072") == 0  # never asked for: none made
    given.append(pool.take("RSA_2048"))
    assert len(set(given)) == 4  # never the same pair twice


def test_a_burst_keeps_as_many_ready_up_to_the_cap(pool: WrappingKeyPool) -> None:
    given = [pool.take("RSA_4096") for _ in range(3)]  # a 3-region rotation's requests, together
    assert pool.wanted("RSA_4096") == 3
    assert _settle(pool, "RSA_4096", 3) == 3
    given += [pool.take("RSA_4096") for _ in range(3)]  # the next rotation finds them ready
    assert len(set(given)) == 6
    for _ in range(10):
        pool.take("RSA_4096")
    assert pool.wanted("RSA_4096") == WrappingKeyPool.SPARES == 4
    assert _settle(pool, "RSA_4096", 4) == 4


def test_prewarm_and_minimum(pool: WrappingKeyPool) -> None:
    pool.MIN_SPARES = 2
    pool.prewarm(["RSA_3072"])
    assert _settle(pool, "RSA_3072", 2) == 2
    with pytest.raises(ValueError):
        pool.prewarm(["RSA_1024"])
