"""Shared plumbing for the benchmarks in bench/: environments, emulators, the AWS CLI venv, timing.

Everything listens on 127.0.0.1 only. Tools that are not in the project venv go into a venv of
their own under <repo>/.bench/ (created on first use), never into .venv.
"""

from __future__ import annotations

import base64
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, ".bench")
AWSCLI_VENV = os.path.join(BENCH_DIR, "awscli")
LOCALSTACK_SCRIPT = os.path.join(ROOT, "scripts", "localstack")


def localstack_dir() -> str:
    return os.environ.get("LOCALSTACK_DIR") or os.path.join(ROOT, ".localstack")
LOOPBACK = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# A benchmark stopped with SIGTERM unwinds like Ctrl-C, so its context managers stop the emulator
# and the proxy they started (the proxy also exits by itself after --max-seconds).
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


class Skip(Exception):
    """A prerequisite is missing: the benchmark prints why and exits 0 without a figure."""


# BENCH_KEYMGMT_PATH=/tmp/scratch runs the keymgmt_cli package found there (a patched throwaway copy,
# for measuring a candidate change) instead of this checkout's; commands then run from a neutral cwd.
SCRATCH = os.environ.get("BENCH_KEYMGMT_PATH") or ""
NEUTRAL_CWD = "/"


