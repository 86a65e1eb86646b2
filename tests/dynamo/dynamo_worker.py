"""A runner process for the multi-process DynamoDB tests (run as a script, one per process).

    python dynamo_worker.py MODE GO_FILE OUT_FILE [COUNT]

Every worker waits for GO_FILE to exist before starting, so that all of them really run at once.
Modes:
  rotate N    N times ``keymgmt write -f keymgmt/key/shared/rotate`` through the CLI, in-process
  probe N     N times: take lease "probe", read-modify-write document probe/counter (slowly),
              record the [enter, exit] interval of each stay inside the lease
  nolock N    N increments of probe/free without any lease: a ConcurrentUpdate is retried
  stuck       distribute keymgmt/key/k to kms/aws, and hang forever (holding the key's lease)
              right after the KMS key id of version 1 is recorded, before its import
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def wait_for(go: Path) -> None:
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("no go")
        time.sleep(0.01)


def cli(argv: list[str]) -> int:
    from keymgmt_cli.cli.main import Env, cli as group

    return group.main(args=argv, prog_name="keymgmt", obj=Env(dict(os.environ)), standalone_mode=False)


def rotate(count: int) -> dict:
    codes = [cli(["write", "-f", "keymgmt/key/shared/rotate"]) for _ in range(count)]
    return {"codes": codes}


def probe(count: int) -> dict:
    from keymgmt_cli.store import open_store

    store = open_store(os.environ).inner  # DynamoStore itself: the probe tests its leases, not MACs
    intervals = []
    for _ in range(count):
        with store.lock("probe", timeout=60):
            entered = time.time()
            doc = store.get("probe/counter") or {"n": 0, "by": []}
            time.sleep(0.02)  # a window for a second runner, if the lease let one in
            doc["n"] += 1
            doc["by"].append(os.getpid())
            store.put("probe/counter", doc)
            intervals.append([entered, time.time()])
    return {"intervals": intervals}


def nolock(count: int) -> dict:
    from keymgmt_cli.store import open_store
    from keymgmt_cli.store.dynamoleases import ConcurrentUpdate

    store = open_store(os.environ).inner  # DynamoStore itself: its conditional writes, not MACs
    conflicts = done = 0
    while done < count:
        doc = store.get("probe/free") or {"n": 0}
        time.sleep(0.005)
        doc["n"] += 1
        try:
            store.put("probe/free", doc)
            done += 1
        except ConcurrentUpdate:
            conflicts += 1
    return {"done": done, "conflicts": conflicts}


def stuck(marker: Path) -> dict:
    from keymgmt_cli.cli.main import build_engine
    from keymgmt_cli.engine.routing import Request

    engine = build_engine(dict(os.environ))
    real_factory = engine.provider_factory

    class Hang:
        def __init__(self, provider):
            self._provider = provider

        def __getattr__(self, name):
            return getattr(self._provider, name)

        def get_parameters_for_import(self, *args, **kwargs):
            marker.write_text(str(os.getpid()))  # the key id of version 1 is recorded by now
            while True:
                time.sleep(1)

    engine.provider_factory = lambda config: Hang(real_factory(config))
    engine.handle(Request("write", "keymgmt/kms/aws/key/k", {"purpose": "encrypt,decrypt"}))
    return {"finished": True}  # never reached


def main() -> None:
    mode, go, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    import keymgmt_cli.cli.main  # noqa: F401  (import before the start line: only the work races)

    wait_for(go)
    if mode == "rotate":
        result = rotate(count)
    elif mode == "probe":
        result = probe(count)
    elif mode == "nolock":
        result = nolock(count)
    elif mode == "stuck":
        result = stuck(out)
    else:
        sys.exit(f"unknown mode {mode}")
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
