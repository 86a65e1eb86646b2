#!/usr/bin/env python3
"""Rotating a key that lives in 4 regions vs one that lives in 1 region, through the KMS proxy.

Issue 15's figure: the median wall of `keymgmt write -f keymgmt/key/K/rotate` (the real CLI, one
process per rotation) for K distributed to 4 providers (us-east-1, us-west-2, eu-west-1,
ap-southeast-2) over K distributed to 1 provider (us-east-1); goal <= 1.5x. Both keys are
aes256-gcm96 with `RSA_2048` wrapping keys; every call goes through bench/kms_proxy.py (40 ms per
call, AWS's quotas per region and operation) in front of the emulator (the embedded local KMS by
default, LocalStack with --emulator localstack), each a process of its own on 127.0.0.1.

Runs alternate the order after one warm-up each; before every run the emulator is left to go idle
(the local KMS refills its spare wrapping key pair in the background) and 1.2 s pass, so the
previous run's GetParametersForImport (1/s per region) cannot throttle the next run's. Printed:
medians, spread, client CPU (the keymgmt process only, os.wait4), emulator CPU, throttles seen.

Then, as diagnosis (not the headline): the same rotations driven in-process through the engine
with every provider call and state write timed per thread, and a timeline of one 4-region
rotation, which shows where the 4 chains run side by side and where they queue.

Usage: .venv/bin/python bench/rotate_providers.py [--runs 9] [--profile-runs 5] [--latency-ms 40]
       [--emulator moto|localstack]      (BENCH_KEYMGMT_PATH=/tmp/copy: measure a patched copy)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

sys.path.insert(0, h.SCRATCH or h.ROOT)

GOAL = 1.5
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
_METHOD_OP = {"create_key": "CreateKey", "get_parameters_for_import": "GetParametersForImport",
              "import_key_material": "ImportKeyMaterial", "update_alias": "UpdateAlias",
              "create_alias": "CreateAlias", "disable_key": "DisableKey", "enable_key": "EnableKey"}


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class TimedProvider:
    """Wraps a KmsProvider: every method call is logged as (operation, thread, start, end)."""

    def __init__(self, inner: Any, log: list[tuple[str, str, float, float]], lock: threading.Lock) -> None:
        self._inner, self._log, self._lock = inner, log, lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                result = attr(*args, **kwargs)
            finally:
                with self._lock:
                    self._log.append((_METHOD_OP.get(name, name), threading.current_thread().name, t0,
                                      time.perf_counter()))
            return TimedProvider(result, self._log, self._lock) if name == "in_region" else result

        return call


def setup(env: dict[str, str], endpoint: str, keys: dict[str, int]) -> None:
    for region in REGIONS:
        h.keymgmt(env, "write", f"keymgmt/kms/p-{region}", "provider=awskms", f"key_collection={region}",
                  "credentials=access_key=test", "credentials=secret_key=test", f"credentials=endpoint={endpoint}")
    for name, n in keys.items():
        h.keymgmt(env, "write", f"keymgmt/key/{name}", "type=aes256-gcm96")
        for region in REGIONS[:n]:
            h.quota_gap(0.0 if region != REGIONS[0] else 1.1)
            h.keymgmt(env, "write", f"keymgmt/kms/p-{region}/key/{name}", "purpose=encrypt,decrypt",
                      "wrapping_key_spec=RSA_2048")


def cli_runs(env: dict[str, str], pid: int, proxy: str, runs: int) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in ("one", "four")}
    cmds = {"one": ["write", "-f", "keymgmt/key/one/rotate"], "four": ["write", "-f", "keymgmt/key/four/rotate"]}
    for label in ("one", "four"):  # warm-up
        h.quota_gap()
        h.timed(h.KEYMGMT + cmds[label], env)
    for i in range(runs):
        for label in (("one", "four") if i % 2 == 0 else ("four", "one")):
            h.settle(pid)
            h.quota_gap()
            h.proxy_stats(proxy, reset=True)
            emu0 = h.emulator_cpu(pid)
            wall, cpu, _ = h.timed(h.KEYMGMT + cmds[label], env)
            out[label]["wall"].append(wall)
            out[label]["client_cpu"].append(cpu)
            out[label]["emulator_cpu"].append(h.emulator_cpu(pid) - emu0)
            stats = h.proxy_stats(proxy)
            out[label]["throttled"].append(h.throttled(stats))
            for op, t in h.upstream_ms(stats).items():
                out[label][f"upstream {op}"].append(t / 1000)
    return out


def profile_runs(env: dict[str, str], pid: int, runs: int) -> dict[str, Any]:
    """The same rotations in-process (keys p1 and p4), every provider call and state write timed."""
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.engine.routing import Request
    from keymgmt_cli.providers import awskms
    from keymgmt_cli.store import open_secret_box, open_store

    log: list[tuple[str, str, float, float]] = []
    lock = threading.Lock()

    def factory(config: Any) -> Any:
        t0 = time.perf_counter()
        provider = awskms.connect(config)
        with lock:
            log.append(("connect", threading.current_thread().name, t0, time.perf_counter()))
        return TimedProvider(provider, log, lock)

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        store = open_store(env)
        engine = Engine(store, open_secret_box(store.home, env), factory)
        original_put = store.put

        def timed_put(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original_put(*args, **kwargs)
            finally:
                with lock:
                    log.append(("state write", threading.current_thread().name, t0, time.perf_counter()))

        store.put = timed_put  # type: ignore[method-assign]
        out: dict[str, Any] = {k: defaultdict(list) for k in ("p1", "p4")}
        timelines: list[tuple[float, float, list[tuple[str, str, float, float]]]] = []
        for name in ("p1", "p4"):  # warm-up: botocore's models loaded once per process
            h.quota_gap()
            engine.handle(Request("write", f"keymgmt/key/{name}/rotate", {}))
        for i in range(runs):
            for name in (("p1", "p4") if i % 2 == 0 else ("p4", "p1")):
                h.settle(pid)
                h.quota_gap()
                del log[:]
                cpu0, t0 = self_cpu(), time.perf_counter()
                engine.handle(Request("write", f"keymgmt/key/{name}/rotate", {}))
                wall = time.perf_counter() - t0
                out[name]["wall"].append(wall)
                out[name]["client_cpu"].append(self_cpu() - cpu0)
                with lock:
                    calls = list(log)
                per_op: dict[str, list[float]] = defaultdict(list)
                for op, _, s, e in calls:
                    per_op[op].append(e - s)
                for op, ds in per_op.items():
                    out[name][f"{op} per call"].extend(ds)
                    out[name][f"{op} sum"].append(sum(ds))
                if name == "p4":
                    timelines.append((wall, t0, calls))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    timelines.sort(key=lambda t: t[0])
    out["timeline"] = timelines[len(timelines) // 2] if timelines else None
    return out


def print_timeline(timeline: tuple[float, float, list[tuple[str, str, float, float]]]) -> None:
    wall, t0, calls = timeline
    print(f"  timeline of the median in-process 4-region rotation ({wall * 1000:.0f} ms), ms from its start:")
    lanes: dict[str, list[str]] = defaultdict(list)
    for op, thread, s, e in sorted(calls, key=lambda c: c[2]):
        lanes[thread].append(f"{op} {1000 * (s - t0):.0f}-{1000 * (e - t0):.0f}")
    for thread, items in lanes.items():
        print(f"    {thread:24s} " + ", ".join(items))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--profile-runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--emulator", choices=("moto", "localstack"), default="moto")
    parser.add_argument("--lean-emulator", action="store_true",
                        help="bench/_lean_localkms.py: 4 spare wrapping key pairs ready from the first request")
    parser.add_argument("--emulator-per-region", action="store_true",
                        help="one local KMS process per region (real regions do not share a server)")
    args = parser.parse_args()
    try:
        with contextlib.ExitStack() as stack:
            emulator = h.localstack() if args.emulator == "localstack" else h.moto_kms(args.lean_emulator)
            upstream, pid = stack.enter_context(emulator)
            regional: dict[str, str] = {}
            if args.emulator_per_region:
                for region in REGIONS[1:]:
                    url, other = stack.enter_context(h.moto_kms(args.lean_emulator))
                    regional[region] = url
                    h.EXTRA_PIDS.append(other)
            proxy = stack.enter_context(h.kms_proxy(upstream, args.latency_ms, region_upstreams=regional))
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            env = h.keymgmt_env(os.path.join(tmp, "state"))
            setup(env, proxy, {"one": 1, "four": 4, "p1": 1, "p4": 4})
            cli = cli_runs(env, pid, proxy, args.runs)
            prof = profile_runs(env, pid, args.profile_runs) if args.profile_runs else None
            report(args, cli, prof)
            return 0
    except h.Skip as skip:
        print(f"SKIPPED: {skip}")
        return 0


def report(args: argparse.Namespace, c: dict[str, Any], p: dict[str, Any] | None) -> None:
    med = h.median
    one, four = med(c["one"]["wall"]), med(c["four"]["wall"])
    print(f"Rotation of one aes256-gcm96 key (RSA_2048 wrapping), 1 region vs 4 regions, "
          f"`keymgmt write -f keymgmt/key/K/rotate` as a process,\n{args.runs} interleaved runs each after 1 warm-up, "
          f"medians; {args.emulator}{' (lean)' if args.lean_emulator else ''}"
          f"{' (one process per region)' if args.emulator_per_region else ''} behind the "
          f"proxy ({args.latency_ms:g} ms per call, AWS quotas)"
          + (f"; keymgmt from {h.SCRATCH}" if h.SCRATCH else ""))
    print(f"machine: {h.machine_note()}\n")
    print(f"{'':12s} {'wall':>10s}  {'client CPU':>10s}  {'emulator CPU':>12s}  spread of wall")
    for label, what in (("one", "1 region"), ("four", "4 regions")):
        r = c[label]
        print(f"{what:12s} {h.ms(med(r['wall']))}  {h.ms(med(r['client_cpu']))}  {h.ms(med(r['emulator_cpu'])):>12s}"
              f"  {h.noise(r['wall'])}")
    ratio = four / one
    per_round = sorted(f / o for f, o in zip(c["four"]["wall"], c["one"]["wall"]))
    print(f"\nratio 4/1 of medians: {ratio:.2f}x  (per-round: min {per_round[0]:.2f}, median {med(per_round):.2f}, "
          f"max {per_round[-1]:.2f});  goal <= {GOAL:.1f}x -> {'MEETS' if ratio <= GOAL else 'MISSES'}")
    print("emulator service time per rotation, summed over calls (as the proxy saw it), medians:")
    for op in ("CreateKey", "GetParametersForImport", "ImportKeyMaterial", "UpdateAlias"):
        k = f"upstream {op}"
        if k in c["one"] and k in c["four"]:
            print(f"  {op:24s} 1 region {h.ms(med(c['one'][k]))}   4 regions {h.ms(med(c['four'][k]))}")
    thr = sum(c["one"]["throttled"]) + sum(c["four"]["throttled"])
    print(f"throttled calls during the timed runs: {thr:g}")
    extra_cpu = med(c["four"]["client_cpu"]) - med(c["one"]["client_cpu"])
    print(f"fan-out ideal (1 region's wall + the extra client CPU of 3 chains): {h.ms(one + extra_cpu).strip()} "
          f"-> {(one + extra_cpu) / one:.2f}x")
    if p is None:
        return
    print(f"\nIn-process engine (no interpreter start-up), {args.profile_runs} interleaved rotations each, medians:")
    print(f"  {'':28s} {'1 region':>10s}  {'4 regions':>10s}")
    for key in ("wall", "client_cpu"):
        print(f"  {key:28s} {h.ms(med(p['p1'][key]))}  {h.ms(med(p['p4'][key]))}")
    for op in ("connect", "CreateKey", "GetParametersForImport", "ImportKeyMaterial", "UpdateAlias", "state write"):
        k = f"{op} per call"
        if k in p["p1"] and k in p["p4"]:
            print(f"  {op + ' per call':28s} {h.ms(med(p['p1'][k]))}  {h.ms(med(p['p4'][k]))}   "
                  f"(sum per rotation {h.ms(med(p['p1'][f'{op} sum'])).strip()} vs "
                  f"{h.ms(med(p['p4'][f'{op} sum'])).strip()})")
    if p.get("timeline"):
        print_timeline(p["timeline"])


if __name__ == "__main__":
    sys.exit(main())
