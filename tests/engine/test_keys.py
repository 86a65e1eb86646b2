"""Key handlers (keys.py): create defaults, immutable fields, min_enabled_version bounds, rotation
and its journal, abandoning a rotation, and the rules for deleting a key."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from keymgmt_cli.engine.routing import Request
from keymgmt_cli.engine.sealing import unseal_material
from keymgmt_cli.errors import InvalidRequest, NotFound, NoValue, PreconditionFailed, ProviderError, StoreError


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def r(engine, path):
    return engine.handle(Request("read", path)).data


def key_doc(engine, name, mount="keymgmt/"):
    m, _ = engine.resolve(mount)
    return engine.store.get(m.doc("keys", name))


class CountingPuts:
    """Records the document ids the engine writes."""

    def __init__(self, engine):
        self.ids = []
        original = engine.store.put

        def put(doc_id, doc):
            self.ids.append(doc_id)
            original(doc_id, doc)

        engine.store.put = put


# -- create ----------------------------------------------------------------------------------------
def test_create_defaults_are_vaults(engine):
    assert w(engine, "keymgmt/key/k").data is None
    data = r(engine, "keymgmt/key/k")
    assert {k: v for k, v in data.items() if k != "keys"} == {
        "deletion_allowed": False, "latest_version": 1, "min_enabled_version": 0, "name": "k", "type": "rsa-2048"}
    assert list(data["keys"]) == ["1"]
    public = load_pem_public_key(data["keys"]["1"]["public_key"].encode())
    assert public.key_size == 2048
    assert "replica_regions" not in data


def test_a_symmetric_key_has_no_public_key_and_its_material_is_sealed(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96", deletion_allowed="true")
    data = r(engine, "keymgmt/key/k")
    assert data["deletion_allowed"] is True and data["keys"]["1"].keys() == {"creation_time"}
    doc = key_doc(engine, "k")
    assert set(doc["versions"]["1"]) == {"creation_time", "material"}  # no "_material" left behind
    material = unseal_material(engine, engine.resolve("keymgmt/")[0], "k", doc, 1)
    assert len(material) == 32
    assert material.hex() not in json.dumps(doc) and material not in json.dumps(doc).encode()


@pytest.mark.parametrize("data,message", [
    ({"type": "aes128-gcm96"}, "invalid type; allowed"),
    ({"type": "rsa-2048", "replica_regions": "us-east-1"}, "replica_regions is supported only for aes256-gcm96"),
    ({"min_enabled_version": "2"}, "min_enabled_version 2 is above the latest version 1"),
    ({"min_enabled_version": "-1"}, "must be at least 0"),
    ({"replica_regions": "us-east-1,not a region"}, "invalid replica_regions \\(an AWS region"),
    ({"deletion_allowed": "maybe"}, "must be a boolean"),
])
def test_create_refusals_write_nothing(engine, data, message):
    with pytest.raises(InvalidRequest, match=message):
        w(engine, "keymgmt/key/k", **data)
    assert engine.store.get("state") is None


@pytest.mark.parametrize("name", ["a.b", "a b", "x" * 201, "é"])
def test_invalid_key_names_are_refused_before_any_write(engine, name):
    with pytest.raises(InvalidRequest, match="invalid key name"):
        w(engine, f"keymgmt/key/{name}", type="aes256-gcm96")
    with pytest.raises(InvalidRequest, match="invalid key name"):
        r(engine, f"keymgmt/key/{name}")
    assert engine.store.get("state") is None


def test_min_enabled_version_one_on_create_is_accepted(engine):
    w(engine, "keymgmt/key/k", type="ecdsa-p256", min_enabled_version=1)
    assert r(engine, "keymgmt/key/k")["min_enabled_version"] == 1


def test_replica_regions_are_kept_in_the_users_order_without_repeats(engine):
    w(engine, "keymgmt/key/mr", type="aes256-gcm96", replica_regions=["eu-west-1,us-east-1", "eu-west-1"])
    assert r(engine, "keymgmt/key/mr")["replica_regions"] == ["eu-west-1", "us-east-1"]


# -- update ----------------------------------------------------------------------------------------
def test_type_and_replica_regions_are_fixed_after_creation(engine):
    w(engine, "keymgmt/key/mr", type="aes256-gcm96", replica_regions="us-east-1")
    before = key_doc(engine, "mr")
    with pytest.raises(InvalidRequest, match=r"type cannot be changed after creation \(key 'mr' is aes256-gcm96\)"):
        w(engine, "keymgmt/key/mr", type="rsa-2048")
    with pytest.raises(InvalidRequest, match="replica_regions cannot be changed"):
        w(engine, "keymgmt/key/mr", replica_regions="us-east-1,eu-west-1")
    assert key_doc(engine, "mr") == before
    w(engine, "keymgmt/key/mr", type="aes256-gcm96", replica_regions="us-east-1")  # the same values: fine
    assert key_doc(engine, "mr") == before


def test_an_update_writes_only_what_changed(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    w(engine, "keymgmt/key/k/rotate")
    puts = CountingPuts(engine)
    w(engine, "keymgmt/key/k", min_enabled_version=0, deletion_allowed=False)
    assert puts.ids == []  # nothing changed, nothing written
    w(engine, "keymgmt/key/k", min_enabled_version=2, deletion_allowed=True)
    assert puts.ids == ["ns/default/keys/k"]
    doc = key_doc(engine, "k")
    assert (doc["min_enabled_version"], doc["deletion_allowed"]) == (2, True)


def test_min_enabled_version_above_latest_is_refused_on_update(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    w(engine, "keymgmt/key/k/rotate")
    with pytest.raises(InvalidRequest, match="min_enabled_version 3 is above the latest version 2"):
        w(engine, "keymgmt/key/k", min_enabled_version=3)
    assert key_doc(engine, "k")["min_enabled_version"] == 0


# -- rotate ----------------------------------------------------------------------------------------
def test_rotate_adds_a_version_with_fresh_material(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    assert w(engine, "keymgmt/key/k/rotate").warnings == []
    w(engine, "keymgmt/key/k/rotate")
    doc = key_doc(engine, "k")
    mount = engine.resolve("keymgmt/")[0]
    assert doc["latest_version"] == 3 and sorted(doc["versions"]) == ["1", "2", "3"]
    assert len({unseal_material(engine, mount, "k", doc, v) for v in (1, 2, 3)}) == 3
    assert "pending" not in doc  # nothing to finish: the key is distributed nowhere
    assert list(r(engine, "keymgmt/key/k")["keys"]) == ["1", "2", "3"]


def test_rotating_a_missing_key_is_not_found_with_a_hint(engine):
    with pytest.raises(NotFound, match="key 'nope' not found in keymgmt/") as caught:
        w(engine, "keymgmt/key/nope/rotate")
    assert caught.value.hint == "create it: keymgmt write keymgmt/key/nope type=aes256-gcm96"
    assert engine.store.get("state") is None


def test_a_failed_rotation_is_journalled_and_the_rerun_finishes_it(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    world.fail_next("GetParametersForImport")
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/key/k/rotate")
    doc = key_doc(eng, "k")
    assert {k: v for k, v in doc["pending"].items() if k != "since"} == {"op": "rotate", "version": 2}
    assert doc["latest_version"] == 2
    world.calls.clear()
    response = w(eng, "keymgmt/key/k/rotate")
    assert response.warnings == ["finished the interrupted rotation to version 2; run rotate again for a new version"]
    assert world.calls == ["GetParametersForImport", "ImportKeyMaterial", "UpdateAlias"]  # no second CreateKey
    doc = key_doc(eng, "k")
    assert "pending" not in doc and doc["latest_version"] == 2


# -- abandon ---------------------------------------------------------------------------------------
def test_abandon_needs_an_unfinished_rotation(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    w(engine, "keymgmt/key/k/rotate")
    with pytest.raises(PreconditionFailed, match="key 'k' has no unfinished rotation to abandon"):
        engine.handle(Request("delete", "keymgmt/key/k/rotate"))
    assert key_doc(engine, "k")["latest_version"] == 2
    with pytest.raises(NotFound):
        engine.handle(Request("delete", "keymgmt/key/nope/rotate"))


def test_abandon_drops_the_version_and_lowers_min_enabled(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    # a rotation that failed at ImportKeyMaterial of version 2, with min_enabled_version moved up to it
    world.fail_next("ImportKeyMaterial")
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/key/k/rotate")
    mount = eng.resolve("keymgmt/")[0]
    doc = key_doc(eng, "k")
    doc["min_enabled_version"] = 2
    eng.store.put(mount.doc("keys", "k"), doc)
    eng.handle(Request("delete", "keymgmt/key/k/rotate"))
    doc = key_doc(eng, "k")
    assert (doc["latest_version"], doc["min_enabled_version"], sorted(doc["versions"])) == (1, 1, ["1"])
    assert "pending" not in doc
    with pytest.raises(PreconditionFailed):  # abandoning twice is refused, not repeated
        eng.handle(Request("delete", "keymgmt/key/k/rotate"))


# -- delete ----------------------------------------------------------------------------------------
def test_delete_needs_deletion_allowed(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    with pytest.raises(PreconditionFailed, match="deletion_allowed is false") as caught:
        engine.handle(Request("delete", "keymgmt/key/k"))
    assert caught.value.hint == "keymgmt write keymgmt/key/k deletion_allowed=true"
    assert key_doc(engine, "k") is not None
    w(engine, "keymgmt/key/k", deletion_allowed=True)
    engine.handle(Request("delete", "keymgmt/key/k"))
    assert key_doc(engine, "k") is None
    engine.handle(Request("delete", "keymgmt/key/k"))  # re-running is safe
    with pytest.raises(NotFound):
        r(engine, "keymgmt/key/k")


def test_delete_is_refused_while_the_key_is_distributed(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/kms/aws2", provider="awskms", key_collection="eu-west-1")
    w(eng, "keymgmt/key/k", type="aes256-gcm96", deletion_allowed=True)
    w(eng, "keymgmt/kms/aws2/key/k", purpose="encrypt")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    world.calls.clear()
    with pytest.raises(PreconditionFailed, match=r"still distributed to KMS provider\(s\) aws1, aws2") as caught:
        eng.handle(Request("delete", "keymgmt/key/k"))
    assert caught.value.hint == "remove it first: keymgmt delete keymgmt/kms/aws1/key/k"
    assert key_doc(eng, "k") is not None and world.calls == []
    for kms in ("aws1", "aws2"):
        eng.handle(Request("delete", f"keymgmt/kms/{kms}/key/k"))
    eng.handle(Request("delete", "keymgmt/key/k"))
    assert key_doc(eng, "k") is None


# -- lists -----------------------------------------------------------------------------------------
def test_list_keys_is_sorted_and_empty_is_no_value(engine):
    with pytest.raises(NoValue, match="^No value found at keymgmt/key$"):
        engine.handle(Request("list", "keymgmt/key"))
    for name in ("b", "a", "C"):
        w(engine, f"keymgmt/key/{name}", type="aes256-gcm96")
    assert engine.handle(Request("list", "keymgmt/key")).data == {"keys": ["C", "a", "b"]}


def test_list_key_kms(aws1_engine):
    eng = aws1_engine
    with pytest.raises(NotFound):
        eng.handle(Request("list", "keymgmt/key/k/kms"))
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    with pytest.raises(NoValue, match="^No value found at keymgmt/key/k/kms$"):
        eng.handle(Request("list", "keymgmt/key/k/kms"))
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert eng.handle(Request("list", "keymgmt/key/k/kms")).data == {"keys": ["aws1"]}


def test_reads_do_not_unseal_so_a_tampered_blob_fails_only_where_it_is_used(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    mount = engine.resolve("keymgmt/")[0]
    doc = key_doc(engine, "k")
    token = doc["versions"]["1"]["material"]
    doc["versions"]["1"]["material"] = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    engine.store.put(mount.doc("keys", "k"), doc)
    assert r(engine, "keymgmt/key/k")["latest_version"] == 1
    with pytest.raises(StoreError, match="cannot unseal"):
        unseal_material(engine, mount, "k", key_doc(engine, "k"), 1)
