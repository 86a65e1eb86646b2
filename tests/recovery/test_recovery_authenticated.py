"""Recovery on the authenticated state (issue 9 x issue 10): snapshots are byte-exact and never of
a tampered state, a forged snapshot document is refused, rekey re-MACs everything under the new
key only and refuses to launder a tampered document, recover verifies the state it recovers."""

from __future__ import annotations

import base64
import json

from keymgmt_cli.store import FileStore, snapshot, snapshotfile
from keymgmt_cli.store.auth import AUTH_FIELD, check_document, derive_auth_key, is_authenticated
from keymgmt_cli.store.snapshot import all_ids
from recovery_support import file_env, km, master_key_of, shares_of


def _state(env):
    for args in (["write", "keymgmt/key/a", "type=aes256-gcm96"],
                 ["write", "keymgmt/key/b", "type=rsa-2048"],
                 ["write", "-f", "keymgmt/key/a/rotate"]):
        code, _, err = km(env, *args)
        assert code == 0, (args, err)


def _raw_docs(home):
    store = FileStore(home)
    return {i: store.get(i) for i in all_ids(store)}


def _portable(docs):
    """The authenticated documents a snapshot carries, byte for byte (MAC tags included); of the
    revision records, the revisions of those documents (the copy's own markers are its own)."""
    out = {}
    for doc_id, doc in docs.items():
        if not is_authenticated(doc_id) or doc_id in snapshot.LOCAL_ONLY:
            continue
        if doc_id.startswith("meta/revisions/"):
            doc = {k: v for k, v in doc["revs"].items() if k not in snapshot.LOCAL_ONLY}
            if not doc:
                continue  # a record made for the copy's markers only
        out[doc_id] = doc
    return out


def _tamper(home, doc_id="ns/default/keys/a"):
    path = home.joinpath(*doc_id.split("/")).with_suffix(".json")
    doc = json.loads(path.read_text())
    doc["deletion_allowed"] = not doc.get("deletion_allowed", False)  # the tag is left as it was
    path.write_text(json.dumps(doc))


def _verified_under(home, key):
    """How many authenticated documents verify under ``key``'s auth key (and none fails)."""
    docs = _raw_docs(home)
    state_id = docs["state"]["state_id"]
    auth = derive_auth_key(key)
    ok = [i for i, d in docs.items() if is_authenticated(i) and check_document(auth, state_id, i, d)]
    return len(ok), sum(1 for i in docs if is_authenticated(i))


def test_a_restored_state_is_a_byte_exact_copy_that_verifies(env, home, tmp_path):
    _state(env)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    _, body, _ = snapshotfile.read(str(file))
    assert any(i.startswith("meta/revisions/") for i in body["documents"])
    assert all(AUTH_FIELD in d for i, d in body["documents"].items() if is_authenticated(i))
    target = tmp_path / "t"
    env2 = file_env(target, KEYMGMT_MASTER_KEY=base64.b64encode(master_key_of(home)).decode())
    code, _, err = km(env2, "operator", "snapshot", "restore", str(file))
    assert code == 0, err
    source, restored = _raw_docs(home), _raw_docs(target)
    assert _portable(restored) == _portable(source)
    # the copy's own identity (a new instance id, its origin) is authenticated under the same key
    count, total = _verified_under(target, master_key_of(home))
    assert count == total and {"meta/instance", "meta/origin"} <= set(restored)
    assert km(env2, "verify")[0] == 0
    assert km(env2, "read", "keymgmt/key/b")[0] == 0
    assert km(env2, "write", "-f", "keymgmt/key/b/rotate")[0] == 0


def test_a_tampered_state_is_never_snapshotted(env, home, tmp_path):
    _state(env)
    _tamper(home)
    file = tmp_path / "s.snap"
    code, out, err = km(env, "operator", "snapshot", "save", str(file))
    assert code == 1 and "ns/default/keys/a" in err and "failed authentication" in err
    assert not file.exists() and len(err.strip().splitlines()) <= 2


