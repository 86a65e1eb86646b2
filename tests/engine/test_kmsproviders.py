"""KMS provider handlers (kmsproviders.py): creation and its required fields, credentials sealed
and never returned, immutable fields, credential validation, and deletion rules."""

from __future__ import annotations

import pytest

from keymgmt_cli.engine import kmsproviders
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import InvalidRequest, NotFound, NoValue, PreconditionFailed, StoreError

ACCESS = "AKIAQWERTYUIOPASDFGH"
SECRET = "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"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN0123"


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def provider_doc(engine, name):
    return engine.store.get(engine.resolve("keymgmt/")[0].doc("kms", name))


def stored_bytes(engine) -> bytes:
    return b"".join(engine.store._docs.values())


def creds(**extra):
    return [f"access_key={ACCESS}", f"secret_key={SECRET}"] + [f"{k}={v}" for k, v in extra.items()]


def test_create_and_read(engine):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
    assert engine.handle(Request("read", "keymgmt/kms/aws1")).data == \
        {"key_collection": "us-west-1", "provider": "awskms"}
    doc = provider_doc(engine, "aws1")
    assert (doc["credentials"], doc["credential_keys"]) == (None, [])
    config = kmsproviders.provider_config(engine, engine.resolve("keymgmt/")[0], doc)
    assert (config.region, config.access_key, config.secret_key, config.endpoint) == ("us-west-1", None, None, None)


@pytest.mark.parametrize("data,message", [
    ({"key_collection": "us-west-1"}, "missing required field 'provider'"),
    ({"provider": "awskms"}, "missing required field 'key_collection'"),
    ({"provider": "gcpckms", "key_collection": "us-west-1"}, "invalid provider; allowed: awskms"),
    ({"provider": "awskms", "key_collection": "US-WEST-1"}, "invalid key_collection"),
    ({"provider": "awskms", "key_collection": "us-west-1\n"}, "invalid key_collection"),
    ({"provider": "awskms", "key_collection": "us-west-1", "credentials": "region=x"}, "unknown credentials key"),
])
def test_create_refusals_write_nothing(engine, data, message):
    with pytest.raises(InvalidRequest, match=message):
        w(engine, "keymgmt/kms/aws1", **data)
    assert engine.store.get("state") is None


def test_credentials_are_sealed_and_never_read_back(engine):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1",
      credentials=creds(session_token=TOKEN, endpoint="http://127.0.0.1:4566"))
    data = engine.handle(Request("read", "keymgmt/kms/aws1")).data
    assert data == {"key_collection": "us-west-1", "provider": "awskms",  # names of keys, never values
                    "credential_keys": ["access_key", "endpoint", "secret_key", "session_token"]}
    raw = stored_bytes(engine)
    for secret in (ACCESS, SECRET, TOKEN, "127.0.0.1:4566"):
        assert secret.encode() not in raw
    doc = provider_doc(engine, "aws1")
    assert doc["credential_keys"] == ["access_key", "endpoint", "secret_key", "session_token"]
    config = kmsproviders.provider_config(engine, engine.resolve("keymgmt/")[0], doc)
    assert (config.access_key, config.secret_key, config.session_token, config.endpoint) == \
        (ACCESS, SECRET, TOKEN, "http://127.0.0.1:4566")
    assert kmsproviders.provider_config(engine, engine.resolve("keymgmt/")[0], doc, region="eu-west-1").region == \
        "eu-west-1"


def test_credentials_can_be_replaced_and_cleared_without_touching_the_rest(engine):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1", credentials=creds())
    created = provider_doc(engine, "aws1")["created"]
    w(engine, "keymgmt/kms/aws1", credentials=[f"access_key={ACCESS}", "secret_key=other"])
    mount = engine.resolve("keymgmt/")[0]
    assert kmsproviders.provider_config(engine, mount, provider_doc(engine, "aws1")).secret_key == "other"
    engine.handle(Request("write", "keymgmt/kms/aws1", {"credentials": {}}))
    doc = provider_doc(engine, "aws1")
    assert (doc["credentials"], doc["credential_keys"], doc["created"]) == (None, [], created)
    assert doc["key_collection"] == "us-west-1"


def test_an_update_without_credentials_keeps_them(engine):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1", credentials=creds())
    sealed = provider_doc(engine, "aws1")["credentials"]
    w(engine, "keymgmt/kms/aws1", provider="awskms")
    assert provider_doc(engine, "aws1")["credentials"] == sealed


@pytest.mark.parametrize("field,value,message", [
    ("key_collection", "eu-west-1", "key_collection cannot be changed after creation (KMS provider 'aws1' has "
                                    "us-west-1)"),
    ("provider", "gcpckms", "invalid provider; allowed: awskms"),  # awskms is the only one today
])
def test_provider_and_key_collection_are_fixed_after_creation(engine, field, value, message):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
    before = provider_doc(engine, "aws1")
    with pytest.raises(InvalidRequest) as caught:
        w(engine, "keymgmt/kms/aws1", **{field: value})
    assert str(caught.value) == message
    assert provider_doc(engine, "aws1") == before
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")  # the same values: fine
    assert provider_doc(engine, "aws1") == before


