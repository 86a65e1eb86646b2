"""Record shapes: Vault's audit-device JSON (``time``, ``type``, ``auth``, ``request``,
``response``, ``error``) plus our fields under ``keymgmt`` (sequence number, previous MAC, MAC,
local user, host, pid, the AWS calls made, the caller identity).

Request and response data pass through ``redact``: the fields named in ``PLAIN_FIELDS`` (types,
regions, purposes, numbers: nothing secret) are kept as they are; every other value, including
``credentials`` and any field keymgmt does not know, becomes its ``hmac-sha256:`` digest.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.audit.keys import AuditKeys

#: Fields whose values are never secret: kept in clear so an auditor can read what was asked.
PLAIN_FIELDS = frozenset({
    "type", "replica_regions", "min_enabled_version", "deletion_allowed", "provider", "key_collection",
    "purpose", "protection", "wrapping_algorithm", "wrapping_key_spec", "valid_to", "pending_window_days",
    "description", "force", "path", "keys", "name", "latest_version", "versions", "creation_time",
    # the operator commands (audit/operations.py): state and seal URLs, counts, flags, where things went
    "storage", "seal", "from", "to", "from_seal", "to_seal", "snapshot", "retire_source", "print",
    "key_shares", "key_threshold", "unseal_shares", "unseal_threshold", "documents", "secrets", "resealed",
    "resumed", "master_key_source", "state_id", "location", "moved_to", "stored", "copied_from", "retired",
})
#: Vault's operation names for our verbs.
OPERATIONS = {"write": "update", "delete": "delete", "enable": "update", "disable": "delete"}


# Every write and delete writes two records: what they need is done with ``os`` and ``time``, which
# every Python process has loaded, rather than datetime, getpass, socket and uuid (with platform,
# selectors, termios): 12 ms of import time by -X importtime, 7 ms of a `write keymgmt/key`
# process's CPU (73.7 -> 66.6 ms, 41 interleaved runs; botocore imports them anyway later).


def now() -> str:
    """UTC now as ``datetime.now(timezone.utc).isoformat()`` writes it, with ``Z`` for ``+00:00``
    (``2026-12-01T23:52:07.123456Z``; no fraction when the microseconds are 0)."""
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    fraction = f".{micros:06d}" if micros else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + fraction + "Z"


def local_user() -> str:
    """``getpass.getuser()``: the first of LOGNAME, USER, LNAME, USERNAME that is set, else the
    password database's name of the uid, else ``uid:N`` (containers without a login name)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(name)
        if user:
            return user
    try:
        import pwd

        return pwd.getpwuid(os.getuid())[0]
    except (ImportError, KeyError):
        return f"uid:{os.getuid()}"


def host() -> str:
    """``socket.gethostname()``, which is uname(2)'s node name."""
    return os.uname().nodename


def new_request_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot (Linux), "" elsewhere or when gone.

    With the pid it identifies a process: a pid reused by a later process has another start.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def redact(data: Any, keys: AuditKeys) -> Any:
    """Request/response data with every value not in ``PLAIN_FIELDS`` replaced by its digest."""
    if not isinstance(data, dict):
        return None if data is None else keys.digest(data)
    out: dict[str, Any] = {}
    for name, value in data.items():
        out[str(name)] = _shown(_plain(value)) if name in PLAIN_FIELDS else keys.digest(_plain(value))
    return out


def _shown(value: Any) -> Any:
    """A plain field as recorded: any URL in it without its user info (``store/locations.py``;
    an endpoint with a password is refused where it is parsed, this is the second line)."""
    if isinstance(value, str):
        from keymgmt_cli.store.locations import without_userinfo

        return without_userinfo(value)
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """A JSON-able copy (bytes become their length only: never their content)."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def request_record(verb: str, path: str, data: dict[str, Any], keys: AuditKeys,
                   *, request_id: str | None = None) -> dict[str, Any]:
    pid = os.getpid()
    return {
        "time": now(), "type": "request",
        "auth": {"display_name": local_user(), "metadata": {"local_user": local_user(), "host": host()}},
        "request": {"id": request_id or new_request_id(), "operation": OPERATIONS.get(verb, verb),
                    "path": path, "data": redact(data, keys), "remote_address": "", "verb": verb},
        "error": "",
        "keymgmt": {"pid": pid, "process_start": process_start(pid), "host": host(), "local_user": local_user()},
    }


def response_record(request: dict[str, Any], *, data: Any = None, warnings: list[str] | None = None,
                    error: str = "", outcome: str = "ok", calls: list[dict[str, Any]] | None = None,
                    identities: list[dict[str, Any]] | None = None, keys: AuditKeys) -> dict[str, Any]:
    """The response to ``request`` (a request record): its id, path and operation repeated, as Vault."""
    req = request["request"]
    pid = os.getpid()
    return {
        "time": now(), "type": "response", "auth": request.get("auth", {}),
        "request": {"id": req["id"], "operation": req["operation"], "path": req["path"],
                    "data": req.get("data"), "remote_address": "", "verb": req.get("verb", "")},
        "response": {"data": redact(data, keys) if data is not None else None, "warnings": list(warnings or [])},
        "error": error,
        "keymgmt": {"pid": pid, "process_start": process_start(pid), "host": host(), "local_user": local_user(),
                    "outcome": outcome, "aws_calls": list(calls or []), "caller_identity": list(identities or [])},
    }


def crashed_record(request: dict[str, Any], keys: AuditKeys, *, calls: list[dict[str, Any]] | None = None,
                   refused: int = 0) -> dict[str, Any]:
    """The response the next run writes for a request whose process died without one: ``calls`` are
    the AWS calls its journal holds (made before it died), ``refused`` the journal entries that did
    not verify (left out)."""
    meta = request.get("keymgmt", {})
    rec = response_record(request, error=f"crashed: the command (pid {meta.get('pid', '?')} on "
                                         f"{meta.get('host', '?')}) ended without a response; found by a later run",
                          outcome="crashed", calls=calls, keys=keys)
    rec["keymgmt"]["closes_for"] = {"pid": meta.get("pid"), "host": meta.get("host")}
    rec["keymgmt"]["calls_from"] = "the request's calls journal (written as each call returned)"
    if refused:
        rec["keymgmt"]["calls_refused"] = refused
    return rec
