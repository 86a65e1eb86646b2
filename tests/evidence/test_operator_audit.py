"""The state-changing operator commands leave request and response records (init, escrow, recover,
snapshot restore, rekey, migrate, upgrade), the trail stays whole across a rekey, and no share,
master key (old or new) or key check value reaches a trail in any encoding."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from keymgmt_cli.audit import chain
from keymgmt_cli.audit.filetrail import FileTrail
from keymgmt_cli.audit.keys import AuditKeys
from recovery.recovery_support import assert_absent, file_env, km, master_key_of, shares_of

pytestmark = [pytest.mark.slow]


@pytest.fixture
def home(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def env(home):
    return file_env(home)


def ok(env, *args, input=None):
    code, out, err = km(env, *args, input=input)
    assert code == 0, (args, out, err)
    return out, err


def trail_of(home: Path) -> FileTrail:
    return FileTrail(Path(str(home) + ".audit"), AuditKeys(master_key_of(home)))


def ops(home: Path) -> list[tuple[str, str, str]]:
    return [(r["type"], r["request"]["path"], r["keymgmt"].get("outcome", ""))
            for _w, r in trail_of(home).records() if r["request"]["path"].startswith("sys/operator/")]


def whole(home: Path) -> None:
    t = trail_of(home)
    count, problem = chain.verify(t.records(), t.head(), t.keys)
    assert problem is None and count > 0, problem


def trail_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in Path(str(home) + ".audit").iterdir() if p.is_file())


def test_init_escrow_recover_rekey_are_recorded_and_no_secret_is(env, home):
    ok(env, "operator", "init")
    assert ops(home) == [("request", "sys/operator/init", ""), ("response", "sys/operator/init", "ok")]
    ok(env, "write", "keymgmt/key/k", "type=aes256-gcm96")
    out, _ = ok(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")
    shares = shares_of(out)
    assert len(shares) == 3
    old_key = master_key_of(home)
    (home / "master.key").unlink()
    ok(env, "operator", "recover", input="\n".join(shares[:2]) + "\n")
    printed, _ = ok(env, "operator", "recover", "-print", input="\n".join(shares[1:]) + "\n")
    assert base64.b64decode(printed.strip()) == old_key
    out, _ = ok(env, "operator", "rekey", "-format=json")
    rekeyed = json.loads(out)
    new_key = master_key_of(home)
    assert new_key != old_key
    assert [(t, p.removeprefix("sys/operator/"), o) for t, p, o in ops(home)] == [
        ("request", "init", ""), ("response", "init", "ok"),
        ("request", "escrow", ""), ("response", "escrow", "ok"),
        ("request", "recover", ""), ("response", "recover", "ok"),
        ("request", "recover", ""), ("response", "recover", "ok"),
        ("request", "rekey", ""), ("response", "rekey", "ok")]
    whole(home)  # re-linked under the new key, response written under it
    recs = [r for _w, r in trail_of(home).records()]
    escrow_response = next(r for r in recs if r["type"] == "response" and r["request"]["path"].endswith("escrow"))
    assert escrow_response["response"]["data"]["unseal_shares"] == 3
    rekey_response = recs[-1]
    assert rekey_response["response"]["data"]["resealed"] == rekeyed["resealed"]
    assert_absent(trail_bytes(home), [old_key, new_key], shares + rekeyed.get("unseal_keys_b64", []))
    kcvs = [rekeyed["kcv"].encode()]
    assert not any(k in trail_bytes(home) for k in kcvs)
    # the next audited write works under the new key and the trail is still one chain
    ok(env, "write", "-f", "keymgmt/key/k/rotate")
    whole(home)


def test_a_rekey_with_the_key_in_the_environment_records_under_the_printed_key(tmp_path):
    home = tmp_path / "state"
    first = base64.b64encode(b"\x07" * 32).decode()
    env = file_env(home, KEYMGMT_MASTER_KEY=first)
    ok(env, "write", "keymgmt/key/k", "type=aes256-gcm96")
    out, _ = ok(env, "operator", "rekey", "-format=json")
    new = json.loads(out)["master_key_b64"]
    t = FileTrail(Path(str(home) + ".audit"), AuditKeys(base64.b64decode(new)))
    count, problem = chain.verify(t.records(), t.head(), t.keys)
    assert problem is None and count == 4
    assert [r["type"] for _w, r in t.records()][-2:] == ["request", "response"]
    assert_absent(b"".join(p.read_bytes() for p in t.directory.iterdir()), [base64.b64decode(new), b"\x07" * 32])


def test_snapshot_restore_and_migrate_are_recorded_in_the_target(env, home, tmp_path):
    ok(env, "write", "keymgmt/key/k", "type=aes256-gcm96")
    snap = tmp_path / "backup.snap"
    ok(env, "operator", "snapshot", "save", str(snap))
    restored = tmp_path / "restored"
    env_restored = file_env(restored, KEYMGMT_MASTER_KEY=base64.b64encode(master_key_of(home)).decode())
    ok(env_restored, "operator", "snapshot", "restore", f"-storage=file://{restored}", str(snap))
    t = FileTrail(Path(str(restored) + ".audit"), AuditKeys(master_key_of(home)))
    recs = [r for _w, r in t.records()]
    assert [(r["type"], r["request"]["path"]) for r in recs] == [("request", "sys/operator/snapshot/restore"),
                                                                  ("response", "sys/operator/snapshot/restore")]
    assert recs[0]["time"] <= recs[1]["time"]
    assert recs[1]["response"]["data"]["documents"] > 0 and recs[0]["request"]["data"]["snapshot"] == str(snap)

    target = tmp_path / "moved"
    ok(env, "operator", "migrate", f"-from=file://{home}", f"-to=file://{target}")
    assert ops(home)[-2:] == [("request", "sys/operator/migrate", ""), ("response", "sys/operator/migrate", "ok")]
    whole(home)
    moved = trail_of(target)
    recs = [r for _w, r in moved.records()]
    assert [(r["type"], r["request"]["path"]) for r in recs] == [("request", "sys/operator/migrate"),
                                                                  ("response", "sys/operator/migrate")]
    assert recs[1]["response"]["data"]["copied_from"] == str(home)
    whole(target)


def test_upgrade_is_recorded_and_a_wrong_key_writes_nothing(env, home):
    ok(env, "write", "keymgmt/key/k", "type=aes256-gcm96")
    out, _ = ok(env, "operator", "upgrade")
    last = [r for _w, r in trail_of(home).records()][-2:]
    assert [(r["type"], r["request"]["path"], r["keymgmt"].get("outcome")) for r in last] == [
        ("request", "sys/operator/upgrade", None), ("response", "sys/operator/upgrade", "ok")]
    # a master key that is not the state's: refused before anything is written (the trail's head
    # does not verify under it), and the state's own trail still verifies
    wrong = {**env, "KEYMGMT_MASTER_KEY": base64.b64encode(b"\x01" * 32).decode()}
    before = len(list(trail_of(home).records()))
    code, _, err = km(wrong, "operator", "upgrade")
    assert code != 0 and err.startswith("Error: ") and "Traceback" not in err
    assert len(list(trail_of(home).records())) == before
    whole(home)


def test_audit_off_with_a_reason_records_the_gap_instead(env, home):
    ok(env, "write", "keymgmt/key/k", "type=aes256-gcm96")
    before = len(list(trail_of(home).records()))
    off = {**env, "KEYMGMT_AUDIT": "off"}
    code, _, err = km(off, "operator", "escrow", "-key-shares=2", "-key-threshold=2")
    assert code != 0 and "refused without a reason" in err
    ok({**off, "KEYMGMT_AUDIT_OFF_REASON": "drill"}, "operator", "escrow", "-key-shares=2", "-key-threshold=2")
    assert len(list(trail_of(home).records())) == before
    from keymgmt_cli.store import open_store

    gap = open_store(env).get("meta/audit-off")["gaps"][-1]
    assert (gap["path"], gap["reason"]) == ("sys/operator/escrow", "drill")


def test_a_command_failing_after_its_request_gets_a_response_with_the_error(env, home, monkeypatch):
    from keymgmt_cli.errors import StoreError
    from keymgmt_cli.store import escrow

    ok(env, "write", "keymgmt/key/k", "type=aes256-gcm96")

    def refuse(*_args, **_kwargs):
        raise StoreError("the escrow record could not be written (injected)")

    monkeypatch.setattr(escrow, "write_record", refuse)
    code, _, err = km(env, "operator", "escrow", "-key-shares=2", "-key-threshold=2")
    assert code != 0 and "injected" in err
    last = [r for _w, r in trail_of(home).records()][-2:]
    assert [(r["type"], r["keymgmt"].get("outcome")) for r in last] == [("request", None), ("response", "error")]
    assert last[1]["error"] == "the escrow record could not be written (injected)"
    whole(home)
