"""Many read-only requests of one AWS JSON 1.1 operation, sent without botocore's client.

Why: the tag search's fallback (``providers/tagsearch.py``) reads every key's tags, one
``ListResourceTags`` per KMS key of the region, other teams' keys included. Through botocore a
request costs ~1.5-2 ms of client CPU (its send/receive, SigV4Auth, parsing, hooks) and one
process's requests share one GIL: 10,000 keys took ~16 s of CPU whatever the thread count. Here a
request is a hand-signed ``POST /`` (``aws.sigv4``, checked equal to botocore's signature) on a
keep-alive ``http.client`` connection per worker and one ``json.loads``. Used for that one bulk
read and nothing else; every other call stays on botocore.

Security is botocore's, taken from the client botocore made (``BulkReader.for_client``):

* the endpoint botocore resolved (``client.meta.endpoint_url``: regional, FIPS, custom/VPC);
  plain http only to a loopback address (``aws.transport``);
* https with the certificate and host name checked against the CA bundle botocore would use:
  ``AWS_CA_BUNDLE`` / the config file's ``ca_bundle``, else ``REQUESTS_CA_BUNDLE``, else
  botocore's default bundle (certifi's, or botocore's own); TLS 1.2 at least;
* the credentials of the provider's botocore session, frozen again every ``REFREEZE_SECONDS`` so
  refreshable (role) credentials refresh as botocore's would; ``X-Amz-Security-Token`` for a
  session token. The secret key is never logged, kept in an error or a record.

Where it cannot match botocore, ``for_client`` returns a reason instead of a reader and the
caller uses botocore (and says so): an HTTP(S) proxy (environment or botocore config), a client
certificate, a signature version other than SigV4, an endpoint with a path, no credentials, a
CA bundle that cannot be loaded.

Failures are plain data (``aws.failures.Failure``), worded by the caller as botocore's are:
throttling (``THROTTLING_CODES``, HTTP 429) retried with exponential backoff (half jitter) up to
``max_attempts`` + ``throttle_retries`` tries (botocore's attempts, then the provider's own rounds,
as ``awskms._call`` retries), 5xx and broken connections retried on a new connection up to
``max_attempts`` tries; a bad certificate is never retried, nor an answer over
``MAX_RESPONSE_BYTES`` (not read past it). Pacing is the caller's (``pace`` is called before every send,
retries included), at the operation's quota (``aws.pacing``).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import failures
from .codes import THROTTLING_CODES
from .sigv4 import Signer
from .transport import is_loopback

#: Requests in flight (one keep-alive connection and one thread each). At 10,000 keys and 30 ms a
#: call (bench/verify_scale.py --workers 48,64,96,128, load 6-7): 48 12.7 s, 64 8.2 s, 96 8.0 s,
#: 128 7.7 s of wall for 3.5-4.1 s of client CPU; 96 keeps latency x requests / in flight (3.1 s)
#: under the quota's 5.5 s without a TLS handshake per thread more than that needs.
WORKERS = 96
#: Frozen credentials are taken again this often (refreshable credentials refresh on taking).
REFREEZE_SECONDS = 5.0
BASE_DELAY = 0.1
MAX_DELAY = 16.0
USER_AGENT = "keymgmt bulkread (Python http.client)"
#: The most of one answer that is read: a ListResourceTags page (50 tags of at most 128 + 256
#: characters) is well under it; a broken or hostile endpoint's gigabytes are not held, times the
#: workers, in memory.
MAX_RESPONSE_BYTES = 1 << 20


class _TooLarge(Exception):
    """An answer over ``MAX_RESPONSE_BYTES`` (its status)."""


@dataclass
class Reply:
    """One item's answer: ``answer`` (the JSON body) when AWS said 200, else ``failure``."""

    answer: dict[str, Any] | None = None
    failure: failures.Failure | None = None
    request_id: str = ""


@dataclass
class Batch:
    """What a batch cost: requests sent (retries included), throttled answers, the replies, how
    many were in flight, and the reply that stopped it (``run``'s ``stop``), if one did."""

    replies: list[Reply] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    in_flight: int = 0
    stopped: Reply | None = None


