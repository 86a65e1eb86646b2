"""Concurrency: 8 processes x 10 keys, concurrent updates and rotations of one key, and kill -9 of
processes in the middle of their writes; afterwards every listed document reads back.

Local only (no KMS): the state's atomic writes and per-entity locks are what is under test.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fault_harness import argv, cli_environ, km, ok
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.sealing import unseal_material
from keymgmt_cli.store import open_secret_box, open_store

pytestmark = pytest.mark.slow

WRITERS, KEYS_EACH = 8, 10
UPDATERS, UPDATES_EACH = 2, 6
KILLS = 24  # at least 20 must land on a live process


def _wait_for_state_file(proc: subprocess.Popen, home: Path, timeout: float = 30.0) -> bool:
    """Until the process has a file under the state directory open (True), or has exited (False)."""
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    prefix = str(home)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            for fd in fd_dir.iterdir():
                try:
                    if os.readlink(fd).startswith(prefix):
                        return True
                except OSError:
                    continue
        except OSError:
            return False
        time.sleep(0.0005)
    return False


def test_parallel_writers_updaters_and_kill9(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    environ = cli_environ(tmp_path / "state")
    ok(km(environ, "write", "keymgmt/key/shared", "type=aes256-gcm96"))
    failures: list[tuple[list[str], int, str]] = []
    rotations = {"done": 0, "killed": 0}
    lock = threading.Lock()

    def run(*args: str) -> int:
        result = km(environ, *args)
        if result.returncode != 0 or "Traceback" in result.stderr:
            with lock:
                failures.append((list(args), result.returncode, result.stderr))
        return result.returncode

    def writer(w: int) -> None:
        for i in range(KEYS_EACH):
            run("write", f"keymgmt/key/w{w}-{i}", f"type={('aes256-gcm96', 'ecdsa-p256')[i % 2]}")

    def updater(u: int) -> None:
        for i in range(UPDATES_EACH):
            run("write", "keymgmt/key/shared", f"deletion_allowed={'true' if (u + i) % 2 else 'false'}")
            if run("write", "-f", "keymgmt/key/shared/rotate") == 0:
                with lock:
                    rotations["done"] += 1

    victims: list[dict] = []
    home = Path(environ["KEYMGMT_HOME"])

    span = {"s": 0.12}  # the longest sleep between a victim's first state file and its kill

    def killer() -> None:
        for v in range(KILLS * 4):
            if sum(1 for x in victims if x["live"] and x["in_write"]) >= KILLS:
                return
            kind = rng.choice(("create", "create", "rotate", "update"))
            args = {"create": ["write", f"keymgmt/key/victim-{v}", "type=aes256-gcm96"],
                    "rotate": ["write", "-f", "keymgmt/key/shared/rotate"],
                    "update": ["write", "keymgmt/key/shared", f"deletion_allowed={rng.choice(('true', 'false'))}",
                               f"min_enabled_version={rng.choice((0, 1))}"]}[kind]
            proc = subprocess.Popen(argv(*args), env=environ, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            # Wait until it holds a file of the state open (its lock: the write has begun), then
            # kill it at a random moment of the write: reading, sealing, temp file, fsync, rename.
            in_write = _wait_for_state_file(proc, home)
            time.sleep(rng.uniform(0.0, span["s"]))
            live = proc.poll() is None
            # A write lasts some tens of milliseconds after its first state file opens, less on a
            # quiet machine: the window narrows when a victim finished before its kill and widens
            # when it was caught, so most kills land inside a write on a slow or a fast machine.
            span["s"] = min(0.12, span["s"] * 1.15) if live else max(0.004, span["s"] * 0.6)
            proc.kill()  # SIGKILL
            proc.wait()
            if kind == "rotate" and not live and proc.returncode == 0:
                with lock:
                    rotations["done"] += 1  # it finished before the kill
            victims.append({"kind": kind, "name": args[1], "live": live, "in_write": in_write})
            if kind == "rotate" and live:  # it may have committed before it died
                with lock:
                    rotations["killed"] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WRITERS + UPDATERS + 1) as pool:
        futures = [pool.submit(writer, w) for w in range(WRITERS)]
        futures += [pool.submit(updater, u) for u in range(UPDATERS)]
        futures.append(pool.submit(killer))
        for future in futures:
            future.result()
    elapsed = time.monotonic() - started

    killed = [v for v in victims if v["live"] and v["in_write"]]
    assert len(killed) >= 20, (len(killed), len(victims), victims)
    assert not failures, failures[:5]

    # every JSON document parses (temp files of killed writers are not documents: .tmp-*)
    documents = [p for p in home.rglob("*.json")]
    for path in documents:
        json.loads(path.read_bytes())
    litter = [p for p in home.rglob(".tmp-*")]

    listed = json.loads(ok(km(environ, "list", "-format=json", "keymgmt/key")).stdout)
    expected = {f"w{w}-{i}" for w in range(WRITERS) for i in range(KEYS_EACH)} | {"shared"}
    assert expected <= set(listed), sorted(expected - set(listed))
    assert set(listed) - expected <= {v["name"].split("/")[-1] for v in victims if v["kind"] == "create"}

    def read(name: str) -> dict:
        return json.loads(ok(km(environ, "read", "-format=json", f"keymgmt/key/{name}")).stdout)["data"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        docs = dict(zip(listed, pool.map(read, listed)))
    for name, data in docs.items():
        assert sorted(map(int, data["keys"])) == list(range(1, data["latest_version"] + 1)), (name, data)
    shared = docs["shared"]
    assert 1 + rotations["done"] <= shared["latest_version"] <= 1 + rotations["done"] + rotations["killed"]

    # and every version's sealed material still opens under the master key
    store = open_store(environ)
    engine = Engine(store, open_secret_box(store.home, environ))
    mount, _ = engine.resolve("keymgmt/key")
    for name in listed:
        doc = store.get(mount.doc("keys", name))
        for version in doc["versions"]:
            assert unseal_material(engine, mount, name, doc, int(version))
    ok(km(environ, "status"))

    committed = sum(1 for v in killed if v["kind"] == "create" and v["name"].split("/")[-1] in listed)
    with capsys.disabled():
        print(f"\n[concurrency] seed {seed}: {WRITERS}x{KEYS_EACH} keys + {UPDATERS}x{UPDATES_EACH} updates and "
              f"rotations of one key, {len(killed)} kill -9 of live writers ({committed} of "
              f"{sum(1 for v in killed if v['kind'] == 'create')} killed creations had committed), "
              f"{len(documents)} documents, {len(litter)} temp files left, {elapsed:.1f} s")
