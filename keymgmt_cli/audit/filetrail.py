"""The file backend: an append-only JSON-lines trail beside a local state.

Layout of the directory (0700, owned by the user, never a symlink): ``trail-<first seq>.jsonl``
segments (0600, opened with O_APPEND|O_NOFOLLOW, only ever appended to), ``head.json`` (the last
sequence number and MAC, the segment being written, the requests still open; MAC'd, replaced
atomically) and ``.lock`` (flock: writers on one machine append one after another, so parallel
processes write one chain). A segment past ``max_bytes`` is closed and the next record starts a
new one; the chain runs on across segments, so rotation breaks nothing and deleting a segment is
detected like deleting any record.

Crash safety: a record is appended and fsynced before the head names it. A crash in between
leaves a complete record the head does not name yet (adopted by the next writer after its MAC and
link check) or a torn last line (never acknowledged: cut off by the next writer).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from keymgmt_cli.audit import chain
from keymgmt_cli.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from keymgmt_cli.audit.keys import AuditKeys

HEAD = "head.json"
LOCK = ".lock"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


def segment_name(first_seq: int) -> str:
    return f"trail-{first_seq:012d}.jsonl"


def new_head() -> dict[str, Any]:
    return {"format": 1, "seq": -1, "mac": chain.GENESIS, "current": segment_name(0), "size": 0,
            "open": {}, "identities": {}}


def track(head: dict[str, Any], record: dict[str, Any]) -> None:
    """Keep the head's set of open requests: a request opens, its response closes."""
    req = record.get("request") or {}
    if record.get("type") == "request":
        meta = record.get("keymgmt", {})
        head["open"][req.get("id", "")] = {"seq": meta.get("seq"), "pid": meta.get("pid"),
                                           "process_start": meta.get("process_start", ""),
                                           "host": meta.get("host", ""), "path": req.get("path", ""),
                                           "operation": req.get("operation", ""), "verb": req.get("verb", ""),
                                           "auth": record.get("auth", {})}
    else:
        head["open"].pop(req.get("id", ""), None)


