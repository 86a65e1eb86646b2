"""The audit records of the state-changing ``operator`` commands (init, migrate, escrow, recover,
snapshot restore, rekey, upgrade), which run on a store and a master key rather than an engine.

The trail's keys come from the master key, so when a record can be written depends on when the
command holds that key:

* ``escrow``, ``migrate`` (the source's trail), ``rekey``, ``upgrade``: the key is known before the
  command changes anything, so the request is written first and the response after (a crash leaves
  an open request the next run closes as ``crashed``). ``rekey`` writes its request under the old
  key; the rekey re-links the trail (request included) under the new key, which the response uses.
  A source whose trail is in its own documents (DynamoDB) gets both records after the copy: a
  request written before would be copied into the target as a request that never ends.
* ``init`` (the key is made by the command), ``recover`` (the key is what the command rebuilds),
  ``snapshot restore`` (the key is the snapshot's; the target may not exist) and the target of a
  ``migrate``: request and response are written together once the command succeeded, the request
  with the time the command started. A failure before that has no key to write under: nothing is
  recorded, and nothing was changed. ``init`` of a DynamoDB table that holds no state yet writes
  nothing: records in the table would make it non-empty, and ``migrate`` (the usual next step)
  refuses a non-empty target.

Request data hold the options (URLs, counts, flags: ``records.PLAIN_FIELDS``); responses hold counts
and where things went. Shares, master keys and key check values never appear in clear: anything not
in ``PLAIN_FIELDS`` is an ``hmac-sha256:`` digest (``records.redact``), and the commands pass none of
the secrets they handle.
"""

from __future__ import annotations

from keymgmt_cli.audit import records, session
from keymgmt_cli.audit.keys import AuditKeys
from keymgmt_cli.errors import KeymgmtError, StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

PREFIX = "sys/operator/"


class _StoreOnly:
    """What ``session._record_gap`` needs of an engine: the store."""

    def __init__(self, store: Any):
        self.store = store


def trail_of(store: Any, environ: Mapping[str, str], master: bytes) -> Any:
    """The trail of ``store`` (as ``session.open_trail``), its keys derived from ``master``."""
    keys = AuditKeys(master)
    directory = session.trail_location(store, environ)
    if directory is None:
        from keymgmt_cli.audit.doctrail import DocTrail

        return DocTrail(getattr(store, "inner", store), keys)
    from keymgmt_cli.audit.filetrail import DEFAULT_MAX_BYTES, FileTrail

    try:
        max_bytes = int(environ.get(session.MAX_BYTES_ENV, "") or DEFAULT_MAX_BYTES)
    except ValueError:
        max_bytes = DEFAULT_MAX_BYTES
    return FileTrail(directory, keys, max_bytes=max(1, max_bytes))


class Operation:
    """One audited operator command on one state: ``begin`` (the request, before the change),
    ``end`` (the response), or ``done`` (both, after the change, when no key was known before)."""

    def __init__(self, store: Any, environ: Mapping[str, str], name: str, data: dict[str, Any]):
        self.store, self.environ = store, environ
        self.path = PREFIX + name
        self.data = {k: v for k, v in data.items() if v is not None}
        self.started = records.now()
        self.request: dict[str, Any] | None = None
        self.off = session.audit_off(environ)

    def trail_in_state(self) -> bool:
        """Whether the trail is documents of the state itself (DynamoDB): they are then copied
        with it by ``migrate`` and ``snapshot``, and make a fresh state non-empty."""
        return session.trail_location(self.store, self.environ) is None

    def _gap(self) -> None:
        session._record_gap(_StoreOnly(self.store), self.environ, "write", self.path)

    def begin(self, master: bytes) -> None:
        """The request record (crashed requests of this host closed first). StoreError when the
        trail cannot be written: the command then stops before it changes anything."""
        if self.off:
            self._gap()
            return
        trail = trail_of(self.store, self.environ, master)
        with trail.transaction() as tx:
            session.close_crashed(tx, trail.keys, trail)
            self.request = tx.append(records.request_record("write", self.path, self.data, trail.keys))

    def end(self, master: bytes, *, data: dict[str, Any] | None = None, error: BaseException | None = None) -> None:
        """The response to ``begin``'s request. A failure to write it after a successful command is a
        StoreError saying so; after a failed one the command's own error is what is reported."""
        if self.off or self.request is None:
            return
        trail = trail_of(self.store, self.environ, master)
        text, outcome = session._error_text(error) if error is not None else ("", "ok")
        try:
            with trail.transaction() as tx:
                tx.append(records.response_record(self.request, data=data, error=text, outcome=outcome,
                                                  keys=trail.keys))
        except KeymgmtError as failure:
            if error is None:
                raise StoreError(f"the command finished but its audit response was not written ({failure}); "
                                 "the next command records it as crashed") from None

    def done(self, master: bytes | Callable[[], bytes], *, data: dict[str, Any] | None = None,
             warn: Callable[[str], None]) -> None:
        """Request and response together, after the command succeeded (``master`` the key, or what
        loads it). The change is made and a re-run would not record it again, so a trail that cannot
        be written (or a key that cannot be loaded) is a warning (``warn``, one line), not a failure."""
        if self.off:
            try:
                self._gap()
            except KeymgmtError as failure:
                warn(f"the command is done but was not recorded: {failure}")
            return
        try:
            trail = trail_of(self.store, self.environ, master() if callable(master) else master)
            with trail.transaction() as tx:
                session.close_crashed(tx, trail.keys, trail)
                request = records.request_record("write", self.path, self.data, trail.keys)
                request["time"] = self.started
                request = tx.append(request)
                tx.append(records.response_record(request, data=data, keys=trail.keys))
        except KeymgmtError as failure:
            warn(f"the command is done but its audit records were not written: {failure}")


def run(op: Operation, master: bytes, call: Callable[[], Any], *,
        result: Callable[[Any], dict[str, Any] | None] = lambda value: None,
        master_after: Callable[[Any], bytes] | None = None) -> Any:
    """``call()`` between ``op.begin(master)`` and ``op.end``; the response under ``master_after(value)``
    when the command changed the master key (rekey), else ``master``."""
    op.begin(master)
    try:
        value = call()
    except BaseException as error:
        op.end(master, error=error)
        raise
    op.end(master_after(value) if master_after is not None else master, data=result(value))
    return value
