"""The local KMS double's clock (epoch seconds), for import-token and key-material expiry.

Tests replace it with :func:`set_clock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["now", "set_clock"]

_clock: Callable[[], float] = time.time


def set_clock(clock: Callable[[], float] | None) -> None:
    """Replace the clock (epoch seconds) used for token and material expiry. Pass None to restore."""
    global _clock
    _clock = clock if clock is not None else time.time


def now() -> float:
    return float(_clock())

