#!/usr/bin/env python3
"""A latency- and quota-modelled loopback proxy in front of a KMS endpoint (benchmarks only).

    python bench/kms_proxy.py --upstream http://127.0.0.1:PORT [--latency-ms 40] [--no-quotas]
                              [--region-upstream REGION=URL ...] [--port 0] [--max-seconds 3600]
    python bench/kms_proxy.py --self-check    # latency, throttling and its botocore error, checked

prints its own endpoint (``http://127.0.0.1:N``) on the first line of stdout and forwards every
request to the upstream (the embedded local KMS, ``python -m keymgmt_cli.localkms.server``, or
LocalStack from ``scripts/localstack``), so that a client on this machine sees what a user with a
real region sees:

- **latency**: every call waits ``latency/2`` before it "arrives" and ``latency/2`` after the
  upstream answered (one round trip), throttled calls included;
- **regions**: ``--region-upstream eu-west-1=http://127.0.0.1:P2`` sends that signing region's
  calls to an emulator of its own (others go to ``--upstream``), as real regions are independent;
- **quotas**: one token bucket per (signing region, operation) at AWS KMS's default request
  quotas (``QUOTAS`` below; capacity one second's worth, at least 1). A call that finds its
  bucket empty on arrival is answered as AWS answers it, HTTP 400 with
  ``{"__type": "ThrottlingException", "message": "Rate exceeded"}``, and never reaches the
  upstream. The signing region is read from the SigV4 ``Authorization`` header's credential
  scope, the operation from ``X-Amz-Target`` (``TrentService.<Operation>``).

Counters (per region and operation: forwarded, throttled, upstream_ms = time spent waiting for the
upstream, i.e. the emulator's own service time) are served as JSON on
``GET /__proxy__/stats`` and zeroed by ``POST /__proxy__/reset``; nothing else is answered by the
proxy itself. It binds 127.0.0.1 only, refuses a non-loopback upstream, and exits by itself after
``--max-seconds`` (and on SIGTERM/SIGINT). Runs as a process of its own, so its CPU is never
counted as the client's.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# AWS KMS default request quotas (requests per second, per account and region), from AWS's
# "Request quotas" page; the same figures as keymgmt_cli/aws/codes.REQUEST_QUOTAS, copied rather
# than imported on purpose: the harness models AWS on its own, so a wrong figure in keymgmt's table
# shows up as throttling here instead of being shared by both. Operations not listed are not
# throttled.
QUOTAS: dict[str, float] = {
    "GetParametersForImport": 1,
    "CreateKey": 5,
    "CreateAlias": 5,
    "UpdateAlias": 5,
    "DeleteAlias": 15,
    "EnableKey": 5,
    "DisableKey": 5,
    "ImportKeyMaterial": 15,
    "DeleteImportedKeyMaterial": 15,
    "RotateKeyOnDemand": 5,
    "ScheduleKeyDeletion": 15,
    "CancelKeyDeletion": 5,
    "ReplicateKey": 5,
    "TagResource": 10,
    "ListAliases": 500,
    "ListKeys": 500,
    "DescribeKey": 2000,
    "ListResourceTags": 2000,
    "GetPublicKey": 1000,
}

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/kms/aws4_request")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}
THROTTLED_BODY = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Bucket:
    """``rate`` tokens a second, at most ``capacity``; ``try_take`` never waits."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def try_take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _address(upstream: str) -> tuple[str, int]:
    parts = urlsplit(upstream)
    if parts.scheme != "http" or not parts.hostname or not is_loopback_host(parts.hostname):
        raise ValueError(f"the upstream must be http:// on a loopback address, not {upstream!r}")
    return parts.hostname, parts.port or 80


