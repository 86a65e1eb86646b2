"""Master-key escrow: Shamir's secret sharing of the 32-byte master key, and shares with a check.

The sharing itself is pycryptodome's ``Crypto.Protocol.SecretSharing.Shamir`` (GF(2^128), 16-byte
secrets): the key is split as two 16-byte halves with the same x-coordinates, as its
documentation suggests for longer secrets, so share ``i`` is ``(i, y_low || y_high)``.

A share as printed (base64 of 47 bytes, 64 characters, Vault's ``unseal_keys_b64`` shape)::

    version[1]=1 | state tag[4] | escrow id[4] | threshold[1] | x[1] | y[32] | check[4]

* ``state tag``: the first 4 bytes of SHA-256 of the state id, so shares of another state are
  named as such before anything is combined;
* ``escrow id``: random per escrow, so shares of two escrows (say, before and after a rekey) are
  never mixed: their polynomials differ and would rebuild garbage;
* ``check``: the first 4 bytes of SHA-256 over everything before it: a mistyped character is
  reported as a mistyped share (1 in 4 billion slips through, and is then caught by the master
  key's check value, which the rebuilt key must match).

The state keeps only ``meta/escrow``: escrow id, shares, threshold, when, and the check value of
the key that was split. Nothing of a share.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from typing import Any

from ..errors import PreconditionFailed, StoreError

ESCROW_DOC = "meta/escrow"
VERSION = 1
_BODY = 1 + 4 + 4 + 1 + 1 + 32
_LEN = _BODY + 4
MAX_SHARES = 255


class ShareError(PreconditionFailed):
    """A share or set of shares that cannot rebuild the master key (exit 2). Never quotes a share."""


@dataclass(frozen=True)
class Share:
    state_tag: bytes
    escrow_id: bytes
    threshold: int
    x: int
    y: bytes

    def __repr__(self) -> str:  # never show y
        return f"Share(x={self.x}, threshold={self.threshold}, escrow={self.escrow_id.hex()})"


def state_tag(state_id: str) -> bytes:
    return hashlib.sha256(b"keymgmt-state-tag\x00" + state_id.encode("utf-8")).digest()[:4]


def encode_share(share: Share) -> str:
    body = (bytes([VERSION]) + share.state_tag + share.escrow_id + bytes([share.threshold, share.x])
            + share.y)
    return base64.b64encode(body + hashlib.sha256(body).digest()[:4]).decode("ascii")


def decode_share(text: str, number: int) -> Share:
    """Parse share ``number`` (1-based, for messages); ShareError naming it when it is not one."""
    cleaned = "".join(text.split())
    if not cleaned:
        raise ShareError(f"share {number} is empty")
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ShareError(f"share {number} is mistyped (not base64)",
                         hint="shares are 64 characters of base64, as printed by 'keymgmt operator escrow'") from None
    if len(raw) != _LEN:
        raise ShareError(f"share {number} is mistyped (wrong length)",
                         hint="shares are 64 characters of base64, as printed by 'keymgmt operator escrow'")
    body, check = raw[:_BODY], raw[_BODY:]
    if not hmac.compare_digest(hashlib.sha256(body).digest()[:4], check):
        raise ShareError(f"share {number} is mistyped (its check does not match)",
                         hint="compare it character by character with the one you stored")
    if body[0] != VERSION:
        raise ShareError(f"share {number} has format version {body[0]}; this keymgmt reads {VERSION}")
    threshold, x = body[9], body[10]
    if not (1 <= x <= MAX_SHARES) or not (1 <= threshold <= MAX_SHARES):
        raise ShareError(f"share {number} is not a keymgmt share (bad index)")
    return Share(body[1:5], body[5:9], threshold, x, body[11:])


def split(key: bytes, shares: int, threshold: int, state_id: str) -> tuple[bytes, list[str]]:
    """(escrow id, encoded shares) of ``key``."""
    from Crypto.Protocol.SecretSharing import Shamir

    if len(key) != 32:
        raise ValueError("the master key must be 32 bytes")
    check_counts(shares, threshold)
    escrow_id = os.urandom(4)
    tag = state_tag(state_id)
    low = Shamir.split(threshold, shares, key[:16])
    high = Shamir.split(threshold, shares, key[16:])
    out = []
    for (x1, y1), (x2, y2) in zip(low, high):
        assert x1 == x2
        out.append(encode_share(Share(tag, escrow_id, threshold, x1, y1 + y2)))
    return escrow_id, out


def check_counts(shares: int, threshold: int) -> None:
    from ..errors import UsageError

    if not 1 <= shares <= MAX_SHARES:
        raise UsageError(f"-key-shares must be between 1 and {MAX_SHARES}")
    if not 1 <= threshold <= shares:
        raise UsageError("-key-threshold must be between 1 and -key-shares")
    if threshold == 1 and shares > 1:
        raise UsageError("-key-threshold=1 with several shares makes each share the whole key; "
                         "use -key-threshold of 2 or more (or -key-shares=1)")


def combine(texts: list[str], state_id: str) -> bytes:
    """The key rebuilt from encoded shares of one escrow of this state; ShareError otherwise.

    The caller must still prove the result against the state's check value.
    """
    from Crypto.Protocol.SecretSharing import Shamir

    shares = [decode_share(t, n) for n, t in enumerate(texts, 1)]
    if not shares:
        raise ShareError("no shares given")
    tag = state_tag(state_id)
    for n, share in enumerate(shares, 1):
        if share.state_tag != tag:
            raise ShareError(f"share {n} belongs to another state (tag {share.state_tag.hex()}, "
                             f"this state's is {tag.hex()})")
    first = shares[0]
    for n, share in enumerate(shares, 1):
        if share.escrow_id != first.escrow_id or share.threshold != first.threshold:
            raise ShareError(f"share {n} belongs to another escrow than share 1 "
                             f"({share.escrow_id.hex()} vs {first.escrow_id.hex()})",
                             hint="use shares printed by the same 'keymgmt operator escrow' run")
    by_x: dict[int, Share] = {}
    for n, share in enumerate(shares, 1):
        if share.x in by_x:
            if by_x[share.x].y != share.y:
                raise ShareError(f"share {n} has the index of an earlier share but other contents")
            continue
        by_x[share.x] = share
    if len(by_x) < first.threshold:
        raise ShareError(f"{len(by_x)} distinct share(s) given; this escrow needs "
                         f"{first.threshold}")
    chosen = list(by_x.values())[: first.threshold]
    low = Shamir.combine([(s.x, s.y[:16]) for s in chosen])
    high = Shamir.combine([(s.x, s.y[16:]) for s in chosen])
    return low + high


def threshold_of(text: str) -> int:
    """How many shares the escrow of this (valid) share needs."""
    return decode_share(text, 1).threshold


# -- the record ------------------------------------------------------------------------------


def read_record(store: Any) -> dict[str, Any] | None:
    record = store.get(ESCROW_DOC)
    if record is None:
        return None
    if not (isinstance(record.get("shares"), int) and isinstance(record.get("threshold"), int)
            and isinstance(record.get("escrow_id"), str)):
        raise StoreError(f"the escrow record {ESCROW_DOC} in {store.location} is corrupt",
                         hint="run 'keymgmt operator escrow' again to make a new escrow")
    return record


def write_record(store: Any, escrow_id: bytes, shares: int, threshold: int, kcv: str) -> dict[str, Any]:
    record = {"format": 1, "escrow_id": escrow_id.hex(), "shares": shares,
              "threshold": threshold, "kcv": kcv,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    store.put(ESCROW_DOC, record)
    return record


def describe(store: Any, current_kcv: str | None = None) -> str:
    """One line for ``keymgmt status``."""
    try:
        record = read_record(store)
    except StoreError as exc:
        return f"unknown ({exc})"
    if record is None:
        return "none (run 'keymgmt operator escrow -key-shares=5 -key-threshold=3')"
    line = (f"{record['shares']} shares, threshold {record['threshold']}, made "
            f"{record.get('created', 'at an unknown time')}")
    if current_kcv is not None and record.get("kcv") != current_kcv:
        line += " (STALE: made for another master key; run 'keymgmt operator escrow' again)"
    return line


def describe_for_status(store: Any, environ: Any) -> str:
    """``describe`` against the state's recorded check value (reads only; no KMS call)."""
    from .keysource import state_seal

    try:
        kcv = state_seal(store, environ).kcv
    except StoreError:
        kcv = None
    return describe(store, kcv)