def _clean_id(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return value[:128] if value and all(c.isalnum() or c in "-_/+=" for c in value) else ""


def ca_bundle_of(session: Any) -> str:
    """The CA bundle botocore would check certificates against (see the module's note):
    ``session`` is an ``aws.session.Session`` (its ``config_variable``), as the client's."""
    from botocore.httpsession import get_cert_path

    verify: Any = None
    if session is not None:
        verify = session.config_variable("ca_bundle")
    if verify is None:
        verify = os.environ.get("REQUESTS_CA_BUNDLE", True)
    return str(get_cert_path(verify))


def _tuned(sock: socket.socket, read_timeout: float) -> None:
    # no Nagle: a request in two segments would wait for the peer's delayed ACK (40 ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(read_timeout)


class _Plain(http.client.HTTPConnection):
    """Plain http (loopback only: ``for_client`` checks), keep-alive, botocore's timeouts."""

    def __init__(self, host: str, port: int | None, read_timeout: float, connect_timeout: float):
        super().__init__(host, port, timeout=connect_timeout)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        _tuned(self.sock, self._read_timeout)


class _Tls(http.client.HTTPSConnection):
    """https with ``context`` (certificate and host name checked), keep-alive, botocore's timeouts."""

    def __init__(self, host: str, port: int | None, read_timeout: float, connect_timeout: float,
                 context: ssl.SSLContext):
        super().__init__(host, port, timeout=connect_timeout, context=context)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()  # TCP, then the TLS handshake with the host name and certificate checked
        _tuned(self.sock, self._read_timeout)


class BulkReader:
    """Sends one operation's requests for many items, ``workers`` at a time."""

    def __init__(self, endpoint_url: str, region: str, signing_name: str, target_prefix: str,
                 credentials: Any, *, tls: ssl.SSLContext | None,
                 max_attempts: int = 8, throttle_retries: int = 0,
                 connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, workers: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        parts = urlsplit(endpoint_url)
        self.endpoint_url = endpoint_url
        self.host, self.port = parts.hostname or "", parts.port
        self.region = region
        self.service = signing_name  # as a Failure names it: "kms"
        self.target_prefix = target_prefix
        self.signer = Signer(endpoint_url, region, signing_name)
        self.tls = tls
        self.max_attempts = max(1, int(max_attempts))
        # throttling gets the provider's extra rounds too, as awskms._call gives them after botocore's
        self.throttle_attempts = self.max_attempts + max(0, int(throttle_retries))
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.sleep, self.clock = sleep, clock
        self.workers = workers
        self._credentials = credentials
        self._frozen: Any = None
        self._frozen_at = -1e18
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BulkReader(endpoint={self.endpoint_url!r}, region={self.region!r})"

    @classmethod
    def for_client(cls, client: Any, session: Any, credentials: Any,
                   **options: Any) -> "BulkReader | str":
        """A reader for ``client``'s endpoint, region and signing, or the reason (one phrase) why
        the lean path cannot match botocore's transport there (then the caller uses botocore)."""
        from botocore.utils import get_environ_proxies

        meta = client.meta
        endpoint = str(meta.endpoint_url or "")
        parts = urlsplit(endpoint)
        scheme = parts.scheme.lower()
        config = getattr(meta, "config", None)
        if scheme not in ("http", "https") or not parts.hostname:
            return "the endpoint is not an http(s) URL"
        if scheme == "http" and not is_loopback(endpoint):
            return "plain http to a host that is not loopback"  # aws.transport refuses it earlier
        if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
            return "the endpoint URL has a path, query or user info"
        if _proxied(getattr(config, "proxies", None), get_environ_proxies(endpoint), scheme):
            return "an HTTP(S) proxy is configured"
        if getattr(config, "client_cert", None):
            return "a client certificate is configured"
        if getattr(config, "signature_version", None) not in (None, "v4"):
            return f"signature version {config.signature_version} is configured"
        if credentials is None:
            return "no credentials"
        if _answered_by_a_hook(client, endpoint, str(meta.service_model.metadata.get("targetPrefix") or "")):
            return "a botocore before-send handler answers this client's requests (a mock or a stub)"
        tls = None
        if scheme == "https":
            try:
                tls = ssl.create_default_context(cafile=ca_bundle_of(session))
            except (OSError, ssl.SSLError, ValueError):
                return "the CA bundle botocore would use cannot be loaded here"
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
        return cls(endpoint, meta.region_name, meta.service_model.signing_name,
                   str(meta.service_model.metadata.get("targetPrefix") or ""), credentials,
                   tls=tls, **options)

    # -- credentials -----------------------------------------------------------------------------

    def _keys(self) -> Any:
        """Frozen credentials, taken again every ``REFREEZE_SECONDS`` (a refreshable credential
        object refreshes itself when it is taken near its expiry)."""
        now = self.clock()
        with self._lock:
            if self._frozen is None or now - self._frozen_at >= REFREEZE_SECONDS:
                self._frozen = self._credentials.get_frozen_credentials()
                self._frozen_at = now
            return self._frozen

    # -- one request -------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self.tls is None:
            return _Plain(self.host, self.port, self.read_timeout, self.connect_timeout)
        return _Tls(self.host, self.port, self.read_timeout, self.connect_timeout, self.tls)

    def _failure(self, operation: str, kind: str, code: str, message: str, *, status: int | None = None,
                 attempts: int = 0, request_id: str = "") -> failures.Failure:
        return failures.Failure(self.service, operation, self.region, kind, code,
                                failures.one_line(message), status, attempts, None, request_id)

    def _send(self, conn: http.client.HTTPConnection, operation: str, body: bytes) -> tuple[int, bytes, str, str]:
        keys = self._keys()
        headers = self.signer.sign(body, f"{self.target_prefix}.{operation}", keys.access_key,
                                   keys.secret_key, keys.token or None)
        headers["User-Agent"] = USER_AGENT
        conn.request("POST", "/", body, headers)
        response = conn.getresponse()
        data = response.read(MAX_RESPONSE_BYTES + 1)
        if len(data) > MAX_RESPONSE_BYTES:
            raise _TooLarge(response.status)
        request_id = _clean_id(response.getheader("x-amzn-RequestId") or response.getheader("x-amz-request-id"))
        return response.status, data, request_id, response.getheader("x-amzn-ErrorType") or ""

    def one(self, conn_box: list[Any], operation: str, body: bytes,
            pace: Callable[[], None], batch: Batch) -> Reply:
        """One item: send, retry what is worth retrying, return the answer or the failure."""
        attempt = 0
        while True:
            pace()
            with self._lock:
                batch.requests += 1
            conn = conn_box[0]
            if conn is None:
                conn = conn_box[0] = self._connection()
            try:
                status, data, request_id, error_type = self._send(conn, operation, body)
            except ssl.SSLCertVerificationError as error:
                conn.close()
                conn_box[0] = None
                return Reply(failure=self._failure(operation, failures.TLS, "SSLError",
                                                   f"certificate verify failed: {error.verify_message}",
                                                   attempts=attempt))
            except failures.BOTO_ERRORS as error:  # credentials that could not be refreshed: botocore's words
                return Reply(failure=failures.failure_of(error, self.service, operation, self.region))
            except _TooLarge as error:  # the rest is not read: this connection is done
                conn.close()
                conn_box[0] = None
                return Reply(failure=self._failure(operation, failures.RESPONSE, "ResponseTooLarge",
                                                   f"the response is over {MAX_RESPONSE_BYTES} bytes",
                                                   status=error.args[0], attempts=attempt))
            except ValueError:  # http.client refuses a header value, quoting it (the session token): not shown
                conn.close()
                conn_box[0] = None
                return Reply(failure=self._failure(operation, failures.OTHER, "InvalidHeader",
                                                   "a request header holds a line break or a control character "
                                                   "(at the end of the session token?); not shown",
                                                   attempts=attempt))
            except (OSError, http.client.HTTPException) as error:  # refused, reset, closed, timed out
                conn.close()
                conn_box[0] = None
                attempt += 1
                if attempt < self.max_attempts:
                    self._backoff(attempt)
                    continue
                kind = failures.TLS if isinstance(error, ssl.SSLError) else failures.CONNECTION
                return Reply(failure=self._failure(operation, kind, type(error).__name__,
                                                   f"{type(error).__name__} talking to "
                                                   f"{self.host}: {error}", attempts=attempt))
            if status == 200:
                try:
                    answer = json.loads(data) if data else {}
                except ValueError:
                    answer = None
                if isinstance(answer, dict):
                    return Reply(answer=answer, request_id=request_id)
                code, message = "MalformedResponse", "the response is not a JSON object"
            else:
                code, message = _error_of(status, data, error_type)
            retryable_status = status >= 500 or code == "MalformedResponse"
            throttling = code in THROTTLING_CODES or status == 429
            if throttling:
                with self._lock:
                    batch.throttled += 1
            limit = self.throttle_attempts if throttling else self.max_attempts
            if (throttling or retryable_status) and attempt + 1 < limit:
                attempt += 1
                self._backoff(attempt)
                continue
            return Reply(failure=self._failure(operation, failures.RESPONSE, code, message, status=status,
                                               attempts=attempt, request_id=request_id),
                         request_id=request_id)

    def _backoff(self, attempt: int) -> None:
        delay = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))
        self.sleep(delay / 2 + random.uniform(0, delay / 2))

    # -- many ----------------------------------------------------------------------------------------

    def run(self, operation: str, bodies: Sequence[bytes], pace: Callable[[], None],
            workers: int | None = None, stop: Callable[[Reply], bool] | None = None) -> Batch:
        """Every body sent as one ``operation`` request, ``workers`` in flight; replies in order.

        Once a reply satisfies ``stop`` (a failure no other item can escape: a refused signature,
        expired credentials), nothing more is sent: the requests in flight finish, ``batch.stopped``
        holds the first such reply, and the items never sent keep an empty ``Reply()``.
        """
        batch = Batch(replies=[Reply()] * len(bodies))
        if not bodies:
            return batch
        count = batch.in_flight = max(1, min(workers or self.workers or WORKERS, len(bodies)))
        local = threading.local()
        opened: list[list[Any]] = []

        def item(index: int) -> None:
            if batch.stopped is not None:
                return
            box = getattr(local, "box", None)
            if box is None:
                box = local.box = [None]
                with self._lock:
                    opened.append(box)
            reply = batch.replies[index] = self.one(box, operation, bodies[index], pace, batch)
            if stop is not None and stop(reply):
                with self._lock:
                    if batch.stopped is None:
                        batch.stopped = reply

        try:
            if count == 1:
                for index in range(len(bodies)):
                    item(index)
            else:
                with ThreadPoolExecutor(max_workers=count, thread_name_prefix="keymgmt-bulk") as pool:
                    for _ in pool.map(item, range(len(bodies))):
                        pass
        finally:
            for box in opened:
                if box[0] is not None:
                    box[0].close()
        return batch