def child_environ() -> dict[str, str]:
    """os.environ for a measured process, as a user's shell has it: without PYTHONDONTWRITEBYTECODE,
    which some sandboxes set and which makes every start-up compile keymgmt_cli from source (the
    aws CLI's venv has its .pyc files from pip), so both sides run from cached bytecode after the
    warm-up."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def keymgmt_env(home: str) -> dict[str, str]:
    """A throwaway state and master key; no AWS_* or KEYMGMT_* from the caller's shell."""
    env = {k: v for k, v in child_environ().items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(KEYMGMT_HOME=home, KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
               KEYMGMT_FORMAT="json", PYTHONPATH=SCRATCH or ROOT, **LOOPBACK)
    return env


KEYMGMT = [sys.executable, "-m", "keymgmt_cli"]


def keymgmt(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*KEYMGMT, *args], env=env, capture_output=True, cwd=NEUTRAL_CWD,
                          text=True, timeout=900)
    if check and proc.returncode != 0:
        raise RuntimeError(f"keymgmt {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_cpu() -> float:
    """CPU seconds (user+sys) of every child process waited for so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user+sys, all threads) of a live process and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


# Further emulator processes (one per region) whose CPU counts with the main emulator's pid in
# process_tree_cpu callers that go through emulator_cpu() / settle().
EXTRA_PIDS: list[int] = []


def emulator_cpu(pid: int) -> float:
    return process_tree_cpu(pid) + sum(process_tree_cpu(p) for p in EXTRA_PIDS)


def settle(pid: int, quiet: float = 0.02, interval: float = 0.25, timeout: float = 15.0) -> float:
    """Wait until the emulator is idle (under ``quiet`` CPU seconds per ``interval``), so that work
    it does after a command has returned (the moto double refills its spare RSA-4096 wrapping key
    in a background thread) is not charged to the next command. Returns the seconds waited."""
    t0 = time.monotonic()
    before = emulator_cpu(pid)
    while time.monotonic() - t0 < timeout:
        time.sleep(interval)
        now = emulator_cpu(pid)
        if now - before < quiet:
            break
        before = now
    return time.monotonic() - t0


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


def machine_note() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        model = "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs ({model}); "
            f"load average {load}; {platform.system()} {platform.release()}; Python {platform.python_version()}")


# -- LocalStack (through the colleague's scripts/localstack, which is not edited here) -------------
def localstack_version() -> str:
    py = os.path.join(localstack_dir(), "venv", "bin", "python")
    try:
        out = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('localstack-core'))"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


@contextmanager
def localstack(port: int | None = None) -> Iterator[tuple[str, int]]:
    """(endpoint, pid) of a LocalStack KMS started by scripts/localstack on 127.0.0.1:port."""
    inst = subprocess.run([LOCALSTACK_SCRIPT, "install"], capture_output=True, text=True, timeout=1800)
    if inst.returncode == 3:
        raise Skip("LocalStack needs Python 3.13 and none was found (scripts/localstack install exit 3):\n"
                   + inst.stderr.strip())
    if inst.returncode != 0:
        raise RuntimeError(f"scripts/localstack install failed (exit {inst.returncode}):\n{inst.stdout}{inst.stderr}")
    port = port or free_port()
    start = None
    try:
        start = subprocess.run([LOCALSTACK_SCRIPT, "start", str(port)], capture_output=True, text=True, timeout=300)
        if start.returncode != 0 or not start.stdout.strip():
            raise RuntimeError(f"scripts/localstack start {port} failed (exit {start.returncode}):\n"
                               f"{start.stdout}{start.stderr}")
        endpoint = start.stdout.strip().splitlines()[-1]
        with open(os.path.join(localstack_dir(), f"run-{port}", "localstack.pid")) as f:
            pid = int(f.read().strip())
        yield endpoint, pid
    finally:
        stop = subprocess.run([LOCALSTACK_SCRIPT, "stop", str(port)], capture_output=True, text=True, timeout=120)
        run_dir = os.path.join(localstack_dir(), f"run-{port}")
        if stop.returncode == 0 and start is not None and start.returncode == 0 and not os.environ.get("BENCH_KEEP_LOCALSTACK_LOG"):
            shutil.rmtree(run_dir, ignore_errors=True)  # this run's log and scratch dirs (free port: one per run)
        else:
            print(f"# LocalStack log kept in {run_dir}", file=sys.stderr)


# -- the embedded moto KMS, as its own process ------------------------------------------------------
@contextmanager
def moto_kms(lean: bool = False) -> Iterator[tuple[str, int]]:
    """(endpoint, pid) of `python -m keymgmt_cli.localkms.server` on a free 127.0.0.1 port
    (``lean``: bench/_lean_localkms.py, 4 spare wrapping key pairs kept ready from the start instead
    of as many as the largest burst seen so far; since round 3 the local KMS itself makes no RSA
    pair for a symmetric key)."""
    server = [os.path.join(ROOT, "bench", "_lean_localkms.py")] if lean else ["-m", "keymgmt_cli.localkms.server"]
    proc = subprocess.Popen([sys.executable, *server, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            env=child_environ())
    try:
        endpoint = (proc.stdout.readline() if proc.stdout else "").strip()
        if not endpoint.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the embedded KMS did not start (printed {endpoint!r})")
        yield endpoint, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the AWS CLI (v1, from PyPI) in .bench/awscli ------------------------------------------------------
def ensure_awscli() -> str:
    aws = os.path.join(AWSCLI_VENV, "bin", "aws")
    if os.access(aws, os.X_OK):
        return aws
    python = shutil.which("python3") or sys.executable
    print(f"# creating {AWSCLI_VENV} (AWS CLI v1 from PyPI) ...", file=sys.stderr, flush=True)
    subprocess.run([python, "-m", "venv", AWSCLI_VENV], check=True)
    subprocess.run([os.path.join(AWSCLI_VENV, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "awscli"], check=True)
    if not os.access(aws, os.X_OK):
        raise Skip(f"could not install the AWS CLI into {AWSCLI_VENV}")
    return aws


def timed(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one command that must succeed. The CPU is that
    process's own plus its waited-for descendants' (os.wait4), so nothing else this benchmark has
    started (the emulator, the proxy) is ever counted in it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd or NEUTRAL_CWD, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stdout}{stderr}")
    return wall, ru.ru_utime + ru.ru_stime, stdout


# -- the latency/quota proxy (bench/kms_proxy.py), as its own process ---------------------------------
@contextmanager
def kms_proxy(upstream: str, latency_ms: float = 40.0, quotas: bool = True,
              max_seconds: float = 3600.0, region_upstreams: dict[str, str] | None = None) -> Iterator[str]:
    """The endpoint of a bench/kms_proxy.py process in front of ``upstream`` (127.0.0.1 only)."""
    cmd = [sys.executable, os.path.join(ROOT, "bench", "kms_proxy.py"), "--upstream", upstream,
           "--latency-ms", str(latency_ms), "--max-seconds", str(max_seconds)]
    for region, url in (region_upstreams or {}).items():
        cmd += ["--region-upstream", f"{region}={url}"]
    if not quotas:
        cmd.append("--no-quotas")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_environ())
    try:
        endpoint = (proc.stdout.readline() if proc.stdout else "").strip()
        if not endpoint.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the KMS proxy did not start (printed {endpoint!r})")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proxy_stats(endpoint: str, reset: bool = False) -> dict[str, dict[str, Any]]:
    """The proxy's counters ({"REGION Operation": {"forwarded": n, "throttled": m}}), optionally zeroed."""
    import http.client
    import json

    host, port = endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/__proxy__/stats")
        stats = json.loads(conn.getresponse().read())
        if reset:
            conn.request("POST", "/__proxy__/reset", body=b"")
            conn.getresponse().read()
        return stats
    finally:
        conn.close()


def throttled(stats: dict[str, dict[str, Any]]) -> int:
    return sum(row["throttled"] for row in stats.values())


def upstream_ms(stats: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Emulator service time per operation (summed over regions), from the proxy's counters."""
    out: dict[str, float] = {}
    for key, row in stats.items():
        op = key.split(" ", 1)[1]
        out[op] = out.get(op, 0.0) + row["upstream_ms"]
    return out


def quota_gap(seconds: float = 1.2) -> None:
    """Sleep long enough that the previous run's GetParametersForImport (1/s per region) cannot
    throttle the next run's: a side-by-side comparison must not make one side pay for the other."""
    time.sleep(seconds)


def noise(values: list[float]) -> str:
    """How spread a sample is: min / median / max and the interquartile range relative to the median."""
    v = sorted(values)
    med = statistics.median(v)
    q = statistics.quantiles(v, n=4) if len(v) >= 4 else [v[0], med, v[-1]]
    return (f"min {v[0] * 1000:.0f} / med {med * 1000:.0f} / max {v[-1] * 1000:.0f} ms, "
            f"IQR {100 * (q[2] - q[0]) / med:.0f}% of median")
