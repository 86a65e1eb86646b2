"""A bulk read-only listing (the recovery search's ListResourceTags on every key of a region) is
one audit entry, however many keys the account holds: operation, region, how many keys, requests,
refusals, throttled answers and a bounded sample of request ids; the journal also holds a
``started`` entry written before it, so a command killed during the read shows it had begun. The
dry-run plan lists the same calls as the run records (issue 17)."""

from __future__ import annotations

import uuid

from keymgmt_cli.audit.calls import CallLog, RecordingProvider
from keymgmt_cli.engine import reconcile
from keymgmt_cli.engine.plan import PlanningProvider, PlanWorld
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld

from evidence_support import trail as file_trail

REGION = "us-west-1"
WANTED = {"keymgmt:state_id": "s1", "keymgmt:op": "lost"}


def account(world, foreign=250):
    kms = MemoryKms(REGION, world)
    for i in range(foreign):
        kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="not ours",
                       tags={"keymgmt:state_id": "s1", "keymgmt:op": f"other-{i}"} if i % 2 else {"team": "x"})
    return kms.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT", description="lost",
                          tags=WANTED)


def test_the_recovery_search_is_two_entries_not_one_per_key(tmp_path):
    world = MemoryKmsWorld()
    lost = account(world)
    world.fail_next("ListResourceTags", "AccessDeniedException", count=3)  # keys we may not read
    trail = file_trail(tmp_path / "audit")
    trail._check_dir(create=True)
    journal = trail.journal(str(uuid.uuid4()))
    log = CallLog(journal)
    assert reconcile.find_tagged(RecordingProvider(MemoryKms(REGION, world), log, "c1"), WANTED) == [lost]
    entries = log.snapshot()
    assert [e["operation"] for e in entries] == ["ListKeys", "ListResourceTags"]
    bulk = entries[1]["bulk"]
    assert bulk["keys"] == 251 and bulk["requests"] == 251 and bulk["refused"] == 3 and bulk["throttled"] == 0
    assert 10 <= len(bulk["request_ids"]) <= 20 and entries[1]["request_id"] in bulk["request_ids"]
    assert entries[1]["key_id"] == "" and entries[1]["outcome"] == "ok" and entries[1]["credentials"] == "c1"
    journaled, refused = journal.read()
    assert refused == 0
    assert [(e["operation"], e["outcome"]) for e in journaled] == [
        ("ListKeys", "ok"), ("ListResourceTags", "started"), ("ListResourceTags", "ok")]
    assert journaled[1]["bulk"] == {"keys": 251}


def test_a_kill_during_the_read_leaves_the_started_entry(tmp_path):
    world = MemoryKmsWorld()
    account(world, foreign=20)
    trail = file_trail(tmp_path / "audit")
    trail._check_dir(create=True)
    journal = trail.journal(str(uuid.uuid4()))
    seen = []

    class Killed(MemoryKms):
        def list_tags_of_keys(self, key_ids):
            seen.extend(journal.read()[0])  # what a crashed record would be built from now
            raise KeyboardInterrupt

    try:
        reconcile.find_tagged(RecordingProvider(Killed(REGION, world), CallLog(journal)), WANTED)
    except KeyboardInterrupt:
        pass
    assert [(e["operation"], e["outcome"]) for e in seen] == [("ListKeys", "ok"), ("ListResourceTags", "started")]
    assert seen[1]["bulk"] == {"keys": 21}


def test_the_plan_lists_the_calls_the_run_records():
    world = MemoryKmsWorld()
    lost = account(world, foreign=40)
    plan = PlanWorld()
    assert reconcile.find_tagged(PlanningProvider(MemoryKms(REGION, world), REGION, plan), WANTED) == [lost]
    log = CallLog()
    assert reconcile.find_tagged(RecordingProvider(MemoryKms(REGION, world), log), WANTED) == [lost]
    planned = [(c["operation"], c["mutating"], c["sent"]) for c in plan.calls]
    assert planned == [("ListKeys", False, True), ("ListResourceTags", False, True)]
    assert [e["operation"] for e in log.snapshot()] == [c["operation"] for c in plan.calls]
    assert plan.calls[1]["keys"] == log.snapshot()[1]["bulk"]["keys"] == 41


def test_the_plan_table_counts_the_keys_of_a_bulk_read(capsys):
    from keymgmt_cli.cli.evidence import print_plan

    result = {"warnings": [], "state_changes": [], "mutating_calls": 0, "aws_calls": {REGION: [
        {"operation": "ListKeys", "key_id": None, "mutating": False, "sent": True},
        {"operation": "ListResourceTags", "key_id": None, "keys": 41, "mutating": False, "sent": True},
        {"operation": "CreateKey", "key_id": "mrk-1", "mutating": True, "sent": False},
    ]}}
    print_plan("write", "keymgmt/kms/p/key/k", result, "table")
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["1.", "ListKeys", "-", "[read,", "sent]"] for line in lines)
    assert any(line.split() == ["2.", "ListResourceTags", "41", "key(s)", "[read,", "sent]"] for line in lines)
    assert any(line.split() == ["3.", "CreateKey", "mrk-1", "[would", "change", "AWS]"] for line in lines)
