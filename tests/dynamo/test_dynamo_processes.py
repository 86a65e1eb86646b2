"""Many runners on two simulated machines against DynamoDB + KMS on 127.0.0.1 (moto's server mode).

Each "machine" is its own KEYMGMT_HOME; they share only the table and the KMS seal, as CI runners
on different hosts would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynamo_support import REGION, aws_test_credentials, machine_env, moto_server

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

WORKER = str(Path(__file__).with_name("dynamo_worker.py"))
LEASE = "3"  # seconds: a dead runner's lease lapses quickly (the kill test)


aws = pytest.fixture(scope="module", name="aws")(moto_server)


@pytest.fixture
def team(aws, tmp_path, request, monkeypatch):
    """A fresh table sealed by a fresh KMS key; the environments of machine A and machine B."""
    aws_test_credentials(monkeypatch)  # for the checks this test process makes itself
    table = "team-" + request.node.name.replace("_", "-")[:40]
    kms = aws.client("kms")
    key_id = kms.create_key(Description="keymgmt seal")["KeyMetadata"]["KeyId"]
    storage = f"dynamodb://{table}?region={REGION}&endpoint={aws.endpoint}"
    seal = f"awskms://{key_id}?region={REGION}&endpoint={aws.endpoint}"
    machines = {}
    for name in ("a", "b"):
        home = tmp_path / f"machine-{name}"
        home.mkdir()
        machines[name] = machine_env(home, storage, seal, KEYMGMT_LEASE_SECONDS=LEASE)
    init = km(machines["a"], "operator", "init")
    assert init.returncode == 0, init.stderr
    return machines


from support.cli import km  # noqa: E402


def run_workers(tmp_path, specs):
    """Start every (env, mode, count) worker, release them at once, return their results."""
    go = tmp_path / "go"
    procs = []
    for i, (env, mode, count) in enumerate(specs):
        out = tmp_path / f"out-{mode}-{i}.json"
        procs.append((subprocess.Popen([sys.executable, WORKER, mode, str(go), str(out), str(count)],
                                       env=env, stderr=subprocess.PIPE, text=True), out))
    time.sleep(0.5)
    go.touch()
    results = []
    for proc, out in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.read_text()))
    return results


def test_twelve_runners_on_two_machines_lose_no_update_and_share_no_lease(team, tmp_path):
    # 12 processes on a small CI machine can starve one for seconds: a 2 s lease would lapse
    # under a live holder (which then stops writing: LeaseLost). Here leases must not lapse.
    a, b = (dict(team[m], KEYMGMT_LEASE_SECONDS="20") for m in ("a", "b"))
    created = km(a, "write", "keymgmt/key/shared", "type=aes256-gcm96")
    assert created.returncode == 0, created.stderr
    rotations = 3
    specs = [(a if i % 2 else b, "rotate", rotations) for i in range(4)]  # CLI runners: rotate
    specs += [(b if i % 2 else a, "probe", 6) for i in range(4)]          # raw lease probes
    specs += [(a if i % 2 else b, "nolock", 10) for i in range(4)]        # no lease at all
    results = run_workers(tmp_path, specs)
    rotators, probes, lockless = results[:4], results[4:8], results[8:]

    # 0 lost updates through the CLI: every rotation made exactly one new version
    for r in rotators:
        assert r["codes"] == [0] * rotations
    read = km(b, "read", "-field=latest_version", "keymgmt/key/shared")
    assert read.returncode == 0, read.stderr
    assert int(read.stdout) == 1 + 4 * rotations
    fast = subprocess.run([sys.executable, "-m", "keymgmt_cli", "read", "-format=json", "keymgmt/key/shared"],
                          env=a, capture_output=True, text=True, timeout=60)  # the fast read path
    assert fast.returncode == 0, fast.stderr
    assert json.loads(fast.stdout)["data"]["latest_version"] == 1 + 4 * rotations

    # 0 lost updates through leases, and never two runners inside the lease at once
    from keymgmt_cli.store import open_store

    store = open_store(a).inner  # the probe documents are written raw by the workers
    counter = store.get("probe/counter")
    intervals = sorted(iv for r in probes for iv in r["intervals"])
    assert counter["n"] == len(intervals) == 24
    assert len(set(counter["by"])) == 4  # all four probe processes got in
    overlaps = [(x, y) for x, y in zip(intervals, intervals[1:]) if y[0] < x[1]]
    assert overlaps == []

    # without a lease, the version check refuses racing writes instead of losing them
    assert store.get("probe/free")["n"] == 40 == sum(r["done"] for r in lockless)
    assert sum(r["conflicts"] for r in lockless) > 0  # the races were real, and were caught

    # every version's material unseals on the other machine (the seal is shared via KMS)
    from keymgmt_cli.cli.main import build_engine
    from keymgmt_cli.engine.sealing import unseal_material

    engine = build_engine(b)
    mount, _ = engine.resolve("keymgmt/key/shared")
    doc = engine.store.get(mount.doc("keys", "shared"))
    materials = {unseal_material(engine, mount, "shared", doc, v) for v in range(1, 14)}
    assert len(materials) == 13 and all(len(m) == 32 for m in materials)


def test_a_killed_runner_s_lease_expires_and_another_machine_finishes_its_journal(team, aws, tmp_path):
    a, b = team["a"], team["b"]
    provider = km(a, "write", "keymgmt/kms/aws", "provider=awskms", f"key_collection={REGION}",
                  "credentials=access_key=testing", "credentials=secret_key=testing",
                  f"credentials=endpoint={aws.endpoint}")
    assert provider.returncode == 0, provider.stderr
    assert km(a, "write", "keymgmt/key/k", "type=aes256-gcm96").returncode == 0

    # machine A starts the distribution and hangs after recording the KMS key id, lease held
    marker = tmp_path / "stuck"
    go = tmp_path / "go"
    go.touch()
    runner = subprocess.Popen([sys.executable, WORKER, "stuck", str(go), str(marker)], env=a,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert runner.poll() is None, runner.stderr.read()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        from keymgmt_cli.errors import StoreError
        from keymgmt_cli.store import open_store

        store = open_store(b)
        lock_name = "default.key.k"
        held = store.lease_holder(lock_name)
        assert held and held["owner"].split(":")[1] == str(runner.pid)
        time.sleep(2 * float(LEASE))  # longer than the lease: the holder's renewals keep it
        with pytest.raises(StoreError) as busy:
            with store.lock(lock_name, timeout=0.5):
                pytest.fail("took a lease that a live runner holds")
        message = str(busy.value)
        assert f":{runner.pid} until " in message and message.endswith("Z")
        assert busy.value.exit_code == 2
        journal = store.get("ns/default/dist/aws/k")
        assert journal["state"] == "distributing"
        started_key = journal["versions"]["1"]["key_id"]
        assert started_key and not journal["versions"]["1"]["imported"]
    finally:
        os.kill(runner.pid, signal.SIGKILL)  # kill -9: no release, no cleanup
        runner.wait()
    killed_at = time.monotonic()

    status = km(b, "status", "-format=json")
    assert status.returncode == 0, status.stderr
    unfinished = json.loads(status.stdout)["unfinished"]
    assert len(unfinished) == 1
    assert (unfinished[0]["operation"], unfinished[0]["path"]) == ("distribute", "keymgmt/kms/aws/key/k")

    # machine B re-runs the command: it waits for the dead lease to lapse, then finishes the job
    finish = km(b, "write", "keymgmt/kms/aws/key/k", "purpose=encrypt,decrypt")
    assert finish.returncode == 0, finish.stderr
    assert time.monotonic() - killed_at < 30
    dist = open_store(b).get("ns/default/dist/aws/k")
    assert dist["state"] == "ready"
    assert dist["versions"]["1"]["key_id"] == started_key  # the same KMS key: none made twice
    assert dist["versions"]["1"]["imported"] is True
    meta = aws.client("kms").describe_key(KeyId=started_key)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["Origin"] == "EXTERNAL"
    status = km(a, "status", "-format=json")
    assert json.loads(status.stdout)["unfinished"] == []
    assert open_store(a).lease_holder(lock_name) is None  # B released it
