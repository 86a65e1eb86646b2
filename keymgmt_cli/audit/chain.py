"""The hash chain: record ``n`` carries ``seq`` = n, ``prev`` = the MAC of record n-1 (64 zeros for
record 0) and ``mac`` = HMAC-SHA256 under the chain key of its canonical JSON without ``mac``.
Editing a record breaks its MAC; deleting, inserting or reordering records breaks ``seq``/``prev``;
truncation is caught by the trail's *head* (the last sequence number and MAC, itself MAC'd), which
each backend keeps apart from the records.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from keymgmt_cli.audit.keys import AuditKeys

GENESIS = "0" * 64


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _unsigned(record: dict[str, Any]) -> dict[str, Any]:
    meta = dict(record.get("keymgmt") or {})
    meta.pop("mac", None)
    return {**record, "keymgmt": meta}


def link(record: dict[str, Any], seq: int, prev: str, keys: AuditKeys) -> dict[str, Any]:
    """``record`` as record ``seq`` of the chain after a record whose MAC is ``prev``."""
    record = {**record, "keymgmt": {**record.get("keymgmt", {}), "seq": seq, "prev": prev}}
    record["keymgmt"].pop("mac", None)
    record["keymgmt"]["mac"] = keys.mac(canonical(_unsigned(record)))
    return record


def record_mac_ok(record: Any, keys: AuditKeys) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("keymgmt"), dict):
        return False
    return keys.check(canonical(_unsigned(record)), record["keymgmt"].get("mac"))


def sign_head(head: dict[str, Any], keys: AuditKeys) -> dict[str, Any]:
    body = {k: v for k, v in head.items() if k != "head_mac"}
    return {**body, "head_mac": keys.mac(b"head\x00" + canonical(body))}


def head_ok(head: Any, keys: AuditKeys) -> bool:
    if not isinstance(head, dict):
        return False
    body = {k: v for k, v in head.items() if k != "head_mac"}
    return keys.check(b"head\x00" + canonical(body), head.get("head_mac"))


class Problem:
    """The first bad record: its sequence number (or the one expected), where it is, what is wrong."""

    def __init__(self, seq: int, where: str, what: str):
        self.seq, self.where, self.what = seq, where, what

    def __str__(self) -> str:
        return f"record {self.seq} ({self.where}): {self.what}"


def verify(items: Iterable[tuple[str, Any]], head: Any, keys: AuditKeys) -> tuple[int, Problem | None]:
    """Walk ``(where, record-or-parse-error)`` pairs in order; the count of good records and the
    first problem (None when the chain is whole and ends where the head says)."""
    expected, prev, count = 0, GENESIS, 0
    head_seq = head.get("seq", -1) if isinstance(head, dict) else -1
    mac_at_head = GENESIS
    for where, record in items:
        if isinstance(record, Exception) or not isinstance(record, dict):
            return count, Problem(expected, where, "not a JSON record (edited or torn)")
        meta = record.get("keymgmt") if isinstance(record.get("keymgmt"), dict) else {}
        seq = meta.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return count, Problem(expected, where, "has no sequence number (edited)")
        if seq != expected:
            what = (f"missing: found record {seq} where {expected} belongs (records deleted or reordered)"
                    if seq > expected else f"found record {seq} again or out of order (reordered or replayed)")
            return count, Problem(expected, where, what)
        if not record_mac_ok(record, keys):
            return count, Problem(seq, where, "MAC does not verify (record edited, or another master key)")
        if meta.get("prev") != prev:
            return count, Problem(seq, where, "does not follow the previous record (chain broken)")
        prev, expected, count = meta["mac"], expected + 1, count + 1
        if seq == head_seq:
            mac_at_head = prev
    if head is None:
        if count:
            return count, Problem(count, "head", "the trail's head is missing (deleted)")
        return count, None
    if not head_ok(head, keys):
        return count, Problem(count, "head", "the head's MAC does not verify (edited, or another master key)")
    if head_seq >= count:
        return count, Problem(count, "end of trail",
                              f"missing: the head says the trail ends at record {head_seq} (records truncated)")
    if head_seq >= 0 and head.get("mac") != mac_at_head:
        return count, Problem(head_seq, "end of trail", "is not the record the head names (replaced)")
    return count, None
