#!/usr/bin/env python3
"""12 keys x 3 regions rotated by 6 parallel processes at AWS's quotas, pacing on, vs the 12 s floor.

Issue 15's figure (goal <= 1.25x, holds today; keep it): 12 aes256-gcm96 keys (RSA_2048 wrapping),
each distributed to the same 3 regions, are rotated by 6 parallel workers, each running
`keymgmt write -f keymgmt/key/kN/rotate` as a process for 2 keys one after the other. Every call
goes through bench/kms_proxy.py (40 ms per call, AWS KMS's quotas per signing region and
operation, ThrottlingException when exceeded) in front of the embedded local KMS. A rotation makes
one GetParametersForImport per region, whose quota is 1/s, so 12 rotations cannot finish in less
than 12 s: that is the floor the wall is compared with.

"pacing on" = KEYMGMT_AWS_PACING=on (client-side pacing is off by default for a loopback endpoint)
with a fresh KEYMGMT_PACING_DIR per run, which the 6 processes share as a user's parallel CI steps
would. With --unpaced, runs with pacing off (botocore's retries against the throttling) are
interleaved as a contrast. Before each run the emulator is left to go idle and 1.2 s pass so the
proxy's buckets are full. Printed: medians of the wall, its spread, client CPU of the 6 workers'
processes, throttled calls the proxy answered.

Usage: .venv/bin/python bench/rotate_parallel.py [--runs 5] [--unpaced] [--latency-ms 40] [--lean-emulator]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

GOAL = 1.25
KEYS = 12
WORKERS = 6
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
GPFI_QUOTA = 1.0  # GetParametersForImport per second per region (bench/kms_proxy.py QUOTAS)


def setup(env: dict[str, str], endpoint: str) -> None:
    for region in REGIONS:
        h.keymgmt(env, "write", f"keymgmt/kms/p-{region}", "provider=awskms", f"key_collection={region}",
                  "credentials=access_key=test", "credentials=secret_key=test", f"credentials=endpoint={endpoint}")
    for i in range(KEYS):
        h.keymgmt(env, "write", f"keymgmt/key/k{i}", "type=aes256-gcm96")
        for region in REGIONS:  # paced (env), so the 1/s GetParametersForImport quota is kept here too
            h.keymgmt(env, "write", f"keymgmt/kms/p-{region}/key/k{i}", "purpose=encrypt,decrypt",
                      "wrapping_key_spec=RSA_2048")


def one_run(env: dict[str, str], pacing: bool, tmp: str, n: int) -> tuple[float, float, list[float]]:
    """(wall, client CPU of all processes, per-rotation walls) of rotating all 12 keys with 6 workers."""
    run_env = dict(env, KEYMGMT_AWS_PACING="on" if pacing else "off",
                   KEYMGMT_PACING_DIR=os.path.join(tmp, f"pacing-{n}"))
    os.makedirs(run_env["KEYMGMT_PACING_DIR"], mode=0o700)
    todo = [f"k{i}" for i in range(KEYS)]
    lock = threading.Lock()
    cpu: list[float] = []
    walls: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                name = todo.pop(0)
            try:
                wall, c, _ = h.timed(h.KEYMGMT + ["write", "-f", f"keymgmt/key/{name}/rotate"], run_env)
            except RuntimeError as exc:
                with lock:
                    errors.append(str(exc).splitlines()[0])
                continue
            with lock:
                cpu.append(c)
                walls.append(wall)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} rotation(s) failed, first: {errors[0]}")
    return wall, sum(cpu), walls


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--unpaced", action="store_true", help="interleave runs with pacing off")
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--lean-emulator", action="store_true",
                        help="bench/_lean_localkms.py: 4 spare wrapping key pairs ready from the first request")
    args = parser.parse_args()
    floor = KEYS / GPFI_QUOTA
    with h.moto_kms(args.lean_emulator) as (upstream, pid), h.kms_proxy(upstream, args.latency_ms) as proxy, \
            tempfile.TemporaryDirectory() as tmp:
        env = h.keymgmt_env(os.path.join(tmp, "state"))
        setup(dict(env, KEYMGMT_AWS_PACING="on", KEYMGMT_PACING_DIR=os.path.join(tmp, "pacing-setup")), proxy)
        modes = ["paced", "unpaced"] if args.unpaced else ["paced"]
        res: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in modes}
        n = 0
        for i in range(args.runs):
            for mode in (modes if i % 2 == 0 else modes[::-1]):
                h.settle(pid)
                h.quota_gap()
                h.proxy_stats(proxy, reset=True)
                wall, cpu, walls = one_run(env, mode == "paced", tmp, n)
                n += 1
                stats = h.proxy_stats(proxy)
                r = res[mode]
                r["wall"].append(wall)
                r["cpu"].append(cpu)
                r["rotation"].extend(walls)
                r["throttled"].append(h.throttled(stats))
                r["gpfi"].append(sum(row["forwarded"] for k, row in stats.items() if k.endswith(" GetParametersForImport")))
    print(f"{KEYS} keys x {len(REGIONS)} regions rotated by {WORKERS} parallel processes (2 rotations each), "
          f"{args.runs} runs{' each, interleaved' if args.unpaced else ''}; local KMS{' (lean)' if args.lean_emulator else ''} behind the proxy "
          f"({args.latency_ms:g} ms per call, AWS quotas: GetParametersForImport {GPFI_QUOTA:g}/s per region)")
    print(f"machine: {h.machine_note()}\n")
    for mode in modes:
        r = res[mode]
        m = h.median(r["wall"])
        print(f"{mode:8s} wall {h.ms(m)} = {m / floor:.2f}x the {floor:.0f} s floor   ({h.noise(r['wall'])})")
        print(f"         client CPU of the {KEYS} processes {h.ms(h.median(r['cpu']))}; one rotation's wall: "
              f"median {h.ms(h.median(r['rotation'])).strip()}, max {h.ms(max(r['rotation'])).strip()}; "
              f"throttled calls per run: median {h.median(r['throttled']):g} (max {max(r['throttled']):g}); "
              f"GetParametersForImport forwarded per run: {h.median(r['gpfi']):g}")
    m = h.median(res["paced"]["wall"]) / floor
    print(f"\ngoal: paced <= {GOAL:.2f}x the floor -> {'MEETS' if m <= GOAL else 'MISSES'} ({m:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