def _proxied(configured: Any, environment: dict[str, str], scheme: str) -> bool:
    """Would botocore send this endpoint's requests through a proxy? It takes the proxy of the
    URL's scheme from its config, else from the environment (``HTTPS_PROXY``...; ``NO_PROXY``
    already applied by ``get_environ_proxies``). ``ALL_PROXY`` counts too, to be safe: reading
    through botocore is never weaker. ``NO_PROXY`` alone (urllib lists it as a ``no`` proxy) is
    not a proxy."""
    proxies = configured if configured else environment
    return bool(proxies.get(scheme) or proxies.get("all") or (environment or {}).get("all"))


def _answered_by_a_hook(client: Any, endpoint: str, target_prefix: str) -> bool:
    """Does a ``before-send`` handler answer this client's requests instead of the network? (moto's
    in-process mock does; keymgmt registers none.) Asked the public way: the event is emitted with
    a harmless read (ListResourceTags of a key id that cannot exist) and any answer means botocore
    would not send what the lean path sends, so botocore keeps the read."""
    from botocore.awsrequest import AWSRequest

    probe = AWSRequest("POST", endpoint.rstrip("/") + "/",
                       data=b'{"KeyId": "00000000-0000-0000-0000-000000000000"}',
                       headers={"Content-Type": "application/x-amz-json-1.1",
                                "X-Amz-Target": f"{target_prefix}.ListResourceTags"}).prepare()
    event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.ListResourceTags"
    return any(answer is not None for _, answer in client.meta.events.emit(event, request=probe))


def _error_of(status: int, data: bytes, error_type: str) -> tuple[str, str]:
    """AWS JSON 1.1 error: ``__type`` (``ns#Code`` or ``Code``) and ``message``; else the
    ``x-amzn-ErrorType`` header; else the HTTP status."""
    code = message = ""
    try:
        body = json.loads(data) if data else {}
    except ValueError:
        body = {}
    if isinstance(body, dict):
        code = str(body.get("__type") or body.get("code") or "")
        message = str(body.get("message") or body.get("Message") or "")
    if not code and error_type:
        code = error_type.split(":", 1)[0]
    code = code.rsplit("#", 1)[-1]
    return code or f"HTTP{status}", message or f"HTTP {status}"
