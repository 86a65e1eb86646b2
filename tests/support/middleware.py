"""WSGI middleware for the embedded local KMS: AWS's request quotas, and a fault-injection observer.

    from support import middleware                     # tests/ is on sys.path under pytest

    with middleware.start(throttle=True) as kms:          # AWS's default quotas, per operation and region
        ...
    with middleware.start(observer=callback) as kms:      # callback(op, n, phase) -> None or an action
        ...

It wraps the same application as :func:`keymgmt_cli.localkms.server.start` (moto's server with the
BYOK import double) and serves it the same way, on an IPv4 loopback address only. It lives under
``tests/`` because only tests use it; keymgmt itself never imports it.

**Throttle.** A token bucket per (region, operation) at AWS KMS's default request quotas
(:data:`DEFAULT_QUOTAS`, requests per second; the region comes from the request's SigV4 credential
scope). A request above the quota is answered as AWS does: HTTP 400
``{"__type":"ThrottlingException","message":"Rate exceeded"}``, and it is not served. A bucket holds at
most one second of requests (``max(1, rate)``), so a burst cannot exceed the quota either.

**Observer.** Every KMS request (``X-Amz-Target: TrentService.<Op>``) is numbered per operation from 1
(``n``), in arrival order, and logged (:attr:`Observer.log`). The callback is called twice per request,
outside any lock, so it may block (for example to SIGKILL the client and wait until it is dead):

* ``callback(op, n, "before")`` when the request has arrived, before anything is done with it;
* ``callback(op, n, "after")`` when the KMS has executed it (its effect is in moto's state) and the
  response is ready but not yet sent. Killing the client here is "served, never recorded".

The callback returns ``None`` to go on, or an action (:data:`ACTIONS`):

* ``"error"``: answer HTTP 500 ``KMSInternalException`` instead (after: the effect stays);
* ``"throttle"``: answer HTTP 400 ``ThrottlingException``;
* ``"drop"``: close the connection without a response (after: the response is lost).

A throttled request (by the throttle, not by the callback) is logged with status 400 and gets no
"after" call. Requests that are not KMS requests (``/moto-api/...``) pass through untouched.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from keymgmt_cli.localkms.server import LocalKms, serve

__all__ = ["ACTIONS", "DEFAULT_QUOTAS", "Call", "InstrumentedKms", "KmsMiddleware", "Observer", "Throttle",
           "start"]

_log = logging.getLogger(__name__)

# AWS KMS default request quotas (requests per second, per account and Region) for the operations
# keymgmt uses to write. https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html
DEFAULT_QUOTAS: dict[str, float] = {
    "GetParametersForImport": 1,
    "CreateKey": 5,
    "CreateAlias": 5,
    "UpdateAlias": 5,
    "ImportKeyMaterial": 15,
    "EnableKey": 5,
    "DisableKey": 5,
    "ScheduleKeyDeletion": 15,
    "ReplicateKey": 5,
}

ACTIONS = ("error", "throttle", "drop")
PHASES = ("before", "after")
_TARGET_PREFIX = "TrentService."
_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/kms/aws4_request")
_CONTENT_TYPE = "application/x-amz-json-1.1"

Callback = Callable[[str, int, str], "str | None"]


def operation_of(environ: dict[str, Any]) -> str | None:
    """``CreateKey`` for ``X-Amz-Target: TrentService.CreateKey``; None for anything else."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target[len(_TARGET_PREFIX):] if target.startswith(_TARGET_PREFIX) else None


def region_of(environ: dict[str, Any]) -> str:
    """The region of the SigV4 credential scope (``""`` if the request is not signed that way)."""
    match = _SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else ""


# --------------------------------------------------------------------------- throttle


