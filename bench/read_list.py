#!/usr/bin/env python3
"""Start-up cost of `keymgmt read` and `keymgmt list`, side by side with `python -c pass`.

Issue 15's figure (goal <= 2.0x): with 1,000 keys in the state, the median wall time of
`read keymgmt/key/NAME` and `list keymgmt/key` over that of `python -c pass` of the same venv
interpreter that runs keymgmt (sys.executable; the script refuses a pyenv shim or any other
wrapper script, whose own start-up would flatter the ratio). Also: writing one key costs the same
at 10 and at 10,000 keys (--big 0 skips that part).

Runs are interleaved (pass, read, list, pass, ...) so machine noise hits all three alike; medians.
With --installed, the plain install also gets its floors (`python -c "import re, json"`: what the
read path imported before issue 15 (a)'s changes, an entry-point wrapper's re and the json module;
`+ hmac`: checking MACs with hmac loads OpenSSL) and the same read and list without
KEYMGMT_MASTER_KEY (no MAC to check), all in the same rounds. The command measured is the one pip
installed into the venv's bin/ (bin/keymgmt of the checkout, see pyproject's script-files), with the
venv's own pip (what `python -m venv` gives). --ladder REV... adds one plain install per git
revision of this checkout (git archive into .bench/ladder/), side by side: what each commit saved.
Usage: python bench/read_list.py [--runs 31] [--big 10000] [--installed] [--ladder REV ...]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import _harness as h  # noqa: E402

from keymgmt_cli.engine.core import Engine  # noqa: E402
from keymgmt_cli.engine.routing import Request  # noqa: E402
from keymgmt_cli.store import open_secret_box, open_store  # noqa: E402


def populate(environ: dict[str, str], count: int) -> Engine:
    store = open_store(environ)
    engine = Engine(store, open_secret_box(store.home, environ))
    existing = len(store.list("ns/default/keys")) if engine.initialized() else 0
    for i in range(existing, count):
        engine.handle(Request("write", f"keymgmt/key/key-{i:05d}", {"type": "aes256-gcm96"}))
    return engine


CPU: dict[tuple[str, ...], list[float]] = {}


def timed(cmd: list[str], environ: dict[str, str], key: tuple[str, ...] | None = None) -> float:
    """Wall seconds of one run; its CPU (user+sys, os.wait4) is appended to CPU[key or cmd]: on a
    shared, loaded machine the CPU is the steadier of the two and says what a quiet machine would see."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=h.NEUTRAL_CWD)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (wait status {status})")
    CPU.setdefault(key or tuple(cmd), []).append(ru.ru_utime + ru.ru_stime)
    return wall


def fresh_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in h.child_environ().items() if not k.startswith("KEYMGMT_")}
    env["KEYMGMT_HOME"] = home
    env["KEYMGMT_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    return env


def installed_venv(name: str, source: str) -> str:
    """The python of .bench/NAME: a venv with keymgmt installed as a user installs it (pip
    install, not editable: no setuptools editable finder, whose start-up imports re, enum,
    pathlib, urllib.parse and more into every `python -c pass` of the dev venv), no dependencies
    (read/list import none). Reinstalled from ``source`` on each run."""
    venv = os.path.join(h.BENCH_DIR, name)
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--force-reinstall", source], check=True, cwd=h.NEUTRAL_CWD,
                   stdout=subprocess.DEVNULL)
    return py


