"""The credentials map beyond access keys (issue 16 item 5): which combinations are refused, how an
update merges by key (and says so in a warning), what `read` shows (key names and the source last
resolved, never a value)."""

from __future__ import annotations

import json

import pytest

from keymgmt_cli.engine import kmsproviders
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import InvalidRequest

ACCESS = "AKIAQWERTYUIOPASDFGH"
SECRET = "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"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN0123"
ROLE = "arn:aws:iam::111122223333:role/keymgmt-prod"
EXTERNAL = "external-id-SECRET-42"


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def stored(engine, name="aws1") -> dict[str, str]:
    mount = engine.resolve("keymgmt/")[0]
    doc = engine.store.get(mount.doc("kms", name))
    if not doc["credentials"]:
        return {}
    return json.loads(engine.secrets.unseal(doc["credentials"], mount.doc("kms", name) + "#credentials"))


def create(engine, *creds):
    return w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1", credentials=list(creds))


@pytest.mark.parametrize("given,message", [
    (["profile=ops", f"access_key={ACCESS}", f"secret_key={SECRET}"], "profile and access_key/secret_key are two sources"),
    (["external_id=abc123"], "credentials external_id needs role_arn"),
    (["session_name=ci"], "credentials session_name needs role_arn"),
    (["duration=1h"], "credentials duration needs role_arn"),
    (["web_identity_token_file=/run/token"], "credentials web_identity_token_file needs role_arn"),
    ([f"role_arn={ROLE}", "web_identity_token_file=/t", "profile=ops"], "web_identity_token_file and profile conflict"),
    ([f"role_arn={ROLE}", "web_identity_token_file=/t", f"access_key={ACCESS}", f"secret_key={SECRET}"],
     "web_identity_token_file and access_key conflict"),
    ([f"role_arn={ROLE}", "web_identity_token_file=/t", "external_id=abc123"], "external_id does not apply"),
    (["role_arn=arn:aws:iam::1234:role/x"], "credentials role_arn is not an IAM role ARN"),
    (["role_arn=keymgmt-prod"], "credentials role_arn is not an IAM role ARN"),
    ([f"role_arn={ROLE}", "session_name=a b"], "session_name is empty or contains whitespace"),
    ([f"role_arn={ROLE}", "session_name=x"], "session_name is not 2-64"),
    ([f"role_arn={ROLE}", "external_id=a;b"], "external_id is not 2-1224"),
    ([f"role_arn={ROLE}", "duration=15m"], "duration must be between 30m and 12h"),
    ([f"role_arn={ROLE}", "duration=13h"], "duration must be between 30m and 12h"),
    ([f"role_arn={ROLE}", "duration=soon"], "credentials duration must be a duration"),
    (["profile=a[b]"], "credentials profile is not a profile name"),
    (["rol_arn=x"], 'did you mean "role_arn"?'),
    (["acess_key=AKIA"], 'did you mean "access_key"?'),
])
def test_refused_combinations_write_nothing(engine, given, message):
    with pytest.raises(InvalidRequest) as caught:
        create(engine, *given)
    assert message in str(caught.value) + (caught.value.hint or "")
    assert "\n" not in str(caught.value)
    for secret in (SECRET, EXTERNAL, "AKIA"):
        assert secret not in str(caught.value)
    assert engine.store.get("state") is None


@pytest.mark.parametrize("given", [
    ["profile=ops"],
    [f"role_arn={ROLE}"],
    [f"role_arn={ROLE}", f"external_id={EXTERNAL}", "session_name=keymgmt", "duration=1h"],
    ["profile=ops", f"role_arn={ROLE}"],
    [f"access_key={ACCESS}", f"secret_key={SECRET}", f"role_arn={ROLE}"],
    [f"role_arn={ROLE}", "web_identity_token_file=/run/secrets/token", "session_name=gha"],
])
def test_accepted_sources_reach_the_provider_config(engine, given):
    create(engine, *given)
    mount = engine.resolve("keymgmt/")[0]
    config = kmsproviders.provider_config(engine, mount, engine.store.get(mount.doc("kms", "aws1")))
    wanted = dict(item.split("=", 1) for item in given)
    assert config.profile == wanted.get("profile")
    assert config.role_arn == wanted.get("role_arn")
    assert config.external_id == wanted.get("external_id")
    assert config.session_name == wanted.get("session_name")
    assert config.duration == (3600 if "duration" in wanted else None)
    assert config.web_identity_token_file == wanted.get("web_identity_token_file")
    assert EXTERNAL.encode() not in b"".join(engine.store._docs.values())


def test_an_update_merges_by_key_and_says_what_changed(engine):
    create(engine, f"access_key={ACCESS}", f"secret_key={SECRET}", "endpoint=http://127.0.0.1:4566")
    response = w(engine, "keymgmt/kms/aws1", credentials=["access_key=AKIANEWNEWNEWNEWNEW1", "secret_key=new-secret"])
    assert stored(engine) == {"access_key": "AKIANEWNEWNEWNEWNEW1", "secret_key": "new-secret",
                              "endpoint": "http://127.0.0.1:4566"}  # the endpoint no longer vanishes
    assert response.warnings == ["credentials merged by key: set access_key, secret_key; kept endpoint"]
    assert "new-secret" not in json.dumps(response.warnings)


