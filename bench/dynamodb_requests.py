#!/usr/bin/env python3
"""What `read`, `list` and a key write cost on DynamoDB: requests and median time, next to the file backend.

Issue 6's claims, measured at the store (DocumentStore) level:
  * read  = one GetItem (strongly consistent),
  * list  = one Query page (keys only),
  * write = one conditional PutItem (the document having been read under the engine's lock).
Requests are counted with a botocore event hook (``request-created``: every HTTP request, retries
included). The DynamoDB endpoint is moto's server mode on 127.0.0.1 (``python -m moto.server``),
so the times are of a local emulator, not of AWS (add the network round trip, ~2-10 ms in-region).
It also counts the requests of a whole engine-level `read keymgmt/key/NAME`, `list keymgmt/key`
and a key update (the engine first resolves the mount from the one `state` document; a write
also takes and releases the key's lease).

Usage: python bench/dynamodb_requests.py [--runs 200] [--keys 500]
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

REGION = "us-east-1"


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYMGMT_"))}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=1).read()
            return proc, endpoint
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("moto server did not start")
            time.sleep(0.1)


def key_doc(i: int) -> dict:
    """About the size of a real aes256-gcm96 key document with two versions."""
    sealed = "v1." + base64.urlsafe_b64encode(os.urandom(60)).decode().rstrip("=")
    return {"name": f"key-{i:05d}", "type": "aes256-gcm96", "deletion_allowed": False,
            "min_enabled_version": 0, "latest_version": 2, "replica_regions": [],
            "versions": {str(v): {"creation_time": "2026-01-01T00:00:00.000000+00:00", "material": sealed}
                         for v in (1, 2)}}


def measure(store, runs: int, keys: int, counter: Counter | None) -> dict:
    collection = "ns/default/keys"
    existing = set(store.list(collection))
    for i in range(keys):
        if f"key-{i:05d}" not in existing:
            store.put(f"{collection}/key-{i:05d}", key_doc(i))
    results = {}
    target = f"{collection}/key-{keys // 2:05d}"

    def timed(label, fn, setup=None):
        samples, requests = [], []
        for _ in range(runs):
            if setup:
                setup()
            if counter is not None:
                counter.clear()
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
            if counter is not None:
                requests.append(dict(counter))
        results[label] = (statistics.median(samples) * 1000, requests[0] if requests else None,
                          all(r == requests[0] for r in requests) if requests else True)

    timed("read (get one key document)", lambda: store.get(target))
    timed(f"list ({keys} keys)", lambda: store.list(collection))
    doc = key_doc(keys // 2)
    timed("write (put one key document)", lambda: store.put(target, doc), setup=lambda: store.get(target))
    return results


def engine_requests(store, counter: Counter) -> dict:
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.engine.routing import Request

    out = {}
    for label, req in [("engine read keymgmt/key/NAME", Request("read", "keymgmt/key/key-00001", {})),
                       ("engine list keymgmt/key", Request("list", "keymgmt/key", {})),
                       ("engine write keymgmt/key/NAME deletion_allowed=true",
                        Request("write", "keymgmt/key/key-00001", {"deletion_allowed": "true"}))]:
        engine = Engine(store)  # a fresh one per command, as each CLI process has
        counter.clear()
        engine.handle(req)
        out[label] = dict(counter)
    return out


def fmt_requests(requests: dict | None) -> str:
    if requests is None:
        return "-"
    return ", ".join(f"{n} {op}" for op, n in sorted(requests.items())) or "0"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keys", type=int, default=500)
    args = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": REGION}.items():
        os.environ[name] = value
    from keymgmt_cli.store.dynamostore import DynamoStore
    from keymgmt_cli.store.filestore import FileStore

    proc, endpoint = start_moto()
    try:
        dyn = DynamoStore("bench", REGION, endpoint)
        dyn.ensure_table()
        counter: Counter = Counter()
        dyn.client.meta.events.register(
            "request-created.dynamodb", lambda operation_name, **kw: counter.update([operation_name]))
        dyn_results = measure(dyn, args.runs, args.keys, counter)
        from keymgmt_cli.engine.core import Engine

        Engine(dyn).ensure_initialized()  # the state document with the default mount, as a first write makes
        eng = engine_requests(dyn, counter)
        with tempfile.TemporaryDirectory() as tmp:
            file_results = measure(FileStore(tmp), args.runs, args.keys, None)
    finally:
        proc.terminate()
        proc.wait()

    print(f"DynamoDB on moto server mode ({endpoint}) vs the file backend; {args.runs} runs each, medians")
    print(f"{'operation':34} {'DynamoDB requests':28} {'DynamoDB ms':>12} {'file ms':>9}")
    for label, (ms, requests, stable) in dyn_results.items():
        flag = "" if stable else " (varied!)"
        print(f"{label:34} {fmt_requests(requests) + flag:28} {ms:12.2f} {file_results[label][0]:9.3f}")
    print()
    print("whole engine requests (mount resolution included):")
    for label, requests in eng.items():
        print(f"  {label:34} {fmt_requests(requests)}")


if __name__ == "__main__":
    main()
