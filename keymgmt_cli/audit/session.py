"""One audited command: where its trail is, the request record before the engine runs, every AWS
call recorded while it runs, the response record after (or, when the process dies, the
``crashed`` response the next run writes), and the refusal of ``KEYMGMT_AUDIT=off`` without a
reason.

Where the trail lives: ``KEYMGMT_AUDIT_DIR`` when set (a file trail there); else, for a local
state directory, the file trail ``<state directory>.audit/`` beside it; else (DynamoDB, the
in-memory store) the state's own store (``doctrail``).
"""

from __future__ import annotations

import os
from pathlib import Path

from keymgmt_cli.audit import records
from keymgmt_cli.errors import KeymgmtError, StoreError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

AUDIT_ENV = "KEYMGMT_AUDIT"
REASON_ENV = "KEYMGMT_AUDIT_OFF_REASON"
DIR_ENV = "KEYMGMT_AUDIT_DIR"
MAX_BYTES_ENV = "KEYMGMT_AUDIT_MAX_BYTES"
GAPS_DOC = "meta/audit-off"
_OFF = ("off", "0", "false", "no")


def audit_off(environ: Mapping[str, str]) -> bool:
    value = environ.get(AUDIT_ENV, "on").strip().lower()
    if value in _OFF:
        return True
    if value not in ("", "on", "1", "true", "yes"):
        raise UsageError(f"{AUDIT_ENV} must be on or off")
    return False


def trail_location(store: Any, environ: Mapping[str, str]) -> Path | None:
    """The directory of the file trail, or None when the trail lives in the state's store."""
    configured = environ.get(DIR_ENV, "").strip()
    if configured:
        return Path(os.path.abspath(os.path.expanduser(configured)))
    if getattr(store, "backend", "") == "file":
        home = Path(store.home)
        return home.parent / (home.name + ".audit")
    return None


def open_trail(engine: Any, environ: Mapping[str, str], *, with_keys: bool = True) -> Any:
    """The state's trail (loading the master key to derive its keys, unless ``with_keys`` is False: then
    it can be read and listed, not written or verified)."""
    from keymgmt_cli.audit.keys import from_box

    keys = from_box(engine.secrets) if with_keys else None
    directory = trail_location(engine.store, environ)
    if directory is None:
        from keymgmt_cli.audit.doctrail import DocTrail

        return DocTrail(engine.store, keys)
    from keymgmt_cli.audit.filetrail import DEFAULT_MAX_BYTES, FileTrail

    try:
        max_bytes = int(environ.get(MAX_BYTES_ENV, "") or DEFAULT_MAX_BYTES)
    except ValueError:
        raise UsageError(f"{MAX_BYTES_ENV} must be a number of bytes") from None
    return FileTrail(directory, keys, max_bytes=max(1, max_bytes))


def _record_gap(engine: Any, environ: Mapping[str, str], verb: str, path: str) -> None:
    reason = environ.get(REASON_ENV, "").strip()
    if not reason:
        raise UsageError(f"{AUDIT_ENV}=off is refused without a reason (a silent gap in the audit trail)",
                         hint=f"say why: {REASON_ENV}='...' (recorded in the state with who and when)")
    store = engine.store
    with store.lock("audit-off"):
        doc = store.get(GAPS_DOC) or {"gaps": []}
        gaps = doc.get("gaps") if isinstance(doc.get("gaps"), list) else []
        gaps.append({"time": records.now(), "local_user": records.local_user(), "host": records.host(),
                     "reason": reason[:500], "verb": verb, "path": path})
        store.put(GAPS_DOC, {"gaps": gaps[-1000:]})


def _alive(entry: dict[str, Any]) -> bool:
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = entry.get("process_start") or ""
    return not started or started == records.process_start(pid) or not records.process_start(pid)


