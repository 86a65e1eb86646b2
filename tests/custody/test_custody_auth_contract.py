"""The store contract of tests/store, unchanged, through AuthStore around the file, memory and
DynamoDB (moto in-process) stores; plus what the wrapper adds, on each of them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dynamo"))  # dynamo_support
from support.store_contract import StoreContract  # noqa: E402

from keymgmt_cli.errors import StoreError  # noqa: E402
from keymgmt_cli.store.auth import AUTH_FIELD, AuthStore, derive_auth_key  # noqa: E402
from keymgmt_cli.store.filestore import FileStore  # noqa: E402
from keymgmt_cli.store.memory import MemoryStore  # noqa: E402

KEY = derive_auth_key(os.urandom(32))


@pytest.fixture(params=["file", "memory", "dynamodb"])
def raw(request, tmp_path, monkeypatch):
    if request.param == "file":
        yield FileStore(tmp_path / "home")
    elif request.param == "memory":
        yield MemoryStore()
    else:
        moto = pytest.importorskip("moto")
        from dynamo_support import REGION, aws_test_credentials, serial_dynamodb_client

        from keymgmt_cli.store.dynamostore import DynamoStore

        aws_test_credentials(monkeypatch)
        with moto.mock_aws():
            s = DynamoStore("keymgmt-auth", REGION, home=tmp_path / "home", client=serial_dynamodb_client())
            s.ensure_table()
            yield s


@pytest.fixture
def store(raw):
    return AuthStore(raw, lambda: KEY)


def _fresh(raw):
    """A second view of the same backend (a new process), so nothing is cached."""
    if isinstance(raw, FileStore):
        return FileStore(raw.home)
    if isinstance(raw, MemoryStore):
        return raw
    from keymgmt_cli.store.dynamostore import DynamoStore

    return DynamoStore(raw.table, raw.region, home=raw.home)


class TestAuthStoreContract(StoreContract):
    """Every contract test, through the wrapped ``store`` fixture above."""


# -- what the wrapper adds -----------------------------------------------------------------------
def _state(store, state_id="s-one"):
    store.put("state", {"format": 1, "state_id": state_id, "mounts": {}})


def test_documents_are_stored_with_a_tag_and_read_without(store, raw):
    _state(store)
    store.put("ns/default/keys/k1", {"deletion_allowed": False})
    assert AUTH_FIELD in raw.get("ns/default/keys/k1")
    assert AuthStore(_fresh(raw), lambda: KEY).get("ns/default/keys/k1") == {"deletion_allowed": False}


def test_a_hand_edited_field_is_refused(store, raw):
    _state(store)
    store.put("ns/default/keys/k1", {"deletion_allowed": False})
    other = _fresh(raw)
    doc = other.get("ns/default/keys/k1")
    doc["deletion_allowed"] = True  # the tag kept: as PutItem by someone without the key would
    other.put("ns/default/keys/k1", doc)
    with pytest.raises(StoreError, match=r"ns/default/keys/k1 .*failed authentication"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/keys/k1")


def test_a_document_moved_to_another_id_is_refused(store, raw):
    _state(store)
    store.put("ns/default/kms/a", {"region": "us-west-1"})
    other = _fresh(raw)
    other.put("ns/default/kms/b", other.get("ns/default/kms/a"))
    with pytest.raises(StoreError, match=r"ns/default/kms/b .*failed authentication"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/kms/b")


def test_a_document_from_another_state_with_the_same_key_is_refused(store, raw, tmp_path):
    _state(store, "state-b")
    elsewhere = AuthStore(MemoryStore(), lambda: KEY)
    _state(elsewhere, "state-a")
    elsewhere.put("ns/default/dist/aws/k1", {"key_ids": ["attacker-chosen"]})
    copied = elsewhere.inner.get("ns/default/dist/aws/k1")
    _fresh(raw).put("ns/default/dist/aws/k1", copied)
    with pytest.raises(StoreError, match=r"ns/default/dist/aws/k1 .*failed authentication"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/dist/aws/k1")


def test_an_older_copy_put_back_is_refused(store, raw):
    _state(store)
    store.put("ns/default/keys/k1", {"deletion_allowed": True, "n": 1})
    old = _fresh(raw).get("ns/default/keys/k1")
    store.put("ns/default/keys/k1", {"deletion_allowed": False, "n": 2})
    _fresh(raw).get("ns/default/keys/k1")  # DynamoDB: a write needs the version read
    back = _fresh(raw)
    back.get("ns/default/keys/k1")
    back.put("ns/default/keys/k1", old)
    with pytest.raises(StoreError, match=r"ns/default/keys/k1 .*older copy.*revision 1.*revision 2"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/keys/k1")


def test_a_deleted_document_put_back_is_refused(store, raw):
    _state(store)
    store.put("ns/default/kms/aws", {"n": 1})
    old = _fresh(raw).get("ns/default/kms/aws")
    assert store.delete("ns/default/kms/aws")
    store.put("ns/default/kms/aws", {"n": 2})  # re-created: revision above the deleted one
    assert store.delete("ns/default/kms/aws")
    _fresh(raw).put("ns/default/kms/aws", old)
    with pytest.raises(StoreError, match="older copy"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/kms/aws")


def test_an_unauthenticated_document_is_refused_with_the_upgrade_hint(store, raw):
    _state(store)
    _fresh(raw).put("ns/default/keys/planted", {"deletion_allowed": True})
    with pytest.raises(StoreError, match="not authenticated") as err:
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/keys/planted")
    assert "operator upgrade" in err.value.hint
    # even without a key at hand (the fast read path), a document without a tag is refused
    with pytest.raises(StoreError, match="not authenticated"):
        AuthStore(_fresh(raw), lambda: None).get("ns/default/keys/planted")


def test_another_master_key_is_refused(store, raw):
    _state(store)
    store.put("ns/default/keys/k1", {"n": 1})
    with pytest.raises(StoreError, match="failed authentication"):
        AuthStore(_fresh(raw), lambda: derive_auth_key(os.urandom(32))).get("ns/default/keys/k1")


def test_a_tampered_revision_record_is_refused(store, raw):
    _state(store)
    store.put("ns/default/keys/k1", {"n": 1})
    other = _fresh(raw)
    record_ids = [f"meta/revisions/{h}" for h in "0123456789abcdef"]
    record_id = next(r for r in record_ids if other.get(r) and "ns/default/keys/k1" in other.get(r)["revs"])
    record = other.get(record_id)
    record["revs"]["ns/default/keys/k1"] = 0
    other.put(record_id, record)
    with pytest.raises(StoreError, match=f"revision record {record_id} .*failed authentication"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/keys/k1")


def test_without_a_key_nothing_is_written(store, raw):
    with pytest.raises(StoreError, match="no master key"):
        AuthStore(raw, lambda: None).put("state", {"state_id": "x"})


# -- tags and records whose text is valid JSON but that no MAC can be computed or compared for ------
def _file_state(tmp_path):
    raw = FileStore(tmp_path / "home")
    store = AuthStore(raw, lambda: KEY)
    _state(store)
    store.put("ns/default/keys/k1", {"n": 1})
    return raw


def _rewrite(raw, doc_id, change):
    import json

    path = raw._doc_path(doc_id)
    with open(path) as f:
        doc = json.load(f)
    change(doc)
    with open(path, "w") as f:
        f.write(json.dumps(doc))  # allow_nan: NaN and Infinity, which json.loads reads back


def test_a_mac_of_non_ascii_characters_is_refused_as_tampering(tmp_path):
    """hmac.compare_digest (and digests.equal) raise TypeError for a non-ASCII str: a forged tag
    of 64 such characters made the command an internal error instead of naming the document."""
    from keymgmt_cli.store.auth import check_document

    raw = _file_state(tmp_path)
    _rewrite(raw, "ns/default/keys/k1", lambda d: d[AUTH_FIELD].update(mac="\u00e9" * 64))
    with pytest.raises(StoreError, match=r"ns/default/keys/k1 .*(failed authentication|malformed)"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/keys/k1")
    state_id = _fresh(raw).get("state")["state_id"]
    assert check_document(KEY, state_id, "ns/default/keys/k1", _fresh(raw).get("ns/default/keys/k1")) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_revision_record_holding_nan_or_infinity_is_refused_as_tampering(tmp_path, value):
    """Its canonical JSON cannot be written (allow_nan=False): the ValueError escaped _read_record
    as an internal error, while a document holding one is refused by name."""
    raw = _file_state(tmp_path)
    record_id = next(r for r in (f"meta/revisions/{h}" for h in "0123456789abcdef")
                     if raw.get(r) and "ns/default/keys/k1" in raw.get(r)["revs"])
    _rewrite(raw, record_id, lambda d: d.update(extra=value))
    with pytest.raises(StoreError, match=f"revision record {record_id} .*failed authentication"):
        AuthStore(_fresh(raw), lambda: KEY).get("ns/default/keys/k1")
