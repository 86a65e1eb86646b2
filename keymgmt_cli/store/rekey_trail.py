"""Rekey's audit-trail step: the trail re-linked under the new master key's chain key.

The audit trail's records and head are MAC'd under a key derived from the master key
(``audit/keys.py``), so after a rekey they must be re-linked or every audited write is refused.
Both trails: the one kept in the state's documents (``audit/rec/*``, ``audit/head``: DynamoDB,
memory) and the file trail beside a local state. Each record keeps its content and sequence
number; only ``prev`` and ``mac`` change. Safe to repeat after a crash: a record that verifies
under the new key and follows the new chain is left alone, any other must verify under the old
key. Called by ``rekey.rekey`` while its journal exists and every engine lock is held.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..errors import StoreError


def relink_audit_trail(store: Any, old: bytes, new: bytes) -> int:
    """Re-MAC the audit trail kept in the state's own documents (``audit/rec/*``, ``audit/head``:
    the DynamoDB and in-memory trail) under the new key's chain key; how many records were.

    Each record keeps its content and sequence number; its ``prev`` and ``mac`` become those of
    the chain under the new key. Safe to repeat: a record that verifies under the new key and
    follows the new chain is left alone; any other must verify under the old key and is re-linked.
    Digests of values in records (``hmac-sha256:``) stay those of the old value key."""
    from keymgmt_cli.audit import chain
    from keymgmt_cli.audit.doctrail import HEAD_DOC, RECORDS
    from keymgmt_cli.audit.keys import AuditKeys

    names = sorted(store.list(RECORDS))
    head = store.get(HEAD_DOC)
    if head is None and not names:
        return 0
    old_keys, new_keys = AuditKeys(old), AuditKeys(new)
    prev, macs, relinked = chain.GENESIS, {-1: chain.GENESIS}, 0
    for name in names:
        doc_id = f"{RECORDS}/{name}"
        record = store.get(doc_id)
        meta = record.get("keymgmt") if isinstance(record, dict) else None
        if not isinstance(meta, dict) or meta.get("seq") != len(macs) - 1:  # 0, 1, 2 ... no gaps
            raise StoreError(f"audit record {doc_id} in {store.location} is not the record expected "
                             "there (edited, deleted or reordered); the rekey stopped before the trail",
                             hint="run 'keymgmt audit verify'")
        if chain.record_mac_ok(record, new_keys) and meta.get("prev") == prev:
            prev = meta["mac"]
        elif chain.record_mac_ok(record, old_keys):
            linked = chain.link(record, meta["seq"], prev, new_keys)
            store.put(doc_id, linked)  # read above: a replacement, not a create
            prev, relinked = linked["keymgmt"]["mac"], relinked + 1
        else:
            raise StoreError(f"audit record {doc_id} in {store.location} verifies under neither the "
                             "old nor the new master key; the rekey stopped before the trail",
                             hint="run 'keymgmt audit verify'")
        macs[meta["seq"]] = prev
    if head is not None and not chain.head_ok(head, new_keys):
        if not chain.head_ok(head, old_keys):
            raise StoreError(f"the audit trail head in {store.location} verifies under neither the "
                             "old nor the new master key", hint="run 'keymgmt audit verify'")
        body = {k: v for k, v in head.items() if k != "head_mac"}
        if body.get("seq") in macs:
            body["mac"] = macs[body["seq"]]
        store.put(HEAD_DOC, chain.sign_head(body, new_keys))
    return relinked


def relink_file_trail(store: Any, environ: Mapping[str, str], old: bytes, new: bytes) -> int:
    """Re-MAC the file audit trail beside a local state (``<home>.audit``, or
    ``KEYMGMT_AUDIT_DIR``) under the new key's chain key; how many records were.

    The one time a segment is rewritten rather than appended to: each segment whose records
    change is replaced atomically (same lines, same lengths: only ``prev`` and ``mac`` differ),
    then the head. Safe to repeat, as ``relink_audit_trail``, under the trail's own lock."""
    from keymgmt_cli.audit import chain
    from keymgmt_cli.audit.filetrail import HEAD, FileTrail
    from keymgmt_cli.audit.keys import AuditKeys
    from keymgmt_cli.audit.session import trail_location

    from .filestore import write_file_atomic

    directory = trail_location(store, environ)
    if directory is None or not os.path.isdir(directory):
        return 0
    old_keys, new_keys = AuditKeys(old), AuditKeys(new)
    trail = FileTrail(directory, new_keys)
    trail._check_dir(create=False)
    relinked, prev, macs = 0, chain.GENESIS, {-1: chain.GENESIS}
    where = f"the audit trail in {directory}"
    with trail._locked():
        for name in trail.segments():
            raw = trail._read(name) or b""
            lines = raw.split(b"\n")
            torn = lines.pop()  # b"" when the segment ends with a newline
            out, changed = [], False
            for number, line in enumerate(lines, 1):
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                meta = record.get("keymgmt") if isinstance(record, dict) else None
                if not isinstance(meta, dict) or meta.get("seq") != len(macs) - 1:
                    raise StoreError(f"{where}: {name} line {number} is not the record expected there; "
                                     "the rekey stopped before the trail", hint="run 'keymgmt audit verify'")
                if chain.record_mac_ok(record, new_keys) and meta.get("prev") == prev:
                    out.append(line)
                elif chain.record_mac_ok(record, old_keys):
                    linked = chain.link(record, meta["seq"], prev, new_keys)
                    out.append(json.dumps(linked, sort_keys=True, ensure_ascii=False).encode("utf-8"))
                    record, changed, relinked = linked, True, relinked + 1
                else:
                    raise StoreError(f"{where}: {name} line {number} verifies under neither the old nor "
                                     "the new master key; the rekey stopped before the trail",
                                     hint="run 'keymgmt audit verify'")
                prev = record["keymgmt"]["mac"]
                macs[meta["seq"]] = prev
            if changed:
                data = b"".join(line + b"\n" for line in out) + torn
                if len(data) != len(raw):
                    raise StoreError(f"{where}: {name} would change length when re-linked; the rekey "
                                     "stopped before the trail", hint="run 'keymgmt audit verify'")
                try:
                    write_file_atomic(os.path.join(directory, name), data, str(directory))
                except OSError as exc:
                    raise StoreError(f"cannot rewrite {name} in {directory}: "
                                     f"{exc.strerror or type(exc).__name__}") from None
        head = trail.head()
        if head is not None and not chain.head_ok(head, new_keys):
            if not chain.head_ok(head, old_keys):
                raise StoreError(f"{where}: the head verifies under neither the old nor the new master key",
                                 hint="run 'keymgmt audit verify'")
            body = {k: v for k, v in head.items() if k != "head_mac"}
            if body.get("seq") in macs:
                body["mac"] = macs[body["seq"]]
            data = (json.dumps(chain.sign_head(body, new_keys), sort_keys=True) + "\n").encode()
            try:
                write_file_atomic(os.path.join(directory, HEAD), data, str(directory))
            except OSError as exc:
                raise StoreError(f"cannot rewrite the audit trail head in {directory}: "
                                 f"{exc.strerror or type(exc).__name__}") from None
    return relinked
