"""The evidence commands as processes against the local KMS on 127.0.0.1: for each mutating step the
dry run sends no mutating request (counted at the KMS's HTTP door) and its plan equals the requests
the real run then sends, per region in order; after the lifecycle no secret (credentials, master
key, key material; plain, base64 or hex) is anywhere in the trail or in what the commands printed;
the trail verifies; the inventory lists every version and replica."""

from __future__ import annotations

import base64
import json
import secrets as pysecrets
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from faults.fault_harness import KMS, REPLICA_REGION, argv, cli_environ, fresh_kms, kill9, km, provider_args
from keymgmt_cli.audit.calls import MUTATING
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.sealing import unseal_material
from keymgmt_cli.store import open_secret_box, open_store

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


class Killer:
    """Observer callback: when armed, kill -9 the process under test as its ``op`` request arrives."""

    def __init__(self) -> None:
        self.op: str | None = None
        self.pid: int | None = None
        self.started = threading.Event()
        self.fired = threading.Event()

    def __call__(self, op: str, n: int, phase: str) -> str | None:
        if self.op != op or phase != "before" or self.fired.is_set():
            return None
        assert self.started.wait(30)
        kill9(self.pid)
        self.fired.set()
        return "drop"


@pytest.fixture(scope="module")
def killer() -> Killer:
    return Killer()


@pytest.fixture(scope="module")
def kms(killer: Killer) -> Any:
    with fresh_kms(observer=killer) as server:
        yield server


def _forms(secret: bytes) -> list[bytes]:
    forms = [secret, base64.b64encode(secret), base64.urlsafe_b64encode(secret), secret.hex().encode(),
             secret.hex().upper().encode()]
    return [f.rstrip(b"=") for f in forms]


def _per_region(calls: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for region, op in calls:
        out.setdefault(region, []).append(op)
    return out


def test_plans_match_the_wire_and_no_secret_reaches_the_trail(kms: Any, tmp_path: Path) -> None:
    secret_key = "SK" + pysecrets.token_hex(19)
    session_token = "ST" + pysecrets.token_urlsafe(48)
    environ = cli_environ(tmp_path / "state")
    printed: list[bytes] = []

    def run(*args: str, expect: int = 0) -> Any:
        result = km(environ, *args)
        printed.append(result.stdout.encode() + b"\n" + result.stderr.encode())
        assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
        return result

    def wire() -> list[tuple[str, str]]:
        return [(c.region, c.op) for c in kms.observer.log]

    def planned_step(verb: str, *args: str) -> dict[str, Any]:
        start = len(wire())
        plan = json.loads(run(verb, "-dry-run", "-format=json", *args).stdout)
        during_plan = wire()[start:]
        assert not [op for _r, op in during_plan if op in MUTATING], (args, during_plan)
        assert plan["dry_run"] is True
        start = len(wire())
        run(verb, *args)
        real = wire()[start:]
        planned = [(region, c["operation"]) for region, calls in plan["aws_calls"].items() for c in calls]
        assert _per_region(planned) == _per_region(real), (args, plan["aws_calls"], real)
        return plan

    run(*provider_args(kms.endpoint_url, secret=secret_key, session_token=session_token))
    run("write", "keymgmt/key/aes", "type=aes256-gcm96", f"replica_regions={REPLICA_REGION}")
    run("write", "keymgmt/key/ec", "type=ecdsa-p256")
    p = planned_step("write", f"keymgmt/kms/{KMS}/key/aes", "purpose=encrypt,decrypt")
    assert p["mutating_calls"] >= 3
    planned_step("write", f"keymgmt/kms/{KMS}/key/ec", "purpose=sign,verify")
    planned_step("write", "-f", "keymgmt/key/aes/rotate")
    planned_step("write", f"-f", f"keymgmt/kms/{KMS}/key/aes/replicate")
    planned_step("write", "-f", "keymgmt/key/ec/rotate")
    planned_step("write", "keymgmt/key/aes", "min_enabled_version=2")
    table = run("write", "-dry-run", "keymgmt/key/aes", "min_enabled_version=1").stdout
    assert "DisableKey" not in table and "EnableKey" in table and "none was sent" in table

    inventory = json.loads(run("inventory", "-format=json").stdout)
    assert sorted((r["key_name"], r["version"], r["region"]) for r in inventory) == sorted(
        [("aes", v, region) for v in (1, 2) for region in ("us-west-1", REPLICA_REGION)]
        + [("ec", v, "us-west-1") for v in (1, 2)])

    store = open_store(environ)
    engine = Engine(store, open_secret_box(store.home, environ))
    mount, _ = engine.resolve("keymgmt/key")
    materials = []
    for name in ("aes", "ec"):
        doc = store.get(mount.doc("keys", name))
        for version in doc["versions"]:
            material = unseal_material(engine, mount, name, doc, int(version))
            materials += [material] if name == "aes" else [material, material[-32:]]

    for name in ("aes", "ec"):
        planned_step("delete", f"keymgmt/kms/{KMS}/key/{name}", "pending_window_days=7")
        run("write", f"keymgmt/key/{name}", "deletion_allowed=true")
        run("delete", f"keymgmt/key/{name}")
    run("delete", f"keymgmt/kms/{KMS}")
    assert "whole" in run("audit", "verify").stdout
    exported = run("audit", "export").stdout
    listed = run("audit", "list", "-format=json").stdout
    assert len(exported.splitlines()) == len(json.loads(listed)) >= 2 * 16

    audit_dir = Path(environ["KEYMGMT_HOME"] + ".audit")
    trail = b"".join(p.read_bytes() for p in sorted(audit_dir.iterdir()) if p.is_file())
    assert b"hmac-sha256:" in trail and b"CreateKey" in trail
    everything = trail + b"\n".join(printed)
    secrets = {"secret_key": secret_key.encode(), "session_token": session_token.encode(),
               "master key": base64.b64decode(environ["KEYMGMT_MASTER_KEY"])}
    secrets.update({f"material {i}": m for i, m in enumerate(materials)})
    for label, secret in secrets.items():
        for form in _forms(secret):
            assert form not in everything, f"{label} found in the trail or the output"


def test_kill9_during_an_aws_call_is_closed_as_crashed_by_the_next_run(kms: Any, killer: Killer,
                                                                      tmp_path: Path) -> None:
    environ = cli_environ(tmp_path / "state")
    assert km(environ, *provider_args(kms.endpoint_url)).returncode == 0
    assert km(environ, "write", "keymgmt/key/k", "type=aes256-gcm96").returncode == 0
    killer.op = "ImportKeyMaterial"
    proc = subprocess.Popen(argv("write", f"keymgmt/kms/{KMS}/key/k", "purpose=encrypt,decrypt"), env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killer.pid = proc.pid
    killer.started.set()
    proc.wait(timeout=120)
    assert killer.fired.is_set() and proc.returncode == -9
    killer.op = None
    finish = km(environ, "write", f"keymgmt/kms/{KMS}/key/k", "purpose=encrypt,decrypt")  # the re-run finishes
    assert finish.returncode == 0, finish.stderr
    recs = [json.loads(line) for line in km(environ, "audit", "export").stdout.splitlines()]
    dist = [(r["type"], r["keymgmt"].get("outcome")) for r in recs if r["request"]["path"].endswith(f"{KMS}/key/k")]
    assert dist == [("request", None), ("response", "crashed"), ("request", None), ("response", "ok")]
    assert km(environ, "audit", "verify").returncode == 0
    inventory = json.loads(km(environ, "inventory", "-format=json").stdout)
    assert [(r["key_name"], r["version"], r["enabled"]) for r in inventory] == [("k", 1, True)]
