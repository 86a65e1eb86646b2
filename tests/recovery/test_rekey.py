"""operator rekey: a new master key, every secret re-sealed, crash-safe under kill -9."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from keymgmt_cli.store import FileStore
from keymgmt_cli.store.masterkey import key_check_value
from keymgmt_cli.store.migrate import walk_leaves as _walk
from keymgmt_cli.store.rekey import TOKEN_RE
from keymgmt_cli.store.seal import Sealer
from keymgmt_cli.store.snapshot import all_ids
from recovery_support import REPO, assert_absent, file_env, km, master_key_of, shares_of, tree_text


def _build(env, keys=3):
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.engine.routing import Request
    from keymgmt_cli.store import open_secret_box, open_store

    store = open_store(env)
    engine = Engine(store, open_secret_box(store.home, env, store=store), None)
    engine.handle(Request("write", "keymgmt/kms/aws", {
        "provider": "awskms", "key_collection": "us-west-1",
        "credentials": {"access_key": "AKIAREKEYEXAMPLE0001", "secret_key": "rekey/SECRET/0123456789abcdef"}}))
    for n in range(keys):
        engine.handle(Request("write", f"keymgmt/key/k{n}", {"type": "aes256-gcm96"}))
    engine.handle(Request("write", "keymgmt/key/k0/rotate", {}))


def _secrets(home, keys):
    """{aad: plaintext} of every secret, each unsealed under one of ``keys`` (AssertionError if none)."""
    store, out = FileStore(home), {}
    for doc_id in all_ids(store):
        if doc_id.startswith("meta/"):
            continue
        for path, value in _walk(store.get(doc_id)):
            if isinstance(value, str) and TOKEN_RE.match(value):
                aad = f"{doc_id}#{'/'.join(path)}"
                for key in keys:
                    try:
                        out[aad] = Sealer(key).unseal(value, aad)
                        break
                    except Exception:
                        continue
                else:
                    raise AssertionError(f"{aad} opens under none of the keys")
    return out


def test_rekey_reseals_everything_and_refuses_the_old_key(env, home):
    _build(env)
    old = master_key_of(home)
    before = _secrets(home, [old])
    code, out, err = km(env, "operator", "rekey")
    assert code == 0 and "Success! Rekeyed" in out and "refused from now on" in out, err
    new = master_key_of(home)
    assert new != old and _secrets(home, [new]) == before
    assert json.loads((home / "seal.json").read_text())["kcv"] == key_check_value(new)
    assert not (home / "meta" / "rekey.json").exists()
    with pytest.raises(AssertionError):
        _secrets(home, [old])
    # the old key is refused by every command that needs one
    (home / "master.key").write_text(base64.b64encode(old).decode() + "\n")
    code, _, err = km(env, "write", "-f", "keymgmt/key/k1/rotate")
    assert code == 2 and "does not match" in err
    (home / "master.key").write_text(base64.b64encode(new).decode() + "\n")
    assert km(env, "write", "-f", "keymgmt/key/k1/rotate")[0] == 0
    assert_absent(out + err + tree_text(home).decode().replace((home / "master.key").read_text(), ""),
                  [old, new] + list(before.values()))


def test_rekey_with_escrow_prints_new_shares_and_the_old_ones_are_useless(env, home):
    _build(env)
    old_shares = shares_of(km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    code, out, err = km(env, "operator", "rekey")
    assert code == 0, err
    new_shares = shares_of(out)
    assert len(new_shares) == 3 and not set(new_shares) & set(old_shares)
    new = master_key_of(home)
    (home / "master.key").unlink()
    code, _, err = km(env, "operator", "recover", input="\n".join(old_shares[:2]))
    assert code == 2 and "does not open the state" in err and not (home / "master.key").exists()
    code, _, err = km(env, "operator", "recover", input="\n".join(new_shares[1:]))
    assert code == 0, err
    assert master_key_of(home) == new
    assert "Escrow:      3 shares, threshold 2" in km(env, "status")[1]


def test_rekey_json_shape(env, home):
    _build(env)
    km(env, "operator", "escrow", "-key-shares=2", "-key-threshold=2")
    code, out, err = km(env, "operator", "rekey", "-format=json")
    data = json.loads(out)
    assert code == 0 and data["kcv"] == key_check_value(master_key_of(home))
    assert data["unseal_shares"] == 2 and len(data["unseal_keys_b64"]) == 2 and "master_key_b64" not in data


def test_rekey_with_an_environment_key_prints_the_new_one_and_refuses_the_old(home):
    old = os.urandom(32)
    env = file_env(home, KEYMGMT_MASTER_KEY=base64.b64encode(old).decode())
    _build(env)
    before = _secrets(home, [old])
    code, out, err = km(env, "operator", "rekey")
    assert code == 0, err
    line = next(l for l in out.splitlines() if l.startswith("New master key"))
    new = base64.b64decode(line.rsplit(" ", 1)[1])
    assert _secrets(home, [new]) == before and not (home / "master.key").exists()
    code, _, err = km(env, "write", "-f", "keymgmt/key/k1/rotate")
    assert code == 2 and "does not match" in err
    assert km(dict(env, KEYMGMT_MASTER_KEY=base64.b64encode(new).decode()), "write", "-f", "keymgmt/key/k1/rotate")[0] == 0


def test_changes_are_refused_while_a_rekey_is_unfinished(env, home):
    _build(env)
    FileStore(home).put("meta/rekey", {"format": 1})
    code, _, err = km(env, "write", "keymgmt/key/x", "type=aes256-gcm96")
    assert code == 2 and "rekey" in err and "unfinished" in err


def _check_openable(home, original):
    """The invariant after a kill: the key in the source, old or new, opens every secret."""
    store = FileStore(home)
    key = master_key_of(home)
    journal = store.get("meta/rekey")
    if journal is None:
        assert json.loads((home / "seal.json").read_text())["kcv"] == key_check_value(key)
        assert _secrets(home, [key]) == original
        return False
    assert key_check_value(key) in (journal["old_kcv"], journal["new_kcv"])
    if key_check_value(key) == journal["old_kcv"]:
        other = Sealer(key).unseal(journal["new_key"], "meta/rekey#new_key")
    else:
        other = Sealer(key).unseal(journal["old_key"], "meta/rekey#old_key")
    assert _secrets(home, [key, other]) == original
    return True


@pytest.mark.slow
def test_kill_9_at_random_moments_then_rerun_finishes(env, home):
    _build(env, keys=120)
    original = _secrets(home, [master_key_of(home)])
    first_key = master_key_of(home)
    cmd = [sys.executable, "-m", "keymgmt_cli", "operator", "rekey"]
    started = time.monotonic()
    assert subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, timeout=120).returncode == 0
    full = time.monotonic() - started
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    interrupted = 0
    for _ in range(24):
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2 * full, 1.05 * full))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted += _check_openable(home, original)
    print(f"kills inside a rekey: {interrupted} of 24 (full run {full:.2f}s)")
    assert interrupted >= 5, f"only {interrupted} kills landed inside a rekey (full run {full:.2f}s)"
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not _check_openable(home, original)
    assert master_key_of(home) != first_key
    assert km(env, "write", "-f", "keymgmt/key/k1/rotate")[0] == 0


@pytest.mark.parametrize("edit", [
    {"old_kcv": "é" * 16},                       # non-ASCII: compare_digest would raise TypeError
    {"new_kcv": 12345},
    {"kind": "something-else"},
    {"old_key": None},
    {"kind": "awskms", "new_record": "not-a-record"},
])
def test_a_hand_edited_rekey_journal_is_one_line_naming_it(env, home, edit):
    _build(env, keys=1)
    store = FileStore(home)
    journal = {"format": 1, "kind": "local", "old_kcv": "0" * 16, "new_kcv": "1" * 16,
               "old_key": "x", "new_key": "y", **edit}
    store.put("meta/rekey", journal)
    code, out, err = km(env, "operator", "rekey")
    assert code != 0
    assert "meta/rekey" in err and "corrupt" in err
    assert "Traceback" not in err and "internal error" not in err.lower()
    assert store.get("meta/rekey") == journal  # nothing changed
