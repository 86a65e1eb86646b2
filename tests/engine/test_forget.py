"""Forget what cannot be reached (issue 16 item 3): ``delete -forget`` drops a distribution's record
and lists everything it leaves in AWS; a provider's endpoint or account cannot be changed under
keys distributed there."""

from __future__ import annotations

import pytest

from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.forget import forget, preview
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import PreconditionFailed, ProviderError, UnsupportedPath
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box

TS = 1700000000
WHERE = "keymgmt/kms/aws1/key/k"
CREDS = {"access_key": "AKIAONE", "secret_key": "one-secret", "endpoint": "http://127.0.0.1:4566"}


@pytest.fixture
def other_world():
    return MemoryKmsWorld()


@pytest.fixture
def eng(world, other_world):
    """Two accounts: access key AKIAOTHER sees another world (another AWS account)."""
    engine = Engine(MemoryStore(), memory_secret_box(),
                    lambda cfg: MemoryKms(cfg.region, other_world if cfg.access_key == "AKIAOTHER" else world),
                    clock=lambda: float(TS))
    w(engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1", credentials=dict(CREDS))
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    w(engine, "keymgmt/key/k/rotate")
    w(engine, WHERE, purpose="encrypt,decrypt")
    return engine


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def ids(engine):
    return engine.handle(Request("read", WHERE, {})).data["versions"]


def test_a_removal_stuck_on_a_gone_endpoint_is_forgotten_and_everything_left_is_listed(eng, world):
    v = ids(eng)
    world.fail_next("DeleteAlias", "EndpointConnectionError", count=50, region="us-west-1")
    with pytest.raises(ProviderError):
        eng.handle(Request("delete", WHERE, {}))
    mount, _ = eng.resolve("keymgmt/kms")
    assert eng.store.get(mount.doc("dist", "aws1", "k"))["state"] == "removing"
    with pytest.raises(PreconditionFailed):
        eng.handle(Request("delete", "keymgmt/kms/aws1", {}))  # stuck: the provider cannot be deleted
    shown = preview(eng, WHERE)
    world.calls.clear()
    result = forget(eng, WHERE)
    assert world.calls == []  # AWS is not asked
    left = result.data["left_behind"]
    assert left == shown["left_behind"]
    assert [(i["kind"], i["key_id"]) for i in left if i["kind"] == "kms_key"] == [("kms_key", v["1"]), ("kms_key", v["2"])]
    [alias] = [i for i in left if i["kind"] == "alias"]
    assert alias["alias"] == f"alias/hashicorp/k-{TS}" and alias["key_id"] == v["2"]
    assert alias["cleanup"] == f"aws kms delete-alias --alias-name alias/hashicorp/k-{TS} --region us-west-1"
    assert left[0]["cleanup"] == (f"aws kms schedule-key-deletion --key-id {v['1']} --pending-window-in-days 7 "
                                  "--region us-west-1")
    assert eng.store.get(mount.doc("dist", "aws1", "k")) is None
    eng.handle(Request("delete", "keymgmt/kms/aws1", {}))  # now it can go


def test_forgetting_again_changes_nothing(eng):
    forget(eng, WHERE)
    again = forget(eng, WHERE)
    assert again.data == {"path": WHERE, "forgotten": False, "left_behind": []}
    assert preview(eng, WHERE) is None


def test_keys_scheduled_for_deletion_are_not_listed_but_unrecorded_ones_are(eng):
    mount, _ = eng.resolve("keymgmt/kms")
    doc_id = mount.doc("dist", "aws1", "k")
    dist = eng.store.get(doc_id)
    dist["versions"]["1"]["deleted"] = True  # scheduled by a removal halfway
    dist["versions"]["3"] = {"creating": "tok123"}  # CreateKey sent, its answer never recorded
    eng.store.put(doc_id, dist)
    left = forget(eng, WHERE).data["left_behind"]
    assert [i["version"] for i in left if i["kind"] == "kms_key"] == [2]
    [unrecorded] = [i for i in left if i["kind"] == "unrecorded_key"]
    assert "Key=keymgmt:op,Values=tok123" in unrecorded["cleanup"] and unrecorded["version"] == 3


def test_replicas_and_their_aliases_are_listed(twin_engine):
    eng = twin_engine
    w(eng, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
    w(eng, "keymgmt/key/k", type="aes256-gcm96", replica_regions="eu-west-1")
    w(eng, WHERE, purpose="encrypt")
    w(eng, f"{WHERE}/replicate")
    left = forget(eng, WHERE).data["left_behind"]
    assert sorted((i["kind"], i["region"]) for i in left) == [
        ("alias", "eu-west-1"), ("alias", "us-west-1"), ("kms_key", "eu-west-1"), ("kms_key", "us-west-1")]


def test_forget_applies_to_a_distribution_only(eng):
    for path in ("keymgmt/kms/aws1", "keymgmt/key/k", "keymgmt/kms/aws1/key/k/rotate"):
        with pytest.raises(UnsupportedPath):
            forget(eng, path)


def test_nothing_secret_is_listed(eng):
    text = repr(forget(eng, WHERE).data)
    assert "one-secret" not in text and "AKIAONE" not in text


# -- the endpoint and the account under distributed keys ---------------------------------------------
def test_the_endpoint_cannot_change_under_distributed_keys(eng):
    moved = dict(CREDS, endpoint="http://127.0.0.1:4599")
    with pytest.raises(PreconditionFailed) as refused:
        w(eng, "keymgmt/kms/aws1", credentials=moved)
    assert "endpoint" in str(refused.value) and "-forget" in refused.value.hint
    assert "4599" not in str(refused.value) + refused.value.hint  # a URL is never echoed
    dropped = dict(CREDS, endpoint="")  # removing it (KEY= under the merge-by-key rule) is a change too
    with pytest.raises(PreconditionFailed):
        w(eng, "keymgmt/kms/aws1", credentials=dropped)
    forget(eng, WHERE)
    w(eng, "keymgmt/kms/aws1", credentials=moved)  # nothing distributed there any more: allowed


def test_new_credentials_must_see_the_distributed_keys(eng, world):
    w(eng, "keymgmt/kms/aws1", credentials=dict(CREDS, secret_key="rotated-secret"))  # same account: fine
    with pytest.raises(PreconditionFailed) as refused:
        w(eng, "keymgmt/kms/aws1", credentials=dict(CREDS, access_key="AKIAOTHER"))
    assert "another account" in str(refused.value)
    world.fail_next("DescribeKey", "AccessDeniedException", count=50, region="us-west-1")
    with pytest.raises(PreconditionFailed) as unchecked:
        w(eng, "keymgmt/kms/aws1", credentials=dict(CREDS, secret_key="third-secret"))
    assert "AccessDeniedException" in str(unchecked.value)


def test_credentials_change_freely_without_distributions(twin_engine):
    w(twin_engine, "keymgmt/kms/p", provider="awskms", key_collection="us-west-1", credentials=dict(CREDS))
    w(twin_engine, "keymgmt/kms/p", credentials=dict(CREDS, endpoint="http://127.0.0.1:4599"))
    w(twin_engine, "keymgmt/kms/p", credentials=dict(CREDS, access_key="AKIAOTHER"))
