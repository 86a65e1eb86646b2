"""The trail across processes: 8 parallel writers write one unbroken chain; a kill -9 mid-command
leaves a request the next run closes as crashed; KEYMGMT_AUDIT=off needs a reason; the CLI's
audit verify/list/export."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence_support import edit_line, rewrite, segment_lines
from keymgmt_cli.audit.filetrail import FileTrail

pytestmark = [pytest.mark.slow]
WORKER = str(Path(__file__).with_name("audit_worker.py"))


@pytest.fixture
def environ(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(KEYMGMT_HOME=str(tmp_path / "state"), KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
               KEYMGMT_CONFIG=str(tmp_path / "no-config.json"), KEYMGMT_FORMAT="table")
    return env


def km(environ, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "keymgmt_cli", *args], env=environ, capture_output=True,
                          text=True, timeout=timeout)


def trail_records(environ):
    result = km(environ, "audit", "export", "-format=jsonl")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_eight_parallel_writers_write_one_unbroken_chain(environ):
    environ = {**environ, "KEYMGMT_AUDIT_MAX_BYTES": "20000"}  # rotation happens under contention too
    per = 15
    procs = [subprocess.Popen([sys.executable, WORKER, "append", str(per), f"w{n}"], env=environ)
             for n in range(8)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    verify = km(environ, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert f"{8 * per * 2} record(s)" in verify.stdout
    recs = trail_records(environ)
    assert [r["keymgmt"]["seq"] for r in recs] == list(range(8 * per * 2))
    requests = {r["request"]["id"]: r for r in recs if r["type"] == "request"}
    responses = {r["request"]["id"]: r for r in recs if r["type"] == "response"}
    assert set(requests) == set(responses) and len(requests) == 8 * per
    assert all(r["keymgmt"]["outcome"] == "ok" for r in responses.values())
    audit_dir = Path(environ["KEYMGMT_HOME"] + ".audit")
    assert len(list(audit_dir.glob("trail-*.jsonl"))) > 1


def test_parallel_cli_writes_are_each_recorded(environ):
    procs = [subprocess.Popen([sys.executable, "-m", "keymgmt_cli", "write", f"keymgmt/key/p{n}",
                               "type=aes256-gcm96"], env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for n in range(8)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    recs = trail_records(environ)
    assert sorted(r["request"]["path"] for r in recs if r["type"] == "response") == \
        sorted(f"keymgmt/key/p{n}" for n in range(8))
    assert km(environ, "audit", "verify").returncode == 0


def test_kill9_mid_command_is_closed_as_crashed_by_the_next_run(environ, tmp_path):
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, WORKER, "hang", str(marker)], env=environ)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    before = trail_records(environ)
    assert [r["type"] for r in before] == ["request"]  # the request is on disk before the command runs
    assert km(environ, "write", "keymgmt/key/next", "type=aes256-gcm96").returncode == 0
    recs = trail_records(environ)
    assert [(r["type"], r["request"]["path"]) for r in recs] == [
        ("request", "keymgmt/key/hung"), ("response", "keymgmt/key/hung"),
        ("request", "keymgmt/key/next"), ("response", "keymgmt/key/next")]
    crashed = recs[1]
    assert crashed["request"]["id"] == recs[0]["request"]["id"]
    assert crashed["keymgmt"]["outcome"] == "crashed" and crashed["error"].startswith("crashed")
    assert crashed["keymgmt"]["closes_for"]["pid"] == proc.pid
    assert km(environ, "audit", "verify").returncode == 0
    # closed once: a further run adds only its own records
    assert km(environ, "write", "keymgmt/key/more", "type=aes256-gcm96").returncode == 0
    assert sum(1 for r in trail_records(environ) if r["keymgmt"].get("outcome") == "crashed") == 1


def test_a_running_command_is_not_closed_by_another(environ, tmp_path):
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, WORKER, "hang", str(marker)], env=environ)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        assert km(environ, "write", "keymgmt/key/other", "type=aes256-gcm96").returncode == 0
        assert not any(r["keymgmt"].get("outcome") == "crashed" for r in trail_records(environ))
    finally:
        proc.kill()
        proc.wait()


def test_audit_off_needs_a_reason_recorded_in_the_state(environ):
    home = Path(environ["KEYMGMT_HOME"])
    off = {**environ, "KEYMGMT_AUDIT": "off"}
    refused = km(off, "write", "keymgmt/key/a", "type=aes256-gcm96")
    assert refused.returncode == 1
    assert refused.stderr.startswith("KEYMGMT_AUDIT=off is refused without a reason")
    assert "Traceback" not in refused.stderr
    assert not home.exists()  # no state change
    allowed = km({**off, "KEYMGMT_AUDIT_OFF_REASON": "incident 4711: audit disk full"},
                 "write", "keymgmt/key/a", "type=aes256-gcm96")
    assert allowed.returncode == 0, allowed.stderr
    gaps = json.loads((home / "meta" / "audit-off.json").read_text())["gaps"]
    assert gaps[-1]["reason"] == "incident 4711: audit disk full" and gaps[-1]["path"] == "keymgmt/key/a"
    assert gaps[-1]["local_user"] and gaps[-1]["host"]
    assert not Path(environ["KEYMGMT_HOME"] + ".audit").exists()


def test_verify_list_export_from_the_cli(environ):
    for name in ("a", "b"):
        assert km(environ, "write", f"keymgmt/key/{name}", "type=aes256-gcm96").returncode == 0
    assert km(environ, "delete", "keymgmt/key/nope").returncode == 0
    refused = km(environ, "write", "keymgmt/key/a", "type=rsa-2048")  # type cannot change: refused
    assert refused.returncode == 2
    recs = trail_records(environ)
    assert len(recs) == 8 and recs[-1]["error"] and recs[-1]["keymgmt"]["outcome"] == "error"
    listed = km(environ, "audit", "list", "-path=keymgmt/key/b", "-format=json")
    assert [r["request"]["path"] for r in json.loads(listed.stdout)] == ["keymgmt/key/b"] * 2
    assert json.loads(km(environ, "audit", "list", "-since=1h", "-format=json").stdout) == recs
    assert json.loads(km(environ, "audit", "list", "-since=2999-01-01T00:00:00Z", "-format=json").stdout) == []
    table = km(environ, "audit", "list")
    assert table.returncode == 0 and "keymgmt/key/nope" in table.stdout
    ok = km(environ, "audit", "verify")
    assert ok.returncode == 0 and "8 record(s)" in ok.stdout
    trail = FileTrail(environ["KEYMGMT_HOME"] + ".audit", None)
    path, lines = segment_lines(trail)
    original = list(lines)
    saved = {p.name: p.read_bytes() for p in trail.directory.iterdir()}
    assert json.loads(lines[7])["error"]
    lines[7] = edit_line(lines[7], lambda r: r.update(error=""))  # hide the refusal
    rewrite(path, lines)
    broken = km(environ, "audit", "verify")
    assert broken.returncode == 2
    assert broken.stderr.count("\n") == 1 and "record 7" in broken.stderr and "MAC" in broken.stderr
    refused = km(environ, "write", "keymgmt/key/c", "type=aes256-gcm96")  # the tail changed: writers refuse
    assert refused.returncode == 2 and "audit trail" in refused.stderr  # a failed request: 2, as Vault
    assert not (Path(environ["KEYMGMT_HOME"]) / "ns" / "default" / "keys" / "c.json").exists()
    import shutil

    shutil.rmtree(trail.directory)  # the whole trail deleted: the state says there was one
    gone = km(environ, "audit", "verify")
    assert gone.returncode == 2 and "has no audit trail" in gone.stderr
    trail.directory.mkdir(mode=0o700)
    for name, data in saved.items():
        (trail.directory / name).write_bytes(data)
        os.chmod(trail.directory / name, 0o600)
    rewrite(path, original[:6])  # the refusal and its request cut off
    as_json = json.loads(km(environ, "audit", "verify", "-format=json").stdout)
    assert as_json["whole"] is False and as_json["first_bad"]["seq"] == 6
    assert "truncated" in as_json["first_bad"]["problem"]


def test_a_wrong_master_key_starts_no_trail_on_an_existing_state(environ):
    off = {**environ, "KEYMGMT_AUDIT": "off", "KEYMGMT_AUDIT_OFF_REASON": "state made before the trail existed"}
    assert km(off, "write", "keymgmt/key/a", "type=aes256-gcm96").returncode == 0
    wrong = {**environ, "KEYMGMT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    refused = km(wrong, "write", "keymgmt/key/b", "type=aes256-gcm96")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr  # a failed request: 2, as Vault
    assert not Path(environ["KEYMGMT_HOME"] + ".audit", "head.json").exists()
    assert km(environ, "write", "keymgmt/key/b", "type=aes256-gcm96").returncode == 0
    assert km(environ, "audit", "verify").returncode == 0
    head = Path(environ["KEYMGMT_HOME"] + ".audit", "head.json").read_bytes()
    refused = km(wrong, "write", "keymgmt/key/c", "type=aes256-gcm96")
    assert refused.returncode == 2
    assert Path(environ["KEYMGMT_HOME"] + ".audit", "head.json").read_bytes() == head  # no trace
