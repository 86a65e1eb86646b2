"""The caller identity (asked once per credentials, remembered, asked again when they change, a
failure recorded and never fatal), AWS request ids on every recorded call, the calls journal a
crashed record is built from, and the inventory's ARN column: against the in-memory twin."""

from __future__ import annotations

import json
import uuid

import pytest

from keymgmt_cli.audit import journal as journal_mod
from keymgmt_cli.audit.keys import AuditKeys
from keymgmt_cli.audit.session import audited, open_trail
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.inventory import arn_of, inventory, partition
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from evidence_support import trail as file_trail
from twins import memory_secret_box


@pytest.fixture
def world():
    return MemoryKmsWorld()


@pytest.fixture
def eng(world):
    return Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                  clock=lambda: 1700000000.0)


def run(eng, verb, path, data=None):
    return audited(eng, {}, verb, path, data or {}, lambda: eng.handle(Request(verb, path, data or {})))


def responses(eng):
    return [r for _w, r in open_trail(eng, {}).records() if r["type"] == "response"]


def setup_distributed(eng):
    run(eng, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1",
                                         "credentials": {"access_key": "AKIAX", "secret_key": "never-shown"}})
    run(eng, "write", "keymgmt/key/a", {"type": "aes256-gcm96", "replica_regions": ["us-east-1"]})
    run(eng, "write", "keymgmt/kms/k1/key/a", {"purpose": "encrypt,decrypt"})


def test_identity_is_asked_once_and_remembered(eng, world):
    setup_distributed(eng)
    run(eng, "write", "keymgmt/key/a/rotate")
    run(eng, "write", "keymgmt/key/a/rotate")
    assert world.identity_calls == 1
    with_calls = [r for r in responses(eng) if r["keymgmt"]["aws_calls"]]
    assert len(with_calls) == 3
    identities = [r["keymgmt"]["caller_identity"] for r in with_calls]
    assert all(len(i) == 1 and i[0]["arn"] == world.caller_arn and i[0]["account"] == "111122223333"
               for i in identities)
    assert identities[0][0]["source"].startswith("GetCallerIdentity (request id ")
    assert all(i[0]["source"].startswith("remembered (GetCallerIdentity at ") for i in identities[1:])
    # every call names the credentials whose identity the record lists
    assert {c["credentials"] for r in with_calls for c in r["keymgmt"]["aws_calls"]} == {identities[0][0]["credentials"]}
    trail_text = json.dumps([r for _w, r in open_trail(eng, {}).records()]) + json.dumps(open_trail(eng, {}).head())
    assert world.access_key not in trail_text and "never-shown" not in trail_text


def test_new_credentials_are_asked_again(eng, world):
    setup_distributed(eng)
    first = responses(eng)[-1]["keymgmt"]["caller_identity"][0]
    world.access_key = "AKIAROTATEDCREDS0002"
    world.caller_arn = "arn:aws:iam::111122223333:role/rotated"
    run(eng, "write", "keymgmt/key/a/rotate")
    assert world.identity_calls == 2
    now = responses(eng)[-1]["keymgmt"]["caller_identity"][0]
    assert now["credentials"] != first["credentials"] and now["arn"] == "arn:aws:iam::111122223333:role/rotated"
    assert now["source"].startswith("GetCallerIdentity")


