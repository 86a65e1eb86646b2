"""The in-memory twin's world: one AWS account across regions (keys, aliases, import tokens, a
clock, injected faults, the shared call log) and the AWS tables the twin checks against.
``memory.py`` holds the provider that acts on it; tests build a ``MemoryKmsWorld`` and hand it to
``MemoryKms(region, world)``.

Wrapping key pairs are generated once per spec per process (RSA-4096 generation takes about a
second) and shared by every world: a twin for tests, not a security boundary.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric import rsa

from . import tagsearch

ACCOUNT_ID = "111122223333"
TOKEN_LIFETIME = timedelta(hours=24)
MAX_VALID_TO = timedelta(days=365)

WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
WRAPPING_ALGORITHMS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1",
                       "RSA_AES_KEY_WRAP_SHA_256")
_OAEP = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1")
_RSA_AES = ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")

# KeySpec → the KeyUsage values AWS allows with it (reference 2.1).
KEY_USAGES: dict[str, tuple[str, ...]] = {
    "SYMMETRIC_DEFAULT": ("ENCRYPT_DECRYPT",),
    **{f"HMAC_{n}": ("GENERATE_VERIFY_MAC",) for n in (224, 256, 384, 512)},
    **{f"RSA_{n}": ("ENCRYPT_DECRYPT", "SIGN_VERIFY") for n in (2048, 3072, 4096)},
    **{f"ECC_NIST_P{n}": ("SIGN_VERIFY", "KEY_AGREEMENT") for n in (256, 384, 521)},
    "ECC_SECG_P256K1": ("SIGN_VERIFY",),
    "ECC_NIST_EDWARDS25519": ("SIGN_VERIFY",),
    "ML_DSA_44": ("SIGN_VERIFY",), "ML_DSA_65": ("SIGN_VERIFY",), "ML_DSA_87": ("SIGN_VERIFY",),
    "SM2": ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"),
}
# What Origin=EXTERNAL keys may be here: what transfer.py can produce and localkms.moto_import
# accepts (HMAC, SM2, KEY_AGREEMENT imports exist in AWS but are refused, as the moto double does).
IMPORTABLE: dict[str, tuple[str, ...]] = {
    "SYMMETRIC_DEFAULT": ("ENCRYPT_DECRYPT",),
    **{f"RSA_{n}": ("ENCRYPT_DECRYPT", "SIGN_VERIFY") for n in (2048, 3072, 4096)},
    **{f"ECC_NIST_P{n}": ("SIGN_VERIFY",) for n in (256, 384, 521)},
    "ECC_SECG_P256K1": ("SIGN_VERIFY",),
}
_ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")
_PENDING_DELETION = ("PendingDeletion", "PendingReplicaDeletion")


def _wrap_algorithms(key_spec: str) -> tuple[str, ...]:
    """GetParametersForImport's table (reference 2.2): which wrapping fits which material."""
    if key_spec == "SYMMETRIC_DEFAULT" or key_spec.startswith("HMAC_"):
        return _OAEP
    if key_spec.startswith("RSA_"):
        return _RSA_AES
    return _RSA_AES + _OAEP


def _key_kind(key_spec: str) -> str:
    if key_spec == "SYMMETRIC_DEFAULT":
        return "symmetric"
    if key_spec.startswith("HMAC_"):
        return "hmac"
    return "asymmetric"


_WRAPPING_KEYS: dict[str, rsa.RSAPrivateKey] = {}
_WRAPPING_LOCK = threading.Lock()


def _wrapping_key(spec: str) -> rsa.RSAPrivateKey:
    with _WRAPPING_LOCK:
        key = _WRAPPING_KEYS.get(spec)
        if key is None:
            key = _WRAPPING_KEYS[spec] = rsa.generate_private_key(
                public_exponent=65537, key_size=WRAPPING_KEY_BITS[spec])
        return key


@dataclass
class _Key:
    key_id: str
    region: str
    key_spec: str
    key_usage: str
    description: str
    multi_region: bool
    created: datetime
    origin: str = "EXTERNAL"
    state: str = "PendingImport"
    mr_type: str | None = None  # PRIMARY | REPLICA for multi-Region keys
    primary_region: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    material: bytes | None = field(default=None, repr=False)  # imported now
    associated: bytes | None = field(default=None, repr=False)  # forever bound to the key
    expiration_model: str | None = None
    valid_to: datetime | None = None
    deletion_date: datetime | None = None
    pending_window: int | None = None
    # Symmetric keys' key materials (on-demand rotation, reference 2.10): on a primary or
    # single-Region key the association, id → {"secret", "state"}; on every regional key what is
    # imported there, id → its ValidTo (None: never expires).
    materials: dict[str, dict] = field(default_factory=dict, repr=False)
    imported: dict[str, datetime | None] = field(default_factory=dict)
    rotations: int = 0

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{self.key_id}"

    @property
    def enabled(self) -> bool:
        return self.state == "Enabled"


