"""core.Engine: the state document (created on the first write, never on a read), the mount
table (enable/disable and their conflicts), resolving a path to its mount, and ``status``."""

from __future__ import annotations

import re
import threading

import pytest

from keymgmt_cli.engine.core import DEFAULT_MOUNT, STATE_DOC, Engine
from keymgmt_cli.engine.mounts import Mount
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import (InvalidRequest, NotFound, NoValue, PreconditionFailed, ProviderError,
                                UnsupportedPath)
from keymgmt_cli.store.memory import MemoryStore


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


def docs(engine) -> list[str]:
    """Every document id in the engine's memory store."""
    return sorted(engine.store._docs)


# -- the state document ----------------------------------------------------------------------------
@pytest.mark.parametrize("operation,path,error", [
    ("read", "keymgmt/key/k", NotFound),
    ("list", "keymgmt/key", NoValue),
    ("list", "keymgmt/kms", NoValue),
    ("read", "keymgmt/kms/aws1", NotFound),
    ("list", "keymgmt/kms/aws1/key", NotFound),
    ("delete", "keymgmt/key/k", None),          # "deleted (if it existed)"
    ("delete", "keymgmt/kms/aws1", None),
])
def test_reads_and_no_op_deletes_leave_no_trace(engine, operation, path, error):
    if error is None:
        assert engine.handle(Request(operation, path, {})).data is None
    else:
        with pytest.raises(error):
            engine.handle(Request(operation, path, {}))
    assert docs(engine) == []
    assert engine.status() == {"mounts": [{"path": "keymgmt/", "type": "keymgmt", "keys": 0, "kms_providers": 0,
                                           "distributions": 0}], "unfinished": [], "initialized": False}
    assert docs(engine) == [] and engine.state_id() == ""


def test_a_refused_first_write_leaves_no_trace(engine):
    with pytest.raises(InvalidRequest):
        w(engine, "keymgmt/key/k", type="aes128")
    with pytest.raises(InvalidRequest):
        w(engine, "keymgmt/kms/aws1", provider="awskms")  # key_collection missing
    assert docs(engine) == []


def test_the_first_write_creates_the_state_with_the_default_mount(engine):
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    state = engine.store.get(STATE_DOC)
    assert state["format"] == 1
    assert re.fullmatch(r"[0-9a-f]{32}", state["state_id"])
    assert state["mounts"] == {"keymgmt/": {"uuid": "default", "type": "keymgmt", "description": ""}}
    assert docs(engine) == ["ns/default/keys/k", "state"]
    assert engine.state_id() == state["state_id"] and engine.initialized()


def test_the_state_id_is_stable_across_writes_and_engines(engine):
    w(engine, "keymgmt/key/a", type="aes256-gcm96")
    first = engine.state_id()
    w(engine, "keymgmt/key/b", type="aes256-gcm96")
    assert engine.state_id() == first
    other = Engine(engine.store, engine.secrets, None)
    assert other.state_id() == first and other.mounts() == engine.mounts()


def test_a_pre_release_state_reads_its_mount_documents(engine):
    engine.store.put(STATE_DOC, {"format": 1, "state_id": "s" * 32})
    engine.store.put("mounts/default", {"path": "keymgmt/", "uuid": "default", "type": "keymgmt"})
    engine.store.put("mounts/x", {"path": "team/", "uuid": "u1", "type": "keymgmt", "description": "t"})
    engine.store.put("mounts/broken", {"uuid": "nopath"})
    assert engine.mounts() == [Mount("keymgmt/", "default"), Mount("team/", "u1")]
    assert [m.description for m in engine.mounts()] == ["", "t"]
    engine.enable_mount("keymgmt", "other")  # the next mount change writes the new layout
    assert set(engine.store.get(STATE_DOC)["mounts"]) == {"keymgmt/", "team/", "other/"}


# -- mounts ----------------------------------------------------------------------------------------
def test_enable_mount_records_a_fresh_namespace(engine):
    mount = engine.enable_mount("keymgmt", "/team/a/", "the team's keys")
    assert mount.path == "team/a/" and re.fullmatch(r"[0-9a-f]{32}", mount.uuid)
    assert engine.store.get(STATE_DOC)["mounts"]["team/a/"] == \
        {"uuid": mount.uuid, "type": "keymgmt", "description": "the team's keys"}
    assert engine.mounts() == [Mount("keymgmt/", "default"), mount]