def test_a_failed_lookup_is_recorded_unknown_and_never_fails_the_command(eng, world):
    run(eng, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1"})
    run(eng, "write", "keymgmt/key/a", {"type": "aes256-gcm96"})
    MemoryKms("us-west-1", world).fail_next("GetCallerIdentity", "AccessDeniedException")
    run(eng, "write", "keymgmt/kms/k1/key/a", {"purpose": "encrypt,decrypt"})  # no exception
    last = responses(eng)[-1]
    assert last["error"] == "" and last["keymgmt"]["outcome"] == "ok"
    ident = last["keymgmt"]["caller_identity"][0]
    assert ident["arn"] == "unknown" and ident["account"] == "unknown"
    assert "GetCallerIdentity failed" in ident["source"] and "AccessDeniedException" in ident["source"]
    assert open_trail(eng, {}).head()["identities"] == {}  # a failure is not remembered...
    run(eng, "write", "keymgmt/key/a/rotate")
    assert world.identity_calls == 2  # ...so the next command asks again
    assert responses(eng)[-1]["keymgmt"]["caller_identity"][0]["arn"] == world.caller_arn


def test_every_recorded_call_carries_its_own_request_id(eng, world):
    setup_distributed(eng)
    MemoryKms("us-west-1", world).fail_next("UpdateAlias", "KMSInternalException")
    with pytest.raises(Exception):
        run(eng, "write", "keymgmt/key/a/rotate")
    calls = [c for r in responses(eng) for c in r["keymgmt"]["aws_calls"]]
    assert len(calls) >= 8
    ids = [c["request_id"] for c in calls]
    assert all(uuid.UUID(i) for i in ids) and len(set(ids)) == len(ids)
    failed = [c for c in calls if c["outcome"] != "ok"]
    assert failed and failed[0]["operation"] == "UpdateAlias" and failed[0]["request_id"]


def test_inventory_builds_every_arn_from_the_trail_with_no_aws_call(eng, world):
    setup_distributed(eng)
    run(eng, "write", "keymgmt/key/a/rotate")
    run(eng, "write", "keymgmt/kms/k1/key/a/replicate")
    before = (len(world.call_log), world.identity_calls)
    rows = inventory(eng, None, open_trail(eng, {}).records())
    assert (len(world.call_log), world.identity_calls) == before
    assert len(rows) == 4  # 2 versions x (us-west-1 + the us-east-1 replica)
    for row in rows:
        assert row["kms_key_arn"] == world.region(row["region"]).keys[row["kms_key_id"]].arn, row
        assert row["account"] == "111122223333"


def test_inventory_without_the_trail_says_the_account_is_unknown(eng):
    setup_distributed(eng)
    rows = inventory(eng, None, [])
    assert rows and all(r["kms_key_arn"] == "" and r["account"] == "unknown" for r in rows)


def test_inventory_knows_no_account_for_a_failed_lookup(eng, world):
    run(eng, "write", "keymgmt/kms/k1", {"provider": "awskms", "key_collection": "us-west-1"})
    run(eng, "write", "keymgmt/key/a", {"type": "aes256-gcm96"})
    MemoryKms("us-west-1", world).fail_next("GetCallerIdentity", "AccessDeniedException")
    run(eng, "write", "keymgmt/kms/k1/key/a", {"purpose": "encrypt,decrypt"})
    rows = inventory(eng, None, open_trail(eng, {}).records())
    assert [(r["kms_key_arn"], r["account"]) for r in rows] == [("", "unknown")]


@pytest.mark.parametrize("region,expected", [("us-west-1", "aws"), ("cn-north-1", "aws-cn"),
                                             ("us-gov-west-1", "aws-us-gov"), ("eu-central-1", "aws")])
def test_arn_partition_from_the_region(region, expected):
    assert partition(region) == expected
    arn, account = arn_of("1234abcd-12ab-34cd-56ef-1234567890ab", region,
                          {"1234abcd-12ab-34cd-56ef-1234567890ab": "210987654321"})
    assert arn == f"arn:{expected}:kms:{region}:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert account == "210987654321"


def test_an_arn_key_id_keeps_its_account_and_takes_the_replica_region():
    arn = "arn:aws-cn:kms:cn-north-1:999988887777:key/mrk-1"
    assert arn_of(arn, "cn-northwest-1", {}) == ("arn:aws-cn:kms:cn-northwest-1:999988887777:key/mrk-1",
                                                 "999988887777")


def test_a_journal_refuses_edited_moved_and_reordered_entries(tmp_path):
    t = file_trail(tmp_path / "audit")
    t._check_dir(create=True)
    rid, other = str(uuid.uuid4()), str(uuid.uuid4())
    j = t.journal(rid)
    for n in range(4):
        j.append({"operation": "CreateKey", "region": "us-west-1", "key_id": f"k{n}", "request_id": f"r{n}",
                  "outcome": "ok"})
    calls, refused = j.read()
    assert [c["key_id"] for c in calls] == ["k0", "k1", "k2", "k3"] and refused == 0
    path = tmp_path / "audit" / f"calls-{rid}.jsonl"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    lines = path.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[1])
    edited["call"]["key_id"] = "attacker"
    path.write_bytes(lines[0] + json.dumps(edited).encode() + b"\n" + lines[3] + lines[2] + b'{"torn')
    calls, refused = j.read()
    assert [c["key_id"] for c in calls] == ["k0"] and refused == 4
    (tmp_path / "audit" / f"calls-{other}.jsonl").write_bytes(lines[0])  # moved to another request
    assert t.journal(other).read() == ([], 1)
    assert AuditKeys(b"x" * 32).digest("v") != t.keys.digest("v")


def test_only_our_own_request_ids_name_a_journal():
    assert journal_mod.valid_request_id(str(uuid.uuid4()))
    for bad in ("../../etc/passwd", "", None, "A" * 36, str(uuid.uuid4()) + "/x"):
        assert not journal_mod.valid_request_id(bad)


def test_a_crashed_request_on_the_document_trail_keeps_its_journaled_calls(eng, world):
    import subprocess
    import sys

    from keymgmt_cli.audit import records

    setup_distributed(eng)
    trail = open_trail(eng, {})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    with trail.transaction() as tx:
        req = records.request_record("write", "keymgmt/key/a/rotate", {}, trail.keys)
        req["keymgmt"].update(pid=gone.pid, process_start="1")
        req = tx.append(req)
    rid = req["request"]["id"]
    journal = trail.journal(rid)
    made = [{"operation": "CreateKey", "region": "us-west-1", "key_id": "k-new", "request_id": str(uuid.uuid4()),
             "outcome": "ok", "credentials": "c"},
            {"operation": "GetParametersForImport", "region": "us-west-1", "key_id": "k-new",
             "request_id": str(uuid.uuid4()), "outcome": "ok", "credentials": "c"}]
    for entry in made:
        journal.append(entry)
    assert len(eng.store.list(f"audit/calls/{rid}")) == 2
    run(eng, "write", "keymgmt/key/b", {"type": "aes256-gcm96"})  # the next command closes it
    crashed = [r for r in responses(eng) if r["request"]["id"] == rid]
    assert len(crashed) == 1 and crashed[0]["keymgmt"]["outcome"] == "crashed"
    assert crashed[0]["keymgmt"]["aws_calls"] == made
    assert eng.store.list(f"audit/calls/{rid}") == []
