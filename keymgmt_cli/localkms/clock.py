"""The local KMS double's clock (epoch seconds), for import-token and key-material expiry.

Two hooks move it, for tests of time-dependent behaviour (``ValidTo`` expiry, 24-hour import tokens):

* ``KEYMGMT_LOCALKMS_CLOCK_OFFSET``: seconds (a decimal number, may be negative) added to the clock.
  It is read on every reading of the clock, so it works for a local KMS in this process (set it with
  ``monkeypatch.setenv``) and for one in a subprocess started with it in its environment
  (``python -m keymgmt_cli.localkms.server``).  An unparsable value makes :func:`now` raise
  ValueError (the request then fails with a KMS internal error); :func:`check_offset` reports it up
  front, and ``localkms.server.start`` calls it.
* :func:`set_clock`: replace the base clock in this process (``moto_import.set_clock`` is the same
  function); the offset is added to it too.

Only the double's expiry decisions and the dates it reports (``ParametersValidTo``, ``ValidTo``
checks, rotation dates) use this clock; moto's own dates (CreationDate, DeletionDate) do not.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

__all__ = ["OFFSET_ENV", "check_offset", "now", "set_clock"]

OFFSET_ENV = "KEYMGMT_LOCALKMS_CLOCK_OFFSET"

_clock: Callable[[], float] = time.time


def set_clock(clock: Callable[[], float] | None) -> None:
    """Replace the clock (epoch seconds) used for token and material expiry. Pass None to restore."""
    global _clock
    _clock = clock if clock is not None else time.time


def check_offset() -> float:
    """The offset from ``KEYMGMT_LOCALKMS_CLOCK_OFFSET`` (0 when unset); ValueError when unparsable."""
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        offset = float(raw)
    except ValueError:
        raise ValueError(f"{OFFSET_ENV} must be a number of seconds") from None
    if not math.isfinite(offset):
        raise ValueError(f"{OFFSET_ENV} must be a finite number of seconds")
    return offset


def now() -> float:
    """The double's current time: the clock plus ``KEYMGMT_LOCALKMS_CLOCK_OFFSET``."""
    return float(_clock()) + check_offset()