@pytest.mark.parametrize("first,second,message", [
    ("team", "team", "path is already in use at team/"),
    ("team", "team/", "path is already in use at team/"),
    ("team", "team/sub", "mount path team/sub/ conflicts with the existing mount team/"),
    ("team/sub", "team", "mount path team/ conflicts with the existing mount team/sub/"),
    (None, "keymgmt/nested", "mount path keymgmt/nested/ conflicts with the existing mount keymgmt/"),
    ("keymgmt", "keymgmt", "path is already in use at keymgmt/"),  # the first enable adopted the default
])
def test_enable_mount_conflicts_change_nothing(engine, first, second, message):
    if first is not None:
        engine.enable_mount("keymgmt", first)
    else:
        engine.ensure_initialized()
    before = engine.store.get(STATE_DOC)
    with pytest.raises(PreconditionFailed) as caught:
        engine.enable_mount("keymgmt", second)
    assert str(caught.value) == message
    assert engine.store.get(STATE_DOC) == before


def test_a_sibling_with_a_common_prefix_is_not_a_conflict(engine):
    engine.enable_mount("keymgmt", "team")
    engine.enable_mount("keymgmt", "teamx")
    assert [m.path for m in engine.mounts()] == ["keymgmt/", "team/", "teamx/"]


@pytest.mark.parametrize("engine_type,path,message", [
    ("kv", "team", "unknown secrets engine type 'kv'"),
    ("keymgmt", "sys", "reserved"),
    ("keymgmt", "auth/x", "reserved"),
    ("keymgmt", "a/../b", "invalid mount path"),
    ("keymgmt", "a b", "invalid mount path"),
    ("keymgmt", "/", "invalid mount path"),
])
def test_enable_mount_refuses_bad_types_and_paths_before_writing(engine, engine_type, path, message):
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        engine.enable_mount(engine_type, path)
    assert docs(engine) == []


def test_a_mount_segment_with_a_trailing_newline_is_refused(engine):
    with pytest.raises(InvalidRequest):
        engine.enable_mount("keymgmt", "team\n")
    assert docs(engine) == []


def test_parallel_enables_lose_no_mount(engine):
    errors = []

    def enable(n):
        try:
            engine.enable_mount("keymgmt", f"m{n}")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=enable, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(engine.store.get(STATE_DOC)["mounts"]) == sorted(["keymgmt/"] + [f"m{n}/" for n in range(8)])


def test_disable_mount_deletes_its_namespace_only(engine):
    engine.enable_mount("keymgmt", "team")
    w(engine, "team/key/k", type="aes256-gcm96")
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    team_uuid = engine.resolve("team/key")[0].uuid
    assert f"ns/{team_uuid}/keys/k" in docs(engine)
    engine.disable_mount("team/", force=True)  # team/key/k has deletion_allowed=false
    assert docs(engine) == ["ns/default/keys/k", "state"]
    assert "team/" not in engine.store.get(STATE_DOC)["mounts"]
    with pytest.raises(UnsupportedPath):
        engine.handle(Request("read", "team/key/k"))
    with pytest.raises(NotFound, match="no secrets engine is mounted at team/"):
        engine.disable_mount("team")  # a second disable says so


def test_disable_an_unknown_mount_on_a_fresh_state_writes_nothing(engine):
    with pytest.raises(NotFound):
        engine.disable_mount("team")
    assert docs(engine) == []


def test_disable_mount_is_refused_while_keys_are_distributed(aws1_engine):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    before = docs(eng)
    with pytest.raises(PreconditionFailed, match="keys are still distributed to KMS provider 'aws1'") as caught:
        eng.disable_mount("keymgmt")
    assert "keymgmt delete keymgmt/kms/aws1/key/<name>" in caught.value.hint
    assert docs(eng) == before and "keymgmt/" in eng.store.get(STATE_DOC)["mounts"]


def test_a_mount_is_a_namespace_the_same_names_do_not_collide(engine):
    engine.enable_mount("keymgmt", "team")
    w(engine, "keymgmt/key/k", type="aes256-gcm96")
    w(engine, "team/key/k", type="ecdsa-p256")
    assert engine.handle(Request("read", "keymgmt/key/k")).data["type"] == "aes256-gcm96"
    assert engine.handle(Request("read", "team/key/k")).data["type"] == "ecdsa-p256"


# -- resolve ---------------------------------------------------------------------------------------
def test_resolve_takes_the_longest_mount_prefix(engine):
    # enable_mount refuses nested mounts; a state edited by hand may still hold them
    engine.store.put(STATE_DOC, {"format": 1, "state_id": "s" * 32, "mounts": {
        "a/": {"uuid": "ua"}, "a/b/": {"uuid": "uab"}, "ab/": {"uuid": "uab2"}}})
    assert [(m.uuid, rel) for m, rel in [engine.resolve("a/b/key/k"), engine.resolve("a/key/k"),
                                         engine.resolve("ab/key"), engine.resolve("/a/b/"),
                                         engine.resolve("a/bc/key")]] == \
        [("uab", "key/k"), ("ua", "key/k"), ("uab2", "key"), ("uab", ""), ("ua", "bc/key")]