class Throttle:
    """Token buckets per (region, operation) at ``quotas`` requests a second (thread-safe)."""

    def __init__(self, quotas: dict[str, float] | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.quotas = dict(DEFAULT_QUOTAS if quotas is None else quotas)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], list[float]] = {}  # key -> [tokens, updated]
        self.throttled = 0  # requests refused so far

    def allow(self, region: str, op: str) -> bool:
        rate = self.quotas.get(op)
        if rate is None:
            return True
        capacity = max(1.0, float(rate))
        with self._lock:
            now = self._clock()
            bucket = self._buckets.setdefault((region, op), [capacity, now])
            bucket[0] = min(capacity, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return True
            self.throttled += 1
            return False

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self.throttled = 0


# --------------------------------------------------------------------------- observer


@dataclass
class Call:
    """One KMS request as the middleware saw it."""

    op: str
    n: int  # 1-based, per operation, in arrival order
    region: str
    status: int | None = None  # HTTP status answered; None while in flight or when dropped
    action: str | None = None  # what the callback (or the throttle) did instead of a plain answer
    at: float = 0.0  # time.monotonic() of the arrival


class Observer:
    """Numbers and logs KMS requests, and calls ``callback(op, n, phase)`` before and after each."""

    def __init__(self, callback: Callback | None = None):
        self.callback = callback
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self.log: list[Call] = []

    def arrive(self, op: str, region: str) -> Call:
        with self._lock:
            n = self._counts[op] = self._counts.get(op, 0) + 1
            call = Call(op, n, region, at=time.monotonic())
            self.log.append(call)
        return call

    def ask(self, call: Call, phase: str) -> str | None:
        if self.callback is None:
            return None
        action = self.callback(call.op, call.n, phase)
        if action is not None and action not in ACTIONS:
            raise ValueError(f"observer callback returned {action!r}; expected None or one of {ACTIONS}")
        return action

    def ops(self) -> list[str]:
        """The operation names in arrival order."""
        with self._lock:
            return [c.op for c in self.log]

    def count(self, op: str) -> int:
        with self._lock:
            return self._counts.get(op, 0)

    def reset(self) -> None:
        """Forget the log and start numbering from 1 again."""
        with self._lock:
            self._counts.clear()
            self.log = []


# --------------------------------------------------------------------------- the middleware


def _json_error(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


_CANNED = {
    "error": ("500 Internal Server Error", "KMSInternalException",
              "An internal error occurred (injected by the local KMS fault observer)."),
    "throttle": ("400 Bad Request", "ThrottlingException", "Rate exceeded"),
}


class KmsMiddleware:
    """WSGI middleware: observer (before), throttle, the KMS application, observer (after)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, throttle: Throttle | None = None,
                 observer: Observer | None = None):
        self.app = app
        self.throttle = throttle
        self.observer = observer if observer is not None else Observer()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        op = operation_of(environ)
        if op is None:
            return self.app(environ, start_response)
        call = self.observer.arrive(op, region_of(environ))
        action = self.observer.ask(call, "before")
        if action is not None:
            return self._act(action, call, environ, start_response)
        if self.throttle is not None and not self.throttle.allow(call.region, op):
            call.action = "throttled"
            return self._canned("throttle", call, start_response)
        status, headers, body = self._serve(environ)
        call.status = int(status.split(None, 1)[0])
        action = self.observer.ask(call, "after")
        if action is not None:
            return self._act(action, call, environ, start_response)
        start_response(status, headers)
        return [body]

    def _serve(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run the application to completion (its effect happens here) and keep the response."""
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, list(headers)
            return chunks.append

        result = self.app(environ, capture)
        try:
            for chunk in result:
                chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() not in ("content-length", "transfer-encoding")]
        body = b"".join(chunks)
        headers.append(("Content-Length", str(len(body))))
        return captured["status"], headers, body

    def _act(self, action: str, call: Call, environ: dict[str, Any],
             start_response: Callable[..., Any]) -> Iterable[bytes]:
        call.action = action
        if action == "drop":
            return self._drop(call, environ, start_response)
        return self._canned(action, call, start_response)

    @staticmethod
    def _canned(action: str, call: Call, start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, code, message = _CANNED[action]
        body = _json_error(code, message)
        call.status = int(status.split(None, 1)[0])
        start_response(status, [("Content-Type", _CONTENT_TYPE), ("Content-Length", str(len(body))),
                                ("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")])
        return [body]

    @staticmethod
    def _drop(call: Call, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        call.status = None
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # werkzeug's write of the status line now fails with a connection error, which it treats as a
        # connection dropped by the peer: nothing reaches the client, nothing is logged.
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []


# --------------------------------------------------------------------------- the server


class InstrumentedKms(LocalKms):
    """A running local KMS with the middleware: ``throttle`` (or None), ``observer``, ``reset()``."""

    def __init__(self, server: Any, thread: threading.Thread, middleware: KmsMiddleware):
        super().__init__(server, thread)
        self.middleware = middleware
        self.throttle = middleware.throttle
        self.observer = middleware.observer

    def reset(self) -> None:
        """Empty moto's state (every backend, as ``POST /moto-api/reset``), the log and the buckets."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        self.observer.reset()
        if self.throttle is not None:
            self.throttle.reset()

    def __enter__(self) -> InstrumentedKms:
        return self

    def __repr__(self) -> str:
        return f"InstrumentedKms({self.endpoint_url!r}, throttle={self.throttle is not None})"


def start(host: str = "127.0.0.1", port: int = 0, *, throttle: bool | Throttle = False,
          observer: Observer | Callback | None = None) -> InstrumentedKms:
    """Start the local KMS behind the middleware on host:port (port 0 = any free port).

    ``throttle``: True for AWS's default quotas, or a :class:`Throttle`. ``observer``: a callback
    ``(op, n, phase) -> None | action`` or an :class:`Observer`; without one the requests are still
    numbered and logged (``kms.observer.log``)."""
    if throttle is True:
        throttle = Throttle()
    if observer is not None and not isinstance(observer, Observer):
        observer = Observer(observer)
    wrapped: dict[str, KmsMiddleware] = {}

    def wrap(app: Any) -> KmsMiddleware:
        wrapped["app"] = KmsMiddleware(app, throttle=throttle or None, observer=observer)
        return wrapped["app"]

    server, thread = serve(host, port, wrap, name="localkms-middleware-server")
    middleware = wrapped["app"]
    return InstrumentedKms(server, thread, middleware)