@pytest.mark.parametrize("given,message", [
    ([f"access_key={ACCESS}"], "need both access_key and secret_key"),
    ([f"secret_key={SECRET}"], "need both access_key and secret_key"),
    ([f"session_token={TOKEN}"], "session_token needs access_key and secret_key"),
    ([f"access_key={ACCESS}", "secret_key="], "need both access_key and secret_key"),  # KEY= removes KEY
    ([f"access_key={ACCESS}", f"secret_key={SECRET} "], "credentials secret_key is empty or contains whitespace"),
    ([f"access_key={ACCESS}\n", f"secret_key={SECRET}"], "credentials access_key is empty or contains whitespace"),
    (creds(session_token=f"{TOKEN}\t"), "credentials session_token is empty or contains whitespace"),
    (creds(endpoint="file:///etc/passwd"), "is not an http(s) URL"),
    (creds(endpoint="ftp://127.0.0.1"), "is not an http(s) URL"),
    (creds(endpoint="http://127.0.0.1:4566 extra"), "is not an http(s) URL"),
    (creds(access_key="again"), "credentials key 'access_key' given twice"),
])
def test_credential_validation_refuses_without_echoing_secrets(engine, given, message):
    with pytest.raises(InvalidRequest) as caught:
        w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1", credentials=given)
    assert message in str(caught.value)
    for secret in (SECRET, TOKEN):
        assert secret not in str(caught.value) and secret not in (caught.value.hint or "")
    assert engine.store.get("state") is None


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4566", "https://kms.us-west-1.amazonaws.com/",
                                      "http://[::1]:4566/path"])
def test_http_endpoints_are_accepted(engine, endpoint):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1", credentials=creds(endpoint=endpoint))
    doc = provider_doc(engine, "aws1")
    assert kmsproviders.provider_config(engine, engine.resolve("keymgmt/")[0], doc).endpoint == endpoint


def test_credentials_moved_to_another_provider_do_not_unseal(engine):
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1", credentials=creds())
    w(engine, "keymgmt/kms/aws2", provider="awskms", key_collection="us-west-1")
    mount = engine.resolve("keymgmt/")[0]
    stolen = provider_doc(engine, "aws2")
    stolen["credentials"] = provider_doc(engine, "aws1")["credentials"]
    engine.store.put(mount.doc("kms", "aws2"), stolen)
    with pytest.raises(StoreError, match="cannot unseal") as caught:
        kmsproviders.provider_config(engine, mount, provider_doc(engine, "aws2"))
    assert SECRET not in str(caught.value) and stolen["credentials"] not in str(caught.value)


def test_list_and_load(engine):
    with pytest.raises(NoValue, match="^No value found at keymgmt/kms$"):
        engine.handle(Request("list", "keymgmt/kms"))
    with pytest.raises(NotFound, match="KMS provider 'aws9' not found in keymgmt/") as caught:
        engine.handle(Request("read", "keymgmt/kms/aws9"))
    assert "keymgmt write keymgmt/kms/aws9 provider=awskms" in caught.value.hint
    for name in ("b", "a"):
        w(engine, f"keymgmt/kms/{name}", provider="awskms", key_collection="us-west-1")
    assert engine.handle(Request("list", "keymgmt/kms")).data == {"keys": ["a", "b"]}
    with pytest.raises(InvalidRequest, match="invalid KMS provider name"):
        engine.handle(Request("read", "keymgmt/kms/a.b"))


def test_delete_is_refused_while_keys_are_distributed(aws1_engine, world):
    eng = aws1_engine
    for name in ("k1", "k2"):
        w(eng, f"keymgmt/key/{name}", type="aes256-gcm96")
        w(eng, f"keymgmt/kms/aws1/key/{name}", purpose="encrypt")
    world.calls.clear()
    with pytest.raises(PreconditionFailed, match="KMS provider 'aws1' still holds distributed keys: k1, k2") as caught:
        eng.handle(Request("delete", "keymgmt/kms/aws1"))
    assert caught.value.hint == "remove them first: keymgmt delete keymgmt/kms/aws1/key/k1"
    assert provider_doc(eng, "aws1") is not None and world.calls == []
    for name in ("k1", "k2"):
        eng.handle(Request("delete", f"keymgmt/kms/aws1/key/{name}"))
    eng.handle(Request("delete", "keymgmt/kms/aws1"))
    assert provider_doc(eng, "aws1") is None
    eng.handle(Request("delete", "keymgmt/kms/aws1"))  # re-running is safe
