"""Issue 9, item 5: the state directory as another local user would attack it.

Planted symlinks (lock files, the lock directory, documents, the home itself), permissive or
foreign directories, the umask, ``KEYMGMT_HOME=""``; and, where the machine allows (root),
the planting done by a real unprivileged uid with ``setpriv``.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from keymgmt_cli.errors import StoreError
from keymgmt_cli.store import open_store
from keymgmt_cli.store.filestore import FileStore, lock_file_name

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
SETPRIV = shutil.which("setpriv")


def _run(env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    full = dict(env, PYTHONPATH=str(REPO))
    return subprocess.run([*prefix, sys.executable, "-m", "keymgmt_cli", *args], env=full,
                          capture_output=True, text=True, timeout=120, cwd="/")


def _env(home: Path | str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env["KEYMGMT_HOME"] = str(home)
    env["KEYMGMT_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    return env


# Vault's verbs exit 2 for every failed request, the local state included; other commands exit 1
def _refusal_code(proc) -> int:
    return 2 if proc.args[3] in ("read", "list", "write", "delete") else 1


def _one_line_refusal(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == _refusal_code(proc), (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    for word in words:
        assert word in first, proc.stderr


@pytest.fixture
def victim_file(tmp_path):
    """A file of the victim's that a planted symlink points at: it must stay as it is."""
    target = tmp_path / "precious.txt"
    target.write_text("do not touch\n")
    target.chmod(0o644)
    return target


def _untouched(target: Path) -> None:
    assert target.read_text() == "do not touch\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path, victim_file):
    store = FileStore(tmp_path / "state")
    store.put("c/a", {"n": 1})
    locks = tmp_path / "state" / ".locks"
    locks.mkdir(mode=0o700)
    (locks / lock_file_name("state")).symlink_to(victim_file)
    with pytest.raises(StoreError, match="symlink"):
        with store.lock("state"):
            pass
    _untouched(victim_file)


def test_symlinked_lock_directory_is_refused(tmp_path, victim_file):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / lock_file_name("state")).symlink_to(victim_file)
    store = FileStore(tmp_path / "state")
    store.put("c/a", {"n": 1})
    (tmp_path / "state" / ".locks").symlink_to(elsewhere)
    with pytest.raises(StoreError, match="lock"):
        with store.lock("state"):
            pass
    _untouched(victim_file)
    assert sorted(os.listdir(elsewhere)) == [lock_file_name("state")]


def test_symlinked_document_is_not_read(tmp_path):
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"deletion_allowed": true}\n')
    store = FileStore(tmp_path / "state")
    store.put("c/a", {"n": 1})
    (tmp_path / "state" / "c" / "b.json").symlink_to(foreign)
    with pytest.raises(StoreError, match=r"c/b\.json.*symlink"):
        store.get("c/b")


def test_symlinked_home_is_refused(tmp_path):
    real = tmp_path / "real"
    FileStore(real).put("c/a", {"n": 1})
    link = tmp_path / "link"
    link.symlink_to(real)
    for act in (lambda s: s.get("c/a"), lambda s: s.list("c"), lambda s: s.put("c/b", {})):
        with pytest.raises(StoreError, match="is a symlink"):
            act(FileStore(link))
    proc = _run(_env(link), "list", "keymgmt/key")
    _one_line_refusal(proc, "symlink", str(link))


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_group_or_world_writable_home_is_refused(tmp_path, mode):
    home = tmp_path / "state"
    FileStore(home).put("c/a", {"n": 1})
    home.chmod(mode)
    with pytest.raises(StoreError, match="writable by group or others"):
        FileStore(home).get("c/a")
    proc = _run(_env(home), "write", "keymgmt/key/k1", "type=aes256-gcm96")
    _one_line_refusal(proc, "writable by group or others")
    assert stat.S_IMODE(home.stat().st_mode) == mode  # refused, not silently changed
    assert not (home / "ns").exists()


def test_readable_home_is_tightened_on_write(tmp_path):
    home = tmp_path / "state"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    store = FileStore(home)
    assert store.get("c/a") is None  # reads change nothing
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    store.put("c/a", {"n": 1})
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_writable_parent_without_sticky_bit_is_refused(tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o777)
    with pytest.raises(StoreError, match="shared.*writable by group or others"):
        FileStore(parent / "state").put("c/a", {"n": 1})
    assert not (parent / "state").exists()
    parent.chmod(0o1777)  # a sticky directory as /tmp: others cannot rename our entries
    FileStore(parent / "state").put("c/a", {"n": 1})


