"""Record shapes: Vault's audit-device JSON (``time``, ``type``, ``auth``, ``request``,
``response``, ``error``) plus our fields under ``keymgmt`` (sequence number, previous MAC, MAC,
local user, host, pid, the AWS calls made, the caller identity).

Request and response data pass through ``redact``: the fields named in ``PLAIN_FIELDS`` (types,
regions, purposes, numbers: nothing secret) are kept as they are; every other value, including
``credentials`` and any field keymgmt does not know, becomes its ``hmac-sha256:`` digest.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from datetime import datetime, timezone

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


def now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): the uid says who
        return f"uid:{os.getuid()}"


def host() -> str:
    return socket.gethostname()


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
        out[str(name)] = _plain(value) if name in PLAIN_FIELDS else keys.digest(_plain(value))
    return out


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
        "request": {"id": request_id or str(uuid.uuid4()), "operation": OPERATIONS.get(verb, verb),
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
