"""moto's server mode on 127.0.0.1 for the multi-process tests: DynamoDB and KMS on one port.

    python dynamo_server.py PORT      (prints the endpoint once it listens)

moto's server app plus the project's BYOK import extension (distributions import key material),
started by ``keymgmt_cli.localkms.server.start`` (the project's one way to start one), with one
difference from ``python -m moto.server``: requests are handled one at a time. moto's
DynamoDB checks a ConditionExpression and then writes without any lock, so two concurrent
conditional PutItems on one item can both succeed (a lost update that real DynamoDB, where a
conditional write is atomic, never allows). The multi-process test found exactly that; serialising
requests gives moto DynamoDB's atomicity. Connections are still served by many threads.
"""

from __future__ import annotations

import sys
import threading


def main() -> int:
    port = int(sys.argv[1])
    from keymgmt_cli.localkms import server

    one_at_a_time = threading.Lock()

    def serialise(app):
        def serialised(environ, start_response):
            with one_at_a_time:
                return list(app(environ, start_response))

        return serialised

    return server.serve_until_signal(server.start(port=port, wrap=serialise, name="dynamo-server"))


if __name__ == "__main__":
    sys.exit(main())