def close_crashed(tx: Any, keys: Any, trail: Any = None) -> int:
    """Write a ``crashed`` response for every open request of a process of this host that is gone,
    with the AWS calls its journal holds (``trail``'s), then discard that journal."""
    from keymgmt_cli.audit.journal import valid_request_id

    me = records.host()
    closed = 0
    for request_id, entry in sorted(tx.head["open"].items(), key=lambda item: item[1].get("seq") or 0):
        if entry.get("host") != me or _alive(entry):
            continue  # another machine's runner (or still running): not ours to close
        request = {"auth": entry.get("auth", {}),
                   "request": {"id": request_id, "operation": entry.get("operation", ""),
                               "path": entry.get("path", ""), "verb": entry.get("verb", ""), "data": None},
                   "keymgmt": {"pid": entry.get("pid"), "host": entry.get("host")}}
        journal = trail.journal(request_id) if trail is not None and valid_request_id(request_id) else None
        calls, refused = journal.read() if journal is not None else ([], 0)
        tx.append(records.crashed_record(request, keys, calls=calls, refused=refused))
        if journal is not None:
            journal.discard()
        closed += 1
    return closed


def check_master_key(engine: Any) -> None:
    """Unseal one sealed value of the state, if it has any (StoreError under a wrong master key).

    A trail's keys come from the master key: a trail begun under a wrong one would refuse every
    later command run with the right one. Existing trails need no check (their head's MAC is one).
    """
    from keymgmt_cli.engine import shapes
    from keymgmt_cli.engine.sealing import unseal_material

    if not engine.initialized():
        return
    for mount in engine.mounts():
        for name in engine.store.list(mount.doc("keys")):
            doc = shapes.load(engine.store, mount.doc("keys", name), shapes.key)
            if doc is not None:
                unseal_material(engine, mount, name, doc, doc["latest_version"])
                return


def _error_text(error: BaseException) -> tuple[str, str]:
    if isinstance(error, KeymgmtError):
        return str(error), "error"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", "interrupted"
    return f"internal error ({type(error).__name__})", "error"


def audited(engine: Any, environ: Mapping[str, str], verb: str, path: str, data: dict[str, Any],
            call: Callable[[], Any]) -> Any:
    """Run ``call`` (the engine doing ``verb`` on ``path``) between a request and a response record."""
    if audit_off(environ):
        _record_gap(engine, environ, verb, path)
        return call()
    from keymgmt_cli.audit.calls import CallLog, RecordingFactory

    trail = open_trail(engine, environ)
    keys = trail.keys
    with trail.transaction() as tx:
        if tx.head["seq"] < 0:
            check_master_key(engine)  # a new trail: never start one under a wrong master key
        close_crashed(tx, keys, trail)
        request = tx.append(records.request_record(verb, path, data, keys))
        remembered = dict(tx.head.get("identities", {}))
    log = CallLog(trail.journal(request["request"]["id"]))
    original = engine.provider_factory
    factory = RecordingFactory(original, log, remembered, keys.digest) if original is not None else None
    engine.provider_factory = factory or original
    try:
        response = call()
    except BaseException as error:
        text, outcome = _error_text(error)
        try:
            _finish(trail, request, keys, factory, log, error=text, outcome=outcome)
        except KeymgmtError:
            pass  # the command's own error is the one to report; the request stays open
        raise
    finally:
        engine.provider_factory = original
    try:
        _finish(trail, request, keys, factory, log, data=getattr(response, "data", None),
                warnings=getattr(response, "warnings", None))
    except KeymgmtError as error:
        raise StoreError(f"the command finished but its audit response was not written ({error}); "
                         "the next command records it as crashed") from None
    return response


def _finish(trail: Any, request: dict[str, Any], keys: Any, factory: Any, log: Any, **result: Any) -> None:
    from keymgmt_cli.audit.calls import prune

    record = records.response_record(request, calls=log.snapshot(),
                                     identities=factory.identities if factory else [], keys=keys, **result)
    if log.journal_error:
        record["keymgmt"]["calls_journal"] = log.journal_error
    with trail.transaction() as tx:
        tx.append(record)
        for name, value in (factory.learned.items() if factory else ()):
            tx.remember(name, value)
        prune(tx.head["identities"])
    if log.journal is not None:
        try:
            log.journal.discard()
        except Exception:  # a journal left behind names a closed request: never read again
            pass
