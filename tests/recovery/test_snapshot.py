"""operator snapshot save/restore on the file store, against the embedded local KMS."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from keymgmt_cli.localkms import server
from keymgmt_cli.store import FileStore, snapshot, snapshotfile
from recovery_support import REPO, assert_absent, file_env, km, master_key_of, shares_of, tree_text

pytestmark = pytest.mark.emulator
SECRET = "snapshot/SECRET/value+0123456789abcdefghij"


@pytest.fixture(scope="module")
def kms():
    with server.start() as local:
        yield local


def _build(env, kms):
    for args in (["write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
                  "credentials=access_key=AKIASNAPSHOT00000001", f"credentials=secret_key={SECRET}",
                  f"credentials=endpoint={kms.endpoint_url}"],
                 ["write", "keymgmt/key/v", "type=aes256-gcm96"],
                 ["write", "keymgmt/kms/e/key/v", "purpose=encrypt,decrypt"],
                 ["write", "-f", "keymgmt/key/v/rotate"],
                 ["secrets", "enable", "-path=other", "keymgmt"],
                 ["write", "other/key/r", "type=rsa-2048"]):
        code, _, err = km(env, *args)
        assert code == 0, (args, err)


def _material(home):
    """Every secret of the state, unsealed (for the leak scans)."""
    from keymgmt_cli.store.migrate import walk_leaves as _walk
    from keymgmt_cli.store.rekey import TOKEN_RE
    from keymgmt_cli.store.seal import Sealer
    from keymgmt_cli.store.snapshot import all_ids

    store, sealer, out = FileStore(home), Sealer(master_key_of(home)), []
    for doc_id in all_ids(store):
        for path, value in _walk(store.get(doc_id)):
            if isinstance(value, str) and TOKEN_RE.match(value):
                out.append(sealer.unseal(value, f"{doc_id}#{'/'.join(path)}"))
    assert out
    return out


def test_save_restore_into_a_fresh_state_then_verify_and_rotate(env, home, tmp_path, kms):
    _build(env, kms)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    file = tmp_path / "backup.snap"
    code, out, err = km(env, "operator", "snapshot", "save", str(file))
    assert code == 0 and "Success! Saved" in out, err
    assert file.stat().st_mode & 0o777 == 0o600
    secrets = _material(home) + [master_key_of(home)]
    assert_absent(file.read_bytes(), secrets, shares)
    assert SECRET.encode() not in file.read_bytes()

    # a new machine: a fresh home, no key; the shares put the key back, then restore
    fresh = tmp_path / "fresh"
    env2 = file_env(fresh)
    code, _, err = km(env2, "operator", "snapshot", "restore", str(file))
    assert code == 2 and "no master key" in err and "recover -snapshot=" in err
    assert not fresh.exists() or not (fresh / "state.json").exists()
    code, out, err = km(env2, "operator", "recover", f"-snapshot={file}", input="\n".join(shares[:2]))
    assert code == 0, err
    code, out, err = km(env2, "operator", "snapshot", "restore", str(file))
    assert code == 0 and "Success! Restored" in out, err
    code, out, err = km(env2, "verify")
    assert (code, out) == (0, "checked 1 distribution(s), 2 KMS key(s): in sync\n"), err
    assert km(env2, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    assert km(env2, "verify")[0] == 0
    origin = json.loads((fresh / "meta" / "origin.json").read_text())
    assert origin["copy_of"] == json.loads((home / "state.json").read_text())["state_id"]
    assert "Escrow:      3 shares, threshold 2" in km(env2, "status")[1]


def test_restore_refuses_a_non_empty_state_unless_forced(env, home, tmp_path, kms):
    _build(env, kms)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    assert km(env, "write", "keymgmt/key/later", "type=aes256-gcm96")[0] == 0
    code, out, err = km(env, "operator", "snapshot", "restore", str(file))
    assert code == 2 and "is not empty" in err and "-force" in err
    assert km(env, "read", "keymgmt/key/later")[0] == 0
    code, out, err = km(env, "operator", "snapshot", "restore", "-force", str(file))
    assert code == 0, err
    assert km(env, "read", "keymgmt/key/later")[0] == 2  # gone: the snapshot did not hold it
    assert km(env, "verify")[0] == 0


def test_a_snapshot_changed_by_one_byte_is_refused_and_nothing_is_written(env, home, tmp_path, kms):
    _build(env, kms)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    data = file.read_bytes()
    key = master_key_of(home)
    target = FileStore(tmp_path / "t")
    rng = random.Random(10)
    positions = sorted(rng.sample(range(len(data)), 60)) + [0, len(data) - 1, len(data) - 2]
    for i in positions:
        for new in {data[i] ^ 0x01, ord(" ") if data[i] != ord(" ") else ord("\t")}:
            edited = tmp_path / "edited.snap"
            edited.write_bytes(data[:i] + bytes([new]) + data[i + 1:])
            with pytest.raises(Exception) as caught:
                snapshot.restore(target, file_env(tmp_path / "t", KEYMGMT_MASTER_KEY=__import__("base64").b64encode(key).decode()), str(edited))
            assert "nothing was restored" in str(caught.value) or "not a keymgmt snapshot" in str(caught.value)
            assert not (tmp_path / "t" / "state.json").exists()
    for extra in (data + b"\n", data[:-1], b" " + data):
        (tmp_path / "edited.snap").write_bytes(extra)
        code, _, err = km(file_env(tmp_path / "t", KEYMGMT_MASTER_KEY=__import__("base64").b64encode(key).decode()),
                          "operator", "snapshot", "restore", str(tmp_path / "edited.snap"))
        assert code == 2 and len(err.splitlines()) <= 2 and "not an unmodified keymgmt snapshot" in err


def test_a_snapshot_under_another_key_is_refused(env, home, tmp_path, kms):
    import base64
    import os

    _build(env, kms)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    # rewritten with a valid digest but no knowledge of the key: the MAC refuses it
    raw, body, trailer = snapshotfile.read(str(file))
    body["documents"]["ns/default/keys/v"]["deletion_allowed"] = True
    forged = snapshotfile.encode(body, os.urandom(32))
    (tmp_path / "forged.snap").write_bytes(forged)
    env2 = file_env(tmp_path / "t", KEYMGMT_MASTER_KEY=base64.b64encode(master_key_of(home)).decode())
    code, _, err = km(env2, "operator", "snapshot", "restore", str(tmp_path / "forged.snap"))
    assert code == 2 and "not made under this master key" in err
    env3 = file_env(tmp_path / "t", KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    code, _, err = km(env3, "operator", "snapshot", "restore", str(file))
    assert code == 2 and "does not open this snapshot" in err
    assert not (tmp_path / "t" / "state.json").exists()


def test_save_holds_the_state_locks_so_a_writer_waits(env, home, tmp_path, kms):
    """A snapshot is consistent: while it reads, no engine operation can run."""
    _build(env, kms)
    store = FileStore(home)
    with snapshot.hold_all(store):
        started = time.monotonic()
        writer = subprocess.Popen([sys.executable, "-m", "keymgmt_cli", "write", "-f", "keymgmt/key/v/rotate"],
                                  env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(3.0)
        assert writer.poll() is None, writer.communicate()  # blocked on the key lock
    assert writer.wait(60) == 0
    assert time.monotonic() - started >= 3.0
    assert km(env, "verify")[0] == 0


def test_snapshots_taken_while_another_process_writes_restore_consistently(env, home, tmp_path, kms):
    _build(env, kms)
    loop = ("import subprocess,sys\n"
            "for i in range(6):\n"
            "    subprocess.run([sys.executable,'-m','keymgmt_cli','write','-f','keymgmt/key/v/rotate'],check=True)\n"
            "    subprocess.run([sys.executable,'-m','keymgmt_cli','write',f'keymgmt/key/n{i}','type=aes256-gcm96'],check=True)\n")
    writer = subprocess.Popen([sys.executable, "-c", loop], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import base64

    key = base64.b64encode(master_key_of(home)).decode()
    taken = 0
    while writer.poll() is None or taken < 2:
        file = tmp_path / f"s{taken}.snap"
        assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
        target = tmp_path / f"t{taken}"
        code, _, err = km(file_env(target, KEYMGMT_MASTER_KEY=key), "operator", "snapshot", "restore", str(file))
        assert code == 0, err
        code, out, err = km(file_env(target, KEYMGMT_MASTER_KEY=key), "status")
        assert "Unfinished operations: none" in out, out
        taken += 1
    assert writer.wait() == 0, writer.stderr.read()


def test_no_secret_in_any_output(env, home, tmp_path, kms):
    _build(env, kms)
    outputs = ""
    for args in (["operator", "snapshot", "save", str(tmp_path / "a.snap")], ["status"],
                 ["status", "-format=json"]):
        code, out, err = km(env, *args)
        outputs += out + err
    assert_absent(outputs + tree_text(home).decode("utf-8", "replace").replace(
        (home / "master.key").read_text(), ""), _material(home) + [master_key_of(home)])


def test_a_restore_interrupted_midway_is_finished_by_a_re_run(tmp_path):
    import base64
    import os

    key = base64.b64encode(os.urandom(32)).decode()
    src = file_env(tmp_path / "src", KEYMGMT_MASTER_KEY=key)
    for n in range(6):
        assert km(src, "write", f"keymgmt/key/k{n}", "type=aes256-gcm96")[0] == 0
    file = tmp_path / "s.snap"
    assert km(src, "operator", "snapshot", "save", str(file))[0] == 0
    target_env = file_env(tmp_path / "t", KEYMGMT_MASTER_KEY=key)
    target = FileStore(tmp_path / "t")
    real, puts = target.put, []

    def crashing_put(doc_id, doc):
        if len(puts) == 4:
            raise KeyboardInterrupt  # stands in for a crash after four writes
        puts.append(doc_id)
        real(doc_id, doc)

    target.put = crashing_put
    with pytest.raises(KeyboardInterrupt):
        snapshot.restore(target, target_env, str(file))
    assert (tmp_path / "t" / "meta" / "restoring.json").exists()
    code, out, err = km(target_env, "operator", "snapshot", "restore", str(file))  # no -force needed
    assert code == 0, err
    assert not (tmp_path / "t" / "meta" / "restoring.json").exists()
    assert km(target_env, "list", "keymgmt/key")[1].split()[-6:] == [f"k{n}" for n in range(6)]
    assert km(target_env, "write", "-f", "keymgmt/key/k3/rotate")[0] == 0


def test_a_snapshot_naming_a_foreign_plain_http_kms_endpoint_is_refused(tmp_path):
    """Whoever edits the file could name his own KMS, return a data key he knows, forge the MAC."""
    import os

    known = os.urandom(32)
    body = {"keymgmt_snapshot": snapshotfile.FORMAT, "state_id": "s", "backend": "file", "location": "/x", "created": "now",
            "seal": {"kind": "awskms", "kcv": "0" * 16,
                     "record": {"format": 1, "kind": "awskms", "key_id": "k", "region": "us-east-1",
                                "endpoint": "http://10.1.2.3:4566", "encrypted_key": "AAAA", "kcv": "0" * 16}},
            "documents": {"state": {"format": 1, "state_id": "s", "mounts": {}}}}
    (tmp_path / "evil.snap").write_bytes(snapshotfile.encode(body, known))
    code, _, err = km(file_env(tmp_path / "t"), "operator", "snapshot", "restore", str(tmp_path / "evil.snap"))
    assert code == 2 and "neither https nor loopback" in err
    assert not (tmp_path / "t" / "state.json").exists()


@pytest.mark.parametrize("body, trailer", [
    # a non-ASCII digest written as a JSON escape: the canonical line matches, compare_digest would raise
    (b'{"keymgmt_snapshot":1}', lambda raw: {"mac": "x", "sha256": "\u00e9"}),
    (b'{"keymgmt_snapshot":1}', lambda raw: {"mac": 1, "sha256": __import__("hashlib").sha256(raw).hexdigest()}),
    # nested past the recursion limit under a correct (unkeyed) digest anyone can recompute
    (b"[" * 100_000 + b"]" * 100_000, lambda raw: {"mac": "x", "sha256": __import__("hashlib").sha256(raw).hexdigest()}),
])
def test_a_hand_made_snapshot_file_is_refused_not_an_internal_error(tmp_path, body, trailer):
    from keymgmt_cli.errors import KeymgmtError

    line = json.dumps(trailer(body), separators=(",", ":"), sort_keys=True).encode("ascii")
    path = tmp_path / "made.snap"
    path.write_bytes(body + b"\n" + line + b"\n")
    with pytest.raises(KeymgmtError, match="is not an unmodified keymgmt snapshot"):
        snapshotfile.read(str(path))
