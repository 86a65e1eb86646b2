"""The file trail's chain: whole after appends and rotations; every edit, deletion, reordering,
truncation, replaced head or other master key is reported at the first bad record."""

from __future__ import annotations

import json
import os
import stat

import pytest

from evidence_support import append_commands, edit_line, rewrite, segment_lines, trail, verify
from keymgmt_cli.audit import chain, records
from keymgmt_cli.errors import StoreError


def test_whole_chain_verifies_and_files_are_private(tmp_path):
    t = trail(tmp_path / "a")
    append_commands(t, 5)
    assert verify(t) == (10, None)
    assert stat.S_IMODE(os.stat(t.directory).st_mode) == 0o700
    for name in os.listdir(t.directory):
        assert stat.S_IMODE(os.stat(t.directory / name).st_mode) == 0o600, name
    seqs = [r["keymgmt"]["seq"] for _w, r in t.records()]
    assert seqs == list(range(10))
    first = next(iter(t.records()))[1]
    for field in ("time", "type", "auth", "request", "error"):  # Vault's audit-device shape
        assert field in first
    assert {"id", "operation", "path", "data"} <= set(first["request"])


def test_secret_values_are_digests(tmp_path):
    t = trail(tmp_path / "a")
    append_commands(t, 1, secret="very-secret-credential")
    raw = b"".join((t.directory / n).read_bytes() for n in os.listdir(t.directory))
    assert b"very-secret-credential" not in raw
    data = next(iter(t.records()))[1]["request"]["data"]
    assert data["type"] == "aes256-gcm96"
    assert data["credentials"].startswith("hmac-sha256:") and len(data["credentials"]) == 12 + 64
    assert data["credentials"] == t.keys.digest("very-secret-credential")  # same secret, same digest


@pytest.mark.parametrize("attack, bad_seq", [
    ("edit-path", 3), ("edit-time", 0), ("delete-middle", 4), ("swap", 2), ("truncate-last", 9),
    ("truncate-two", 8), ("torn-tail-by-hand", 9), ("duplicate", 6), ("relink-after-delete", 4),
])
def test_attack_is_detected_at_first_bad_record(tmp_path, attack, bad_seq):
    t = trail(tmp_path / "a")
    append_commands(t, 5)
    path, lines = segment_lines(t)
    if attack == "edit-path":
        lines[3] = edit_line(lines[3], lambda r: r["request"].update(path="keymgmt/key/other"))
    elif attack == "edit-time":
        lines[0] = edit_line(lines[0], lambda r: r.update(time="2020-01-01T00:00:00Z"))
    elif attack == "delete-middle":
        del lines[4]
    elif attack == "swap":
        lines[2], lines[3] = lines[3], lines[2]
    elif attack == "truncate-last":
        del lines[-1]
    elif attack == "truncate-two":
        del lines[-2:]
    elif attack == "torn-tail-by-hand":
        lines[-1] = lines[-1][:40]
    elif attack == "duplicate":
        lines.insert(6, lines[5])
    elif attack == "relink-after-delete":
        # delete record 4 and renumber the rest: the MACs no longer verify without the master key
        del lines[4]
        lines[4:] = [edit_line(line, lambda r: r["keymgmt"].update(seq=r["keymgmt"]["seq"] - 1)) for line in lines[4:]]
    rewrite(path, lines)
    count, problem = verify(t)
    assert problem is not None, attack
    assert problem.seq == bad_seq, (attack, str(problem))
    # a writer refuses a trail whose tail is not what its head says (a truncated or grown segment);
    # either way, a later append never hides an earlier break (the whole chain is verify's job)
    try:
        append_commands(t, 1)
    except StoreError:
        pass
    else:
        assert attack not in ("truncate-last", "truncate-two", "torn-tail-by-hand"), attack
    assert verify(t)[1].seq == bad_seq


def test_head_edited_or_deleted_or_other_master_key(tmp_path):
    t = trail(tmp_path / "a")
    append_commands(t, 2)
    head_path = t.directory / "head.json"
    good = head_path.read_bytes()
    head = json.loads(good)
    head["seq"] = 1
    rewrite(head_path, [json.dumps(head).encode()])
    assert "head" in verify(t)[1].where
    head_path.unlink()
    assert verify(t)[1] is not None
    with pytest.raises(StoreError, match="no head"):
        append_commands(t, 1)
    rewrite(head_path, [good])
    assert verify(t) == (4, None)
    other = trail(tmp_path / "a", master=b"x" * 32)
    count, problem = verify(other)
    assert problem is not None and problem.seq == 0 and "MAC" in problem.what
    with pytest.raises(StoreError, match="does not verify"):
        append_commands(other, 1)


def test_rotation_by_size_keeps_one_chain_and_a_deleted_segment_is_detected(tmp_path):
    t = trail(tmp_path / "a", max_bytes=1500)
    append_commands(t, 12)
    assert len(t.segments()) >= 3
    assert verify(t) == (24, None)
    firsts = [int(name[len("trail-"):-len(".jsonl")]) for name in t.segments()]
    for name, first in zip(t.segments(), firsts):
        assert json.loads(segment_lines(t, name)[1][0])["keymgmt"]["seq"] == first
    (t.directory / t.segments()[1]).unlink()  # an old segment deleted
    count, problem = verify(t)
    assert problem is not None and problem.seq == firsts[1]
    t2 = trail(tmp_path / "b", max_bytes=1500)
    append_commands(t2, 12)
    (t2.directory / t2.segments()[-1]).unlink()  # the newest segment deleted
    count, problem = verify(t2)
    assert problem is not None and "truncated" in problem.what


def test_crash_windows_are_recovered_by_the_next_writer(tmp_path):
    t = trail(tmp_path / "a")
    append_commands(t, 1)
    path, lines = segment_lines(t)
    # a writer died mid-write: a torn line nobody acknowledged is cut off
    with open(path, "ab") as handle:
        handle.write(b'{"time": "2026-')
    # a writer died after its record, before the head: the record is adopted
    with t.transaction():
        pass  # the next writer cuts it off
    assert path.read_bytes() == b"".join(lines)
    head = t.head()
    record = chain.link(records.request_record("write", "keymgmt/key/late", {}, t.keys), head["seq"] + 1,
                        head["mac"], t.keys)
    with open(path, "ab") as handle:
        handle.write((json.dumps(record) + "\n").encode())
    append_commands(t, 1)
    assert verify(t) == (5, None)
    paths = [r["request"]["path"] for _w, r in t.records()]
    assert paths[2] == "keymgmt/key/late"


def test_symlinks_are_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(StoreError, match="not a directory"):
        append_commands(trail(tmp_path / "link"), 1)
    t = trail(tmp_path / "a")
    append_commands(t, 1)
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    seg = t.directory / t.segments()[0]
    seg.unlink()
    seg.symlink_to(victim)
    with pytest.raises(StoreError):
        append_commands(t, 1)
    assert victim.read_bytes() == b"do not touch\n"


def test_a_shared_directory_is_refused(tmp_path):
    t = trail(tmp_path / "a")
    append_commands(t, 1)
    os.chmod(t.directory, 0o777)
    with pytest.raises(StoreError, match="not private"):
        append_commands(t, 1)
