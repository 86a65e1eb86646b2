"""operator escrow and recover on the file store: shares, checks, and recovery after a lost key."""

from __future__ import annotations

import base64
import itertools
import json
import random

import pytest

from keymgmt_cli.store import escrow
from recovery_support import assert_absent, km, master_key_of, shares_of, tree_text


def _state(env, name="k1"):
    code, _, err = km(env, "write", f"keymgmt/key/{name}", "type=aes256-gcm96")
    assert code == 0, err


# -- the sharing itself ------------------------------------------------------------------------


@pytest.mark.parametrize("shares,threshold", [(1, 1), (2, 2), (3, 2), (5, 3), (7, 7)])
def test_every_threshold_subset_rebuilds_the_key_and_fewer_do_not(shares, threshold):
    key = random.randbytes(32)
    _, texts = escrow.split(key, shares, threshold, "state-a")
    for subset in itertools.combinations(texts, threshold):
        assert escrow.combine(list(subset), "state-a") == key
    if threshold > 1:
        with pytest.raises(escrow.ShareError, match=f"needs {threshold}"):
            escrow.combine(texts[: threshold - 1], "state-a")


def test_every_single_character_change_is_reported_as_a_mistyped_share():
    key = random.randbytes(32)
    _, texts = escrow.split(key, 3, 2, "state-a")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    share = texts[0]
    for i, ch in enumerate(share.rstrip("=")):
        other = alphabet[(alphabet.index(ch) + 1 + i) % 64]
        typo = share[:i] + other + share[i + 1:]
        with pytest.raises(escrow.ShareError, match="share 1 is mistyped"):
            escrow.combine([typo, texts[1]], "state-a")
    for broken in (share[:-2], share + "AAAA", share[:5] + "-" + share[6:], "not a share", " "):
        with pytest.raises(escrow.ShareError, match="share 1 (is mistyped|is empty)"):
            escrow.combine([broken, texts[1]], "state-a")


def test_shares_of_another_state_or_another_escrow_are_named_as_such():
    key = random.randbytes(32)
    _, mine = escrow.split(key, 3, 2, "state-a")
    _, again = escrow.split(key, 3, 2, "state-a")
    _, theirs = escrow.split(key, 3, 2, "state-b")
    with pytest.raises(escrow.ShareError, match="share 2 belongs to another state"):
        escrow.combine([mine[0], theirs[1]], "state-a")
    with pytest.raises(escrow.ShareError, match="share 2 belongs to another escrow"):
        escrow.combine([mine[0], again[1]], "state-a")
    with pytest.raises(escrow.ShareError, match="1 distinct share"):
        escrow.combine([mine[0], mine[0]], "state-a")  # the same share twice counts once
    assert escrow.combine([mine[0], mine[0], mine[2]], "state-a") == key


def test_a_share_never_shows_its_value_in_a_repr():
    share = escrow.decode_share(escrow.split(random.randbytes(32), 2, 2, "s")[1][0], 1)
    assert share.y.hex() not in repr(share) and str(share.y) not in repr(share)


# -- the commands --------------------------------------------------------------------------------


def test_escrow_prints_vault_shapes_and_status_reports_it(env, home):
    _state(env)
    code, out, err = km(env, "operator", "escrow", "-key-shares=5", "-key-threshold=3")
    assert code == 0, err
    shares = shares_of(out)
    assert len(shares) == 5 and [line.split(":")[0] for line in out.splitlines()[:5]] == [
        f"Unseal Key {n}" for n in range(1, 6)]
    code, out, _ = km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2", "-format=json")
    data = json.loads(out)
    assert code == 0 and set(data) == {"unseal_keys_b64", "unseal_shares", "unseal_threshold"}
    assert (len(data["unseal_keys_b64"]), data["unseal_shares"], data["unseal_threshold"]) == (3, 3, 2)
    code, status, _ = km(env, "status")
    assert code == 0
    assert "Escrow:      3 shares, threshold 2, made 20" in status
    assert json.loads(km(env, "status", "-format=json")[1])["escrow"].startswith("3 shares, threshold 2")
    # nothing of a share, nor the key, in the state or in status
    key = master_key_of(home)
    state = tree_text(home).replace((home / "master.key").read_bytes(), b"")
    assert_absent(state + status.encode(), [key], shares + data["unseal_keys_b64"])


@pytest.mark.parametrize("args", [["-key-shares=3", "-key-threshold=4"], ["-key-shares=0"],
                                  ["-key-shares=3", "-key-threshold=1"], ["-key-shares=256"]])
def test_bad_counts_are_usage_errors_and_write_nothing(env, home, args):
    _state(env)
    code, out, err = km(env, "operator", "escrow", *args)
    assert code == 1 and out == "" and err.startswith("Error: ") and len(err.splitlines()) == 1
    assert not (home / "meta" / "escrow.json").exists()


def test_status_without_escrow_says_so(env):
    _state(env)
    assert "Escrow:      none (run 'keymgmt operator escrow" in km(env, "status")[1]


