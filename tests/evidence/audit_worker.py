"""A process that writes audit records through the real session code (run by the process tests).

    python audit_worker.py append N TAG     N audited no-op commands on keymgmt/key/TAG-<i>
    python audit_worker.py hang MARKER      one audited command that touches MARKER, then sleeps
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    from keymgmt_cli.audit.session import audited
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.store import open_secret_box, open_store

    environ = dict(os.environ)
    store = open_store(environ)
    engine = Engine(store, open_secret_box(store.home, environ, store=store), None)
    mode = sys.argv[1]
    if mode == "append":
        count, tag = int(sys.argv[2]), sys.argv[3]
        for i in range(count):
            audited(engine, environ, "write", f"keymgmt/key/{tag}-{i}", {"type": "aes256-gcm96"}, lambda: None)
    elif mode == "hang":
        marker = sys.argv[2]

        def hang() -> None:
            open(marker, "w").close()
            time.sleep(120)

        audited(engine, environ, "write", "keymgmt/key/hung", {"type": "aes256-gcm96"}, hang)


if __name__ == "__main__":
    main()
