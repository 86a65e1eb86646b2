"""On the wire, against the local KMS (moto, which also answers STS GetCallerIdentity) on 127.0.0.1,
with the CLI as processes: the caller identity costs one STS request per credentials, not one per
command, and is asked again when the credentials change; every request id in the trail is one the
KMS answered (read from the HTTP response headers here, not from keymgmt); a ``kill -9`` in the middle
of a distribution leaves a crashed record that lists the calls answered before the kill; the
inventory's ARNs are the KMS's own."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from faults.fault_harness import KMS, REGION, REPLICA_REGION, argv, cli_environ, kill9, km, kms_client, provider_args
from keymgmt_cli.localkms import server

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
_SERVICE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9]+)/aws4_request")
_TARGET = "TrentService."


class Wire:
    """WSGI middleware: every request's service, operation, region and the request id answered; can
    kill -9 a process as a given KMS operation arrives (before it is served)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[dict[str, str]] = []
        self.kill_at: str | None = None
        self.pid: int | None = None
        self.killed = threading.Event()
        self.app: Any = None

    def wrap(self, app: Any) -> Any:
        self.app = app
        return self

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = match.groups() if match else ("", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target[len(_TARGET):] if target.startswith(_TARGET) else ("GetCallerIdentity" if service == "sts" else "")
        if op and op == self.kill_at and self.pid is not None and not self.killed.is_set():
            kill9(self.pid)
            self.killed.set()
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return []
        entry = {"service": service, "op": op, "region": region, "request_id": ""}

        def answer(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            entry["request_id"] = next((v for k, v in headers if k.lower() == "x-amzn-requestid"), "")
            entry["status"] = status.split()[0]
            return start_response(status, headers, exc_info)

        body = self.app(environ, answer)
        if service:
            with self.lock:
                self.log.append(entry)
        return body

    def since(self, mark: int, service: str = "kms") -> list[dict[str, str]]:
        with self.lock:
            return [e for e in self.log[mark:] if e["service"] == service]

    def mark(self) -> int:
        with self.lock:
            return len(self.log)


@pytest.fixture(scope="module")
def wire() -> Any:
    w = Wire()
    kms = server.start(wrap=w.wrap)
    request = urllib.request.Request(f"{kms.endpoint_url}/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(request, timeout=30).read()
    w.endpoint = kms.endpoint_url  # type: ignore[attr-defined]
    yield w
    kms.stop()


def ok(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = km(environ, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def records(environ: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(environ, "audit", "export").stdout.splitlines()]


def test_identity_once_per_credentials_and_request_ids_from_the_wire(wire: Wire, tmp_path: Path) -> None:
    environ = cli_environ(tmp_path / "state")
    ok(environ, *provider_args(wire.endpoint))
    ok(environ, "write", "keymgmt/key/aes", "type=aes256-gcm96", f"replica_regions={REPLICA_REGION}")
    steps = [("write", f"keymgmt/kms/{KMS}/key/aes", "purpose=encrypt,decrypt"),
             ("write", "-f", "keymgmt/key/aes/rotate"),
             ("write", "-f", f"keymgmt/kms/{KMS}/key/aes/replicate"),
             ("write", "-f", "keymgmt/key/aes/rotate")]
    start = wire.mark()
    answered: list[list[dict[str, str]]] = []
    for step in steps:
        mark = wire.mark()
        ok(environ, *step)
        answered.append(wire.since(mark))
    sts = wire.since(start, "sts")
    assert len(sts) == 1, sts  # four commands, one GetCallerIdentity

    responses = [r for r in records(environ) if r["type"] == "response" and r["keymgmt"]["aws_calls"]]
    assert len(responses) == len(steps)
    for response, on_wire in zip(responses, answered):
        recorded = [(c["operation"], c["region"], rid) for c in response["keymgmt"]["aws_calls"]
                    for rid in (c.get("request_ids") or [c["request_id"]])]
        seen = [(e["op"], e["region"], e["request_id"]) for e in on_wire]
        assert all(rid for _o, _r, rid in recorded)
        assert sorted(recorded) == sorted(seen), (response["request"]["path"], recorded, seen)
    identities = [r["keymgmt"]["caller_identity"] for r in responses]
    assert identities[0][0]["arn"] == "arn:aws:sts::123456789012:user/moto"
    assert identities[0][0]["source"] == f"GetCallerIdentity (request id {sts[0]['request_id']})"
    assert all(i[0]["source"].startswith("remembered") for i in identities[1:])

    # other credentials: asked again, once
    # (the provider write itself checks the new credentials against a distributed key, so the
    # identity may be learned there: count from before it)
    mark = wire.mark()
    ok(environ, *provider_args(wire.endpoint, access_key="AKIAOTHERCREDS000002", secret="another-secret"))
    ok(environ, "write", "-f", "keymgmt/key/aes/rotate")
    ok(environ, "write", "-f", "keymgmt/key/aes/rotate")
    assert len(wire.since(mark, "sts")) == 1
    last = [r for r in records(environ) if r["type"] == "response" and r["keymgmt"]["aws_calls"]][-2:]
    assert last[0]["keymgmt"]["caller_identity"][0]["credentials"] != identities[0][0]["credentials"]
    assert last[1]["keymgmt"]["caller_identity"][0]["source"].startswith("remembered")

    # the inventory's ARNs are the KMS's own (asked here with boto3, not by keymgmt), with no request
    mark = wire.mark()
    rows = json.loads(ok(environ, "inventory", "-format=json").stdout)
    assert wire.mark() == mark
    assert len(rows) == 5 * 2  # 5 versions, each in the region and its replica
    for row in rows:
        arn = kms_client(wire.endpoint, row["region"]).describe_key(KeyId=row["kms_key_id"])["KeyMetadata"]["Arn"]
        assert row["kms_key_arn"] == arn and row["account"] == "123456789012", row
    trail = b"".join(p.read_bytes() for p in Path(environ["KEYMGMT_HOME"] + ".audit").iterdir() if p.is_file())
    assert b"AKIAOTHERCREDS000002" not in trail and b"another-secret" not in trail


def test_kill9_mid_distribution_keeps_the_calls_made_before_it(wire: Wire, tmp_path: Path) -> None:
    environ = cli_environ(tmp_path / "state")
    ok(environ, *provider_args(wire.endpoint))
    ok(environ, "write", "keymgmt/key/k", "type=aes256-gcm96", f"replica_regions={REPLICA_REGION}")
    mark = wire.mark()
    wire.kill_at = "ImportKeyMaterial"
    proc = subprocess.Popen(argv("write", f"keymgmt/kms/{KMS}/key/k", "purpose=encrypt,decrypt"), env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wire.pid = proc.pid
    try:
        proc.wait(timeout=120)
    finally:
        wire.kill_at = wire.pid = None
    assert wire.killed.is_set() and proc.returncode == -9
    before_kill = [(e["op"], e["region"], e["request_id"]) for e in wire.since(mark)]
    assert [op for op, _r, _i in before_kill][:2] == ["CreateKey", "GetParametersForImport"]
    journals = list(Path(environ["KEYMGMT_HOME"] + ".audit").glob("calls-*.jsonl"))
    assert len(journals) == 1  # the calls are on disk, the response is not

    ok(environ, "write", f"keymgmt/kms/{KMS}/key/k", "purpose=encrypt,decrypt")  # closes it, then finishes
    recs = [r for r in records(environ) if r["request"]["path"] == f"keymgmt/kms/{KMS}/key/k"]
    assert [(r["type"], r["keymgmt"].get("outcome")) for r in recs] == [
        ("request", None), ("response", "crashed"), ("request", None), ("response", "ok")]
    crashed = recs[1]["keymgmt"]
    recorded = [(c["operation"], c["region"], c["request_id"]) for c in crashed["aws_calls"]]
    assert sorted(recorded) == sorted(before_kill) and "calls_refused" not in crashed
    assert not list(Path(environ["KEYMGMT_HOME"] + ".audit").glob("calls-*.jsonl"))
    assert ok(environ, "audit", "verify").returncode == 0