def test_new_keys_drop_the_old_session_token(engine):
    create(engine, f"access_key={ACCESS}", f"secret_key={SECRET}", f"session_token={TOKEN}")
    response = w(engine, "keymgmt/kms/aws1", credentials=["access_key=AKIANEWNEWNEWNEWNEW1", "secret_key=s2"])
    assert stored(engine) == {"access_key": "AKIANEWNEWNEWNEWNEW1", "secret_key": "s2"}
    assert response.warnings == ["credentials merged by key: set access_key, secret_key; removed session_token"]


def test_a_new_role_drops_the_old_role_options_but_keeps_the_source(engine):
    create(engine, "profile=ops", f"role_arn={ROLE}", f"external_id={EXTERNAL}", "duration=2h")
    other = "arn:aws:iam::444455556666:role/keymgmt-staging"
    response = w(engine, "keymgmt/kms/aws1", credentials=[f"role_arn={other}"])
    assert stored(engine) == {"profile": "ops", "role_arn": other}
    assert response.warnings == ["credentials merged by key: set role_arn; removed duration, external_id; kept profile"]


def test_key_equals_nothing_removes_one_key(engine):
    create(engine, f"role_arn={ROLE}", "session_name=keymgmt", "endpoint=https://kms.example.com")
    response = w(engine, "keymgmt/kms/aws1", credentials=["session_name="])
    assert stored(engine) == {"role_arn": ROLE, "endpoint": "https://kms.example.com"}
    assert response.warnings == ["credentials merged by key: removed session_name; kept endpoint, role_arn"]
    w(engine, "keymgmt/kms/aws1", credentials=["profile=ops", "role_arn=", "endpoint="])
    assert stored(engine) == {"profile": "ops"}


def test_switching_source_needs_the_old_one_removed(engine):
    create(engine, f"access_key={ACCESS}", f"secret_key={SECRET}")
    with pytest.raises(InvalidRequest, match="two sources"):
        w(engine, "keymgmt/kms/aws1", credentials=["profile=ops"])
    assert stored(engine) == {"access_key": ACCESS, "secret_key": SECRET}  # nothing changed
    w(engine, "keymgmt/kms/aws1", credentials=["profile=ops", "access_key=", "secret_key="])
    assert stored(engine) == {"profile": "ops"}


def test_an_empty_map_clears_everything(engine):
    create(engine, "profile=ops")
    response = engine.handle(Request("write", "keymgmt/kms/aws1", {"credentials": {}}))
    assert stored(engine) == {} and response.warnings == ["credentials merged by key: removed profile"]


def test_the_same_values_again_change_nothing(engine):
    create(engine, "profile=ops")
    mount = engine.resolve("keymgmt/")[0]
    before = engine.store.get(mount.doc("kms", "aws1"))["credentials"]
    response = w(engine, "keymgmt/kms/aws1", credentials=["profile=ops"])
    assert engine.store.get(mount.doc("kms", "aws1"))["credentials"] == before
    assert response.warnings == ["credentials merged by key: unchanged profile"]


def test_read_lists_key_names_and_the_source_last_resolved(engine):
    create(engine, "profile=ops", f"role_arn={ROLE}", f"external_id={EXTERNAL}")
    mount = engine.resolve("keymgmt/")[0]
    data = engine.handle(Request("read", "keymgmt/kms/aws1")).data
    assert data == {"key_collection": "us-west-1", "provider": "awskms",
                    "credential_keys": ["external_id", "profile", "role_arn"]}
    kmsproviders.record_credential_source(engine, mount, "aws1", "assume-role")
    data = engine.handle(Request("read", "keymgmt/kms/aws1")).data
    assert data["credential_source"] == "assume-role"
    assert data["credential_source_time"] == "2023-11-14T22:13:20Z"
    assert EXTERNAL not in json.dumps(data) and ROLE not in json.dumps(data)
    w(engine, "keymgmt/kms/aws1", credentials=["external_id="])  # changed: resolved again next time
    assert "credential_source" not in engine.handle(Request("read", "keymgmt/kms/aws1")).data


def test_the_source_is_written_only_when_it_changes(engine):
    create(engine, "profile=ops")
    mount = engine.resolve("keymgmt/")[0]
    kmsproviders.record_credential_source(engine, mount, "aws1", "shared-credentials-file")
    writes = []
    original = engine.store.put
    engine.store.put = lambda doc_id, doc: (writes.append(doc_id), original(doc_id, doc))
    kmsproviders.record_credential_source(engine, mount, "aws1", "shared-credentials-file")
    kmsproviders.record_credential_source(engine, mount, "aws1", None)
    assert writes == []
    kmsproviders.record_credential_source(engine, mount, "aws1", "env")
    assert writes == [mount.doc("kms", "aws1")]


def test_clearing_needs_no_unsealing(engine):
    """`{}` drops credentials that can no longer be unsealed (nothing to merge them with)."""
    create(engine, "profile=ops")
    mount = engine.resolve("keymgmt/")[0]
    doc = engine.store.get(mount.doc("kms", "aws1"))
    doc["credentials"] = "not-a-sealed-blob"
    engine.store.put(mount.doc("kms", "aws1"), doc)
    response = engine.handle(Request("write", "keymgmt/kms/aws1", {"credentials": {}}))
    assert engine.store.get(mount.doc("kms", "aws1"))["credentials"] is None
    assert response.warnings == ["credentials merged by key: removed profile"]