@pytest.mark.parametrize("path,message", [
    ("", "missing path"),
    ("///", "missing path"),
    ("other/key/k", "no secrets engine is mounted at the path 'other/key/k'"),
    ("keymgmtx/key", "no secrets engine is mounted at the path 'keymgmtx/key'"),
])
def test_resolve_refuses_paths_outside_every_mount(engine, path, message):
    with pytest.raises(UnsupportedPath, match=re.escape(message)) as caught:
        engine.resolve(path)
    assert caught.value.hint


def test_unknown_fields_are_ignored_with_a_warning_and_the_write_happens(engine):
    response = w(engine, "keymgmt/key/k", type="aes256-gcm96", colour="red", size="2")
    assert response.warnings == ["Endpoint ignored these unrecognized parameters: [colour size]"]
    assert engine.handle(Request("read", "keymgmt/key/k")).data["type"] == "aes256-gcm96"


# -- status ----------------------------------------------------------------------------------------
def test_status_counts_per_mount(aws1_engine):
    eng = aws1_engine
    eng.enable_mount("keymgmt", "team")
    for name in ("a", "b"):
        w(eng, f"keymgmt/key/{name}", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/a", purpose="encrypt")
    w(eng, "team/key/c", type="aes256-gcm96")
    assert eng.status() == {"initialized": True, "unfinished": [], "mounts": [
        {"path": "keymgmt/", "type": "keymgmt", "keys": 2, "kms_providers": 1, "distributions": 1},
        {"path": "team/", "type": "keymgmt", "keys": 1, "kms_providers": 0, "distributions": 0}]}


def test_status_names_an_unfinished_distribution_and_how_to_finish_it(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    world.fail_next("ImportKeyMaterial")
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/kms/aws1/key/k", purpose="decrypt,encrypt")
    [entry] = eng.status()["unfinished"]
    assert entry == {"operation": "distribute", "path": "keymgmt/kms/aws1/key/k", "provider": "aws1",
                     "since": entry["since"], "finish": "keymgmt write keymgmt/kms/aws1/key/k purpose=encrypt,decrypt",
                     "abandon": "keymgmt delete keymgmt/kms/aws1/key/k"}
    assert entry["since"].startswith("2023-11-1")  # the engine's clock
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    assert eng.status()["unfinished"] == []


def test_status_names_an_unfinished_removal(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    world.fail_next("ScheduleKeyDeletion")
    with pytest.raises(ProviderError):
        eng.handle(Request("delete", "keymgmt/kms/aws1/key/k"))
    [entry] = eng.status()["unfinished"]
    assert (entry["operation"], entry["path"], entry["finish"], entry["abandon"]) == (
        "remove", "keymgmt/kms/aws1/key/k", "keymgmt delete keymgmt/kms/aws1/key/k", None)
    eng.handle(Request("delete", "keymgmt/kms/aws1/key/k"))
    assert eng.status()["unfinished"] == [] and eng.status()["mounts"][0]["distributions"] == 0


def test_status_names_an_unfinished_rotation(aws1_engine, world):
    eng = aws1_engine
    w(eng, "keymgmt/key/k", type="aes256-gcm96")
    w(eng, "keymgmt/kms/aws1/key/k", purpose="encrypt")
    world.fail_next("CreateKey")
    with pytest.raises(ProviderError):
        w(eng, "keymgmt/key/k/rotate")
    [entry] = eng.status()["unfinished"]
    assert (entry["operation"], entry["version"], entry["path"], entry["provider"]) == ("rotate", 2, "keymgmt/key/k", None)
    assert (entry["finish"], entry["abandon"]) == ("keymgmt write -f keymgmt/key/k/rotate",
                                                   "keymgmt delete keymgmt/key/k/rotate")


def test_the_ignored_fields_warning_comes_before_the_handlers_warnings(aws1_engine):
    w(aws1_engine, "keymgmt/key/k", type="aes256-gcm96")
    response = w(aws1_engine, "keymgmt/kms/aws1/key/k", purpose="encrypt", protection="software", colour="red")
    assert response.warnings == [
        "Endpoint ignored these unrecognized parameters: [colour]",
        "AWS KMS keeps imported key material in its HSMs; protection=software is recorded only"]


def test_path_parameters_given_as_data_are_replaced_with_vaults_warning(aws1_engine):
    """sdk/framework (backend.go HandleRequest): path captures overwrite data of the same name and
    the response says so."""
    response = w(aws1_engine, "keymgmt/key/k", type="aes256-gcm96", name="other")
    assert response.warnings == ["Endpoint replaced the value of these parameters with the values captured "
                                 "from the endpoint's path: [name]"]
    assert aws1_engine.handle(Request("read", "keymgmt/key/k")).data["name"] == "k"


def test_times_are_gos_rfc3339(aws1_engine):
    w(aws1_engine, "keymgmt/key/k", type="aes256-gcm96")
    created = aws1_engine.handle(Request("read", "keymgmt/key/k")).data["keys"]["1"]["creation_time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d)", created), created
    assert not created.endswith("+00:00")
