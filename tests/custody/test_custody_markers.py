"""The meta/ markers keymgmt acts on (escrow, retired, origin, instance) are authenticated like every
document (issue 10's remainder): forged, copied from another state or rolled back, each is refused
naming it, never obeyed; markers written untagged by an older keymgmt are authenticated once by
'operator upgrade', which names what each says."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from keymgmt_cli.errors import StoreError
from keymgmt_cli.store.auth import AuthStore, derive_auth_key
from keymgmt_cli.store.memory import MemoryStore
from keymgmt_cli.store.retired import RETIRED_DOC, check_writable, retire


def _env(home: Path, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(KEYMGMT_HOME=str(home), KEYMGMT_MASTER_KEY=key, KEYMGMT_CONFIG=str(home.parent / "none.json"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return env


def km(env, *args, input=None):
    from keymgmt_cli.cli.main import Env, cli

    result = CliRunner().invoke(cli, list(args), obj=Env(dict(env)), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _doc(home: Path, doc_id: str) -> Path:
    return home.joinpath(*doc_id.split("/")).with_suffix(".json")


@pytest.fixture
def key():
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def state(tmp_path, key):
    home = tmp_path / "s"
    env = _env(home, key)
    assert km(env, "write", "keymgmt/key/k1", "type=aes256-gcm96")[0] == 0
    assert km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[0] == 0
    return home, env


def _refused(code, out, err, doc_id, *words):
    assert code in (1, 2) and out == "", (code, out, err)
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert doc_id in first, err
    for word in words:
        assert word in first, err


def test_a_forged_retired_marker_is_refused_as_tampered_never_obeyed(state):
    home, env = state
    path = _doc(home, RETIRED_DOC)
    path.write_text(json.dumps({"format": 1, "moved_to": "dynamodb://attacker?region=us-east-1",
                                "state_id": None, "at": "2026-01-01T00:00:00Z"}))
    for args in (["write", "-f", "keymgmt/key/k1/rotate"], ["secrets", "enable", "-path=x", "keymgmt"],
                 ["operator", "escrow"], ["operator", "rekey"]):
        code, out, err = km(env, *args)
        _refused(code, out, err, "meta/retired", "not authenticated")
        assert "attacker" not in err and "is retired" not in err, args
    # a tag taken from another document does not make it authentic either
    tag = json.loads(_doc(home, "ns/default/keys/k1").read_text())["_auth"]
    path.write_text(json.dumps({"format": 1, "moved_to": "file:///elsewhere", "_auth": tag}))
    code, out, err = km(env, "write", "-f", "keymgmt/key/k1/rotate")
    _refused(code, out, err, "meta/retired", "failed authentication")
    path.unlink()
    assert km(env, "write", "-f", "keymgmt/key/k1/rotate")[0] == 0


def test_a_genuine_retired_marker_of_another_state_under_the_same_key_is_refused(state, tmp_path, key):
    home, env = state
    other = tmp_path / "other"
    other_env = _env(other, key)
    assert km(other_env, "write", "keymgmt/key/x", "type=aes256-gcm96")[0] == 0
    code, _, err = km(other_env, "operator", "migrate", f"-from=file://{other}", f"-to=file://{tmp_path / 'moved'}")
    assert code == 0, err
    _doc(home, RETIRED_DOC).write_bytes(_doc(other, RETIRED_DOC).read_bytes())
    code, out, err = km(env, "write", "-f", "keymgmt/key/k1/rotate")
    _refused(code, out, err, "meta/retired", "failed authentication")


def test_the_retired_marker_is_proven_even_when_the_key_is_not_cheap_at_hand():
    """With the key in the OS keyring (not loaded for reads), check_writable loads it before obeying."""
    inner = MemoryStore()
    auth_key = derive_auth_key(os.urandom(32))
    writer = AuthStore(inner, lambda: auth_key)
    writer.put("state", {"format": 1, "state_id": "s-1", "mounts": {}})
    retire(writer, "file:///new/home", "s-1")
    lazy = AuthStore(inner, lambda: None)
    lazy.require_key(lambda: auth_key)
    with pytest.raises(Exception, match="is retired"):
        check_writable(lazy)  # genuine: obeyed
    forged = dict(inner.get(RETIRED_DOC), moved_to="file:///attacker")
    inner.put(RETIRED_DOC, forged)
    lazy = AuthStore(inner, lambda: None)
    lazy.require_key(lambda: auth_key)
    with pytest.raises(StoreError, match="meta/retired .*failed authentication"):
        check_writable(lazy)


def test_a_forged_or_rolled_back_escrow_record_is_refused(state):
    home, env = state
    path = _doc(home, "meta/escrow")
    before = path.read_bytes()
    record = json.loads(before)
    record["threshold"] = 1
    path.write_text(json.dumps(record))
    code, out, err = km(env, "status")
    assert code == 0 and "Escrow:      unknown (" in out and "failed authentication" in out, (out, err)
    code, out, err = km(env, "operator", "rekey")
    _refused(code, out, err, "meta/escrow", "failed authentication")
    # rolled back: an older (genuine) record put back after a new escrow
    path.write_bytes(before)
    assert km(env, "operator", "escrow", "-key-shares=5", "-key-threshold=3")[0] == 0
    path.write_bytes(before)
    code, out, err = km(env, "operator", "rekey")
    _refused(code, out, err, "meta/escrow", "older copy")


def test_forged_origin_and_instance_markers_are_refused(state, tmp_path):
    home, env = state
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    copy = tmp_path / "copy"
    copy_env = _env(copy, env["KEYMGMT_MASTER_KEY"])
    assert km(copy_env, "operator", "snapshot", "restore", str(file))[0] == 0
    assert km(copy_env, "verify")[0] == 0
    for doc_id, change in (("meta/origin", {"source_retired": True}), ("meta/instance", {"instance_id": "0" * 16})):
        path = _doc(copy, doc_id)
        genuine = path.read_bytes()
        path.write_text(json.dumps({**json.loads(genuine), **change}))  # silence the warning / pose as another
        code, out, err = km(copy_env, "verify")
        _refused(code, out, err, doc_id, "failed authentication")
        path.write_bytes(genuine)
    assert km(copy_env, "verify")[0] == 0


def test_markers_an_older_keymgmt_wrote_untagged_are_authenticated_by_upgrade_naming_them(state):
    home, env = state
    path = _doc(home, "meta/escrow")
    record = {k: v for k, v in json.loads(path.read_text()).items() if k != "_auth"}
    path.write_text(json.dumps(record))  # as keymgmt wrote it before markers were authenticated
    code, out, err = km(env, "operator", "rekey")
    _refused(code, out, err, "meta/escrow", "not authenticated")
    assert "operator upgrade" in err
    code, out, err = km(env, "operator", "upgrade")
    assert code == 0 and "Authenticated 1 marker(s)" in out, (out, err)
    assert "meta/escrow: escrow of 3 shares, threshold 2" in out
    assert "_auth" in path.read_text()
    code, out, _ = km(env, "status")
    assert "Escrow:      3 shares, threshold 2" in out
    code, out, _ = km(env, "operator", "upgrade")
    assert code == 0 and "authenticated already" in out
    # a marker that carries a (wrong) tag is tampered with, and never re-signed by upgrade
    doc = json.loads(path.read_text())
    doc["shares"] = 9
    path.write_text(json.dumps(doc))
    code, out, err = km(env, "operator", "upgrade")
    _refused(code, out, err, "meta/escrow", "failed authentication")
