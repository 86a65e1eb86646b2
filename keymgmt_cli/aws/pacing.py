"""Client-side pacing at AWS's request quotas, per (endpoint, region, operation). No boto3.

A request that arrives faster than its quota is throttled into botocore's exponential backoff,
which costs far more than waiting our turn. Each process keeps to the quota with a token bucket;
the processes of one user on one machine share a schedule file per (endpoint, region,
operation) under ``flock``, so parallel CI steps keep to it together.

The schedule files live in the user's own runtime directory (``$XDG_RUNTIME_DIR/keymgmt/pacing``
when that is a private directory of this user), else in the user's state directory
(``$XDG_STATE_HOME`` or ``~/.local/state``, ``/keymgmt/pacing``), or in ``KEYMGMT_PACING_DIR``.
The directory must be ours and closed to others; files are opened without following links.
When no such directory can be had, each process paces alone.

Pacing is off for loopback endpoints (emulators have no quota), with ``pacing=False`` or
``KEYMGMT_AWS_PACING=off``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .codes import REQUEST_QUOTAS
from .transport import is_loopback

PACING_ENV = "KEYMGMT_AWS_PACING"
PACING_DIR_ENV = "KEYMGMT_PACING_DIR"
_PACING_OFF = {"0", "off", "false", "no", "disabled"}
_PACING_ON = {"1", "on", "true", "yes", "enabled"}


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up. ``take`` reserves under a lock
    (the balance may go negative) and returns how long the caller must sleep: callers queue
    fairly and never exceed the rate on average."""

    def __init__(self, rate: float, capacity: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self, n: float = 1.0) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class SharedSchedule:
    """The next free slot for one (endpoint, region, operation), in a small file that every keymgmt
    process of this user on this machine shares under flock. The file is opened with O_NOFOLLOW
    and must be a regular file of ours; otherwise this process paces alone (a ``TokenBucket``).

    A process books slots in batches of ``BATCH_SECONDS`` worth of the quota (one slot for low
    quotas such as GetParametersForImport's 1/s) and hands them to its threads in order: at
    ListResourceTags' 2,000/s one file access per 100 requests, not one per request."""

    # A little under the quota: requests leave on schedule but arrive with network jitter, and one
    # arriving early is throttled into botocore's exponential backoff, which costs far more.
    MARGIN = 1.1
    BATCH_SECONDS = 0.05

    def __init__(self, path: str, rate: float):
        self.path = path
        self.interval = self.MARGIN / float(rate)
        self.batch = max(1, int(float(rate) * self.BATCH_SECONDS))
        self._alone = TokenBucket(rate)
        self._lock = threading.Lock()
        self._next = 0.0  # the next slot this process booked and has not handed out
        self._left = 0    # how many booked slots remain

    def take(self, n: float = 1.0) -> float:
        with self._lock:
            now = time.time()
            if self._left >= n and self._next >= now:  # slots booked earlier, still ahead
                slot = self._next
            else:
                booked = self._book(max(self.batch, n), now)
                if booked is None:
                    return self._alone.take(n)
                slot, self._left = booked, max(self.batch, n)
            self._next = slot + n * self.interval
            self._left -= n
            return max(0.0, slot - now)

    def _book(self, count: float, now: float) -> float | None:
        """Reserve ``count`` slots in the shared file; the first one's time, None if unusable."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:  # a link planted in our place, or the directory went away
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                return None
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0)
            try:
                booked = float(raw.decode() or 0)
            except ValueError:
                booked = 0.0
            slot = max(now, min(booked, now + 3600.0))  # a planted far-future slot is ignored
            data = repr(slot + count * self.interval).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return slot
        finally:
            os.close(fd)  # releases the lock


def _private_dir(path: str) -> bool:
    """``path`` is a real directory (not a link) of this user that nobody else may write."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _make_private(path: str) -> bool:
    """Create ``path`` (and missing parents) 0700 whatever the umask; True when it is private."""
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.lexists(parent):
        if not _make_private(parent):
            return False
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700, follow_symlinks=False)
    except FileExistsError:
        pass
    except OSError:
        return False
    return _private_dir(path)


def pacing_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """Where the shared schedules live (see the module's note); None when no private directory
    can be had, and then each process paces alone."""
    env = os.environ if environ is None else environ
    configured = env.get(PACING_DIR_ENV, "").strip()
    if configured:
        path = os.path.abspath(os.path.expanduser(configured))
    else:
        runtime = env.get("XDG_RUNTIME_DIR", "").strip()
        if os.path.isabs(runtime) and _private_dir(runtime):
            path = os.path.join(runtime, "keymgmt", "pacing")
        else:
            state = env.get("XDG_STATE_HOME", "").strip()
            base = state if os.path.isabs(state) else os.path.expanduser("~/.local/state")
            path = os.path.join(base, "keymgmt", "pacing")
    return path if _make_private(path) else None


_BUCKETS: dict[tuple[str, str, str], Any] = {}
_BUCKETS_LOCK = threading.Lock()


def bucket(endpoint: str, region: str, operation: str) -> Any:
    """The pacer (``take(n) -> seconds to wait``) of one (endpoint, region, operation); None when
    the operation has no quota we keep to."""
    rate = REQUEST_QUOTAS.get(operation)
    if rate is None:
        return None
    key = (endpoint, region, operation)
    with _BUCKETS_LOCK:
        found = _BUCKETS.get(key)
        if found is None:
            shared = pacing_dir()
            if shared is not None:
                name = hashlib.sha256("|".join(key).encode()).hexdigest()[:24]
                found = SharedSchedule(os.path.join(shared, name), rate)
            else:
                found = TokenBucket(rate)
            _BUCKETS[key] = found
        return found


def pacing_wanted(pacing: bool | None, endpoint_url: str | None) -> bool:
    if pacing is not None:
        return pacing
    env = os.environ.get(PACING_ENV, "").strip().lower()
    if env in _PACING_OFF:
        return False
    if env in _PACING_ON:
        return True
    return not is_loopback(endpoint_url)  # emulators have no quota