@dataclass
class _Token:
    key_arn: str
    algorithm: str
    wrapping_key_spec: str
    expires: datetime
    used: bool = False


@dataclass
class _Region:
    keys: dict[str, _Key] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias name → key ID


class MemoryKmsWorld:
    """One AWS account across regions: keys, aliases, import tokens, a clock, injected faults
    and the log of calls shared by every ``MemoryKms`` of the world."""

    def __init__(self, now: datetime | None = None):
        self._offset = timedelta(0)
        self._fixed_now = now
        self.regions: dict[str, _Region] = {}
        self.tokens: dict[bytes, _Token] = {}
        self.calls: list[str] = []
        self.call_log: list[tuple[str, str]] = []
        # who the credentials are (STS GetCallerIdentity), and how often that was asked: apart from
        # ``calls``, which lists KMS requests only
        self.caller_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/keymgmt-twin"
        self.access_key = "AKIAMEMORYTWIN000001"
        self.identity_calls = 0
        self._faults: list[list] = []  # [region or None, operation, code, remaining, message]
        self.tagging_refused = False  # GetResources always refused (no tag:GetResources)
        self.tag_search = tagsearch.TagSearch()
        self.lock = threading.RLock()

    # -- clock ------------------------------------------------------------------------------

    def now(self) -> datetime:
        base = self._fixed_now or datetime.now(timezone.utc)
        return base + self._offset

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> None:
        """Move the clock forward (``advance(days=30)``): deletions and expiries then happen."""
        with self.lock:
            self._offset += (delta or timedelta(0)) + timedelta(**kwargs)
            self._sweep()

    # -- faults -----------------------------------------------------------------------------

    def fail_next(self, operation: str, error_code: str = "KMSInternalException", count: int = 1,
                  *, region: str | None = None, message: str | None = None) -> None:
        """The next ``count`` calls of ``operation`` (in ``region``, or any) fail with
        ``error_code`` before doing anything."""
        with self.lock:
            self._faults.append([region, operation, error_code, count, message])

    def _take_fault(self, region: str, operation: str) -> tuple[str, str | None] | None:
        for fault in self._faults:
            f_region, f_op, code, remaining, message = fault
            if f_op == operation and f_region in (None, region) and remaining > 0:
                fault[3] -= 1
                if fault[3] <= 0:
                    self._faults.remove(fault)
                return code, message
        return None

    # -- state ------------------------------------------------------------------------------

    def region(self, name: str) -> _Region:
        return self.regions.setdefault(name, _Region())

    def find(self, region: str, key_id: str) -> _Key | None:
        return self.regions.get(region, _Region()).keys.get(key_id)

    def all_keys(self) -> list[_Key]:
        return [k for r in self.regions.values() for k in r.keys.values()]

    def _replicas(self, primary: _Key) -> list[_Key]:
        return [k for r, reg in self.regions.items() if r != primary.region
                for k in [reg.keys.get(primary.key_id)] if k is not None and k.mr_type == "REPLICA"]

    def _delete(self, key: _Key) -> None:
        reg = self.regions[key.region]
        reg.keys.pop(key.key_id, None)
        for name in [n for n, target in reg.aliases.items() if target == key.key_id]:
            del reg.aliases[name]

    def _sweep(self) -> None:
        now = self.now()
        changed = True
        while changed:
            changed = False
            for key in self.all_keys():
                if key.state == "PendingDeletion" and key.deletion_date and key.deletion_date <= now:
                    self._delete(key)
                    changed = True
                elif key.state == "PendingReplicaDeletion" and not self._replicas(key):
                    key.state = "PendingDeletion"
                    key.deletion_date = now + timedelta(days=key.pending_window or 30)
                    changed = True
                elif (key.expiration_model == "KEY_MATERIAL_EXPIRES" and key.valid_to
                      and key.valid_to <= now and key.material is not None):
                    key.material = None
                    key.valid_to = None
                    if key.state not in _PENDING_DELETION:
                        key.state = "PendingImport"
                    changed = True
                elif any(when is not None and when <= now for when in key.imported.values()):
                    for mid in [m for m, when in key.imported.items() if when is not None and when <= now]:
                        del key.imported[mid]  # a non-current material expired: the key is unusable
                    if key.state not in _PENDING_DELETION:
                        key.state = "PendingImport"
                    changed = True
