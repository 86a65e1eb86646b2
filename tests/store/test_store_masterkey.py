"""Master-key sources (env, keyring, key file) and the key check value in seal.json."""

import base64
import json
import os
import stat

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from keymgmt_cli.errors import StoreError
from keymgmt_cli.store import open_secret_box
from keymgmt_cli.store.masterkey import (
    ENV_SOURCE,
    MasterKey,
    describe_source,
    key_check_value,
    load_master_key,
)

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring for injection. ``viable = False`` keeps keyring's own discovery
    (``keyring.get_keyring()`` elsewhere in the test session) from ever choosing it."""

    priority = 10
    viable = False

    def __init__(self):
        super().__init__()
        self.passwords = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        self.passwords.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    """Looks usable, fails on use (a locked keyring, no D-Bus session, ...)."""

    def get_password(self, service, username):
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")

    def set_password(self, service, username, password):
        raise RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown")


class ForgetfulKeyring(MemoryKeyring):
    """Accepts a write and keeps nothing."""

    def set_password(self, service, username, password):
        pass


class Warnings(list):
    def __call__(self, msg):
        self.append(msg)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def _meta(home):
    return json.loads((home / "seal.json").read_text())


# -- env ---------------------------------------------------------------------------------------


def test_env_key_is_used_and_recorded(home):
    mk = load_master_key(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, create=True,
                         keyring_backend=MemoryKeyring())
    assert mk == MasterKey(KEY, "env:KEYMGMT_MASTER_KEY")
    meta = _meta(home)
    assert meta["source"] == ENV_SOURCE and meta["kcv"] == key_check_value(KEY)
    assert KEY_B64 not in (home / "seal.json").read_text()
    assert stat.S_IMODE(os.stat(home / "seal.json").st_mode) == 0o600
    assert not (home / "master.key").exists()


@pytest.mark.parametrize("value", [
    base64.urlsafe_b64encode(KEY).decode(), KEY_B64.rstrip("="), f"  {KEY_B64}\n",
])
def test_env_key_accepts_urlsafe_unpadded_and_whitespace(home, value):
    assert load_master_key(home, {"KEYMGMT_MASTER_KEY": value}, create=False).key == KEY


@pytest.mark.parametrize("value, expected", [
    ("", "KEYMGMT_MASTER_KEY is set but empty"),
    ("   ", "KEYMGMT_MASTER_KEY is set but empty"),
    ("not base64 at all! s3cr3t-VALUE", "KEYMGMT_MASTER_KEY is not valid base64"),
    ("s3cr3tVALUE*" + KEY_B64, "KEYMGMT_MASTER_KEY is not valid base64"),
    (base64.b64encode(b"s3cr3tVALUE-sixteen").decode(), "decodes to 19 bytes; expected 32"),
    (base64.b64encode(KEY + b"s3cr3tVALUE").decode(), "decodes to 43 bytes; expected 32"),
    ("s3cr3tVALUE", "decodes to 8 bytes; expected 32"),  # unpadded base64
    ("s3cr3tVALUEsx", "KEYMGMT_MASTER_KEY is not valid base64"),  # 13 chars: no such base64
])
def test_bad_env_key_is_a_clear_error_that_never_echoes_it(home, value, expected):
    with pytest.raises(StoreError) as err:
        load_master_key(home, {"KEYMGMT_MASTER_KEY": value}, create=True)
    text = f"{err.value} {err.value.hint}"
    assert expected in str(err.value)
    assert "s3cr3t" not in text and (not value.strip() or value.strip() not in text)
    assert not home.exists()


def test_env_key_that_does_not_match_the_sealing_key_is_refused(home):
    env = {"KEYMGMT_MASTER_KEY": KEY_B64}
    load_master_key(home, env, create=True)
    other = base64.b64encode(bytes(32)).decode()
    with pytest.raises(StoreError) as err:
        load_master_key(home, {"KEYMGMT_MASTER_KEY": other}, create=True)
    assert str(err.value).startswith(
        "master key from KEYMGMT_MASTER_KEY does not match the one that sealed this state "
        f"(kcv {key_check_value(bytes(32))}, expected {key_check_value(KEY)}")
    assert other not in str(err.value)
    assert _meta(home)["kcv"] == key_check_value(KEY)  # not overwritten


def test_env_key_wins_over_keyring_and_file(home):
    kr = MemoryKeyring()
    load_master_key(home, {}, create=True, keyring_backend=kr)
    with pytest.raises(StoreError, match="does not match"):  # a different key: refused
        load_master_key(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, create=True, keyring_backend=kr)
    stored = kr.passwords[("keymgmt", str(home))]
    mk = load_master_key(home, {"KEYMGMT_MASTER_KEY": stored}, create=True, keyring_backend=kr)
    assert mk.source == ENV_SOURCE


# -- keyring -----------------------------------------------------------------------------------


def test_keyring_creates_then_finds_the_key(home):
    kr = MemoryKeyring()
    warnings = Warnings()
    first = load_master_key(home, {}, create=True, keyring_backend=kr, warn=warnings)
    assert first.source == "keyring:" + MemoryKeyring.name
    assert list(kr.passwords) == [("keymgmt", str(home))]
    assert base64.b64decode(kr.passwords[("keymgmt", str(home))]) == first.key
    assert len(first.key) == 32 and first.key != KEY
    assert _meta(home)["source"] == first.source and _meta(home)["kcv"] == first.kcv
    again = load_master_key(home, {}, create=False, keyring_backend=kr, warn=warnings)
    assert again == first
    assert warnings == [] and not (home / "master.key").exists()


def test_keyring_username_is_the_absolute_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kr = MemoryKeyring()
    load_master_key("rel", {}, create=True, keyring_backend=kr)
    assert list(kr.passwords) == [("keymgmt", str(tmp_path / "rel"))]


def test_each_home_has_its_own_key(tmp_path):
    kr = MemoryKeyring()
    a = load_master_key(tmp_path / "a", {}, create=True, keyring_backend=kr)
    b = load_master_key(tmp_path / "b", {}, create=True, keyring_backend=kr)
    assert a.key != b.key


def test_keyring_key_that_does_not_match_is_refused(home):
    kr = MemoryKeyring()
    load_master_key(home, {}, create=True, keyring_backend=kr)
    kr.passwords[("keymgmt", str(home))] = base64.b64encode(bytes(32)).decode()
    with pytest.raises(StoreError, match=r"master key from the OS keyring \(.*\) does not match"):
        load_master_key(home, {}, create=False, keyring_backend=kr)


def test_corrupt_keyring_entry_is_a_clear_error(home):
    kr = MemoryKeyring()
    kr.passwords[("keymgmt", str(home))] = "garbage-s3cr3t"
    with pytest.raises(StoreError, match="master key in the OS keyring .* is corrupt") as err:
        load_master_key(home, {}, create=True, keyring_backend=kr)
    assert "s3cr3t" not in str(err.value)


def test_lost_keyring_key_is_never_replaced_by_a_new_one(home):
    kr = MemoryKeyring()
    first = load_master_key(home, {}, create=True, keyring_backend=kr)
    kr.passwords.clear()
    for backend in [kr, fail.Keyring(), BrokenKeyring()]:
        with pytest.raises(StoreError) as err:
            load_master_key(home, {}, create=True, keyring_backend=backend, warn=pytest.fail)
        assert str(err.value).startswith(f"no master key: the state in {home} was sealed with "
                                         f"a key from the OS keyring")
        assert first.kcv in str(err.value)
    assert not (home / "master.key").exists() and kr.passwords == {}


# -- key file fallback -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [
    fail.Keyring(), null.Keyring(), BrokenKeyring(), ForgetfulKeyring(), chainer.ChainerBackend(),
], ids=["fail", "null", "raises", "forgetful", "empty-chainer"])
def test_falls_back_to_a_key_file_with_a_one_time_warning(home, backend, monkeypatch):
    if isinstance(backend, chainer.ChainerBackend):
        monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    old = os.umask(0)
    try:
        warnings = Warnings()
        first = load_master_key(home, {}, create=True, keyring_backend=backend, warn=warnings)
    finally:
        os.umask(old)
    key_file = home / "master.key"
    assert first.source == f"file:{key_file}"
    assert warnings == [f"WARNING! no OS keyring available; the master key is stored in "
                        f"{key_file} (0600). Set KEYMGMT_MASTER_KEY in CI."]
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert base64.b64decode(key_file.read_text()) == first.key
    assert _meta(home) | {"created": None} == {"version": 1, "source": first.source,
                                                 "kcv": first.kcv, "created": None}
    again = load_master_key(home, {}, create=True, keyring_backend=backend, warn=warnings)
    assert again == first and len(warnings) == 1  # silent the second time


def test_existing_key_file_is_used_even_once_a_keyring_appears(home):
    first = load_master_key(home, {}, create=True, keyring_backend=fail.Keyring(), warn=Warnings())
    kr = MemoryKeyring()
    again = load_master_key(home, {}, create=True, keyring_backend=kr, warn=pytest.fail)
    assert again == first and kr.passwords == {}


def test_corrupt_or_mismatched_key_file_is_a_clear_error(home):
    load_master_key(home, {}, create=True, keyring_backend=fail.Keyring(), warn=Warnings())
    key_file = home / "master.key"
    key_file.write_text("not a key s3cr3t")
    with pytest.raises(StoreError, match=f"master key file {key_file} is corrupt") as err:
        load_master_key(home, {}, create=True, keyring_backend=fail.Keyring())
    assert "s3cr3t" not in str(err.value)
    key_file.write_text(base64.b64encode(bytes(32)).decode())
    with pytest.raises(StoreError, match=f"master key from {key_file} does not match"):
        load_master_key(home, {}, create=True, keyring_backend=fail.Keyring())


# -- nothing, and seal.json --------------------------------------------------------------------


@pytest.mark.parametrize("backend", [MemoryKeyring(), fail.Keyring(), BrokenKeyring()])
def test_create_false_with_no_key_anywhere_is_an_error_and_creates_nothing(home, backend):
    with pytest.raises(StoreError) as err:
        load_master_key(home, {}, create=False, keyring_backend=backend, warn=pytest.fail)
    assert str(err.value).startswith("no master key: KEYMGMT_MASTER_KEY is not set")
    assert not home.exists()


def test_state_sealed_from_env_asks_for_env(home):
    load_master_key(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, create=True)
    with pytest.raises(StoreError) as err:
        load_master_key(home, {}, create=True, keyring_backend=MemoryKeyring())
    assert "sealed with a key from KEYMGMT_MASTER_KEY" in str(err.value)
    assert err.value.hint == "set KEYMGMT_MASTER_KEY"


def test_corrupt_seal_json_is_a_clear_error(home):
    load_master_key(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, create=True)
    (home / "seal.json").write_text("{oops")
    with pytest.raises(StoreError, match=f"{home / 'seal.json'} is corrupt"):
        load_master_key(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, create=True)


def test_describe_source(home):
    assert describe_source(home, {"KEYMGMT_MASTER_KEY": "whatever"}) == \
        f"{ENV_SOURCE} (unusable: KEYMGMT_MASTER_KEY decodes to 6 bytes; expected 32 random bytes)"
    assert describe_source(home, {}).startswith("none yet (the first write creates one in ")
    kr = MemoryKeyring()
    mk = load_master_key(home, {}, create=True, keyring_backend=kr)
    assert describe_source(home, {}, keyring_backend=kr) == mk.source  # the key is really there
    other = home.parent / "other"
    mk = load_master_key(other, {}, create=True, keyring_backend=fail.Keyring(), warn=Warnings())
    assert describe_source(other, {}) == f"file:{other / 'master.key'}"


def test_open_secret_box_creates_on_first_seal_and_reopens(home):
    kr = MemoryKeyring()
    box = open_secret_box(home, {}, keyring_backend=kr)
    assert not home.exists()
    token = box.seal(b"credential", "m1/kms/aws#secret_key")
    assert box.source.startswith("keyring:")
    again = open_secret_box(home, {}, keyring_backend=kr)
    assert again.unseal(token, "m1/kms/aws#secret_key") == b"credential"
    stranger = open_secret_box(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, keyring_backend=kr)
    with pytest.raises(StoreError, match="does not match"):
        stranger.unseal(token, "m1/kms/aws#secret_key")


# -- valid JSON Python will not hold (docjson raises what json raises): one line, never internal ----
_DEEP = "[" * 100_000 + "]" * 100_000


def test_seal_json_nested_too_deeply_is_corrupt_not_an_internal_error(home):
    load_master_key(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, create=True)
    (home / "seal.json").write_text(_DEEP)
    with pytest.raises(StoreError, match=f"{home / 'seal.json'} is corrupt"):
        load_master_key(home, {"KEYMGMT_MASTER_KEY": KEY_B64}, create=True)


def test_a_state_document_nested_too_deeply_is_evidence_of_a_key_not_an_internal_error(home):
    from keymgmt_cli.store.masterkey import sealed_evidence

    (home / "ns").mkdir(parents=True)
    (home / "ns" / "deep.json").write_text(_DEEP)
    assert sealed_evidence(home) == str(home / "ns" / "deep.json")


def test_a_config_file_nested_too_deeply_is_the_config_error(tmp_path):
    from keymgmt_cli.store import setting

    config = tmp_path / "config.json"
    config.write_text(_DEEP)
    with pytest.raises(StoreError, match="is not a JSON object of strings"):
        setting({"KEYMGMT_CONFIG": str(config)}, "storage")


def test_a_seal_record_with_a_non_ascii_check_value_is_refused_on_the_read_path(tmp_path):
    """meta/seal is not MAC'd (its check value proves the key): a non-ASCII one made
    digests.equal raise TypeError on the fast read path, an internal error."""
    from keymgmt_cli.store import cheap_auth_key
    from keymgmt_cli.store.filestore import FileStore

    store = FileStore(tmp_path / "state")
    store.put("meta/seal", {"kind": "env", "kcv": "\u00e9" * 16})
    with pytest.raises(StoreError, match="meta/seal .*corrupt"):
        cheap_auth_key(store, {"KEYMGMT_MASTER_KEY": KEY_B64})
