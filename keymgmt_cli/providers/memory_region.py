"""One region of the in-memory twin's world, as every request meets it: counted in the world's call
log, open to the faults a test injects (``fail_next``), given a request id, and refused as AWS
would when the key it names is missing or pending deletion.

``MemoryRegion`` is what ``memory.MemoryKms`` stands on, as ``awskms.AwsKmsProvider`` stands on
``awskms_region.KmsRegion``; apart for the same reason: the twin itself then reads as one method
per KMS operation, beside awskms's, with what every request goes through written once, here.
Errors are worded as awskms words them (``permissions.provider_error``); the STS caller identity
is the world's.
"""

from __future__ import annotations

import uuid

from ..errors import ProviderError
from .base import RequestIds
from .memory_materials import Fail
from .memory_world import ACCOUNT_ID, MemoryKmsWorld, _Key
from .permissions import provider_error


class MemoryRegion:
    """One region of a ``MemoryKmsWorld``. ``calls`` is the world's shared call log."""

    def __init__(self, region: str, world: MemoryKmsWorld | None = None):
        self.region = region
        self.world = world if world is not None else MemoryKmsWorld()
        self.world.region(region)
        self._ids = RequestIds()

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def calls(self) -> list[str]:
        return self.world.calls

    @property
    def call_log(self) -> list[tuple[str, str]]:
        return self.world.call_log

    def fail_next(self, operation: str, error_code: str = "KMSInternalException",
                  count: int = 1, *, message: str | None = None) -> None:
        """The next ``count`` calls of ``operation`` in this region fail with ``error_code``."""
        self.world.fail_next(operation, error_code, count, region=self.region, message=message)

    def _begin(self, operation: str, *, tags: bool = False, multi_region: bool = False) -> None:
        self.world.calls.append(operation)
        self.world.call_log.append((self.region, operation))
        self.world._sweep()
        self._note_request_id()
        fault = self.world._take_fault(self.region, operation)
        if fault is not None:
            code, message = fault
            raise provider_error(operation, self.region, code, message or "injected fault",
                                 tags=tags, multi_region=multi_region)

    def _note_request_id(self) -> str:
        """A fresh request id per request, as AWS answers every one (kept per thread, as awskms)."""
        request_id = str(uuid.uuid4())
        self._ids.note(request_id)
        return request_id

    @property
    def last_request_id(self) -> str:
        return self._ids.last

    def take_request_ids(self) -> list[str]:
        return self._ids.take()

    def credential_ref(self) -> str:
        return f"memory|{self.world.access_key}"

    def caller_identity(self) -> dict[str, str]:
        """The world's caller (GetCallerIdentity), counted in ``world.identity_calls``; ``fail_next(
        "GetCallerIdentity")`` makes it fail as STS would."""
        with self.world.lock:
            self.world.identity_calls += 1
            fault = self.world._take_fault(self.region, "GetCallerIdentity")
        if fault is not None:
            code, message = fault
            raise ProviderError(f"AWS STS GetCallerIdentity in {self.region} failed: {code}: "
                                f"{message or 'injected fault'}", code=code, service="sts",
                                operation="GetCallerIdentity", region=self.region)
        arn = self.world.caller_arn
        return {"Account": arn.split(":")[4], "Arn": arn, "UserId": "AIDAMEMORYTWIN",
                "RequestId": self._note_request_id()}

    def _error(self, operation: str, code: str, message: str) -> ProviderError:
        return provider_error(operation, self.region, code, message)

    def _fail(self, operation: str) -> Fail:
        """``fail(code, message)`` for the checks of ``memory_rules`` and ``memory_materials``."""
        return lambda code, message: self._error(operation, code, message)

    def _key(self, operation: str, key_id: str, *, allow_alias: bool = False) -> _Key:
        reg = self.world.region(self.region)
        ident = key_id or ""
        if ident.startswith("arn:"):
            parts = ident.split(":")
            if len(parts) >= 6 and parts[2] == "kms" and parts[3] == self.region:
                ident = parts[5]
                if ident.startswith("alias/") and allow_alias:
                    ident = reg.aliases.get(ident, "")
                elif ident.startswith("key/"):
                    ident = ident[4:]
                else:
                    ident = ""
            else:
                raise self._error(operation, "NotFoundException",
                                  f"Invalid arn {key_id} for region {self.region}")
        elif ident.startswith("alias/"):
            ident = reg.aliases.get(ident, "") if allow_alias else ""
            if not ident:
                raise self._error(operation, "NotFoundException", f"Alias {key_id} is not found.")
        key = reg.keys.get(ident)
        if key is None:
            arn = f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{ident or key_id}"
            raise self._error(operation, "NotFoundException", f"Key '{arn}' does not exist")
        return key

    def _not_pending_deletion(self, operation: str, key: _Key) -> None:
        if key.state == "PendingDeletion":
            raise self._error(operation, "KMSInvalidStateException", f"{key.arn} is pending deletion.")
        if key.state == "PendingReplicaDeletion":
            raise self._error(operation, "KMSInvalidStateException",
                              f"{key.arn} is pending replica deletion.")
