"""The audit trail's keys, derived from the state's master key with HKDF-SHA256 under labels of
their own, so neither can seal or unseal anything and neither reveals the master key:

- the *chain key* authenticates every record (and the trail's head): without the master key nobody
  can edit, insert or reorder records and make the chain verify again;
- the *value key* turns a secret value into ``hmac-sha256:<hex>`` as Vault's audit devices do: two
  records with the same secret show the same digest, and the value itself is never written.

The master key bytes come from the engine's secret box (``store.SecretBox``), loaded once.
"""

from __future__ import annotations

import hashlib
import hmac
import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CHAIN_LABEL = b"keymgmt-audit-chain-v1"
VALUE_LABEL = b"keymgmt-audit-hmac-v1"
DIGEST_PREFIX = "hmac-sha256:"


def master_key_bytes(box: Any) -> bytes:
    """The 32 master-key bytes of a ``SecretBox`` (loading it if it is not loaded yet)."""
    box.source  # noqa: B018  (loads the master key, raising StoreError if it cannot be had)
    master = getattr(box, "_master", None)
    key = getattr(master, "key", None)
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("the secret box holds no 32-byte master key")
    return bytes(key)


def _hkdf(master: bytes, label: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master)


class AuditKeys:
    """The chain key and the value key of one state. Never shows either in its repr."""

    __slots__ = ("_chain", "_value")

    def __init__(self, master: bytes):
        self._chain = _hkdf(master, CHAIN_LABEL)
        self._value = _hkdf(master, VALUE_LABEL)

    def __repr__(self) -> str:
        return "AuditKeys(<hidden>)"

    def mac(self, payload: bytes) -> str:
        return hmac.new(self._chain, payload, hashlib.sha256).hexdigest()

    def check(self, payload: bytes, mac: object) -> bool:
        return isinstance(mac, str) and hmac.compare_digest(self.mac(payload), mac)

    def digest(self, value: Any) -> str:
        """``hmac-sha256:<hex>`` of a value (strings as they are, anything else as canonical JSON)."""
        raw = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
        return DIGEST_PREFIX + hmac.new(self._value, raw.encode("utf-8"), hashlib.sha256).hexdigest()


def from_box(box: Any) -> AuditKeys:
    return AuditKeys(master_key_bytes(box))