def test_a_snapshot_forged_under_the_right_key_cannot_carry_an_edited_document(env, home, tmp_path):
    """The snapshot MAC is under the master key; a holder of the key who edits a document and
    re-MACs the file still meets the document's own MAC."""
    _state(env)
    file = tmp_path / "s.snap"
    assert km(env, "operator", "snapshot", "save", str(file))[0] == 0
    key = master_key_of(home)
    _, body, _ = snapshotfile.read(str(file))
    for edit in ("flip", "untag"):
        forged = json.loads(json.dumps(body))
        doc = forged["documents"]["ns/default/keys/a"]
        if edit == "flip":
            doc["deletion_allowed"] = True
        else:
            del doc[AUTH_FIELD]
        (tmp_path / "forged.snap").write_bytes(snapshotfile.encode(forged, key))
        target = tmp_path / f"t-{edit}"
        env2 = file_env(target, KEYMGMT_MASTER_KEY=base64.b64encode(key).decode())
        code, _, err = km(env2, "operator", "snapshot", "restore", str(tmp_path / "forged.snap"))
        assert code == 2 and "ns/default/keys/a" in err and "nothing was restored" in err, err
        assert not (target / "state.json").exists()


def test_after_rekey_every_document_verifies_under_the_new_key_only(env, home):
    _state(env)
    old = master_key_of(home)
    assert _verified_under(home, old)[0] == _verified_under(home, old)[1] > 5
    revisions_before = {i: d[AUTH_FIELD]["rev"] for i, d in _raw_docs(home).items() if is_authenticated(i)}
    code, _, err = km(env, "operator", "rekey")
    assert code == 0, err
    new = master_key_of(home)
    good, total = _verified_under(home, new)
    assert good == total == len(revisions_before)
    assert _verified_under(home, old)[0] == 0
    # same revisions: the rollback records still hold
    assert {i: d[AUTH_FIELD]["rev"] for i, d in _raw_docs(home).items() if is_authenticated(i)} == revisions_before
    assert km(env, "verify")[0] == 0 and km(env, "read", "keymgmt/key/a")[0] == 0
    # the file audit trail beside the state was re-linked under the new key: audited writes work
    code, out, err = km(env, "audit", "verify")
    assert code == 0 and "audit trail whole" in out, out + err
    code, _, err = km(env, "write", "-f", "keymgmt/key/a/rotate")
    assert code == 0, err
    assert km(env, "audit", "verify")[0] == 0


def test_relinking_the_file_trail_again_changes_nothing_and_a_foreign_record_stops_it(env, home):
    import pytest

    from keymgmt_cli.errors import StoreError
    from keymgmt_cli.store import rekey_trail as rekey

    _state(env)
    old = master_key_of(home)
    assert km(env, "operator", "rekey")[0] == 0
    new = master_key_of(home)
    trail = home.parent / (home.name + ".audit")
    before = {p.name: p.read_bytes() for p in trail.iterdir() if not p.name.startswith(".")}
    assert rekey.relink_file_trail(FileStore(home), env, old, new) == 0  # a re-run: all done
    assert {p.name: p.read_bytes() for p in trail.iterdir() if not p.name.startswith(".")} == before
    segment = sorted(trail.glob("trail-*.jsonl"))[0]
    lines = segment.read_bytes().split(b"\n")
    record = json.loads(lines[0])
    record["keymgmt"]["mac"] = "0" * 64  # under neither key
    segment.write_bytes(b"\n".join([json.dumps(record, sort_keys=True).encode()] + lines[1:]))
    with pytest.raises(StoreError, match="neither the old nor"):
        rekey.relink_file_trail(FileStore(home), env, old, new)


def test_rekey_refuses_a_tampered_state_before_changing_anything(env, home):
    _state(env)
    _tamper(home, "ns/default/keys/b")
    key_before = master_key_of(home)
    docs_before = _raw_docs(home)
    code, out, err = km(env, "operator", "rekey")
    assert code == 1 and "ns/default/keys/b" in err and out == ""
    assert not (home / "meta" / "rekey.json").exists()
    assert master_key_of(home) == key_before and _raw_docs(home) == docs_before


def test_recover_refuses_a_state_document_that_fails_under_the_rebuilt_key(env, home):
    _state(env)
    shares = shares_of(km(env, "operator", "escrow", "-key-shares=3", "-key-threshold=2")[1])
    (home / "master.key").unlink()
    path = home / "state.json"
    doc = json.loads(path.read_text())
    doc["mounts"]["keymgmt/"]["description"] = "edited"
    path.write_text(json.dumps(doc))
    code, out, err = km(env, "operator", "recover", input="\n".join(shares[:2]))
    assert code == 1 and "state" in err and "failed authentication" in err and out == ""
    assert not (home / "master.key").exists()