def test_missing_parents_are_created_0700_whatever_the_umask(tmp_path):
    home = tmp_path / "a" / "b" / "state"
    old = os.umask(0)
    try:
        FileStore(home).put("c/d/e", {"n": 1})
    finally:
        os.umask(old)
    for d in (tmp_path / "a", tmp_path / "a" / "b", home, home / "c", home / "c" / "d"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE((home / "c" / "d" / "e.json").stat().st_mode) == 0o600


def test_empty_keymgmt_home_is_an_error(tmp_path):
    env = _env(tmp_path / "unused")
    env["KEYMGMT_HOME"] = ""
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    for args in (("list", "keymgmt/key"), ("write", "keymgmt/key/k1", "type=aes256-gcm96")):
        proc = _run(env, *args)
        _one_line_refusal(proc, "KEYMGMT_HOME is set but empty")
    assert not (tmp_path / "xdg").exists()
    with pytest.raises(StoreError):
        open_store({"KEYMGMT_HOME": ""})


# -- as another local user -------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                                reason="needs root and setpriv to act as an unprivileged uid")
AS_NOBODY = (SETPRIV or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


@pytest.fixture
def shared_tmp():
    """A directory both root and the unprivileged uid can write, sticky as /tmp (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="keymgmt-custody-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_root
def test_home_planted_by_another_user_is_refused(shared_tmp):
    """uid 65534 prepares the victim's KEYMGMT_HOME with a lock symlink to a file of root's."""
    victim = shared_tmp / "victim.txt"
    victim.write_text("do not touch\n")
    victim.chmod(0o644)
    home = shared_tmp / "home"
    plant = (f"import os; os.mkdir({str(home)!r}, 0o700); os.mkdir({str(home / '.locks')!r}, 0o700); "
             f"os.symlink({str(victim)!r}, {str(home / '.locks' / lock_file_name('state'))!r})")
    subprocess.run([*AS_NOBODY, sys.executable, "-c", plant], check=True, cwd="/")
    assert home.stat().st_uid == NOBODY
    proc = _run(_env(home), "write", "keymgmt/key/k1", "type=aes256-gcm96")
    _one_line_refusal(proc, "belongs to another user", str(home))
    _untouched(victim)
    assert sorted(os.listdir(home)) == [".locks"]


def _python_for_nobody() -> str | None:
    """A Python the unprivileged uid can run (the test venv may live under a 0700 /root).

    The store is standard library only, so any Python 3.11+ will do for it."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        probe = subprocess.run([*AS_NOBODY, candidate, "-c", "import sys; assert sys.version_info >= (3, 11)"],
                               capture_output=True, cwd="/")
        if probe.returncode == 0:
            return candidate
    return None


_AS_NOBODY_STORE = """
import os, stat, sys
from keymgmt_cli.errors import StoreError
from keymgmt_cli.store.filestore import FileStore
os.umask(0)
mine, roots = sys.argv[1], sys.argv[2]
FileStore(os.path.join(mine, "a", "state")).put("c/d", {"n": 1})
try:
    FileStore(roots).get("c/d")
except StoreError as exc:
    print("refused:", exc)
"""


@needs_root
def test_unprivileged_user_gets_a_private_state_and_cannot_use_roots(shared_tmp):
    """The store run as uid 65534 with umask 0: its new state is 0700; a state dir of root's is refused."""
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python 3.11+ that uid 65534 can execute")
    mine = shared_tmp / "nobody"
    mine.mkdir()
    os.chown(mine, NOBODY, NOBODY)
    roots = shared_tmp / "roots"
    roots.mkdir(mode=0o755)
    roots.chmod(0o755)
    proc = subprocess.run([*AS_NOBODY, python, "-c", _AS_NOBODY_STORE, str(mine), str(roots)],
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, cwd="/", timeout=60)
    assert proc.returncode == 0, proc.stderr
    for d in (mine / "a", mine / "a" / "state", mine / "a" / "state" / "c"):
        st = d.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o700), d
    assert "refused:" in proc.stdout and "belongs to another user" in proc.stdout, proc.stdout
