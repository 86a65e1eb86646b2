"""The document-store backend: one chain in the state's store. On the in-memory store (threads as
runners) and on DynamoDB (moto's server on 127.0.0.1): 12 processes on two simulated machines
append through the real session code and the table holds one unbroken chain, no gap, no fork;
edits, deletions and a truncated head are detected."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dynamo.dynamo_support import REGION, MotoServer, aws_test_credentials, machine_env
from keymgmt_cli.audit import chain
from keymgmt_cli.audit.doctrail import HEAD_DOC, DocTrail, record_doc
from keymgmt_cli.audit.session import audited, open_trail
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.errors import StoreError
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box

WORKER = str(Path(__file__).with_name("audit_worker.py"))


def test_threads_on_one_store_write_one_chain_and_attacks_are_detected():
    store, box = MemoryStore(), memory_secret_box()
    engines = [Engine(store, box, None) for _ in range(6)]

    def runner(engine, n):
        for i in range(10):
            audited(engine, {}, "write", f"keymgmt/key/t{n}-{i}", {"type": "aes256-gcm96"}, lambda: None)

    threads = [threading.Thread(target=runner, args=(e, n)) for n, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trail = open_trail(engines[0], {})
    assert isinstance(trail, DocTrail)
    assert chain.verify(trail.records(), trail.head(), trail.keys) == (120, None)

    doc = store.get(record_doc(40))
    doc["request"]["path"] = "keymgmt/key/forged"
    store.put(record_doc(40), doc)
    assert chain.verify(trail.records(), trail.head(), trail.keys)[1].seq == 40
    store.delete(record_doc(40))
    assert chain.verify(trail.records(), trail.head(), trail.keys)[1].seq == 40
    trail2_store = MemoryStore()
    eng = Engine(trail2_store, box, None)
    for i in range(3):
        audited(eng, {}, "write", f"keymgmt/key/x{i}", {}, lambda: None)
    trail2_store.delete(record_doc(5))
    trail2 = open_trail(eng, {})
    count, problem = chain.verify(trail2.records(), trail2.head(), trail2.keys)
    assert problem is not None and problem.seq == 5 and "truncated" in problem.what
    head = trail2_store.get(HEAD_DOC)
    head["seq"] = 3
    trail2_store.put(HEAD_DOC, head)
    assert "head" in chain.verify(trail2.records(), trail2.head(), trail2.keys)[1].where
    with pytest.raises(StoreError):
        audited(eng, {}, "write", "keymgmt/key/y", {}, lambda: None)


@pytest.mark.emulator
@pytest.mark.slow
def test_twelve_processes_on_two_machines_write_one_chain_on_dynamodb(tmp_path, monkeypatch):
    aws = MotoServer()
    try:
        aws_test_credentials(monkeypatch)
        table = "audit-chain"
        key_id = aws.client("kms").create_key(Description="keymgmt seal")["KeyMetadata"]["KeyId"]
        storage = f"dynamodb://{table}?region={REGION}&endpoint={aws.endpoint}"
        seal = f"awskms://{key_id}?region={REGION}&endpoint={aws.endpoint}"
        machines = []
        for name in ("a", "b"):
            home = tmp_path / f"machine-{name}"
            home.mkdir()
            machines.append(machine_env(home, storage, seal, KEYMGMT_LEASE_SECONDS="20"))
        init = subprocess.run([sys.executable, "-m", "keymgmt_cli", "operator", "init"], env=machines[0],
                              capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, init.stderr
        per = 2
        procs = [subprocess.Popen([sys.executable, WORKER, "append", str(per), f"m{n}"], env=machines[n % 2],
                                  stderr=subprocess.PIPE, text=True) for n in range(12)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-2000:]
        for env in machines:
            verify = subprocess.run([sys.executable, "-m", "keymgmt_cli", "audit", "verify", "-format=json"],
                                    env=env, capture_output=True, text=True, timeout=120)
            assert verify.returncode == 0, verify.stderr
            assert '"records": %d' % (12 * per * 2) in verify.stdout
        export = subprocess.run([sys.executable, "-m", "keymgmt_cli", "audit", "export"], env=machines[1],
                                capture_output=True, text=True, timeout=120)
        import json

        recs = [json.loads(line) for line in export.stdout.splitlines()]
        assert [r["keymgmt"]["seq"] for r in recs] == list(range(12 * per * 2))
        assert sum(1 for r in recs if r["type"] == "response" and r["keymgmt"]["outcome"] == "ok") == 12 * per
    finally:
        aws.stop()
