"""Material sealing (sealing.py): each version's material is bound to its location, so a sealed
blob copied to another version, key or mount of the state does not unseal, and a tampered state
stops a distribution before any AWS call."""

from __future__ import annotations

import base64
import json

import pytest

from keymgmt_cli.engine.mounts import Mount
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.engine.sealing import material_aad, seal_version, unseal_all, unseal_material
from keymgmt_cli.errors import StoreError


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def key_doc(engine, name, mount="keymgmt/"):
    return engine.store.get(engine.resolve(mount)[0].doc("keys", name))


def put_key_doc(engine, name, doc, mount="keymgmt/"):
    engine.store.put(engine.resolve(mount)[0].doc("keys", name), doc)


def test_the_aad_names_mount_uuid_key_and_version():
    assert material_aad(Mount("team/", "u1"), "k", 2) == "ns/u1/keys/k#versions/2/material"
    assert material_aad(Mount("team/", "u1"), "k", "2") == material_aad(Mount("other/", "u1"), "k", 2)


def test_seal_version_replaces_the_plaintext_and_round_trips(engine):
    mount = Mount("keymgmt/", "default")
    material = bytes(range(32))
    version = seal_version(engine, mount, "k", 3, {"creation_time": "t", "_material": material})
    assert set(version) == {"creation_time", "material"}
    encoded = json.dumps(version)
    assert material.hex() not in encoded and base64.b64encode(material).decode() not in encoded
    doc = {"name": "k", "versions": {"3": version}}
    assert unseal_material(engine, mount, "k", doc, 3) == material
    assert unseal_all(engine, mount, doc) == {3: material}


def test_a_blob_moved_to_another_version_does_not_unseal(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    w(engine, "keymgmt/key/k/rotate")
    doc = key_doc(engine, "k")
    doc["versions"]["2"]["material"] = doc["versions"]["1"]["material"]
    put_key_doc(engine, "k", doc)
    mount = engine.resolve("keymgmt/")[0]
    assert len(unseal_material(engine, mount, "k", key_doc(engine, "k"), 1)) == 32
    with pytest.raises(StoreError, match=r"cannot unseal ns/default/keys/k#versions/2/material"):
        unseal_material(engine, mount, "k", key_doc(engine, "k"), 2)


def test_a_blob_moved_to_another_key_does_not_unseal(engine):
    w(engine, "keymgmt/key/a", type="aes256-gcm96")
    w(engine, "keymgmt/key/b", type="aes256-gcm96")
    doc = key_doc(engine, "b")
    doc["versions"]["1"]["material"] = key_doc(engine, "a")["versions"]["1"]["material"]
    put_key_doc(engine, "b", doc)
    with pytest.raises(StoreError, match="wrong master key or tampered state"):
        unseal_all(engine, engine.resolve("keymgmt/")[0], key_doc(engine, "b"))


def test_a_key_document_copied_to_another_mount_does_not_unseal(engine):
    engine.enable_mount("keymgmt", "team")
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    put_key_doc(engine, "k", key_doc(engine, "k"), mount="team/")
    team = engine.resolve("team/")[0]
    assert engine.handle(Request("read", "team/key/k")).data["latest_version"] == 1  # reads do not unseal
    with pytest.raises(StoreError):
        unseal_all(engine, team, key_doc(engine, "k", mount="team/"))


@pytest.mark.parametrize("token", ["", "not a token", None, 42])
def test_what_is_not_a_sealed_value_is_refused_without_echo(engine, token):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    doc = key_doc(engine, "k")
    doc["versions"]["1"]["material"] = token
    with pytest.raises(StoreError, match="not a sealed value") as caught:
        unseal_material(engine, engine.resolve("keymgmt/")[0], "k", doc, 1)
    assert "not a token" not in str(caught.value)


def test_a_tampered_state_stops_a_distribution_before_any_aws_call(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/key/k/rotate")
    doc = key_doc(eng, "k")
    doc["versions"]["1"], doc["versions"]["2"] = doc["versions"]["2"], doc["versions"]["1"]
    put_key_doc(eng, "k", doc)
    with pytest.raises(StoreError):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    assert world.calls == [] and world.all_keys() == []


def test_another_master_key_does_not_unseal(engine):
    from twins import memory_secret_box

    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    engine.secrets = memory_secret_box()
    with pytest.raises(StoreError, match="wrong master key"):
        unseal_all(engine, engine.resolve("keymgmt/")[0], key_doc(engine, "k"))
