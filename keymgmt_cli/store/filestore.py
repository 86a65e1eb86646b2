"""The local state store: one JSON file per document in a private directory.

Document ``a/b/c`` lives at ``<home>/a/b/c.json``. The layout has no index shared across
documents, so writing one key costs the same at 10 and at 10,000 keys, and ``list`` is one
``os.scandir`` of the collection's directory.

Durability: a write goes to a temp file in the same directory, is fsynced, renamed over the
document with ``os.replace`` (atomic on POSIX: readers see the old or the new file, never a
mix) and the directory is fsynced so the rename survives a power cut. Directories are 0700 and
files 0600, set with chmod after creation so that the umask can neither widen nor narrow them.

Custody (``private_dir.py``): the directory must be the user's own and writable by nobody else
(not a symlink; its parents owned by the user or root, writable only by them unless sticky), or
every operation is refused with one line; missing directories are created 0700 whatever the
umask; documents and lock files are opened with ``O_NOFOLLOW`` and checked with ``fstat``.

Locks are ``flock`` on ``<home>/.locks/<name>.lock``. flock belongs to the open file
description, so two ``open`` calls in the same process exclude each other as well: the lock
works across processes *and* threads. Lock files are never removed (removing one races with a
process that has just opened it).

This module is on the fast ``read``/``list`` path: it imports only the standard library, and of
that neither ``pathlib`` (with ``fnmatch``, ``ntpath``, ``urllib.parse`` and ``ipaddress`` it
costs about a third of a bare interpreter start-up) nor ``contextlib`` nor ``json`` (documents are
parsed by ``docjson.py``, json's own C scanner without json's import of ``re``): paths are
``os.path`` strings, ``home`` makes its ``Path`` only when a caller asks for it, and ``lock``
returns a small context manager class.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing costs milliseconds on the read path
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

from ..errors import StoreError
from .base import check_store_id, encode_document, is_segment, lock_busy_error
from .docjson import loads
from .private_dir import check_home, link_error, open_dir_nofollow, open_nofollow, read_nofollow, tighten

DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_DIR = ".locks"
#: Temp files and doomed directories start with a dot and never end in ``.json``, so ``list``
#: skips them; a crash can leave one behind, which is harmless.
TMP_PREFIX = ".tmp-"
_DOOMED_PREFIX = ".del-"
_SUFFIX = ".json"
_LOCK_NAME_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _dir_segment(segment: str) -> str:
    """A collection segment as a directory name.

    ``a.json`` as a collection would collide with the file of document ``a``; ``~`` cannot
    occur in a segment, so appending it keeps the mapping one-to-one.
    """
    return segment + "~" if segment.endswith(_SUFFIX) else segment


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make entries created, renamed or removed in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: str, private_root: str) -> None:
    """Create ``path`` and its missing parents.

    Every directory created gets exactly 0700, whatever the umask, parents above
    ``private_root`` (for example ``~/.local/share``) included, as ``ssh`` does for ``~/.ssh``.
    An existing symlink where a directory should be is refused. Each parent that gains an entry
    is fsynced.
    """
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if os.path.islink(path) or not os.path.isdir(path):
            raise NotADirectoryError(20, "exists and is not a directory (or is a symlink)", path) from None
        return
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        ensure_dir(parent, private_root)
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            return
    os.chmod(path, DIR_MODE, follow_symlinks=False)  # the umask may have narrowed or widened it
    fsync_dir(os.path.dirname(path))


def write_file_atomic(path: str | os.PathLike[str], data: bytes, private_root: str,
                      mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename, fsync dir.

    Raises OSError; callers turn it into a StoreError that names the file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    tmp = os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}")
    try:
        fd = os.open(tmp, flags, mode)
    except FileNotFoundError:
        ensure_dir(directory, private_root)
        fd = os.open(tmp, flags, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def lock_file_name(name: str) -> str:
    """A lock name as a file name: bytes outside ``[A-Za-z0-9_.-]`` become ``%XX`` (one-to-one)."""
    if not name:
        raise ValueError("empty lock name")
    safe = "".join(chr(b) if b in _LOCK_NAME_SAFE else f"%{b:02X}" for b in name.encode("utf-8"))
    if len(safe) > 200:  # keep under NAME_MAX; a digest keeps distinct names distinct
        import hashlib

        safe = safe[:100] + "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()
    return safe + ".lock"


STALE_TMP_SECONDS = 600.0


def _sweep(entry: os.DirEntry[str]) -> None:
    """Remove a temp file a killed writer left behind. A live writer renames its temp file within
    milliseconds, so one ten minutes old is garbage; listing already visits it, at no extra cost."""
    try:
        if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS:
            os.unlink(entry.path)
    except OSError:
        pass  # gone already, or not ours to remove: harmless either way


class FileStore:
    """``DocumentStore`` over a directory (``KEYMGMT_HOME``). Created lazily on first write."""

    backend = "file"

    def __init__(self, home: str | os.PathLike[str]):
        self._root = os.path.abspath(os.fspath(home))
        self.location = self._root
        self._home: Path | None = None
        self._checked = False  # the directory passed check_home (once per instance)
        self._tightened = False

    @property
    def home(self) -> Path:
        """The state directory as a ``Path`` (for the commands that build paths in it; the read
        path uses the string ``location`` and never imports pathlib)."""
        if self._home is None:
            from pathlib import Path

            self._home = Path(self._root)
        return self._home

    def _check(self, writing: bool = False) -> None:
        """Refuse an unsafe state directory (``private_dir.check_home``); on a write, make it 0700."""
        if not self._checked:
            exists = check_home(self._root)
            self._checked = exists
            if not exists:
                return
        if writing and not self._tightened:
            tighten(self._root)
            self._tightened = True

    def __repr__(self) -> str:
        return f"FileStore({self._root!r})"

    # -- paths -------------------------------------------------------------------------------

    def _dir_path(self, parts: list[str]) -> str:
        return os.path.join(self._root, *map(_dir_segment, parts))

    def _doc_path(self, doc_id: str) -> str:
        parts = check_store_id(doc_id)
        return os.path.join(self._dir_path(parts[:-1]), parts[-1] + _SUFFIX)

    def path_of(self, doc_id: str) -> Path:
        """Where document ``doc_id`` is kept (for messages and tests)."""
        from pathlib import Path

        return Path(self._doc_path(doc_id))

    # -- documents ---------------------------------------------------------------------------

    def get(self, doc_id: str) -> dict[str, Any] | None:
        path = self._doc_path(doc_id)
        self._check()
        try:
            raw = read_nofollow(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise StoreError(f"cannot read state document {path}: {link_error(e)}") from None
        return decode_document(raw, path)

    def all_ids(self) -> list[str]:
        """Every document id, sorted: the one walk of the directory layout (a collection named
        ``X.json`` is kept as ``X.json~``; ``.locks/`` and doomed ``.del-*`` directories are the
        store's own), for snapshots, migration, rekey and upgrade."""
        root = self._root
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            parts = [] if rel == "." else rel.split(os.sep)
            dirnames[:] = [d for d in dirnames if not d.startswith(".del-") and not (not parts and d == ".locks")]
            segments = [p[:-1] if p.endswith(".json~") else p for p in parts]
            for name in filenames:
                if not name.endswith(".json"):
                    continue
                doc_id = "/".join(segments + [name[:-len(".json")]])
                try:
                    check_store_id(doc_id)
                except ValueError:
                    continue  # seal.json and other files of the store itself
                found.append(doc_id)
        return sorted(found)

    def list(self, collection: str) -> list[str]:
        directory = self._dir_path(check_store_id(collection))
        self._check()
        names = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.endswith(_SUFFIX) and entry.is_file():
                        names.append(name[: -len(_SUFFIX)])
                    elif name.startswith(TMP_PREFIX):
                        _sweep(entry)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise StoreError(f"cannot list state directory {directory}: {_why(e)}") from None
        return sorted(n for n in names if is_segment(n))

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        path = self._doc_path(doc_id)
        data = encode_document(doc)
        self._check(writing=True)
        try:
            write_file_atomic(path, data, self._root)
        except OSError as e:
            raise StoreError(f"cannot write state document {path}: {_why(e)}") from None

    def delete(self, doc_id: str) -> bool:
        path = self._doc_path(doc_id)
        self._check(writing=True)
        try:
            os.unlink(path)
            fsync_dir(os.path.dirname(path))
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:
            raise StoreError(f"cannot delete state document {path}: {_why(e)}") from None
        return True

    def delete_collection(self, collection: str) -> None:
        """Rename the directory away first (atomic), then remove it: readers see all or nothing."""
        directory = self._dir_path(check_store_id(collection))
        self._check(writing=True)
        parent = os.path.dirname(directory)
        doomed = os.path.join(parent, f"{_DOOMED_PREFIX}{os.urandom(6).hex()}")
        try:
            os.rename(directory, doomed)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise StoreError(f"cannot delete state directory {directory}: {_why(e)}") from None
        import shutil

        try:
            fsync_dir(parent)
            shutil.rmtree(doomed)
        except OSError as e:
            raise StoreError(f"cannot delete state directory {doomed}: {_why(e)}") from None

    # -- locks -------------------------------------------------------------------------------

    def lock(self, name: str, timeout: float = 60.0) -> _FlockHeld:
        """An exclusive flock on ``.locks/<name>.lock``, taken on ``__enter__`` (a context manager)."""
        path = os.path.join(self._root, LOCK_DIR, lock_file_name(name))

        def open_lock_file() -> int:
            self._check(writing=True)
            return self._open_lock_file(path)

        return _FlockHeld(name, path, open_lock_file, timeout)

    def _open_lock_file(self, path: str) -> int:
        flags = os.O_RDWR | os.O_CREAT
        directory = os.path.dirname(path)
        try:
            try:
                dir_fd = open_dir_nofollow(directory)  # .locks itself must not be a symlink
            except FileNotFoundError:
                ensure_dir(directory, self._root)
                dir_fd = open_dir_nofollow(directory)
            try:
                fd = open_nofollow(os.path.basename(path), flags, FILE_MODE, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise StoreError(f"cannot open lock file {path}: {link_error(e)}") from None
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError:
            pass
        return fd


class _FlockHeld:
    """``with store.lock(name):`` -- the lock file is opened and flocked on entry (polling with
    backoff up to ``timeout``), our pid written for the next waiter's message, and closed on exit,
    which releases the flock. A class rather than ``contextlib.contextmanager``: the read path
    does not import contextlib."""

    __slots__ = ("_name", "_path", "_open", "_timeout", "_fd")

    def __init__(self, name: str, path: str, opener: Any, timeout: float):
        self._name, self._path, self._open, self._timeout = name, path, opener, timeout
        self._fd: int | None = None

    def __enter__(self) -> None:
        import fcntl  # only where a lock is taken (reads take none)

        fd = self._open()
        try:
            deadline = time.monotonic() + self._timeout
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                except OSError as e:
                    raise StoreError(f"cannot lock {self._path}: {_why(e)}") from None
                now = time.monotonic()
                if now >= deadline:
                    raise lock_busy_error(self._name, _holder_hint(fd))
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, 0.05)
            try:  # who holds it, for the next waiter's message; best effort
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the flock


def _holder_hint(fd: int) -> str | None:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return f"the lock was last taken by process {pid}" if pid.isdigit() else None


def decode_document(raw: bytes, path: str) -> dict[str, Any]:
    """Parse a stored document; anything but a JSON object is a StoreError naming the file."""
    try:
        doc = loads(raw.decode("utf-8"))  # loads(bytes) would also guess UTF-16/32, as json.loads
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except ValueError as e:
        from json import JSONDecodeError  # what docjson raises for invalid JSON (json's own error)

        if isinstance(e, JSONDecodeError):
            reason = f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        else:  # valid JSON Python will not hold: an integer past sys.get_int_max_str_digits()
            reason = "a number too long to read"
    except RecursionError:  # valid JSON nested deeper than the interpreter's recursion limit
        reason = "nested too deeply"
    else:
        if isinstance(doc, dict):
            return doc
        reason = f"expected a JSON object, found {type(doc).__name__}"
    raise StoreError(f"state document {path} is corrupt ({reason})",
                     hint="restore it from a backup, or remove it to forget that entity")
