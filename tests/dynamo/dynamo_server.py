"""moto's server mode on 127.0.0.1 for the multi-process tests: DynamoDB and KMS on one port.

    python dynamo_server.py PORT      (prints the endpoint once it listens)

moto's server app plus the project's BYOK import extension (distributions import key material),
with one difference from ``python -m moto.server``: requests are handled one at a time. moto's
DynamoDB checks a ConditionExpression and then writes without any lock, so two concurrent
conditional PutItems on one item can both succeed (a lost update that real DynamoDB, where a
conditional write is atomic, never allows). The multi-process test found exactly that; serialising
requests gives moto DynamoDB's atomicity. Connections are still served by many threads.
"""

from __future__ import annotations

import signal
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def main() -> None:
    port = int(sys.argv[1])
    from keymgmt_cli.localkms import moto_import

    moto_import.install()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialised(environ, start_response):
        with one_at_a_time:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", port, serialised, threaded=True, request_handler=_Quiet)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    print(f"http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