class State:
    def __init__(self, upstream: str, latency: float, quotas: dict[str, float],
                 region_upstreams: dict[str, str] | None = None) -> None:
        self.default = _address(upstream)
        # Real regions are independent services: a region of its own can have an emulator of its own,
        # so that one emulator process serialising requests is not mistaken for keymgmt serialising.
        self.regions = {region: _address(url) for region, url in (region_upstreams or {}).items()}
        self.latency = latency
        self.quotas = quotas
        self.lock = threading.Lock()
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self.local = threading.local()

    def admit(self, region: str, op: str) -> bool:
        rate = self.quotas.get(op)
        with self.lock:
            ok = True
            if rate is not None:
                bucket = self.buckets.get((region, op))
                if bucket is None:
                    bucket = self.buckets[(region, op)] = Bucket(rate)
                ok = bucket.try_take(time.monotonic())
            row = self.stats.setdefault(f"{region} {op}", {"forwarded": 0, "throttled": 0, "upstream_ms": 0.0})
            row["forwarded" if ok else "throttled"] += 1
            return ok

    def upstream_time(self, region: str, op: str, seconds: float) -> None:
        with self.lock:
            row = self.stats.get(f"{region} {op}")
            if row is not None:
                row["upstream_ms"] += seconds * 1000

    def upstream(self, region: str) -> http.client.HTTPConnection:
        address = self.regions.get(region, self.default)
        conns = getattr(self.local, "conns", None)
        if conns is None:
            conns = self.local.conns = {}
        conn = conns.get(address)
        if conn is None:
            conn = conns[address] = http.client.HTTPConnection(*address, timeout=120)
        return conn

    def forward(self, region: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes
                ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
            conn = self.upstream(region)
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, [(k, v) for k, v in resp.getheaders()
                                     if k.lower() not in _HOP and k.lower() != "content-length"], data
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self.local.conns.pop(self.regions.get(region, self.default), None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool uses with AWS
        # TCP_NODELAY: the reply's headers and body are two writes; with Nagle's algorithm the body
        # waits for the client's delayed ACK of the headers (~40 ms on Linux), a stall per call
        # that no AWS endpoint adds on top of the modelled latency.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # no per-request log lines
            pass

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _control(self) -> bool:
            if self.path == "/__proxy__/stats" and self.command == "GET":
                with state.lock:
                    body = json.dumps(state.stats, sort_keys=True).encode()
                self._reply(200, [("Content-Type", "application/json")], body)
                return True
            if self.path == "/__proxy__/reset" and self.command == "POST":
                with state.lock:
                    state.stats.clear()
                self._reply(200, [("Content-Type", "application/json")], b"{}")
                return True
            return False

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/__proxy__/") and self._control():
                return
            target = self.headers.get("X-Amz-Target") or ""
            op = target.rsplit(".", 1)[-1] if target else f"{self.command} {self.path.split('?')[0]}"
            scope = _SCOPE.search(self.headers.get("Authorization") or "")
            region = scope.group(1) if scope else "-"
            time.sleep(state.latency / 2)  # on the way to the region
            if state.admit(region, op):
                headers = [(k, v) for k, v in self.headers.items()
                           if k.lower() not in _HOP and k.lower() != "content-length"]
                t0 = time.perf_counter()
                try:
                    status, rheaders, data = state.forward(region, self.command, self.path, headers, body)
                except OSError:
                    status, rheaders, data = 502, [("Content-Type", "text/plain")], b"upstream unreachable"
                state.upstream_time(region, op, time.perf_counter() - t0)
            else:
                status, data = 400, THROTTLED_BODY
                rheaders = [("Content-Type", "application/x-amz-json-1.1"),
                            ("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")]
            time.sleep(state.latency / 2)  # and back
            self._reply(status, rheaders, data)

        do_POST = _proxy
        do_GET = _proxy
        do_PUT = _proxy
        do_DELETE = _proxy

    return Handler


def serve(upstream: str, latency: float, quotas: dict[str, float], port: int = 0,
          region_upstreams: dict[str, str] | None = None) -> tuple[ThreadingHTTPServer, State]:
    state = State(upstream, latency, quotas, region_upstreams)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    server.daemon_threads = True
    return server, state


def self_check() -> int:
    """The proxy in this process in front of a stub upstream that answers ``{}`` to everything,
    driven by a real botocore client (no retries): latency is added, the second
    GetParametersForImport within a second in one region is a ThrottlingException to botocore,
    another region has a bucket of its own, throttled calls never reach the upstream, an
    unthrottled operation passes. Prints one line per check; exit 1 if any fails."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    hits: list[str] = []

    class Stub(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hits.append(self.headers.get("X-Amz-Target") or "")
            body = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    server, _ = serve(f"http://127.0.0.1:{stub.server_address[1]}", 0.04, QUOTAS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def client(region: str):  # type: ignore[no-untyped-def]
        return boto3.client("kms", region_name=region, endpoint_url=url, aws_access_key_id="t",
                            aws_secret_access_key="t", config=Config(retries={"max_attempts": 1, "mode": "standard"}))

    def gpfi(c) -> str:  # type: ignore[no-untyped-def]
        try:
            c.get_parameters_for_import(KeyId="k", WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
            return "ok"
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    east, west = client("us-east-1"), client("us-west-2")
    east.describe_key(KeyId="warm")  # connection and model set-up out of the timing
    took = []
    for _ in range(5):
        t0 = time.perf_counter()
        east.describe_key(KeyId="k")
        took.append(time.perf_counter() - t0)
    latency = sorted(took)[2]  # the median of 5
    before = len(hits)
    first, second, other = gpfi(east), gpfi(east), gpfi(west)
    forwarded = len(hits) - before
    time.sleep(1.05)
    refilled = gpfi(east)
    checks = [
        (f"one call takes >= 40 ms through the proxy ({latency * 1000:.0f} ms, median of 5)", latency >= 0.04),
        # and not much more: a stall on top of the model (a reply in two segments waiting for a
        # delayed ACK took every call to ~88 ms) would make every figure measured through it wrong
        (f"one call takes < 70 ms through the proxy ({latency * 1000:.0f} ms, median of 5)", latency < 0.07),
        (f"first GetParametersForImport in us-east-1: {first}", first == "ok"),
        (f"second within 1 s in us-east-1: {second}", second == "ThrottlingException"),
        (f"first in us-west-2 meanwhile: {other}", other == "ok"),
        (f"throttled call not forwarded (upstream saw {forwarded} of 3)", forwarded == 2),
        (f"us-east-1 after 1 s: {refilled}", refilled == "ok"),
    ]
    server.shutdown()
    stub.shutdown()
    for label, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {label}")
    return 0 if all(ok for _, ok in checks) else 1


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:] == ["--self-check"]:
        return self_check()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the KMS emulator")
    parser.add_argument("--latency-ms", type=float, default=40.0, help="added per call (round trip)")
    parser.add_argument("--no-quotas", action="store_true", help="do not throttle")
    parser.add_argument("--region-upstream", action="append", default=[], metavar="REGION=URL",
                        help="send this signing region's calls to an upstream of its own (repeatable)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    args = parser.parse_args(argv)
    regions = dict(item.split("=", 1) for item in args.region_upstream)
    server, _ = serve(args.upstream, args.latency_ms / 1000.0, {} if args.no_quotas else QUOTAS, args.port, regions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    host, port = server.server_address[:2]
    print(f"http://{host}:{port}", flush=True)
    stop.wait(args.max_seconds)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
