#!/usr/bin/env python3
"""Where keymgmt's client time goes (issue 15's diagnosis): import profile, CPU profiles.

    .venv/bin/python bench/profile_client.py importtime [--runs 7]   # read/list fast path vs python -c pass
    .venv/bin/python bench/profile_client.py importtime --installed  # the same, as users run it (see below)
    .venv/bin/python bench/profile_client.py distribute             # CPU of one create + distribute
    .venv/bin/python bench/profile_client.py rotate                 # CPU of a 4-region rotation, per thread
    .venv/bin/python bench/profile_client.py all

importtime: `python -X importtime` of `keymgmt read keymgmt/key/key-00500` and `keymgmt list
keymgmt/key` (1,000 keys), minus every module `python -X importtime -c pass` imports too; medians
of the self time per module over --runs runs, grouped by top-level package, and the biggest single
modules. --installed: the `keymgmt` command (bin/keymgmt) of a plain `pip install` (.bench/installed, as
read_list.py --installed builds it; with BENCH_KEYMGMT_PATH also .bench/installed-scratch of that
copy, side by side), with KEYMGMT_MASTER_KEY set (reads check MACs) and without; no CPU profile. The CPU profile of the same two commands (below) says how much is imports and how much
the command's own work.

distribute / rotate: the real CLI under bench/_cpuprofile.py (cProfile with a per-thread CPU
clock, every thread), through bench/kms_proxy.py (40 ms, quotas) in front of the local KMS, with
RSA_2048 wrapping. Printed: CPU by package (self time, adds up to the total) and inclusive CPU of
the steps the issue names (botocore client construction, model loading, signing, wrapping, state
writes, imports; these overlap). BENCH_KEYMGMT_PATH=/tmp/copy profiles a patched copy instead.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")

# Inclusive steps: (label, file suffix, function name). Overlapping by nature.
STEPS = [
    ("imports (all modules, while running)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("boto3 Session()", "boto3/session.py", "__init__"),
    ("botocore create_client (client construction)", "botocore/session.py", "create_client"),
    ("  model loading: load_service_model", "botocore/loaders.py", "load_service_model"),
    ("  model loading: load_data (endpoints, partitions, ...)", "botocore/loaders.py", "load_data"),
    ("  json decoding (all)", "json/decoder.py", "decode"),
    ("  gzip/zlib decompression of the models", "gzip.py", "read"),
    ("endpoint ruleset resolution", "botocore/regions.py", "construct_endpoint"),
    ("request: _make_api_call (whole calls, incl. below)", "botocore/client.py", "_make_api_call"),
    ("  serialize", "botocore/serialize.py", "serialize_to_request"),
    ("  SigV4 signing (add_auth)", "botocore/auth.py", "add_auth"),
    ("  HTTP send/receive (urllib3 urlopen)", "urllib3/connectionpool.py", "urlopen"),
    ("  parse response", "botocore/parsers.py", "parse"),
    ("key material generation", "keymgmt_cli/keymaterial.py", "generate_material"),
    ("wrapping (RSA-OAEP of the material)", "keymgmt_cli/transfer.py", "wrap_key_material"),
    ("state writes (store put)", "keymgmt_cli/store/filestore.py", "put"),
    ("state reads (store get)", "keymgmt_cli/store/filestore.py", "get"),
    ("fsync", "~", "<built-in method posix.fsync>"),
    ("click command parsing/dispatch", "click/core.py", "main"),
]


def package_of(filename: str) -> str:
    if filename.startswith("<frozen importlib"):
        return "import machinery"
    m = re.search(r"site-packages/([^/]+)", filename)
    if m:
        return m.group(1).removesuffix(".py")
    m = re.search(r"/(keymgmt_cli)/([^/]+)", filename)
    if m:
        return f"keymgmt_cli.{m.group(2).removesuffix('.py')}"
    if filename == "~":
        return "builtins (C functions)"
    if filename.startswith("<frozen"):
        return "stdlib (frozen)"
    m = re.search(r"/lib/python3\.\d+/([^/]+)", filename)
    if m:
        return f"stdlib {m.group(1).removesuffix('.py')}"
    return filename


def summarize(path: str, title: str, top: int = 18) -> None:
    st = pstats.Stats(path)
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    by_pkg: dict[str, float] = defaultdict(float)
    for (fn, _, name), (_, _, tt, _, _) in st.stats.items():  # type: ignore[attr-defined]
        # builtins belong to whoever called them; attribute C calls by their callers' package
        by_pkg[package_of(fn)] += tt
    print(f"\n== {title}: {total * 1000:.0f} ms of client CPU (all threads) ==")
    print("  self CPU by package (adds up to the total):")
    for pkg, t in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {pkg:44s} {t * 1000:7.1f} ms  {100 * t / total:4.0f}%")
    print("  inclusive CPU of the steps (overlapping):")
    for label, suffix, func in STEPS:
        ct = 0.0
        calls = 0
        for (fn, _, name), (_, nc, _, c, _) in st.stats.items():  # type: ignore[attr-defined]
            if name == func and fn.endswith(suffix):
                ct += c
                calls += nc
        if calls:
            print(f"    {label:54s} {ct * 1000:7.1f} ms  ({calls} calls)")


def profile_cli(env: dict[str, str], args: list[str], out: str) -> float:
    wall, cpu, _ = h.timed([sys.executable, os.path.join(HERE, "_cpuprofile.py"), out, *args], env)
    return wall


# -- importtime ----------------------------------------------------------------------------------
def importtime(env: dict[str, str], argv: list[str], python: str = sys.executable) -> dict[str, tuple[int, int, int]]:
    """{module: (self us, cumulative us, depth)} of one run."""
    proc = subprocess.run([python, "-X", "importtime", *argv], env=env, capture_output=True, text=True,
                          cwd=h.NEUTRAL_CWD, timeout=120)
    out = {}
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if m:
            out[m.group(4)] = (int(m.group(1)), int(m.group(2)), len(m.group(3)))
    return out


def import_summary(env: dict[str, str], argv: list[str], runs: int, base: set[str], label: str,
                   python: str = sys.executable) -> None:
    """Print the median import self time beyond ``base``, by top-level package and biggest modules."""
    rs = [importtime(env, argv, python) for _ in range(runs)]
    extra = sorted(set().union(*rs) - base)
    med_self = {m: statistics.median(r.get(m, (0, 0, 0))[0] for r in rs) for m in extra}
    total = sum(med_self.values())
    by_top: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for m, t in med_self.items():
        by_top[m.split(".")[0]] += t
        count[m.split(".")[0]] += 1
    print(f"\n{label}: {len(extra)} modules beyond python -c pass, {total / 1000:.1f} ms import self time "
          f"(python -X importtime, median of {runs})")
    print("  by top-level package:  " + ", ".join(
        f"{p} {t / 1000:.1f} ms ({count[p]})" for p, t in sorted(by_top.items(), key=lambda kv: -kv[1])[:16]))
    print("  biggest modules (self, ms):  " + ", ".join(
        f"{m} {t / 1000:.1f}" for m, t in sorted(med_self.items(), key=lambda kv: -kv[1])[:14]))
    others = [m for m in extra if not m.startswith("keymgmt_cli")]
    print(f"  beyond keymgmt_cli ({len(others)}):  " + (" ".join(others) or "none"))
    banned = [m for m in extra if m.split(".")[0] in ("boto3", "botocore", "keyring", "cryptography", "rich")]
    print(f"  boto3/botocore/keyring/cryptography/rich imported: {', '.join(banned[:6]) or 'none'}")


def baseline_modules(env: dict[str, str], runs: int) -> set[str]:
    return set().union(*(importtime(env, ["-c", "pass"]) for _ in range(runs)))


def unprofiled(env: dict[str, str], make_args, runs: int = 3) -> str:  # type: ignore[no-untyped-def]
    walls, cpus = [], []
    for i in range(runs):
        h.quota_gap()
        wall, cpu, _ = h.timed(h.KEYMGMT + make_args(i), env)
        walls.append(wall)
        cpus.append(cpu)
    return f"without the profiler: wall {h.median(walls) * 1000:.0f} ms, client CPU {h.median(cpus) * 1000:.0f} ms (median of {runs})"


def cmd_importtime(runs: int) -> None:
    sys.path.insert(0, h.SCRATCH or h.ROOT)
    from read_list import populate

    with tempfile.TemporaryDirectory() as tmp:
        env = h.keymgmt_env(os.path.join(tmp, "state"))
        env.pop("KEYMGMT_FORMAT")
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            populate(env, 1000)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        base_runs = [importtime(env, ["-c", "pass"]) for _ in range(runs)]
        base = set().union(*base_runs)
        base_self = statistics.median(sum(v[0] for v in r.values()) for r in base_runs)
        print(f"\n== python -X importtime, {runs} runs each, medians; machine: {h.machine_note()} ==")
        print(f"python -c pass imports {len(base)} modules, {base_self / 1000:.1f} ms of import self time")
        for label, argv in (("read keymgmt/key/key-00500", ["-m", "keymgmt_cli", "read", "keymgmt/key/key-00500"]),
                            ("list keymgmt/key", ["-m", "keymgmt_cli", "list", "keymgmt/key"])):
            import_summary(env, argv, runs, base, label)
            out = os.path.join(tmp, "fast.pstats")
            profile_cli(env, argv[2:], out)
            summarize(out, f"CPU profile of {label}", top=10)


def cmd_importtime_installed(runs: int) -> None:
    """-X importtime of the installed `keymgmt` command of plain installs, with and without the master key."""
    from read_list import installed_venv, populate

    installs = [("installed", h.ROOT)] + ([("installed-scratch", h.SCRATCH)] if h.SCRATCH else [])
    pythons = {name: installed_venv(name, source) for name, source in installs}
    with tempfile.TemporaryDirectory() as tmp:
        env = h.keymgmt_env(os.path.join(tmp, "state"))
        env.pop("KEYMGMT_FORMAT")
        env.pop("PYTHONPATH")  # the installed package, not a checkout
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            populate(env, 1000)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        no_key = {k: v for k, v in env.items() if k != "KEYMGMT_MASTER_KEY"}
        print(f"\n== python -X importtime of the installed keymgmt command, {runs} runs each, medians; "
              f"machine: {h.machine_note()} ==")
        for name, py in pythons.items():
            script = os.path.join(os.path.dirname(py), "keymgmt")
            base_runs = [importtime(env, ["-c", "pass"], py) for _ in range(runs)]
            base = set().union(*base_runs)
            print(f"\n{name}: python -c pass imports {len(base)} modules")
            for verb, path in (("read", "keymgmt/key/key-00500"), ("list", "keymgmt/key")):
                for keyed, environ in (("KEYMGMT_MASTER_KEY set", env), ("no master key at hand", no_key)):
                    import_summary(environ, [script, verb, path], runs, base, f"{name}: {verb} {path}, {keyed}", py)


# -- distribute / rotate ---------------------------------------------------------------------------
def cmd_distribute(env: dict[str, str], proxy: str, tmp: str) -> None:
    h.keymgmt(env, "write", "keymgmt/kms/ls", "provider=awskms", "key_collection=us-east-1",
              "credentials=access_key=test", "credentials=secret_key=test", f"credentials=endpoint={proxy}")
    for i in range(3):  # the last one counts; the others warm the page cache
        h.quota_gap()
        c_out, d_out = os.path.join(tmp, f"create{i}.pstats"), os.path.join(tmp, f"dist{i}.pstats")
        profile_cli(env, ["write", f"keymgmt/key/d{i}", "type=aes256-gcm96"], c_out)
        profile_cli(env, ["write", f"keymgmt/kms/ls/key/d{i}", "purpose=encrypt,decrypt",
                          "wrapping_key_spec=RSA_2048"], d_out)
    summarize(c_out, "CPU profile of `write keymgmt/key/d2 type=aes256-gcm96`")
    print("  " + unprofiled(env, lambda i: ["write", f"keymgmt/key/u{i}", "type=aes256-gcm96"]))
    summarize(d_out, "CPU profile of `write keymgmt/kms/ls/key/d2 purpose=encrypt,decrypt wrapping_key_spec=RSA_2048`")
    print("  " + unprofiled(env, lambda i: ["write", f"keymgmt/kms/ls/key/u{i}", "purpose=encrypt,decrypt",
                                            "wrapping_key_spec=RSA_2048"]))
    print("  (cProfile inflates Python-level work such as imports several-fold; the import times below are not)")
    base = baseline_modules(env, 3)
    h.keymgmt(env, "write", "keymgmt/key/it", "type=aes256-gcm96")
    import_summary(env, ["-m", "keymgmt_cli", "write", "keymgmt/key/it2", "type=aes256-gcm96"], 1, base,
                   "imports of `write keymgmt/key/NAME type=aes256-gcm96`")
    h.quota_gap()
    import_summary(env, ["-m", "keymgmt_cli", "write", "keymgmt/kms/ls/key/it", "purpose=encrypt,decrypt",
                         "wrapping_key_spec=RSA_2048"], 1, base, "imports of the distribute command")


def cmd_rotate(env: dict[str, str], proxy: str, tmp: str) -> None:
    regions = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
    for region in regions:
        h.keymgmt(env, "write", f"keymgmt/kms/p-{region}", "provider=awskms", f"key_collection={region}",
                  "credentials=access_key=test", "credentials=secret_key=test", f"credentials=endpoint={proxy}")
    h.keymgmt(env, "write", "keymgmt/key/four", "type=aes256-gcm96")
    for region in regions:
        h.keymgmt(env, "write", f"keymgmt/kms/p-{region}/key/four", "purpose=encrypt,decrypt",
                  "wrapping_key_spec=RSA_2048")
    walls = []
    for i in range(3):
        h.quota_gap()
        out = os.path.join(tmp, f"rot{i}.pstats")
        walls.append(profile_cli(env, ["write", "-f", "keymgmt/key/four/rotate"], out))
    summarize(out, f"CPU profile of a 4-region rotation (wall under the profiler {walls[-1] * 1000:.0f} ms)")
    print("  " + unprofiled(env, lambda i: ["write", "-f", "keymgmt/key/four/rotate"]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("importtime", "distribute", "rotate", "all"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--installed", action="store_true", help="importtime: plain installs' keymgmt command")
    args = parser.parse_args()
    if h.SCRATCH:
        print(f"# keymgmt_cli from {h.SCRATCH}")
    if args.what == "importtime" and args.installed:
        cmd_importtime_installed(args.runs)
    elif args.what in ("importtime", "all"):
        cmd_importtime(args.runs)
    if args.what in ("distribute", "rotate", "all"):
        with h.moto_kms() as (upstream, _), h.kms_proxy(upstream, args.latency_ms) as proxy:
            for what in ("distribute", "rotate"):
                if args.what in (what, "all"):
                    with tempfile.TemporaryDirectory() as tmp:
                        env = h.keymgmt_env(os.path.join(tmp, "state"))
                        (cmd_distribute if what == "distribute" else cmd_rotate)(env, proxy, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
