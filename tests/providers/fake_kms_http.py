"""A small AWS-KMS-shaped HTTP(S) server on 127.0.0.1 for the bulk read's tests (aws.bulkread).

It answers ListKeys, ListResourceTags and the Resource Groups Tagging API's GetResources
(refused: AccessDeniedException, as IAM without tag:GetResources answers) from a dict of keys,
checks every request's SigV4 signature by signing it again with botocore's ``SigV4Auth`` (over
the headers the request says it signed, at the time it says), and lets a test script faults per
request: ``fault(n, target, key_id) -> None | "throttle" | "drop" | "500" | "denied" | "huge"``."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from unittest import mock


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class FakeKms:
    def __init__(self, keys: dict[str, dict[str, str]], credentials: dict[str, tuple[str, str | None]],
                 *, region: str = "us-west-1", tls: ssl.SSLContext | None = None):
        self.keys = keys
        self.credentials = credentials  # access key -> (secret, session token)
        self.region = region
        self.fault: Callable[[int, str, str], str | None] = lambda n, target, key: None
        self.requests: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.inflight = 0
        self.peak = 0
        self.delay = 0.0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                target = headers.get("X-Amz-Target", "")
                try:
                    asked = json.loads(body or b"{}")
                except ValueError:
                    asked = {}
                with fake.lock:
                    n = len(fake.requests)
                    fake.requests.append({"headers": headers, "body": body, "target": target})
                    fake.inflight += 1
                    fake.peak = max(fake.peak, fake.inflight)
                try:
                    if fake.delay:
                        import time

                        time.sleep(fake.delay)
                    if not fake.signature_ok(headers, body, self.headers.get("Host", "")):
                        with fake.lock:
                            fake.bad_signatures += 1
                        return self.answer(400, {"__type": "InvalidSignatureException",
                                                 "message": "signature does not match"})
                    what = fake.fault(n, target, str(asked.get("KeyId", "")))
                    if what == "drop":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if what == "throttle":
                        return self.answer(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                    if what == "500":
                        return self.answer(500, {"__type": "KMSInternalException", "message": "internal"})
                    if what == "huge":  # a broken or hostile endpoint: 8 MiB of valid JSON
                        raw = b'{"Tags": [], "Truncated": false, "Pad": "' + b"x" * (8 << 20) + b'"}'
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(raw)))
                        self.end_headers()
                        try:
                            self.wfile.write(raw)
                        except OSError:  # the reader stopped reading and closed
                            self.close_connection = True
                        return
                    if what == "denied":
                        return self.answer(400, {"__type": "AccessDeniedException",
                                                 "message": "not authorized to perform kms:ListResourceTags"})
                    fake.serve(self, target, asked)
                finally:
                    with fake.lock:
                        fake.inflight -= 1

            def answer(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", f"req-{len(fake.requests)}-{status}")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.endpoint_url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, handler: Any, target: str, asked: dict[str, Any]) -> None:
        operation = target.rsplit(".", 1)[-1]
        if target.startswith("ResourceGroupsTaggingAPI"):
            return handler.answer(400, {"__type": "AccessDeniedException",
                                        "message": "not authorized to perform: tag:GetResources"})
        if operation == "ListKeys":
            return handler.answer(200, {"Keys": [{"KeyId": k, "KeyArn": f"arn:aws:kms:{self.region}:111122223333:key/{k}"}
                                                 for k in self.keys], "Truncated": False})
        if operation == "ListResourceTags":
            key_id = str(asked.get("KeyId", ""))
            if key_id not in self.keys:
                return handler.answer(400, {"__type": "NotFoundException", "message": f"{key_id} not found"})
            return handler.answer(200, {"Tags": [{"TagKey": k, "TagValue": v} for k, v in self.keys[key_id].items()],
                                        "Truncated": False})
        return handler.answer(400, {"__type": "UnknownOperationException", "message": operation})

    def signature_ok(self, headers: dict[str, str], body: bytes, host: str) -> bool:
        """Sign the request again with botocore's SigV4Auth and compare."""
        import botocore.auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        auth = headers.get("Authorization", "")
        try:
            credential = auth.split("Credential=", 1)[1].split(",", 1)[0]
            signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
            access_key, _day, region, service, _ = credential.split("/")
        except (IndexError, ValueError):
            return False
        if access_key not in self.credentials:
            return False
        secret, token = self.credentials[access_key]
        if token is not None and headers.get("X-Amz-Security-Token") != token:
            return False
        lower = {k.lower(): v for k, v in headers.items()}
        resign = {name: lower[name] for name in signed if name in lower and name not in ("host", "x-amz-date",
                                                                                          "x-amz-security-token")}
        request = AWSRequest("POST", f"http://{host}/", data=body, headers=resign)
        request.headers["Host"] = host
        when = datetime.datetime.strptime(lower.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
            botocore.auth.SigV4Auth(Credentials(access_key, secret, token), service, region).add_auth(request)
        return request.headers["Authorization"] == auth

    def count(self, operation: str) -> int:
        return sum(1 for r in self.requests if r["target"].endswith("." + operation))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
