"""Issue 9, item 2: the seal cannot be swapped by removing or spoiling the master key's check value.

A state that holds a sealed secret refuses a master key it cannot prove; a missing or corrupt
check value is an error with a recovery hint, never re-created. Both the local sources
(``seal.json``: env key, key file) and the shared seal record (``meta/seal``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keymgmt_cli.errors import StoreError
from keymgmt_cli.store.masterkey import key_check_value, load_master_key
from keymgmt_cli.store.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keymgmt_cli", *args],
                          env=dict(env, PYTHONPATH=str(REPO)), capture_output=True, text=True,
                          timeout=120, cwd="/")


def _env(home: Path, key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env["KEYMGMT_HOME"] = str(home)
    env["KEYMGMT_CONFIG"] = str(home.parent / "no-config.json")
    if key is not None:
        env["KEYMGMT_MASTER_KEY"] = key
    return env


def _snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file() and ".locks" not in p.parts}


@pytest.fixture
def sealed_state(tmp_path):
    """A local state with a key (its material sealed) under master key A; seal.json removed."""
    home = tmp_path / "state"
    key_a = _key()
    proc = _run(_env(home, key_a), "write", "keymgmt/key/k1", "type=aes256-gcm96")
    assert proc.returncode == 0, proc.stderr
    (home / "seal.json").unlink()
    return home, key_a


# Vault's verbs exit 2 for every failed request, the local state included; other commands exit 1
def _refusal_code(proc) -> int:
    return 2 if proc.args[3] in ("read", "list", "write", "delete") else 1


def test_missing_check_value_refuses_another_key_and_changes_nothing(sealed_state):
    home, _key_a = sealed_state
    before = _snapshot(home)
    for args in (("write", "-f", "keymgmt/key/k1/rotate"), ("write", "keymgmt/key/k2", "type=aes256-gcm96")):
        proc = _run(_env(home, _key()), *args)
        assert proc.returncode == 2, proc.stderr  # a failed request: 2, as Vault's write.go
        assert "Traceback" not in proc.stderr
        first = proc.stderr.strip().splitlines()[0]
        assert "seal.json is missing" in first and "cannot be proven" in first
        assert "restore" in proc.stderr  # the recovery hint
    assert _snapshot(home) == before  # not re-created, nothing sealed under the second key


def test_missing_check_value_is_not_recreated_even_for_the_right_key(sealed_state):
    home, key_a = sealed_state
    with pytest.raises(StoreError, match="seal.json is missing"):
        load_master_key(home, {"KEYMGMT_MASTER_KEY": key_a}, create=True)
    with pytest.raises(StoreError, match="seal.json is missing"):
        load_master_key(home, {"KEYMGMT_MASTER_KEY": key_a}, create=False)  # migrate's source
    assert not (home / "seal.json").exists()


def test_restoring_the_check_value_is_the_recovery(sealed_state):
    home, key_a = sealed_state
    meta = {"version": 1, "source": "env:KEYMGMT_MASTER_KEY",
            "kcv": key_check_value(base64.b64decode(key_a)), "created": None}
    (home / "seal.json").write_text(json.dumps(meta))
    proc = _run(_env(home, key_a), "write", "-f", "keymgmt/key/k1/rotate")
    assert proc.returncode == 0, proc.stderr


def test_missing_check_value_with_a_swapped_key_file(tmp_path):
    """The key-file source: delete seal.json, put another key in master.key."""
    home = tmp_path / "state"
    env = _env(home, None)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # no keyring: master.key
    proc = _run(env, "write", "keymgmt/key/k1", "type=aes256-gcm96")
    assert proc.returncode == 0, proc.stderr
    assert (home / "master.key").exists()
    (home / "seal.json").unlink()
    (home / "master.key").write_text(_key() + "\n")
    proc = _run(env, "write", "-f", "keymgmt/key/k1/rotate")
    assert proc.returncode == _refusal_code(proc) and "seal.json is missing" in proc.stderr, proc.stderr
    assert not (home / "seal.json").exists()


@pytest.mark.parametrize("kcv", ["", "0" * 15, "Z" * 16, None, 12345])
def test_corrupt_check_value_is_an_error(sealed_state, kcv):
    home, key_a = sealed_state
    (home / "seal.json").write_text(json.dumps({"version": 1, "source": "env:KEYMGMT_MASTER_KEY", "kcv": kcv}))
    before = _snapshot(home)
    with pytest.raises(StoreError, match="seal.json is corrupt"):
        load_master_key(home, {"KEYMGMT_MASTER_KEY": key_a}, create=True)
    assert _snapshot(home) == before


def test_an_authenticated_state_without_secrets_refuses_too(tmp_path):
    """A mount table alone holds no sealed secret, but it is authenticated under the master key
    (issue 9, item 3): that proves a key was in use, so a lost seal.json is not re-created."""
    home = tmp_path / "state"
    proc = _run(_env(home, _key()), "secrets", "enable", "-path=other", "keymgmt")
    assert proc.returncode == 0, proc.stderr
    (home / "seal.json").unlink()
    proc = _run(_env(home, _key()), "write", "keymgmt/key/k1", "type=aes256-gcm96")
    assert proc.returncode == _refusal_code(proc) and "seal.json is missing" in proc.stderr, proc.stderr


def test_an_empty_state_records_its_first_key(tmp_path):
    home = tmp_path / "state"
    home.mkdir(mode=0o700)
    key = base64.b64decode(_key())
    load_master_key(home, {"KEYMGMT_MASTER_KEY": base64.b64encode(key).decode()}, create=True)
    assert json.loads((home / "seal.json").read_text())["kcv"] == key_check_value(key)


# -- the shared seal record (meta/seal) ----------------------------------------------------------


def _shared_state(key: str) -> MemoryStore:
    from keymgmt_cli.store.kmsseal import init_shared_seal

    store = MemoryStore()
    init_shared_seal(store, {"KEYMGMT_MASTER_KEY": key})
    store.put("state", {"format": 1, "state_id": "s1", "mounts": {}})
    return store


@pytest.mark.parametrize("spoil", [lambda r: r.pop("kcv"), lambda r: r.update(kcv=""),
                                   lambda r: r.update(kcv="not-a-check-value")])
def test_seal_record_without_a_check_value_refuses_every_key(spoil):
    from keymgmt_cli.store.kmsseal import init_shared_seal, load_shared_master_key

    key_a = _key()
    store = _shared_state(key_a)
    record = store.get("meta/seal")
    spoil(record)
    store.put("meta/seal", record)
    for key in (_key(), key_a):
        with pytest.raises(StoreError, match="seal record meta/seal .* is corrupt"):
            load_shared_master_key(store, {"KEYMGMT_MASTER_KEY": key})
        with pytest.raises(StoreError, match="corrupt"):
            init_shared_seal(store, {"KEYMGMT_MASTER_KEY": key})
    assert store.get("meta/seal") == record  # never rewritten


def test_removed_seal_record_is_not_recreated_for_a_state_with_data():
    from keymgmt_cli.store.kmsseal import init_shared_seal, load_shared_master_key

    store = _shared_state(_key())
    store.delete("meta/seal")
    other = {"KEYMGMT_MASTER_KEY": _key()}
    with pytest.raises(StoreError, match="holds data but has no seal record"):
        init_shared_seal(store, other)
    with pytest.raises(StoreError, match="seal record .*missing"):
        load_shared_master_key(store, other)
    assert store.get("meta/seal") is None
