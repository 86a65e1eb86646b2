"""`keymgmt status` names the master key the engine would really use, or says none is available
and what to do (issue 16 item 9): the environment, the key file, the OS keyring (a fake backend
here), a KMS seal, and none; never the source the state was created with when it is gone."""

from __future__ import annotations

import base64
import os

import keyring
import pytest
from keyring.backend import KeyringBackend

from keymgmt_cli.store import describe_master_key
from keymgmt_cli.store.memory import MemoryStore
from recovery_support import file_env, km


class FakeKeyring(KeyringBackend):
    priority = 10
    viable = False  # never chosen by keyring's own discovery

    def __init__(self):
        super().__init__()
        self.passwords = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        self.passwords.pop((service, username), None)


def _line(env):
    code, out, err = km(env, "status")
    assert code == 0, err
    return next(line for line in out.splitlines() if line.startswith("Master key:"))


def _key():
    return base64.b64encode(os.urandom(32)).decode()


def test_environment_then_unset(home):
    key = _key()
    env = file_env(home, KEYMGMT_MASTER_KEY=key)
    assert km(env, "write", "keymgmt/key/k", "type=aes256-gcm96")[0] == 0
    assert _line(env) == "Master key:  env:KEYMGMT_MASTER_KEY"
    # a wrong key in the variable: the documents cannot be verified, so status itself refuses, saying why
    code, out, err = km(file_env(home, KEYMGMT_MASTER_KEY=_key()), "status")
    assert code == 1 and out == "" and "does not match the one that sealed this state" in err
    unset = file_env(home)
    line = _line(unset)
    assert "env:KEYMGMT_MASTER_KEY" not in line.split(":", 1)[1].split("(")[0]
    assert line.startswith("Master key:  none available: the state was sealed with a key from KEYMGMT_MASTER_KEY")
    assert "keymgmt operator recover" in line


def test_key_file_then_gone(home):
    env = file_env(home)  # no keyring: the key goes into master.key
    assert km(env, "write", "keymgmt/key/k", "type=aes256-gcm96")[0] == 0
    assert _line(env) == f"Master key:  file:{home / 'master.key'}"
    (home / "master.key").unlink()
    line = _line(env)
    assert line.startswith(f"Master key:  none available: the state was sealed with a key from {home / 'master.key'}")
    assert "keymgmt operator recover" in line


def test_keyring_then_wiped(home):
    fake = FakeKeyring()
    keyring.set_keyring(fake)  # the conftest puts the fail backend back afterwards
    env = file_env(home)
    env.pop("PYTHON_KEYRING_BACKEND")
    assert km(env, "write", "keymgmt/key/k", "type=aes256-gcm96")[0] == 0
    assert fake.passwords and not (home / "master.key").exists()
    line = _line(env)
    assert line.startswith("Master key:  keyring:") and "none" not in line
    genuine = dict(fake.passwords)
    fake.passwords.update({k: _key() for k in fake.passwords})  # another key in its place
    line = _line(env)
    assert line.startswith("Master key:  keyring:") and "does NOT open this state" in line
    assert not any(v in line for v in fake.passwords.values()) and not any(v in line for v in genuine.values())
    fake.passwords.clear()  # the keyring was wiped (a new laptop)
    line = _line(env)
    assert line.startswith("Master key:  none available: the state was sealed with a key from the OS keyring")
    assert "keymgmt operator recover" in line


def test_none_yet(home):
    assert _line(file_env(home)).startswith("Master key:  none yet (the first write creates one in file:")


def test_seal_records_kms_and_shared_environment_without_any_call():
    store = MemoryStore()
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    store.put("meta/seal", {"format": 1, "kind": "awskms", "kcv": "0123456789abcdef", "key_arn": arn,
                            "region": "us-east-1", "encrypted_key": "AAAA"})
    assert describe_master_key(store, {}) == f"awskms:{arn} (sealed data key in {store.location})"

    from keymgmt_cli.store.masterkey import key_check_value

    raw = os.urandom(32)
    shared = MemoryStore()
    shared.put("meta/seal", {"format": 1, "kind": "env", "kcv": key_check_value(raw)})
    line = describe_master_key(shared, {})
    assert line.startswith("none available: the state in") and "KEYMGMT_MASTER_KEY" in line
    assert "operator recover -print" in line
    good = {"KEYMGMT_MASTER_KEY": base64.b64encode(raw).decode()}
    assert describe_master_key(shared, good).startswith("env:KEYMGMT_MASTER_KEY (kcv ")
    assert "does NOT" not in describe_master_key(shared, good)
    assert "does NOT open this state" in describe_master_key(shared, {"KEYMGMT_MASTER_KEY": _key()})


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_an_unusable_variable_is_named_as_such(home, value):
    line = _line(file_env(home, KEYMGMT_MASTER_KEY=value))
    assert line.startswith("Master key:  env:KEYMGMT_MASTER_KEY (unusable: KEYMGMT_MASTER_KEY ")
