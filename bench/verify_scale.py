"""verify at account scale (issue 17): AWS calls and wall time of one ``verify`` among 10, 1,000
and 10,000 KMS keys that are not ours, through a loopback proxy adding 30 ms to every call.

How: the embedded local KMS (moto + keymgmt's import double, ``localkms.server.start()``) on
127.0.0.1, behind a latency proxy (also on 127.0.0.1) that sleeps ``--latency`` before
forwarding each request, counts requests per operation and answers ListKeys in pages of at most
1,000 as AWS does (moto answers every key at once); both in a process of their own, so
that the emulator's CPU is not charged to keymgmt's. moto needs ~15 ms of CPU per request under
one GIL, so N concurrent requests would measure moto, not AWS (which answers each in its
latency however many arrive): the proxy therefore replays the emulator's answer to a read it has
already answered (the account does not change between runs; an untimed run fills the replay). One key of ours is distributed, three
strays (keys with all our tags that the state does not know) are planted, and the foreign keys
are put straight into moto's backend (through the API they would take minutes to make). Then
one ``verify`` is timed for each search:

* ``before``: the old loop (``old_find_tagged``, as ``engine.distribution.find_tagged`` was:
  ListKeys, then one ListResourceTags per key, one after another);
* ``tagging``: ``provider.find_tagged`` with tag:GetResources (moto implements it);
* ``listing``: ``provider.find_tagged`` with tag:GetResources refused by the proxy
  (AccessDeniedException), so ListKeys + concurrent ListResourceTags (``aws.bulkread``'s own
  signed requests where the checkout has it);
* ``botocore``: the same with the lean path refused (``bulk_reader`` answers a reason, as behind
  a proxy), so the tags are read through botocore's client in 48 threads.

Pacing is on as against AWS (``KEYMGMT_AWS_PACING=on``: ListResourceTags at 2,000/s), so the
listing figure includes the quota's floor. Every run must name exactly the three strays (the
recovery search: the one key of its operation).

    .venv/bin/python bench/verify_scale.py [--sizes 10,1000,10000] [--latency 0.03]
        [--before-max 1000] [--runs before,tagging,listing,recovery] [--workers 8,16,32,48,64]
        [--repeat 3] [--profile OUT.pstats] [--client-cost]

``--before-max``: the largest size the old loop is run at (it costs ~N x latency). ``recovery``
is ``engine.reconcile.find_tagged`` (the search after a lost CreateKey answer, by listing on
purpose) through the audit trail's call recorder and its calls journal (a file journal in a
temporary directory: one fsynced, MAC'd line per entry, as a real command writes them).
``BENCH_KEYMGMT_PATH=/path/to/copy`` measures another checkout's ``keymgmt_cli`` (main, for the
"before" side; runs it lacks fall back: ``botocore`` is then the same as ``listing``). Each line gives the calls, the wall, the
client's CPU (this process) and the server process's CPU (the proxy's: the emulator answers only
the untimed first run, ``forwarded 0``), and after each size the load average. ``--workers`` runs
the listing and the recovery at each count of requests in flight (``aws.bulkread.WORKERS``, or
``tagsearch.LISTING_WORKERS`` in a checkout without it); ``--profile`` writes a per-thread CPU profile of the largest size's listing (at the
last ``--workers``) and prints botocore's steps; ``--client-cost`` measures only the CPU of one
ListResourceTags per layer.

Measured 2026-12-06 02:05-02:17 UTC on the shared 2-core dev machine (load average 5-7.6),
30 ms, pacing on; medians of 4 runs (two processes per side, alternated); calls and wall:

==============  ==================  ====================  =====================  ====================
foreign keys    tag:GetResources    listing, main         listing, this branch   recovery, main/now
==============  ==================  ====================  =====================  ====================
10              10 calls, 0.4 s     25 calls, 0.52 s      25 calls, 0.53 s       0.18 s / 0.16 s
1,000           10 calls, 0.4 s     1,016 calls, 2.3 s    1,016 calls, 1.4 s     2.7 s / 0.9 s
10,000          10 calls, 0.4 s     10,025 calls, 18.1 s  10,025 calls, 8.3 s    24.1 s / 6.8 s
==============  ==================  ====================  =====================  ====================

At a load under 3 (02:23-02:30 UTC, medians of 3) 10,000 keys took 6.8 s (verify) and 6.4 s
(recovery) against main's 18.3 s and 20.5 s. At 10,000 the client's CPU fell from 11-12 s (botocore, 1.1-1.2 ms a request) to 3.3-4.9 s
(aws.bulkread, 0.33-0.49 ms); the recovery search's audit entries from 10,005 fsynced journal
lines to 2. What is left is the quota (5.5 s paced) and, on this loaded box, CPU: client + proxy
need 5.3-7.8 s of it. bench/README.md has the analysis.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.environ.get("BENCH_KEYMGMT_PATH"):  # measure another checkout's keymgmt_cli (main, for "before")
    sys.path.insert(0, os.environ["BENCH_KEYMGMT_PATH"])

REGION = "us-west-1"
ACCOUNT = "123456789012"  # moto's default account (access key "test")
TAGGING_PREFIX = "ResourceGroupsTaggingAPI"
# Answers the proxy may replay: the same read of an unchanged account gets the same answer.
READ_ONLY = {"ListResourceTags", "DescribeKey", "ListKeys", "ListAliases", "GetResources"}


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of 48+ connections opened at once: each
    # then waits the kernel's 1 s retransmit (or is reset), which measured the listen queue
    # rather than keymgmt; AWS's endpoints accept hundreds of connections at once.
    request_queue_size = 512


class LatencyProxy:
    """127.0.0.1 proxy to ``upstream``: ``latency`` seconds per request, counts per operation;
    ``refuse_tagging`` answers every Resource Groups Tagging API request AccessDeniedException."""

    def __init__(self, upstream: str, latency: float):
        self.upstream = upstream.split("://", 1)[1]
        self.latency = latency
        self.refuse_tagging = False
        self.replay = True
        self.answers: dict[tuple[str, bytes], tuple[int, list, bytes]] = {}
        self.counts: Counter = Counter()
        self.forwarded = 0  # requests that reached the emulator (not replayed, not refused)
        self.lock = threading.Lock()
        local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # no Nagle: a response in two segments would wait for the client's delayed ACK
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                with proxy.lock:
                    proxy.counts[target.rsplit(".", 1)[-1]] += 1
                time.sleep(proxy.latency)
                if proxy.refuse_tagging and target.startswith(TAGGING_PREFIX):
                    status, headers = 400, [("Content-Type", "application/x-amz-json-1.1")]
                    data = json.dumps({"__type": "AccessDeniedException",
                                       "message": "not authorized to perform: tag:GetResources"}).encode()
                elif proxy.replay and (target, body) in proxy.answers:
                    status, headers, data = proxy.answers[target, body]
                else:
                    with proxy.lock:
                        proxy.forwarded += 1
                    conn = getattr(local, "conn", None)
                    if conn is None:
                        conn = local.conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                    conn.request("POST", self.path, body,
                                 {k: v for k, v in self.headers.items() if k.lower() != "host"})
                    resp = conn.getresponse()
                    data, status = resp.read(), resp.status
                    headers = [(k, v) for k, v in resp.getheaders()
                               if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                                    "date", "server")]
                    if status == 200 and target.rsplit(".", 1)[-1] in READ_ONLY:
                        proxy.answers[target, body] = (status, headers, data)
                if status == 200 and target.endswith(".ListKeys"):
                    data = pages_of_list_keys(body, data)
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="latency-proxy", daemon=True).start()

    def take(self) -> Counter:
        with self.lock:
            counts, self.counts = self.counts, Counter()
        return counts


def pages_of_list_keys(request: bytes, answer: bytes) -> bytes:
    """ListKeys as AWS answers it: at most ``Limit`` (<= 1,000) keys a page, ``NextMarker`` and
    ``Truncated``; moto ignores both and answers every key at once, which would hide the pages'
    round trips (9 of them at 10,000 keys) from the figures."""
    asked = json.loads(request or b"{}")
    limit = max(1, min(int(asked.get("Limit") or 100), 1000))
    start = int(asked.get("Marker") or 0)
    keys = json.loads(answer)["Keys"]
    page: dict[str, Any] = {"Keys": keys[start:start + limit], "Truncated": start + limit < len(keys)}
    if page["Truncated"]:
        page["NextMarker"] = str(start + limit)
    return json.dumps(page).encode()


def old_find_tagged(provider: Any, wanted: dict[str, str]) -> list[str]:
    """The search before issue 17 (engine.distribution.find_tagged), kept here to measure it."""
    from keymgmt_cli.errors import ProviderError

    found = []
    for key_id in provider.list_keys():
        try:
            tags = provider.list_resource_tags(key_id)
        except ProviderError:
            continue
        if all(tags.get(k) == v for k, v in wanted.items()):
            found.append(key_id)
    return found


def add_foreign_keys(count: int, state_id: str) -> None:
    """Keys that are not ours, straight into moto's backend: untagged, another team's, and near
    misses (our state id with another provider, another state with our mount and provider)."""
    from moto.kms.models import kms_backends

    backend = kms_backends[ACCOUNT][REGION]
    shapes = [None, [{"TagKey": "team", "TagValue": "payments"}],
              [{"TagKey": "keymgmt:state_id", "TagValue": state_id},
               {"TagKey": "keymgmt:mount", "TagValue": "keymgmt/"},
               {"TagKey": "keymgmt:kms", "TagValue": "other"}],
              [{"TagKey": "keymgmt:state_id", "TagValue": "another-state"},
               {"TagKey": "keymgmt:mount", "TagValue": "keymgmt/"},
               {"TagKey": "keymgmt:kms", "TagValue": "aws1"}]]
    for i in range(count):
        backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", f"foreign {i}",
                           shapes[i % len(shapes)])


def serve(conn: Any, latency: float) -> None:
    """The AWS side, in a process of its own (as AWS is not in ours): the local KMS, the latency
    proxy in front of it, and commands from the benchmark over ``conn``."""
    import moto.kms.models

    # moto makes an RSA-2048 signing key for every key (~0.15 s); foreign keys never sign
    moto.kms.models.generate_private_key = functools.lru_cache(maxsize=None)(
        moto.kms.models.generate_private_key)
    from keymgmt_cli.localkms.server import start

    with start() as local:
        proxy = LatencyProxy(local.endpoint_url, latency)
        conn.send((local.endpoint_url, proxy.endpoint_url))
        while True:
            command, *rest = conn.recv()
            if command == "add":
                add_foreign_keys(*rest)
                conn.send(None)
            elif command == "refuse":
                proxy.refuse_tagging = rest[0]
                conn.send(None)
            elif command == "take":
                conn.send(proxy.take())
            elif command == "cpu":  # this process's CPU (proxy + emulator) and forwarded count
                with proxy.lock:
                    forwarded, proxy.forwarded = proxy.forwarded, 0
                conn.send((time.process_time(), forwarded))
            elif command == "forget":
                proxy.answers.clear()
                conn.send(None)
            else:
                proxy.server.shutdown()
                conn.send(None)
                return


class ThreadCpuProfile:
    """cProfile of every thread of this process with a per-thread CPU clock (``time.thread_time``):
    waiting on the network costs nothing and threads running side by side are not counted twice.
    Profiling roughly doubles the CPU it measures: read it for shares, not absolute figures."""

    def __init__(self) -> None:
        import cProfile

        self._new = lambda: cProfile.Profile(time.thread_time)
        self.profiles: list[Any] = []
        self.lock = threading.Lock()

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        prof = self._new()
        with self.lock:
            self.profiles.append(prof)
        prof.enable()  # replaces this hook in this thread

    def __enter__(self) -> "ThreadCpuProfile":
        threading.setprofile(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]

    def report(self, out: str, requests: int) -> None:
        import pstats

        with self.lock:
            profiles = list(self.profiles)
        for prof in profiles:
            prof.disable()
            prof.create_stats()
        stats = pstats.Stats(profiles[0])
        for prof in profiles[1:]:
            stats.add(prof)
        stats.dump_stats(out)
        total = sum(tt for (_, _, tt, _, _) in stats.stats.values())  # type: ignore[attr-defined]
        print(f"  profile ({len(profiles)} threads, profiled CPU {total:.2f} s, "
              f"{total / max(1, requests) * 1e6:.0f} us per request; written to {out})")
        inclusive = {}
        for (path, _, name), (_, _, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
            for label, suffix, func in PROFILE_STEPS:
                if path.endswith(suffix) and name == func:
                    inclusive[label] = inclusive.get(label, 0.0) + ct
        for label, _, _ in PROFILE_STEPS:
            ct = inclusive.get(label, 0.0)
            print(f"    {label:<52} {ct:7.2f} s {ct / total * 100:5.1f} %  "
                  f"{ct / max(1, requests) * 1e6:6.0f} us/request")
        by_package: Counter = Counter()
        for (path, _, _), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            by_package[_package(path)] += tt
        print("    self CPU by package: " + ", ".join(
            f"{name} {tt / total * 100:.0f} %" for name, tt in by_package.most_common(8)))


# Inclusive CPU of botocore's steps of one request (they nest: the first holds the others).
PROFILE_STEPS = [
    ("botocore _make_api_call (whole request)", "botocore/client.py", "_make_api_call"),
    ("  parameter validation", "botocore/validate.py", "validate"),
    ("  serialize", "botocore/serialize.py", "serialize_to_request"),
    ("  endpoint resolution", "botocore/client.py", "_resolve_endpoint_ruleset"),
    ("  SigV4 signing (add_auth)", "botocore/auth.py", "add_auth"),
    ("  urllib3 urlopen (send + receive + headers)", "urllib3/connectionpool.py", "urlopen"),
    ("  http.client parse_headers", "http/client.py", "parse_headers"),
    ("  parse response", "botocore/parsers.py", "parse"),
    ("  retry handler (needs-retry)", "botocore/retries/standard.py", "needs_retry"),
    ("  event emission (all emits)", "botocore/hooks.py", "emit"),
    ("keymgmt _call (ours around botocore)", "providers/awskms_region.py", "_call"),
    ("  pacing (_pace)", "providers/awskms_region.py", "_pace"),
    ("thread pool + GIL handoff (futures worker)", "concurrent/futures/thread.py", "_worker"),
]


def _package(path: str) -> str:
    for marker in ("site-packages/", "keymgmt_cli/"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return "keymgmt_cli" if marker == "keymgmt_cli/" else tail.split("/", 1)[0]
    return "stdlib/builtins"


def client_cost(endpoint: str, key_id: str, calls: int = 300, rounds: int = 5) -> None:
    """CPU of one ListResourceTags in this thread (``time.thread_time``), sequential, the emulator
    in its own process: how much of the fallback's per-request cost each layer adds, and the floor
    of a signed request in CPython without botocore's client (SigV4Auth + urllib3: not a design
    proposal, a bound). Medians of ``rounds`` interleaved rounds of ``calls`` calls."""
    import statistics

    import boto3
    import urllib3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config

    from keymgmt_cli.providers.awskms import connect
    from keymgmt_cli.providers.base import ProviderConfig

    session = boto3.session.Session()
    base = dict(region_name=REGION, retries={"mode": "standard", "max_attempts": 8},
                max_pool_connections=64)
    plain = session.client("kms", endpoint_url=endpoint, config=Config(**base))
    unvalidated = session.client("kms", endpoint_url=endpoint,
                                 config=Config(parameter_validation=False, **base))
    provider = connect(ProviderConfig(region=REGION, endpoint=endpoint), pacing=False)
    signer = SigV4Auth(session.get_credentials().get_frozen_credentials(), "kms", REGION)
    pool = urllib3.PoolManager(maxsize=4)

    def lean() -> Any:
        body = json.dumps({"KeyId": key_id, "Limit": 50})
        request = AWSRequest("POST", endpoint + "/", data=body,
                             headers={"X-Amz-Target": "TrentService.ListResourceTags",
                                      "Content-Type": "application/x-amz-json-1.1"})
        signer.add_auth(request)
        return json.loads(pool.request("POST", endpoint + "/", body=body,
                                       headers=dict(request.headers.items())).data)

    ways = {"keymgmt provider.list_resource_tags (ours + botocore)":
            lambda: provider.list_resource_tags(key_id),
            "botocore client, keymgmt's Config": lambda: plain.list_resource_tags(KeyId=key_id, Limit=50),
            "botocore client, parameter_validation=False":
            lambda: unvalidated.list_resource_tags(KeyId=key_id, Limit=50),
            "no botocore client: SigV4Auth + urllib3 (floor)": lean}
    batches: dict[str, Any] = {}  # ways that send ``calls`` requests in one call
    reader = provider.bulk_reader() if hasattr(provider, "bulk_reader") else None
    if reader is not None and not isinstance(reader, str):
        body = json.dumps({"KeyId": key_id, "Limit": 50}).encode()
        batches["keymgmt aws.bulkread, one connection, sequential"] = (
            lambda: reader.run("ListResourceTags", [body] * calls, pace=lambda: None, workers=1))
    for call in ways.values():
        call()
    figures: dict[str, list[float]] = {name: [] for name in [*ways, *batches]}
    for _ in range(rounds):
        for name, call in ways.items():
            started = time.thread_time()
            for _ in range(calls):
                call()
            figures[name].append((time.thread_time() - started) / calls * 1e6)
        for name, batch in batches.items():
            started = time.thread_time()
            batch()
            figures[name].append((time.thread_time() - started) / calls * 1e6)
    print(f"client CPU of one ListResourceTags, sequential ({rounds} x {calls} calls, medians):")
    for name, values in figures.items():
        print(f"  {name:<55} {statistics.median(values):6.0f} us  "
              f"[{', '.join(f'{v:.0f}' for v in values)}]")


def main() -> int:
    import multiprocessing
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--before-max", type=int, default=1000)
    parser.add_argument("--runs", default="before,tagging,listing,botocore,recovery",
                        help="which searches to time, comma-separated")
    parser.add_argument("--workers", default="",
                        help="comma-separated thread counts: the listing and recovery runs at each")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed runs of each search, interleaved; medians printed")
    parser.add_argument("--profile", default="",
                        help="write a per-thread CPU profile of the largest size's listing here")
    parser.add_argument("--client-cost", action="store_true",
                        help="only measure the CPU of one ListResourceTags per layer (sequential)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted_runs = [r for r in args.runs.split(",") if r]

    pacing_setting = os.environ.get("KEYMGMT_AWS_PACING", "on")
    for name in [n for n in os.environ if n.startswith(("AWS_", "KEYMGMT_"))]:
        del os.environ[name]
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                      AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull, KEYMGMT_AWS_PACING=pacing_setting,
                      NO_PROXY="127.0.0.1,localhost")

    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    server = ctx.Process(target=serve, args=(theirs, args.latency), daemon=True)
    server.start()

    def ask(*command: Any) -> Any:
        ours.send(command)
        return ours.recv()

    local_endpoint, proxy_endpoint = ours.recv()

    from keymgmt_cli.audit.calls import CallLog, RecordingProvider
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.engine.reconcile import find_tagged as recovery_search
    from keymgmt_cli.engine.routing import Request
    from keymgmt_cli.engine.verify import verify
    from keymgmt_cli.providers import tagsearch
    from keymgmt_cli.providers.awskms import AwsKmsProvider, connect
    from keymgmt_cli.providers.base import ProviderConfig
    from keymgmt_cli.store import SecretBox
    from keymgmt_cli.store.masterkey import MasterKey
    from keymgmt_cli.store.memory import MemoryStore

    bad = 0
    master = os.urandom(32)
    engine = Engine(MemoryStore(), SecretBox(lambda: MasterKey(key=master, source="bench")),
                    lambda cfg: connect(ProviderConfig(region=cfg.region, endpoint=proxy_endpoint)))
    for path, data in [("keymgmt/kms/aws1", {"provider": "awskms", "key_collection": REGION}),
                       ("keymgmt/key/k", {"type": "aes256-gcm96"}),
                       ("keymgmt/kms/aws1/key/k", {"purpose": "encrypt,decrypt"})]:
        engine.handle(Request("write", path, data))
    state_id = engine.state_id()
    setup = connect(ProviderConfig(region=REGION, endpoint=local_endpoint), pacing=False)
    strays = sorted(setup.create_key(
        key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="stray",
        tags={"keymgmt:state_id": state_id, "keymgmt:mount": "keymgmt/", "keymgmt:kms": "aws1",
              "keymgmt:op": f"lost-{i}"}) for i in range(3))
    lost = setup.find_tagged({"keymgmt:state_id": state_id, "keymgmt:op": "lost-1"})
    if args.client_cost:
        client_cost(local_endpoint, strays[0])
        ask("stop")
        return 0
    new_find = AwsKmsProvider.find_tagged
    new_bulk = getattr(AwsKmsProvider, "bulk_reader", None)  # None: a checkout without aws.bulkread
    try:
        from keymgmt_cli.aws import bulkread as workers_of  # requests in flight of the lean path
    except ImportError:
        workers_of = tagsearch  # before: the botocore threads
    knob = "WORKERS" if hasattr(workers_of, "WORKERS") else "LISTING_WORKERS"
    default_workers = getattr(workers_of, knob)
    worker_counts = [int(w) for w in args.workers.split(",") if w] or [default_workers]
    recorded = [0]  # calls the audit recorder logged in the last recovery search
    journaled = [0]  # entries its journal held (each one fsynced)
    notes: dict[str, str] = {}
    import tempfile
    import uuid

    from keymgmt_cli.audit.journal import FileJournal
    from keymgmt_cli.audit.keys import AuditKeys

    journal_dir = tempfile.mkdtemp(prefix="verify-scale-journal-")
    audit_keys = AuditKeys(os.urandom(32))

    def search(run: str) -> tuple[list[str], list[str]]:
        """One timed search: (what it found, what it should have found)."""
        ask("refuse", run in ("listing", "botocore", "recovery"))
        if new_bulk is not None:  # "botocore": the lean path refused, as behind a proxy
            AwsKmsProvider.bulk_reader = (  # type: ignore[method-assign]
                (lambda self: "forced by the bench") if run == "botocore" else new_bulk)
        if run == "recovery":  # a lost CreateKey answer: the key of operation lost-1
            # as a re-run command searches: through the audit trail's call recorder, with its
            # journal (one fsynced, MAC'd line per entry) in a directory of its own
            provider = connect(ProviderConfig(region=REGION, endpoint=proxy_endpoint))
            journal = FileJournal(journal_dir, audit_keys, str(uuid.uuid4()))
            log = CallLog(journal)
            try:
                return sorted(recovery_search(RecordingProvider(provider, log),
                                              {"keymgmt:state_id": state_id,
                                               "keymgmt:op": "lost-1"})), lost
            finally:
                recorded[0] = len(log.snapshot())
                journaled[0] = len(journal.read()[0])
                journal.discard()
                provider.close()
        AwsKmsProvider.find_tagged = (  # type: ignore[method-assign]
            old_find_tagged if run == "before" else new_find)
        # verify connects afresh (engine.provider_factory): the path is decided anew.
        result = verify(engine)
        notes[run] = "; ".join(n["note"] for n in result.get("tag_search", []))
        return sorted(d["key_id"] for d in result["drift"] if d["problem"].startswith("stray")), strays

    have = 0
    print(f"latency {args.latency * 1000:.0f} ms per call; pacing {pacing_setting}; "
          f"client CPU = this process (verify runs in it); server CPU = the proxy + emulator "
          f"process (answers replayed: the emulator answers only the untimed first run)")
    for size in sizes:
        ask("add", size - have, state_id)
        ask("forget")
        have = size
        runs = [r for r in wanted_runs if r != "before" or size <= args.before_max]
        plan = [(run, w) for run in runs
                for w in (worker_counts if run in ("listing", "recovery") else [default_workers])]
        for run in runs:  # untimed: fills the proxy's replay of the emulator's answers
            setattr(workers_of, knob, default_workers)
            search(run)
        ask("take")
        ask("cpu")
        figures: dict[tuple[str, int], list[tuple[float, float, float, int, int]]] = {}
        for round_ in range(args.repeat):
            for run, workers in plan:
                setattr(workers_of, knob, workers)
                profiler = None
                if (args.profile and run == "listing" and size == sizes[-1] and round_ == 0
                        and workers == worker_counts[-1]):
                    profiler = ThreadCpuProfile()
                server_cpu0, _ = ask("cpu")
                cpu0 = time.process_time()
                started = time.perf_counter()
                if profiler:
                    with profiler:
                        found, expected = search(run)
                else:
                    found, expected = search(run)
                wall = time.perf_counter() - started
                cpu = time.process_time() - cpu0
                server_cpu1, forwarded = ask("cpu")
                counts = ask("take")
                calls = sum(counts.values())
                if found != expected:
                    bad += 1
                    print(f"  {size} {run}: WRONG: found {found}, expected {expected}")
                figures.setdefault((run, workers), []).append(
                    (wall, cpu, server_cpu1 - server_cpu0, calls, forwarded))
                if profiler:
                    profiler.report(args.profile, counts.get("ListResourceTags", 0))
        load = os.getloadavg()
        print(f"  [load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after {size} keys]", flush=True)
        for (run, workers), runs_ in figures.items():
            wall = statistics.median(f[0] for f in runs_)
            cpu = statistics.median(f[1] for f in runs_)
            server_cpu = statistics.median(f[2] for f in runs_)
            calls = runs_[0][3]
            shown = f" {workers:>2} in flight" if run in ("listing", "recovery") else "             "
            if run == "recovery":
                shown += f" ({recorded[0]} audit entries, {journaled[0]} journal lines)"
            print(f"{size:>6} foreign keys  {run:<8}{shown} {calls:>6} calls  wall {wall:6.2f} s  "
                  f"client CPU {cpu:6.2f} s ({cpu / max(1, calls) * 1e3:.2f} ms/call)  "
                  f"server CPU {server_cpu:5.2f} s  forwarded {runs_[0][4]}"
                  f"{f'  [{len(runs_)} runs: ' + ', '.join(f'{f[0]:.2f}' for f in runs_) + ' s]' if len(runs_) > 1 else ''}",
                  flush=True)
    AwsKmsProvider.find_tagged = new_find  # type: ignore[method-assign]
    if new_bulk is not None:
        AwsKmsProvider.bulk_reader = new_bulk  # type: ignore[method-assign]
    setattr(workers_of, knob, default_workers)
    for run, note in notes.items():
        print(f"note ({run}): {note}")
    import shutil

    shutil.rmtree(journal_dir, ignore_errors=True)
    ask("stop")
    server.join(timeout=30)
    print(f"\n{'every run found exactly the keys it should' if not bad else f'{bad} run(s) WRONG'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
