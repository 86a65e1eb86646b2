"""Durations and times, as Vault and AWS spell them: a leaf module (it imports only the error
types), so the field schemas, the reconcile state machine and the lifetime handlers can all use it
without importing one another.

Durations follow Vault's parseutil (``ParseDurationSecond``): a bare integer is seconds, else a
sequence of numbers with ``d``, ``h``, ``m`` or ``s`` (``90d``, ``1h30m``). Times print as Go's RFC
3339 in UTC (``Z``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from keymgmt_cli.errors import InvalidRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keymgmt_cli.engine.mounts import EngineView as Engine

MAX_VALID_TO = timedelta(days=365)  # AWS: ValidTo at most 365 days from the request
MIN_ROTATE_PERIOD = 3600  # Vault transit: auto_rotate_period of at least one hour (0 turns it off)
MAX_DURATION = 100 * 365 * 86400  # far beyond any real window, and far inside datetime's range
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def parse_duration(text: str, field: str) -> int:
    """Seconds of a Vault duration: ``3600``, ``90d``, ``1h30m``, ``0``."""
    text = text.strip()
    if len(text) > 40 or not (text.isdigit() or _DURATION_RE.fullmatch(text)):
        raise InvalidRequest(f"{field} must be a duration such as 90d, 720h or 3600 (seconds)")
    seconds = int(text) if text.isdigit() else int(sum(float(n) * _UNIT[u] for n, u in _PART_RE.findall(text)))
    if seconds > MAX_DURATION:
        raise InvalidRequest(f"{field} must be at most 100 years")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact Vault spelling of ``seconds``: ``90d``, ``36h``, ``90m`` or ``5400s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def validity_length(spec: str | None, now: datetime) -> int | None:
    """How long material given ``spec`` is valid when imported ``now``, in seconds (None: never
    expires). For an absolute time this is what a renewal keeps (``due -apply``), not the date."""
    when = resolve_valid_to(spec, now)
    return None if when is None else round_validity(int((when - now).total_seconds()))


def round_validity(seconds: int) -> int:
    """To the nearest hour (a date given by hand is never meant to the second), within AWS's 365 days."""
    if seconds >= 7200:
        seconds = round(seconds / 3600) * 3600
    return min(seconds, int(MAX_VALID_TO.total_seconds()))


def is_duration(text: str) -> bool:
    text = text.strip()
    return text.isdigit() or bool(_DURATION_RE.fullmatch(text))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def engine_now(engine: Engine) -> datetime:
    """The engine's clock (injectable: tests move it with the KMS twin's) as an aware UTC time."""
    return datetime.fromtimestamp(engine.clock(), timezone.utc)


def rfc3339(when: datetime) -> str:
    """Go's RFC 3339 in UTC (``Z``), as Vault prints times."""
    return when.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def resolve_valid_to(spec: str | None, now: datetime | None = None) -> datetime | None:
    """The absolute expiry for an import made now: ``spec`` is an RFC 3339 time or a duration
    relative to each import (so a rotation months later does not reuse a date now past)."""
    if not spec:
        return None
    now = now or utc_now()
    if is_duration(spec):
        seconds = parse_duration(spec, "valid_to")
        if seconds <= 0:
            raise InvalidRequest("valid_to must be a positive duration or a time")
        when = now + timedelta(seconds=seconds)
    else:
        try:
            when = parse_time(spec)
        except ValueError:
            raise InvalidRequest("valid_to is neither a duration such as 90d nor an RFC 3339 "
                                 "time such as 2027-06-30T00:00:00Z") from None
        if when.tzinfo is None:
            raise InvalidRequest("valid_to needs a time zone, as 2027-06-30T00:00:00Z")
    if when <= now or when > now + MAX_VALID_TO:
        raise InvalidRequest("valid_to must be in the future and at most 365 days away (AWS's limit)")
    return when