def export_revision(rev: str) -> tuple[str, str]:
    """(short commit, source tree) of this checkout's ``rev``, exported once with git archive."""
    commit = subprocess.run(["git", "-C", h.ROOT, "rev-parse", "--short", rev], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = os.path.join(h.BENCH_DIR, "ladder", commit)
    if not os.path.exists(os.path.join(dest, "pyproject.toml")):
        os.makedirs(dest, exist_ok=True)
        archive = subprocess.run(["git", "-C", h.ROOT, "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return commit, dest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--big", type=int, default=10000)
    parser.add_argument("--installed", action="store_true",
                        help="also measure a non-editable install in .bench/installed side by side")
    parser.add_argument("--ladder", nargs="+", default=[], metavar="REV",
                        help="also measure a plain install of each of these git revisions side by side")
    args = parser.parse_args()
    py = sys.executable
    with open(os.path.realpath(py), "rb") as f:
        if f.read(4) != b"\x7fELF":
            sys.exit(f"{py} is a wrapper script (a pyenv shim?), not an interpreter: run this with the venv's python")
    km = [py, "-m", "keymgmt_cli"]
    with tempfile.TemporaryDirectory() as tmp:
        env = fresh_env(os.path.join(tmp, "state-1000"))
        populate(env, 1000)
        samples: dict[str, list[float]] = {"python -c pass": [], "python -m keymgmt_cli read keymgmt/key/key-00500": [],
                                           "python -m keymgmt_cli list keymgmt/key": []}
        commands = [[py, "-c", "pass"], km + ["read", "keymgmt/key/key-00500"], km + ["list", "keymgmt/key"]]
        no_key = {k: v for k, v in env.items() if k != "KEYMGMT_MASTER_KEY"}
        envs = [env, env, env]
        script = os.path.join(os.path.dirname(py), "keymgmt")
        if os.path.exists(script):  # the installed command (bin/keymgmt), what users type
            samples["keymgmt read keymgmt/key/key-00500"] = []
            samples["keymgmt list keymgmt/key"] = []
            commands += [[script, "read", "keymgmt/key/key-00500"], [script, "list", "keymgmt/key"]]
            envs += [env, env]
        installs = [("installed", "installed", h.ROOT)] if args.installed else []
        if args.installed and h.SCRATCH:  # the patched copy, side by side with this checkout
            installs.append(("installed-scratch", "installed-scratch", h.SCRATCH))
        for rev in args.ladder:  # each revision in a venv of its own
            commit, source = export_revision(rev)
            installs.append((f"rev {commit}", f"ladder-{commit}", source))
        refs = {label: "python -c pass" for label in samples}  # each row's python -c pass
        pips = {}
        for name, venv_name, source in installs:
            ipy = installed_venv(venv_name, source)
            pips[name] = subprocess.run([ipy, "-m", "pip", "--version"], capture_output=True, text=True,
                                        cwd=h.NEUTRAL_CWD).stdout.split(" from ")[0]
            iscript = os.path.join(os.path.dirname(ipy), "keymgmt")
            # The floors (first installs only), what the read path imported before issue 15 (a): the
            # wrapper pip < 25 generates for an entry point imports re, json imports re too, and hmac
            # loads OpenSSL. The command no longer imports them; the floors show what they cost.
            floors = [] if name != "installed" else [
                (f"{name}: floor python -c 'import re, json'", [ipy, "-c", "import re, json"], env),
                (f"{name}: floor python -c 'import re, json, hmac'", [ipy, "-c", "import re, json, hmac"], env)]
            for label, cmd, environ in ((f"{name}: python -c pass", [ipy, "-c", "pass"], env), *floors,
                                        (f"{name}: keymgmt read keymgmt/key/key-00500", [iscript, "read", "keymgmt/key/key-00500"], env),
                                        (f"{name}: keymgmt list keymgmt/key", [iscript, "list", "keymgmt/key"], env),
                                        (f"{name}: the same read, no master key", [iscript, "read", "keymgmt/key/key-00500"], no_key),
                                        (f"{name}: the same list, no master key", [iscript, "list", "keymgmt/key"], no_key)):
                samples[label] = []
                refs[label] = f"{name}: python -c pass"
                commands.append(cmd)
                envs.append(environ)
        for _ in range(3):  # warm the page cache
            for cmd, environ in zip(commands, envs):
                timed(cmd, environ)
        CPU.clear()
        loads = []
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            for label, cmd, environ in zip(samples, commands, envs):
                samples[label].append(timed(cmd, environ, (label,)))
        base = statistics.median(samples["python -c pass"])
        print(f"read/list with 1,000 keys, {args.runs} interleaved runs each, medians "
              f"(interpreter {os.path.realpath(py)} via {py}):")
        print(f"machine: {h.machine_note()}; 1-minute load average during the runs: min {min(loads):.1f}, "
              f"median {statistics.median(loads):.1f}, max {max(loads):.1f}")
        cpu_of = {label: statistics.median(CPU[(label,)]) for label in samples}
        print(f"  {'':58s} {'wall':>8s}   {'ratio':>5s}   {'CPU':>7s}   {'ratio':>5s}   spread of wall")
        for label, values in samples.items():
            med = statistics.median(values)
            q = statistics.quantiles(values, n=4)
            ref = statistics.median(samples[refs[label]])
            cref = cpu_of[refs[label]]
            print(f"  {label:58s} {med * 1000:6.1f} ms   {med / ref:4.2f}x   {cpu_of[label] * 1000:5.1f} ms   "
                  f"{cpu_of[label] / cref:4.2f}x   (IQR {100 * (q[2] - q[0]) / med:.0f}% of median, "
                  f"min {min(values) * 1000:.1f} ms)")
        print("  (ratios are over the same interpreter's python -c pass; installed*, rev *: .bench venvs with a "
              "plain, non-editable install" + (f", by {', '.join(sorted(set(pips.values())))})" if pips else ")"))
        if not args.big:
            return

        print(f"\nwriting one key (aes256-gcm96) as a process, at 10 and at {args.big:,} keys, medians:")
        small = fresh_env(os.path.join(tmp, "state-10"))
        big = fresh_env(os.path.join(tmp, "state-big"))
        populate(small, 10)
        t0 = time.perf_counter()
        populate(big, args.big)
        print(f"  (populated {args.big:,} keys in {time.perf_counter() - t0:.1f} s)")
        results: dict[str, list[float]] = {"10": [], "big": []}
        for i in range(args.runs):
            results["10"].append(timed(km + ["write", f"keymgmt/key/new-{i}", "type=aes256-gcm96"], small))
            results["big"].append(timed(km + ["write", f"keymgmt/key/new-{i}", "type=aes256-gcm96"], big))
        m10, mbig = statistics.median(results["10"]), statistics.median(results["big"])
        print(f"  at 10 keys      {m10 * 1000:7.1f} ms")
        print(f"  at {args.big:,} keys  {mbig * 1000:7.1f} ms   ({mbig / m10:4.2f}x)")
        # The engine alone, in-process (no interpreter start-up), for a finer comparison.
        inproc: dict[str, list[float]] = {"10": [], "big": []}
        engines = {"10": populate(small, 0), "big": populate(big, 0)}
        for i in range(args.runs * 3):
            for label, engine in engines.items():
                t = time.perf_counter()
                engine.handle(Request("write", f"keymgmt/key/inproc-{i}", {"type": "aes256-gcm96"}))
                inproc[label].append(time.perf_counter() - t)
        i10, ibig = statistics.median(inproc["10"]), statistics.median(inproc["big"])
        print(f"  in-process engine write: {i10 * 1000:.2f} ms at 10, {ibig * 1000:.2f} ms at {args.big:,} "
              f"({ibig / i10:4.2f}x)")


if __name__ == "__main__":
    main()
