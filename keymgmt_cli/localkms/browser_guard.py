"""Keep web pages away from the local KMS: no CORS, no browser requests, loopback Host names only.

moto's server app enables CORS for every origin (flask-cors: ``Access-Control-Allow-Origin: *``, and
preflight answers that allow any method and header).  With that, any web page open in a browser on
this machine could drive the local KMS on 127.0.0.1: create keys, import material, read state.
:class:`BrowserGuard` wraps the served application (:func:`keymgmt_cli.localkms.server.serve` always
puts it outermost) and

* refuses, with HTTP 403 ``AccessDeniedException`` and no effect, every request that a browser would
  send on a page's behalf: any ``OPTIONS`` (CORS preflight), any request with an ``Origin`` header
  (browsers add it to cross-origin requests and to every POST), any request with ``Sec-Fetch-*``
  headers (sent by current browsers on every request), and any request whose ``Host`` is not a
  loopback name (``127.0.0.0/8``, ``::1``, ``localhost``), which defeats DNS rebinding;
* removes every ``Access-Control-*`` header from the responses it lets through.

SDK clients (botocore, the AWS CLI, urllib) send none of those headers, so nothing they do is refused.
The refusal message names the rule, never a header's value.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BrowserGuard", "refusal"]

_CONTENT_TYPE = "application/x-amz-json-1.1"


def _loopback_host(host: str) -> bool:
    """True for ``127.0.0.1[:port]``, ``[::1][:port]``, ``localhost[:port]`` and other loopback names."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(environ: dict[str, Any]) -> str | None:
    """Why this request is refused (a fixed sentence), or None when it may be served."""
    if environ.get("REQUEST_METHOD", "").upper() == "OPTIONS":
        return "CORS preflight (OPTIONS) requests are refused by the local KMS."
    if "HTTP_ORIGIN" in environ:
        return "Requests with an Origin header (from a web page) are refused by the local KMS."
    if any(name.startswith("HTTP_SEC_FETCH_") for name in environ):
        return "Requests from a browser (Sec-Fetch-* headers) are refused by the local KMS."
    host = environ.get("HTTP_HOST")
    if host is not None and not _loopback_host(host):
        return "The local KMS answers only requests addressed to a loopback host name."
    return None


class BrowserGuard:
    """WSGI middleware: refuse browser requests, strip CORS headers from the rest (see the module)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        reason = refusal(environ)
        if reason is not None:
            body = json.dumps({"__type": "AccessDeniedException", "message": reason}).encode()
            start_response("403 Forbidden", [("Content-Type", _CONTENT_TYPE), ("Content-Length", str(len(body)))])
            return [body]

        def without_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, exc_info) if exc_info is not None else start_response(status, kept)

        return self.app(environ, without_cors)
