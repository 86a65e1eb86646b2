"""Embedded local KMS: moto's server mode with the BYOK import extension, on 127.0.0.1 only.

It binds IPv4 loopback addresses only (anything else is refused with ValueError before a socket is
opened) and refuses requests from web pages, sending no CORS headers (see :mod:`.browser_guard`).

    with start() as kms:
        client = boto3.client("kms", endpoint_url=kms.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")

``python -m keymgmt_cli.localkms.server [--port N]`` prints the endpoint and serves until SIGINT/SIGTERM.

This module is the one way the project starts a local moto server (the CLI's demo, the tests' KMS and
DynamoDB servers, the test middleware, the benchmarks): :func:`start` serves moto's whole server app
(every moto service, KMS with the BYOK import extension) on a loopback address, optionally behind a
WSGI wrapper (``wrap``), and :func:`serve_until_signal` runs one in the foreground.

moto keeps its state in process-global backends.  The server and any ``moto.mock_aws`` context in the
same process share that state, and ``mock_aws`` resets it when it starts and stops.  Do not run both at
once in one process.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, Callable

from werkzeug.serving import BaseWSGIServer, make_server

from . import clock, moto_import
from .browser_guard import BrowserGuard

__all__ = ["LocalKms", "serve", "serve_until_signal", "start"]

_log = logging.getLogger(__name__)


def _quiet_handler_class() -> type:
    # Imported lazily: moto.moto_server pulls in Flask and every backend's URL map.
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietRequestHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
        """moto's handler without werkzeug's per-request log line on stderr."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

        def log(self, type: str, message: str, *args: Any) -> None:
            _log.debug("%s: " + message, type, *args)

    return QuietRequestHandler


class LocalKms:
    """A running local KMS endpoint (moto server + import extension) in a daemon thread."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        #: The WSGI application served inside the browser guard: moto's app, or what ``wrap`` made of it.
        self.app: Any = server.app.app if isinstance(server.app, BrowserGuard) else server.app
        self._thread = thread
        self._stopped = False
        host, port = server.server_address[:2]
        self.host: str = str(host)
        self.port: int = int(port)
        self.endpoint_url: str = f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalKms:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalKms({self.endpoint_url!r}{', stopped' if self._stopped else ''})"


def start(host: str = "127.0.0.1", port: int = 0, *, wrap: Callable[[Any], Any] | None = None,
          name: str = "localkms-server") -> LocalKms:
    """Start the local KMS on host:port (port 0 = any free port) and return once it accepts requests.

    ``wrap(app)`` returns the WSGI application to serve instead of moto's ``app`` (a middleware that
    counts, serialises or injects faults); it is then ``LocalKms.app``. ValueError for a host that is
    not an IPv4 loopback address."""
    server, thread = serve(host, port, wrap, name)
    return LocalKms(server, thread)


def serve_until_signal(kms: LocalKms) -> int:
    """Print the endpoint (one line on stdout, once the socket listens), serve until SIGINT or SIGTERM,
    then stop. For a ``main()``; installs signal handlers, so call it from the main thread."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(kms.endpoint_url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        kms.stop()
    return 0


def serve(host: str, port: int, wrap: Callable[[Any], Any] | None = None,
          name: str = "localkms-server") -> tuple[BaseWSGIServer, threading.Thread]:
    """Bind moto's app with the import extension (``wrap``ped, for the test middleware) on a
    loopback address and serve it from a daemon thread."""
    try:
        loopback = ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the local KMS binds to an IPv4 loopback address only (e.g. 127.0.0.1), not {host!r}")
    clock.check_offset()  # a bad KEYMGMT_LOCALKMS_CLOCK_OFFSET fails here, not on each request
    moto_import.install()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    if wrap is not None:
        app = wrap(app)
    app = BrowserGuard(app)  # outermost: browser requests are refused before any wrapper sees them
    # Bound before this returns: the socket already listens, so clients can connect at once.
    server = make_server(host, port, app, threaded=True, request_handler=_quiet_handler_class())
    # werkzeug's server-level log carries "Error on request" tracebacks (a bug in moto or in our patch):
    # keep those visible as logging errors; everything else stays at debug level.
    server.log = lambda type, message, *args: _log.log(  # type: ignore[method-assign]
        logging.ERROR if type == "error" else logging.DEBUG, message, *args
    )
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keymgmt_cli.localkms.server",
        description="Serve a local AWS KMS emulator (moto + BYOK import) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    args = parser.parse_args(argv)

    return serve_until_signal(start(port=args.port))


if __name__ == "__main__":
    sys.exit(main())
