"""What only the file store promises: layout, permissions, atomic writes, locks across processes."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from keymgmt_cli.errors import StoreError
from keymgmt_cli.store import open_store, state_home
from keymgmt_cli.store.filestore import FileStore

REPO = Path(__file__).resolve().parents[2]


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_layout_one_file_per_document(tmp_path):
    store = FileStore(tmp_path / "home")
    store.put("m1/keys/k1", {"v": 1})
    store.put("m1", {"mount": 1})
    assert json.loads((tmp_path / "home/m1/keys/k1.json").read_text()) == {"v": 1}
    assert json.loads((tmp_path / "home/m1.json").read_text()) == {"mount": 1}
    assert store.path_of("m1/keys/k1") == tmp_path / "home/m1/keys/k1.json"
    assert store.location == str(tmp_path / "home") and store.backend == "file"


def test_nothing_is_created_until_the_first_write(tmp_path):
    store = FileStore(tmp_path / "home")
    assert store.get("m1/keys/k1") is None
    assert store.list("m1/keys") == []
    assert store.delete("m1/keys/k1") is False
    store.delete_collection("m1")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_permissions_are_0700_and_0600_whatever_the_umask(tmp_path, umask):
    home = tmp_path / "deep" / "home"
    old = os.umask(umask)
    try:
        store = FileStore(home)
        store.put("m1/keys/k1", {"v": 1})
        store.put("m1/keys/k1", {"v": 2})  # replaced files too
        with store.lock("m1/keys/k1"):
            pass
    finally:
        os.umask(old)
    for d in [home, home / "m1", home / "m1/keys", home / ".locks"]:
        assert _mode(d) == 0o700, d
    for f in [home / "m1/keys/k1.json", *(home / ".locks").iterdir()]:
        assert _mode(f) == 0o600, f


def test_an_existing_world_readable_document_is_rewritten_0600(tmp_path):
    store = FileStore(tmp_path)
    store.put("m1/k", {"v": 1})
    os.chmod(store.path_of("m1/k"), 0o644)
    store.put("m1/k", {"v": 2})
    assert _mode(store.path_of("m1/k")) == 0o600


def test_get_list_put_never_walk_other_documents(tmp_path, monkeypatch):
    """No index and no scan: one key costs the same at 10 and at 10,000 keys."""
    store = FileStore(tmp_path)
    for i in range(40):
        store.put(f"m1/keys/k{i:02d}", {"i": i})
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")}

    def no_scan(*a, **k):
        raise AssertionError("directory scan")

    real_scandir = os.scandir
    monkeypatch.setattr(os, "listdir", no_scan)
    monkeypatch.setattr(os, "walk", no_scan)
    monkeypatch.setattr(os, "scandir", no_scan)
    assert store.get("m1/keys/k07") == {"i": 7}
    store.put("m1/keys/k07", {"i": 70})
    store.put("m1/keys/new", {"i": 100})
    monkeypatch.setattr(os, "scandir", real_scandir)
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")}
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed == {tmp_path / "m1/keys/k07.json", tmp_path / "m1/keys/new.json",
                       tmp_path / "m1/keys"}  # the directory gained an entry
    assert set(after) - set(before) == {tmp_path / "m1/keys/new.json"}


def test_writes_fsync_the_file_and_the_directory(tmp_path, monkeypatch):
    store = FileStore(tmp_path)
    store.put("m1/a", {})
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    store.put("m1/a", {"v": 1})
    assert any(".tmp-" in p for p in synced) and str(tmp_path / "m1") in synced
    synced.clear()
    store.delete("m1/a")
    assert synced == [str(tmp_path / "m1")]


def test_list_ignores_temp_files_and_strangers(tmp_path):
    store = FileStore(tmp_path)
    store.put("m1/keys/real", {})
    d = tmp_path / "m1/keys"
    for junk in [".tmp-123-abcdef", "x.json.tmp", "notes.txt", "UPPER.JSON", "bad name.json",
                 ".json"]:
        (d / junk).write_text("{}")
    (d / "subdir").mkdir()
    (d / "dir.json").mkdir()
    assert store.list("m1/keys") == ["real"]


@pytest.mark.parametrize("content, reason", [
    (b"", "invalid JSON"),
    (b'{"secret": "TOPSECRET-VALUE-42", "trunc', "invalid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
    (b'"TOPSECRET-VALUE-42"', "expected a JSON object"),
    (b'{"n": ' + b"9" * 5000 + b"}", "a number too long to read"),  # valid JSON, past int's digit limit
    (b'{"n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
])
def test_corrupt_document_is_a_store_error_naming_the_file(tmp_path, content, reason):
    store = FileStore(tmp_path)
    store.put("m1/keys/k1", {"v": 1})
    path = store.path_of("m1/keys/k1")
    path.write_bytes(content)
    with pytest.raises(StoreError) as err:
        store.get("m1/keys/k1")
    message = str(err.value)
    assert str(path) in message and reason in message and "\n" not in message
    assert "TOPSECRET" not in message
    assert store.list("m1/keys") == ["k1"]  # list does not parse documents
    store.put("m1/keys/k1", {"v": 2})  # and it can be overwritten
    assert store.get("m1/keys/k1") == {"v": 2}


def test_unreadable_document_is_a_store_error(tmp_path):
    store = FileStore(tmp_path)
    store.path_of("m1/k").mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(StoreError, match="cannot read state document .*k.json"):
        store.get("m1/k")


def test_unwritable_state_is_a_store_error(tmp_path):
    (tmp_path / "m1").write_text("a file where a directory should be")
    store = FileStore(tmp_path)
    with pytest.raises(StoreError, match=f"cannot write state document {tmp_path}/m1/k.json"):
        store.put("m1/k", {})


def test_delete_collection_leaves_nothing_behind(tmp_path):
    store = FileStore(tmp_path)
    for i in range(5):
        store.put(f"m1/keys/k{i}/versions/1", {})
    store.put("m2/keys/x", {})
    store.delete_collection("m1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m2"]


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    store = FileStore(tmp_path)
    store.put("m1/k", {"v": 1})

    def fail(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StoreError, match="No space left on device"):
        store.put("m1/k", {"v": 2})
    monkeypatch.undo()
    assert store.get("m1/k") == {"v": 1}
    assert sorted(p.name for p in (tmp_path / "m1").iterdir()) == ["k.json"]


WRITER = textwrap.dedent("""
    import sys
    from keymgmt_cli.store.filestore import FileStore
    store = FileStore(sys.argv[1])
    pad = "x" * 1_500_000
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        store.put("m/big", {"i": i, "pad": pad, "end": i})
""")


def test_killed_writer_never_leaves_a_partial_document(tmp_path):
    """kill -9 a process in the middle of writing a large document, many times."""
    store = FileStore(tmp_path)
    store.put("m/big", {"i": 0, "pad": "", "end": 0})
    rng = random.Random(7)
    seen = set()
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                                 stdout=subprocess.PIPE, env=_child_env())
        assert child.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + rng.uniform(0.05, 0.25)
        while time.monotonic() < deadline:  # read while it writes
            doc = store.get("m/big")
            assert doc["i"] == doc["end"]
            seen.add(doc["i"])
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        doc = store.get("m/big")
        assert doc["i"] == doc["end"] and len(doc["pad"]) in (0, 1_500_000)
    assert len(seen) > 3  # the writer did get through writes while we read
    assert store.list("m") == ["big"]  # temp files of killed writers are ignored


COUNTER = textwrap.dedent("""
    import os, sys, time
    from keymgmt_cli.store.filestore import FileStore
    home, me = sys.argv[1], int(sys.argv[2])
    store = FileStore(home)
    while not os.path.exists(os.path.join(home, "go")):
        time.sleep(0.002)
    for j in range(25):
        with store.lock("counter", timeout=60):
            doc = store.get("shared/counter") or {"n": 0, "by": []}
            doc["n"] += 1
            doc["by"].append(me)
            store.put("shared/counter", doc)
        store.put(f"all/p{me}-{j}", {"p": me, "j": j})
        store.put(f"own/p{me}/d{j}", {"j": j})
