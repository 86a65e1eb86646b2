#!/usr/bin/env python3
"""A/B: this checkout's keymgmt_cli vs a patched copy (BENCH_KEYMGMT_PATH), side by side in one run.

    BENCH_KEYMGMT_PATH=/tmp/copy .venv/bin/python bench/ab.py distribute|rotate1|rotate4 [--runs 9] [--baseline /tmp/other]

For trying a candidate change before making it: both packages drive the same local KMS through
the same bench/kms_proxy.py (40 ms per call, AWS quotas, RSA_2048 wrapping), each with a state of
its own, runs interleaved A,B / B,A after one warm-up each, the emulator idle and 1.2 s between
runs. Printed: median wall and client CPU (os.wait4) of each side and B/A (for distribute also
of each of its two commands). Scenarios:
distribute = `write keymgmt/key/kN` + `write keymgmt/kms/p-us-east-1/key/kN` (two processes);
rotate1 / rotate4 = `write -f keymgmt/key/K/rotate` of a key in 1 / 4 regions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("distribute", "rotate1", "rotate4"))
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--baseline", metavar="PATH",
                        help="side A: the keymgmt_cli in PATH instead of this checkout's (two candidates)")
    args = parser.parse_args()
    if not h.SCRATCH:
        sys.exit("set BENCH_KEYMGMT_PATH to the directory holding the patched keymgmt_cli")
    sides = {f"A ({args.baseline or 'this checkout'})": args.baseline or h.ROOT, f"B ({h.SCRATCH})": h.SCRATCH}
    n_regions = 4 if args.scenario == "rotate4" else 1
    with h.moto_kms() as (upstream, pid), h.kms_proxy(upstream, args.latency_ms) as proxy, \
            tempfile.TemporaryDirectory() as tmp:
        envs = {}
        for i, (label, path) in enumerate(sides.items()):
            env = h.keymgmt_env(os.path.join(tmp, f"state-{i}"))
            env["PYTHONPATH"] = path
            for region in REGIONS[:n_regions]:
                h.keymgmt(env, "write", f"keymgmt/kms/p-{region}", "provider=awskms", f"key_collection={region}",
                          "credentials=access_key=test", "credentials=secret_key=test",
                          f"credentials=endpoint={proxy}")
            if args.scenario != "distribute":
                h.keymgmt(env, "write", "keymgmt/key/K", "type=aes256-gcm96")
                for region in REGIONS[:n_regions]:
                    h.quota_gap(1.1 if region == REGIONS[0] else 0.0)
                    h.keymgmt(env, "write", f"keymgmt/kms/p-{region}/key/K", "purpose=encrypt,decrypt",
                              "wrapping_key_spec=RSA_2048")
            envs[label] = env
        res: dict[str, dict[str, list[float]]] = {label: defaultdict(list) for label in sides}

        def one(label: str, i: int, keep: bool) -> None:
            env = envs[label]
            h.settle(pid)
            h.quota_gap()
            if args.scenario == "distribute":
                w1, c1, _ = h.timed(h.KEYMGMT + ["write", f"keymgmt/key/k{i}", "type=aes256-gcm96"], env)
                w2, c2, _ = h.timed(h.KEYMGMT + ["write", f"keymgmt/kms/p-us-east-1/key/k{i}",
                                                 "purpose=encrypt,decrypt", "wrapping_key_spec=RSA_2048"], env)
                wall, cpu = w1 + w2, c1 + c2
                if keep:
                    for step, w, c in (("write key", w1, c1), ("distribute", w2, c2)):
                        res[label][f"{step} wall"].append(w)
                        res[label][f"{step} cpu"].append(c)
            else:
                wall, cpu, _ = h.timed(h.KEYMGMT + ["write", "-f", "keymgmt/key/K/rotate"], env)
            if keep:
                res[label]["wall"].append(wall)
                res[label]["cpu"].append(cpu)

        labels = list(sides)
        for label in labels:
            one(label, 0, False)
        for i in range(1, args.runs + 1):
            for label in (labels if i % 2 else labels[::-1]):
                one(label, i, True)
    print(f"A/B {args.scenario}, {args.runs} interleaved runs each after 1 warm-up, medians; "
          f"local KMS behind the proxy ({args.latency_ms:g} ms per call, AWS quotas)")
    print(f"machine: {h.machine_note()}")
    a, b = labels
    for label in labels:
        r = res[label]
        print(f"  {label:40s} wall {h.ms(h.median(r['wall']))}   client CPU {h.ms(h.median(r['cpu']))}   "
              f"({h.noise(r['wall'])})")
        for step in ("write key", "distribute"):
            if r.get(f"{step} wall"):
                print(f"    {step:38s} wall {h.ms(h.median(r[f'{step} wall']))}   "
                      f"client CPU {h.ms(h.median(r[f'{step} cpu']))}")
    print(f"  B/A: wall {h.median(res[b]['wall']) / h.median(res[a]['wall']):.2f}x, "
          f"client CPU {h.median(res[b]['cpu']) / h.median(res[a]['cpu']):.2f}x "
          f"(CPU saved: {1000 * (h.median(res[a]['cpu']) - h.median(res[b]['cpu'])):.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