class FileTrail:
    backend = "file"

    def __init__(self, directory: str | os.PathLike[str], keys: AuditKeys, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, lock_timeout: float = 60.0):
        self.directory = Path(directory)
        self.keys = keys
        self.max_bytes = max_bytes
        self.lock_timeout = lock_timeout
        self.location = str(self.directory)

    # -- the directory ----------------------------------------------------------------------------
    def _check_dir(self, create: bool) -> bool:
        try:
            st = os.lstat(self.directory)
        except FileNotFoundError:
            if not create:
                return False
            from keymgmt_cli.store.filestore import ensure_dir

            try:
                ensure_dir(str(self.directory), str(self.directory))
            except OSError as exc:
                raise StoreError(f"cannot create the audit trail directory {self.directory}: "
                                 f"{exc.strerror or type(exc).__name__}") from None
            st = os.lstat(self.directory)
        import stat

        if not stat.S_ISDIR(st.st_mode):
            raise StoreError(f"audit trail {self.directory} is not a directory (a symlink or a file); refusing it")
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise StoreError(f"audit trail directory {self.directory} is not private to this user "
                             "(expected owner-only 0700); refusing it", hint=f"chmod 700 {self.directory}")
        return True

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self._path(LOCK), os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the audit trail lock in {self.directory}: "
                             f"{exc.strerror or type(exc).__name__}") from None
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError("the audit trail is locked by another keymgmt process; retry") from None
                    time.sleep(0.005)
            yield
        finally:
            os.close(fd)

    # -- reading ----------------------------------------------------------------------------------
    def _read(self, name: str) -> bytes | None:
        try:
            fd = os.open(self._path(name), os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read the audit trail file {name} in {self.directory}: "
                             f"{exc.strerror or type(exc).__name__}") from None
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def head(self) -> dict[str, Any] | None:
        raw = self._read(HEAD)
        if raw is None:
            return None
        try:
            head = json.loads(raw)
        except ValueError:
            return {"corrupt": True}
        return head if isinstance(head, dict) else {"corrupt": True}

    def segments(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(n for n in os.listdir(self.directory) if n.startswith("trail-") and n.endswith(".jsonl"))

    def records(self) -> Iterator[tuple[str, Any]]:
        """Every record in order, as ``(where, record)``; an unparsable line as ``(where, error)``."""
        for name in self.segments():
            raw = self._read(name) or b""
            for number, line in enumerate(raw.split(b"\n")[:-1] if raw.endswith(b"\n") else raw.split(b"\n"), 1):
                where = f"{name} line {number}"
                try:
                    yield where, json.loads(line)
                except ValueError as exc:
                    yield where, exc

    def journal(self, request_id: str) -> Any:
        """Where the calls of the open request ``request_id`` are written as they happen (``journal``)."""
        from keymgmt_cli.audit.journal import FileJournal

        return FileJournal(self.directory, self.keys, request_id)

    # -- writing ----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        """Hold the trail (one writer on this machine), recovered and checked; records appended
        through the yielded object; the head written when the block ends without error."""
        self._check_dir(create=True)
        with self._locked():
            tx = _Tx(self, self._recover())
            yield tx
            if tx.dirty:
                self._write_head(tx.head)

    def _write_head(self, head: dict[str, Any]) -> None:
        from keymgmt_cli.store.filestore import write_file_atomic

        data = (json.dumps(chain.sign_head(head, self.keys), sort_keys=True) + "\n").encode()
        try:
            write_file_atomic(self._path(HEAD), data, str(self.directory))
        except OSError as exc:
            raise StoreError(f"cannot write the audit trail head in {self.directory}: "
                             f"{exc.strerror or type(exc).__name__}") from None

    def _recover(self) -> dict[str, Any]:
        head = self.head()
        if head is None:
            if self.segments():
                raise StoreError(f"the audit trail in {self.directory} has records but no head (deleted?); "
                                 "refusing to write", hint="run 'keymgmt audit verify'")
            return new_head()
        if not chain.head_ok(head, self.keys):
            raise StoreError(f"the audit trail head in {self.directory} does not verify under this master key "
                             "(edited, or the wrong master key); refusing to write",
                             hint="run 'keymgmt audit verify'")
        head = {k: v for k, v in head.items() if k != "head_mac"}
        dirty = self._adopt(head, head["current"], head["size"])
        following = segment_name(head["seq"] + 1)
        if following != head["current"] and os.path.exists(self._path(following)):
            head["current"], head["size"] = following, 0  # a crash right after rotating
            dirty = self._adopt(head, following, 0) or True
        if dirty:
            self._write_head(head)
        return head

    def _adopt(self, head: dict[str, Any], name: str, size: int) -> bool:
        """Adopt complete, valid records past ``size`` in segment ``name`` (appended by a writer that
        died before it updated the head); cut off a torn last line."""
        raw = self._read(name) or b""
        if len(raw) < size:
            raise StoreError(f"the audit trail segment {name} in {self.directory} is shorter than its head "
                             "records (truncated); refusing to write", hint="run 'keymgmt audit verify'")
        extra = raw[size:]
        if not extra:
            return False
        complete, _, torn = extra.rpartition(b"\n")
        if torn:
            os.truncate(self._path(name), size + len(complete) + (1 if complete else 0))
        for line in complete.split(b"\n") if complete else []:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            meta = record.get("keymgmt", {}) if isinstance(record, dict) else {}
            if (not chain.record_mac_ok(record, self.keys) or meta.get("seq") != head["seq"] + 1
                    or meta.get("prev") != head["mac"]):
                raise StoreError(f"the audit trail segment {name} in {self.directory} holds a record its head "
                                 "does not name and that does not follow the chain; refusing to write",
                                 hint="run 'keymgmt audit verify'")
            head["seq"], head["mac"] = meta["seq"], meta["mac"]
            track(head, record)
        head["size"] = size + len(complete) + (1 if complete else 0)
        return True

    def _append_line(self, name: str, line: bytes) -> None:
        path = self._path(name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _OPEN_FLAGS, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the audit trail segment {name} in {self.directory}: "
                             f"{exc.strerror or type(exc).__name__}") from None
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)


class _Tx:
    """One writer's hold on the trail: ``head`` (open requests, remembered identities), ``append``."""

    def __init__(self, trail: FileTrail, head: dict[str, Any]):
        self.trail, self.head, self.dirty = trail, head, False

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        head = self.head
        seq = head["seq"] + 1
        if head["size"] >= self.trail.max_bytes:
            head["current"], head["size"] = segment_name(seq), 0
        linked = chain.link(record, seq, head["mac"], self.trail.keys)
        line = (json.dumps(linked, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        new_segment = head["size"] == 0
        self.trail._append_line(head["current"], line)
        if new_segment:
            from keymgmt_cli.store.filestore import fsync_dir

            fsync_dir(self.trail.directory)
        head["seq"], head["mac"] = seq, linked["keymgmt"]["mac"]
        head["size"] += len(line)
        track(head, linked)
        self.dirty = True
        return linked

    def remember(self, name: str, value: Any) -> None:
        self.head["identities"][name] = value
        self.dirty = True
