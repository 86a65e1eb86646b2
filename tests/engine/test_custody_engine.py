"""Issue 9 (custody), the engine's part, as an attacker would try it on the in-memory twins:
two states and two mounts in one AWS account racing for one alias name, planted foreign aliases,
recovery by tags that must not adopt another state's key, a provider deleted while a
distribution waits, a refused command that must leave no trace, and names with a trailing newline.
"""

from __future__ import annotations

import threading
import time

import pytest

from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import KeymgmtError, NotFound
from keymgmt_cli.providers.memory import MemoryKms
from keymgmt_cli.store.memory import MemoryStore

from conftest import TS
from twins import memory_secret_box

ALIAS = f"alias/hashicorp/k-{TS}"


def make_engine(world, store=None, box=None):
    return Engine(store or MemoryStore(), box or memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                  clock=lambda: float(TS))


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def r(engine, path):
    return engine.handle(Request("read", path, {})).data


def provider_and_key(engine, mount="keymgmt/"):
    w(engine, f"{mount}kms/aws1", provider="awskms", key_collection="us-west-1")
    w(engine, f"{mount}key/k", type="aes256-gcm96")


def aliases(world):
    return dict(world.region("us-west-1").aliases)


def test_two_states_in_one_account_same_key_same_second_get_their_own_aliases(world):
    a, b = make_engine(world), make_engine(world)
    for engine in (a, b):
        provider_and_key(engine)
    w(a, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    w(b, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    key_a = r(a, "keymgmt/kms/aws1/key/k")["versions"]["1"]
    key_b = r(b, "keymgmt/kms/aws1/key/k")["versions"]["1"]
    name_b = r(b, "keymgmt/kms/aws1/key/k")["name"]
    assert name_b != f"k-{TS}" and name_b.startswith("k-")
    assert aliases(world) == {ALIAS: key_a, f"alias/hashicorp/{name_b}": key_b}
    # rotating B repoints B's alias only
    w(b, "keymgmt/key/k/rotate")
    assert aliases(world)[ALIAS] == key_a
    # removing B deletes B's alias, never A's
    b.handle(Request("delete", "keymgmt/kms/aws1/key/k", {}))
    assert aliases(world) == {ALIAS: key_a}
    assert world.find("us-west-1", key_a).state == "Enabled"


def test_two_mounts_of_one_state_get_their_own_aliases(world):
    engine = make_engine(world)
    engine.enable_mount("keymgmt", "other")
    for mount in ("keymgmt/", "other/"):
        provider_and_key(engine, mount)
        w(engine, f"{mount}kms/aws1/key/k", purpose="encrypt,decrypt")
    ids = {m: r(engine, f"{m}kms/aws1/key/k")["versions"]["1"] for m in ("keymgmt/", "other/")}
    table = aliases(world)
    assert len(table) == 2 and sorted(table.values()) == sorted(ids.values())
    assert table[ALIAS] == ids["keymgmt/"]


def test_a_planted_alias_is_left_untouched_and_another_name_is_recorded(world):
    engine = make_engine(world)
    provider_and_key(engine)
    foreign = MemoryKms("us-west-1", world)
    victim = foreign.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="theirs",
                                tags={"keymgmt:state_id": "someone-else", "keymgmt:key_name": "k",
                                      "keymgmt:mount": "keymgmt/", "keymgmt:kms": "aws1"}, multi_region=False)
    world.region("us-west-1").aliases[ALIAS] = victim
    w(engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    data = r(engine, "keymgmt/kms/aws1/key/k")
    assert aliases(world)[ALIAS] == victim
    assert aliases(world)[f"alias/hashicorp/{data['name']}"] == data["versions"]["1"]
    mount, _ = engine.resolve("keymgmt/kms")
    assert engine.store.get(mount.doc("dist", "aws1", "k"))["alias"] == f"alias/hashicorp/{data['name']}"
    engine.handle(Request("delete", "keymgmt/kms/aws1/key/k", {}))
    assert aliases(world) == {ALIAS: victim}


def test_an_alias_of_our_own_interrupted_run_is_adopted(world):
    engine = make_engine(world)
    provider_and_key(engine)
    w(engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    mount, _ = engine.resolve("keymgmt/kms")
    doc_id = mount.doc("dist", "aws1", "k")
    dist = engine.store.get(doc_id)
    dist["alias_target"] = None  # a crash between CreateAlias and its record
    dist["state"] = "distributing"  # (before the record says ready: a re-run resumes, it does not converge)
    engine.store.put(doc_id, dist)
    world.calls.clear()
    w(engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    assert world.calls == ["CreateAlias", "ListAliases", "UpdateAlias"]
    assert engine.store.get(doc_id)["alias"] == ALIAS


def test_recovery_by_tag_never_adopts_a_key_of_another_state(world):
    engine = make_engine(world)
    provider_and_key(engine)
    mount, _ = engine.resolve("keymgmt/kms")
    w(engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    doc_id = mount.doc("dist", "aws1", "k")
    dist = engine.store.get(doc_id)
    own_id = dist["versions"]["1"]["key_id"]
    # Pretend CreateKey of version 1 was interrupted: the record holds only the intent, and a key
    # of another state carries the same operation tag (copied from a leaked state, say).
    dist["versions"]["1"] = {"creating": "op-1"}
    dist["state"] = "distributing"
    engine.store.put(doc_id, dist)
    foreign = MemoryKms("us-west-1", world).create_key(
        key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="theirs",
        tags={"keymgmt:state_id": "another-state", "keymgmt:op": "op-1"}, multi_region=False)
    w(engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    new_id = engine.store.get(doc_id)["versions"]["1"]["key_id"]
    assert new_id not in (foreign, None)
    assert world.find("us-west-1", foreign).state != "PendingDeletion"
    assert own_id != foreign


def test_abandoning_a_distribution_after_a_crash_during_create_key_deletes_that_key(world):
    engine = make_engine(world)
    provider_and_key(engine)
    mount, _ = engine.resolve("keymgmt/kms")
    state_id = engine.state_id()
    doc_id = mount.doc("dist", "aws1", "k")
    engine.store.put(doc_id, {"key_name": "k", "kms_name": "aws1", "name": f"k-{TS}", "alias": ALIAS,
                              "purpose": ["decrypt", "encrypt"], "protection": "hsm",
                              "key_spec": "SYMMETRIC_DEFAULT", "key_usage": "ENCRYPT_DECRYPT",
                              "wrapping_algorithm": "RSAES_OAEP_SHA_256", "wrapping_key_spec": "RSA_4096",
                              "valid_to": None, "pending_window_days": 30, "created": "x",
                              "state": "distributing", "alias_target": None,
                              "versions": {"1": {"creating": "op-9"}}})
    orphan = MemoryKms("us-west-1", world).create_key(
        key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="ours, unrecorded",
        tags={"keymgmt:state_id": state_id, "keymgmt:op": "op-9"}, multi_region=False)
    engine.handle(Request("delete", "keymgmt/kms/aws1/key/k", {}))
    assert world.find("us-west-1", orphan).state == "PendingDeletion"
    assert engine.store.get(doc_id) is None


def test_a_provider_deleted_while_a_distribution_waits_leaves_no_kms_key(world):
    engine = make_engine(world)
    provider_and_key(engine)
    mount, _ = engine.resolve("keymgmt/kms")
    errors: list[BaseException] = []
    held = threading.Event()
    release = threading.Event()

    def hold_key_lock():
        with engine.store.lock(mount.lock("key", "k")):
            held.set()
            release.wait(5)

    def distribute():
        try:
            w(engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
        except KeymgmtError as error:
            errors.append(error)

    holder = threading.Thread(target=hold_key_lock)
    holder.start()
    held.wait(5)
    worker = threading.Thread(target=distribute)
    worker.start()
    time.sleep(0.2)  # the distribution has loaded the provider and waits on the key lock
    engine.handle(Request("delete", "keymgmt/kms/aws1", {}))
    release.set()
    holder.join(5)
    worker.join(5)
    assert len(errors) == 1 and isinstance(errors[0], NotFound)
    assert world.region("us-west-1").keys == {} and aliases(world) == {}
    assert engine.store.list(mount.doc("dist", "aws1")) == []


def test_a_wrong_master_key_on_distribute_leaves_no_record(world):
    store = MemoryStore()
    engine = make_engine(world, store)
    provider_and_key(engine)
    other = make_engine(world, store, memory_secret_box())  # same state, another master key
    with pytest.raises(KeymgmtError):
        w(other, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    mount, _ = engine.resolve("keymgmt/kms")
    assert store.list(mount.doc("dist", "aws1")) == []
    assert world.calls == []


@pytest.mark.parametrize("path", ["keymgmt/key/k\n", "keymgmt/kms/aws1\n", "keymgmt/kms/aws1/key/k\n"])
def test_names_with_a_trailing_newline_are_refused_before_any_call(world, path):
    engine = make_engine(world)
    provider_and_key(engine)
    before = sorted(engine.store.list("ns/default/keys"))
    with pytest.raises(KeymgmtError):
        w(engine, path, type="aes256-gcm96", provider="awskms", key_collection="us-west-1", purpose="encrypt")
    assert world.calls == [] and sorted(engine.store.list("ns/default/keys")) == before


def test_a_rotation_failing_in_several_providers_reports_every_cause(world):
    engine = make_engine(world)
    provider_and_key(engine)
    w(engine, "keymgmt/kms/p2", provider="awskms", key_collection="eu-west-1")
    w(engine, "keymgmt/kms/p3", provider="awskms", key_collection="ap-south-1")
    for kms in ("aws1", "p2", "p3"):
        w(engine, f"keymgmt/kms/{kms}/key/k", purpose="encrypt,decrypt")
    world.fail_next("CreateKey", "AccessDeniedException", region="eu-west-1")
    world.fail_next("CreateKey", "KMSInternalException", region="ap-south-1")
    with pytest.raises(KeymgmtError) as caught:
        w(engine, "keymgmt/key/k/rotate")
    text = str(caught.value)
    assert text.startswith("2 of 3 distributions did not finish")
    assert "p2: " in text and "AccessDeniedException" in text
    assert "p3: " in text and "KMSInternalException" in text


def test_disabling_a_mount_keeps_keys_that_do_not_allow_deletion_unless_forced(world):
    from keymgmt_cli.errors import PreconditionFailed

    engine = make_engine(world)
    engine.enable_mount("keymgmt", "staging")
    w(engine, "staging/key/keep", type="aes256-gcm96")
    w(engine, "staging/key/gone", type="aes256-gcm96", deletion_allowed=True)
    with pytest.raises(PreconditionFailed, match=r"1 key\(s\) have deletion_allowed=false \(keep\)"):
        engine.disable_mount("staging")
    assert "staging/" in [m.path for m in engine.mounts()]
    assert engine.handle(Request("list", "staging/key", {})).data["keys"] == ["gone", "keep"]
    engine.disable_mount("staging", force=True)
    assert "staging/" not in [m.path for m in engine.mounts()]


def test_an_endpoint_carrying_credentials_is_refused_without_echoing_them(world):
    engine = make_engine(world)
    with pytest.raises(KeymgmtError) as caught:
        w(engine, "keymgmt/kms/p", provider="awskms", key_collection="us-west-1",
          credentials=["endpoint=https://AKIAPLANTED:s3cr3tPLANTED@kms.example.com"])
    assert "PLANTED" not in str(caught.value) and "PLANTED" not in (caught.value.hint or "")
