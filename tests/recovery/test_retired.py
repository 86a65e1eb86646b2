"""One state, never two: a migrated or restored-elsewhere source refuses every change."""

from __future__ import annotations

import base64
import os

import pytest

from keymgmt_cli.store import FileStore
from keymgmt_cli.store.retired import check_writable, retire
from recovery_support import file_env, km


@pytest.fixture
def shared_key_env(home):
    return file_env(home, KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())


def _assert_refuses_changes(env, where):
    for args in (["write", "keymgmt/key/new", "type=aes256-gcm96"], ["write", "-f", "keymgmt/key/k1/rotate"],
                 ["delete", "keymgmt/key/k1"], ["secrets", "enable", "-path=x", "keymgmt"],
                 ["secrets", "disable", "keymgmt"], ["operator", "escrow"]):
        code, out, err = km(env, *args)
        assert code == 2 and out == "", (args, out, err)
        first = err.splitlines()[0]
        assert first.startswith("Error") and "is retired" in first and f"moved to file://{where} on" in first, err
        assert f"KEYMGMT_STORAGE at file://{where}" in err
    code, out, _ = km(env, "read", "keymgmt/key/k1")  # reads still work
    assert code == 0 and "aes256-gcm96" in out
    assert km(env, "list", "keymgmt/key")[0] == 0 and km(env, "status")[0] == 0


def test_a_migrated_source_refuses_every_change_and_names_the_target(shared_key_env, home, tmp_path):
    env = shared_key_env
    assert km(env, "write", "keymgmt/key/k1", "type=aes256-gcm96")[0] == 0
    target = tmp_path / "moved"
    code, out, err = km(env, "operator", "migrate", f"-from=file://{home}", f"-to=file://{target}")
    assert code == 0, err
    _assert_refuses_changes(env, str(target))
    moved = file_env(target, KEYMGMT_MASTER_KEY=env["KEYMGMT_MASTER_KEY"])
    assert km(moved, "write", "-f", "keymgmt/key/k1/rotate")[0] == 0  # the new home is live


def test_restore_with_retire_source_retires_the_origin(shared_key_env, home, tmp_path):
    env = shared_key_env
    assert km(env, "write", "keymgmt/key/k1", "type=aes256-gcm96")[0] == 0
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    target = tmp_path / "restored"
    env2 = file_env(target, KEYMGMT_MASTER_KEY=env["KEYMGMT_MASTER_KEY"])
    code, out, err = km(env2, "operator", "snapshot", "restore", f"-retire-source=file://{home}", str(file))
    assert code == 0 and "Retired" in out, err
    _assert_refuses_changes(env, str(target))
    assert km(env2, "write", "-f", "keymgmt/key/k1/rotate")[0] == 0


def test_retire_refuses_a_source_holding_another_state(shared_key_env, home, tmp_path):
    env = shared_key_env
    assert km(env, "write", "keymgmt/key/k1", "type=aes256-gcm96")[0] == 0
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    other = file_env(tmp_path / "other", KEYMGMT_MASTER_KEY=env["KEYMGMT_MASTER_KEY"])
    assert km(other, "write", "keymgmt/key/z", "type=aes256-gcm96")[0] == 0
    env2 = file_env(tmp_path / "t", KEYMGMT_MASTER_KEY=env["KEYMGMT_MASTER_KEY"])
    code, _, err = km(env2, "operator", "snapshot", "restore", f"-retire-source=file://{tmp_path / 'other'}", str(file))
    assert code == 2 and "another state" in err
    assert km(other, "write", "-f", "keymgmt/key/z/rotate")[0] == 0


def test_the_check_is_one_cheap_read(tmp_path):
    store = FileStore(tmp_path / "s")
    calls = []
    real = store.get
    store.get = lambda doc_id: calls.append(doc_id) or real(doc_id)
    listed = []
    real_list = store.list
    store.list = lambda collection: listed.append(collection) or real_list(collection)
    check_writable(store)
    assert calls == ["meta/retired", "meta/rekey"]
    # cheap by construction, counted rather than timed (a timed assertion fails on a loaded
    # machine and proves nothing): every check is the same two point reads and no listing
    for _ in range(50):
        check_writable(store)
    assert calls == ["meta/retired", "meta/rekey"] * 51
    assert listed == []
    retire(store, "dynamodb://elsewhere?region=eu-west-1", "sid")
    with pytest.raises(Exception, match="moved to dynamodb://elsewhere"):
        check_writable(store)