""")


def test_processes_lose_no_update_under_the_lock(tmp_path):
    """8 processes x 25 read-modify-writes of one document, plus their own documents."""
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, str(tmp_path), str(i)],
                              env=_child_env()) for i in range(8)]
    time.sleep(0.3)
    (tmp_path / "go").write_text("")
    for p in procs:
        assert p.wait(timeout=60) == 0
    store = FileStore(tmp_path)
    doc = store.get("shared/counter")
    assert doc["n"] == 200
    assert sorted(doc["by"]) == sorted(list(range(8)) * 25)
    assert store.list("all") == sorted(f"p{i}-{j}" for i in range(8) for j in range(25))
    for i in range(8):
        assert store.list(f"own/p{i}") == sorted(f"d{j}" for j in range(25))
        assert all(store.get(f"all/p{i}-{j}") == {"p": i, "j": j} for j in range(25))


HOLDER = textwrap.dedent("""
    import sys
    from keymgmt_cli.store.filestore import FileStore
    with FileStore(sys.argv[1]).lock("m1/keys/k1"):
        print("held", flush=True)
        sys.stdin.readline()
""")


def test_lock_held_by_another_process_times_out_naming_it(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_env())
    try:
        assert child.stdout.readline() == b"held\n"
        with pytest.raises(StoreError) as err:
            with FileStore(tmp_path).lock("m1/keys/k1", timeout=0.3):
                pass
        assert str(err.value) == ("state is locked by another keymgmt process (lock m1/keys/k1); "
                                  "retry or check for a stuck process")
        assert err.value.hint == f"the lock was last taken by process {child.pid}"
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    with FileStore(tmp_path).lock("m1/keys/k1", timeout=2):
        pass


def test_lock_excludes_threads_with_their_own_store_objects(tmp_path):
    """flock on separate open file descriptions: threads of one process exclude each other."""
    inside = []
    overlaps = []

    def work():
        store = FileStore(tmp_path)
        for _ in range(20):
            with store.lock("L", timeout=20):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    held = threading.Event()
    release = threading.Event()

    def hold():
        with FileStore(tmp_path).lock("L"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(StoreError):
            with FileStore(tmp_path).lock("L", timeout=0.1):
                pass
    finally:
        release.set()
        t.join()


def test_lock_files_stay_and_are_named_safely(tmp_path):
    store = FileStore(tmp_path)
    with store.lock("m1/keys/k1"):
        pass
    with store.lock("../../escape"):
        pass
    names = sorted(p.name for p in (tmp_path / ".locks").iterdir())
    assert names == ["..%2F..%2Fescape.lock", "m1%2Fkeys%2Fk1.lock"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks"]


def test_open_store_uses_keymgmt_home(tmp_path, monkeypatch):
    store = open_store({"KEYMGMT_HOME": str(tmp_path / "h")})
    # an AuthStore around the FileStore (issue 9: every document authenticated)
    assert isinstance(store.inner, FileStore) and store.home == tmp_path / "h"
    monkeypatch.chdir(tmp_path)
    assert open_store({"KEYMGMT_HOME": "rel"}).home == tmp_path / "rel"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_home({"KEYMGMT_HOME": "~/x"}) == tmp_path / "x"


def test_open_store_defaults_to_the_user_data_dir(tmp_path, monkeypatch):
    xdg = str(tmp_path / "data")
    assert open_store({"XDG_DATA_HOME": xdg}).home == tmp_path / "data" / "keymgmt"
    # KEYMGMT_HOME="" is an error (issue 9): a variable that expanded to nothing must not act on
    # the default state
    for empty in ("", "  "):
        with pytest.raises(StoreError, match="KEYMGMT_HOME is set but empty"):
            open_store({"KEYMGMT_HOME": empty, "XDG_DATA_HOME": xdg})


def test_list_sweeps_temp_files_left_by_killed_writers(tmp_path):
    import time as _time

    from keymgmt_cli.store.filestore import STALE_TMP_SECONDS, TMP_PREFIX, FileStore

    store = FileStore(tmp_path / "state")
    store.put("c/a", {"n": 1})
    directory = tmp_path / "state" / "c"
    old = directory / f"{TMP_PREFIX}1234-dead"
    fresh = directory / f"{TMP_PREFIX}5678-live"
    old.write_bytes(b"{")
    fresh.write_bytes(b"{")
    past = _time.time() - STALE_TMP_SECONDS - 5
    os.utime(old, (past, past))
    assert store.list("c") == ["a"]
    assert not old.exists(), "a stale temp file is removed"
    assert fresh.exists(), "a writer's fresh temp file is left alone"
