"""The state directory as a private place: who may own it and its parents, and opening files in it.

Another local user must not be able to steer keymgmt into reading a file of theirs as the
state, or into chmod-ing, truncating or overwriting a file of the victim's through a planted
symlink. So, as ssh's StrictModes does:

* the state directory must be a real directory (not a symlink), owned by the user running
  keymgmt, and writable by nobody else (no group/other write bit); when it is group- or
  world-*readable* it is tightened to 0700 on the first write;
* every existing parent up to ``/`` must be owned by that user or by root and be writable by
  nobody else, unless it has the sticky bit (``/tmp``: others cannot rename our entries);
* missing directories (the state directory and any missing parent) are created 0700 whatever
  the umask;
* files are opened with ``O_NOFOLLOW`` and checked with ``fstat`` after opening: a regular file,
  owned by the user.

Standard library only (the read path imports this).
"""

from __future__ import annotations

import os
import stat

from ..errors import StoreError

DIR_MODE = 0o700
FILE_MODE = 0o600
_HINT_OWN = "the state directory and its parents must belong to you (or root) and be writable only by you"


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_parents(path: str) -> None:
    """Every existing ancestor of ``path`` is owned by us or root and not writable by others
    (sticky directories such as /tmp excepted). StoreError naming the first bad one."""
    uid = os.geteuid()
    current = os.path.dirname(path)
    while True:
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise StoreError(f"cannot check {current}: {_why(e)}") from None
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                # a symlinked parent (e.g. /home -> /data/home) is fine when the link itself sits
                # in a safe directory (checked on the next step up) and its target is safe
                target = os.path.realpath(current)
                if target != current:
                    check_parents(os.path.join(target, "x"))
            elif st.st_uid not in (uid, 0):
                raise StoreError(f"refusing the state directory under {current}: it belongs to "
                                 f"another user (uid {st.st_uid})", hint=_HINT_OWN)
            elif st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
                raise StoreError(f"refusing the state directory under {current}: it is writable "
                                 f"by group or others (mode {stat.S_IMODE(st.st_mode):o})",
                                 hint=_HINT_OWN)
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def check_home(home: str) -> bool:
    """Refuse an unsafe existing state directory; True when it exists, False when it does not yet.

    Unsafe: a symlink, not a directory, owned by another user, writable by group or others, or
    below an unsafe parent (``check_parents``).
    """
    try:
        st = os.lstat(home)
    except FileNotFoundError:
        check_parents(home)
        return False
    except OSError as e:
        raise StoreError(f"cannot check the state directory {home}: {_why(e)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(f"refusing the state directory {home}: it is a symlink",
                         hint="set KEYMGMT_HOME to the real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"refusing the state directory {home}: it is not a directory")
    if st.st_uid != os.geteuid():
        raise StoreError(f"refusing the state directory {home}: it belongs to another user "
                         f"(uid {st.st_uid})", hint=_HINT_OWN)
    if st.st_mode & 0o022:
        raise StoreError(f"refusing the state directory {home}: it is writable by group or others "
                         f"(mode {stat.S_IMODE(st.st_mode):o}); someone else may have changed it",
                         hint=f"check its contents, then: chmod 700 {home}")
    check_parents(home)
    return True


def tighten(home: str) -> None:
    """Make an existing state directory 0700 (it may be group/world-readable from an old umask)."""
    try:
        st = os.lstat(home)
        if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != DIR_MODE:
            os.chmod(home, DIR_MODE, follow_symlinks=False)
    except (FileNotFoundError, NotImplementedError):
        pass
    except OSError as e:
        raise StoreError(f"cannot make the state directory {home} private: {_why(e)}") from None


def open_nofollow(path: str, flags: int, mode: int = FILE_MODE, *, dir_fd: int | None = None) -> int:
    """``os.open`` without following a symlink at ``path`` (relative to ``dir_fd`` if given); the
    opened object must be a regular file owned by us. OSError: ELOOP for a symlink, EISDIR for
    something other than a regular file, EPERM for a file of another user."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file", path)
        if st.st_uid != os.geteuid():
            raise PermissionError(1, "owned by another user", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_nofollow(path: str) -> bytes:
    """The contents of a regular file of ours at ``path`` (no symlink followed). OSError."""
    fd = open_nofollow(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def open_dir_nofollow(path: str) -> int:
    """A directory fd for ``path``, refusing a symlink there (OSError ELOOP/ENOTDIR)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def link_error(exc: OSError) -> str:
    """A reason for an OSError from ``open_nofollow``, naming a symlink as such."""
    import errno

    if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and exc.filename is None):
        return "it is a symlink (refused)"
    return _why(exc)