def test_escrow_of_a_fresh_state_creates_it(env, home):
    code, out, err = km(env, "operator", "escrow", "-key-shares=2", "-key-threshold=2")
    assert code == 0, err
    assert len(shares_of(out)) == 2 and (home / "state.json").exists()


def _lose_key(home):
    key = master_key_of(home)
    (home / "master.key").unlink()
    return key


def test_recover_with_exactly_the_threshold_then_the_state_works(env, home):
    _state(env)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=5", "-key-threshold=3")[1])
    key = _lose_key(home)
    code, _, err = km(env, "write", "-f", "keymgmt/key/k1/rotate")
    assert code == 2 and "no master key" in err
    chosen = random.sample(shares, 3)
    code, out, err = km(env, "operator", "recover", input="\n".join(chosen) + "\n")
    assert code == 0, err
    assert f"file:{home / 'master.key'}" in out
    assert master_key_of(home) == key and (home / "master.key").stat().st_mode & 0o777 == 0o600
    assert km(env, "write", "-f", "keymgmt/key/k1/rotate")[0] == 0
    assert_absent(out + err, [key], shares)


@pytest.mark.parametrize("case", ["fewer", "typo", "other-state", "duplicate"])
def test_recover_refuses_with_one_line_exit_2_and_writes_nothing(env, home, tmp_path, case):
    _state(env)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    other_env = dict(env, KEYMGMT_HOME=str(tmp_path / "other"))
    _state(other_env)
    theirs = shares_of(km(other_env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    _lose_key(home)
    given = {"fewer": shares[:1], "typo": [shares[0][:10] + ("B" if shares[0][10] != "B" else "C")
                                           + shares[0][11:], shares[1]],
             "other-state": [shares[0], theirs[1]], "duplicate": [shares[0], shares[0]]}[case]
    code, out, err = km(env, "operator", "recover", input="\n".join(given) + "\n")
    assert code == 2 and out == ""
    assert len(err.splitlines()) <= 2 and err.startswith("Error: "), err  # the line (and a hint)
    assert {"fewer": "needs 2", "typo": "mistyped", "other-state": "another state",
            "duplicate": "needs 2"}[case] in err
    assert not (home / "master.key").exists()
    assert_absent(err, [], shares + theirs)


def test_recover_print_writes_only_stdout(env, home):
    _state(env)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    key = _lose_key(home)
    code, out, err = km(env, "operator", "recover", "-print", input="\n".join(shares[1:]))
    assert code == 0 and out == base64.b64encode(key).decode() + "\n" and err == ""
    assert not (home / "master.key").exists()
    assert km(dict(env, KEYMGMT_MASTER_KEY=out.strip()), "write", "-f", "keymgmt/key/k1/rotate")[0] == 0


def test_recover_refuses_a_key_that_does_not_open_the_state(env, home):
    _state(env)
    km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")
    key = random.randbytes(32)  # shares made with the right tag, for a key that is not this state's
    state_id = json.loads((home / "state.json").read_text())["state_id"]
    _, forged = escrow.split(key, 3, 2, state_id)
    _lose_key(home)
    code, out, err = km(env, "operator", "recover", input="\n".join(forged[:2]))
    assert code == 2 and "does not open the state" in err and not (home / "master.key").exists()


def test_recover_does_not_overwrite_another_key_in_the_source(env, home):
    _state(env)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    _lose_key(home)
    (home / "master.key").write_text(base64.b64encode(random.randbytes(32)).decode() + "\n")
    before = (home / "master.key").read_bytes()
    code, _, err = km(env, "operator", "recover", input="\n".join(shares[:2]))
    assert code == 2 and "holds another master key" in err
    assert (home / "master.key").read_bytes() == before


class _MemoryKeyring:
    """A usable keyring backend kept in a dict."""

    def __new__(cls):
        from keyring.backend import KeyringBackend

        class Backend(KeyringBackend):
            priority = 10

            def __init__(self):
                super().__init__()
                self.items = {}

            def get_password(self, service, username):
                return self.items.get((service, username))

            def set_password(self, service, username, password):
                self.items[(service, username)] = password

            def delete_password(self, service, username):
                self.items.pop((service, username), None)

        return Backend()


def test_recover_puts_the_key_back_into_a_usable_keyring(env, home):
    import keyring

    backend = _MemoryKeyring()
    keyring.set_keyring(backend)
    _state(env)
    assert not (home / "master.key").exists()
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    (text,) = backend.items.values()
    backend.items.clear()  # the keyring was wiped
    assert km(env, "write", "-f", "keymgmt/key/k1/rotate")[0] == 2  # a failed request: exit 2, as Vault's CLI (cli/verbs.py)
    code, out, err = km(env, "operator", "recover", input="\n".join(shares[:2]))
    assert code == 0 and "keyring:" in out, err
    assert list(backend.items.values()) == [text] and not (home / "master.key").exists()
    assert km(env, "write", "-f", "keymgmt/key/k1/rotate")[0] == 0
