"""The KMS provider interface the engine talks to. ``awskms.py`` implements it through the AWS
border (``keymgmt_cli/aws``, the only package that imports boto3); ``memory.py`` is its in-memory
twin for engine tests.

Every method raises ``keymgmt_cli.errors.ProviderError`` (never a library exception) with a
one-line message naming the AWS error code.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ProviderConfig:
    """Everything needed to reach one KMS region. Secret fields are never printed (repr=False)."""

    region: str
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    # Sources beyond access keys (aws.session.credential_session): a shared-files profile, a role.
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    session_name: str | None = None
    duration: int | None = None  # seconds of the role session
    web_identity_token_file: str | None = None


@dataclass(frozen=True)
class ImportParameters:
    key_id: str  # as returned by AWS (the key ARN)
    public_key_der: bytes  # DER SubjectPublicKeyInfo of the wrapping key
    import_token: bytes = field(repr=False)
    valid_to: datetime | None = None


@dataclass(frozen=True)
class KeyDescription:
    key_id: str
    arn: str
    state: str  # Enabled | Disabled | PendingImport | PendingDeletion | PendingReplicaDeletion | Creating | ...
    enabled: bool
    key_spec: str
    key_usage: str
    origin: str
    multi_region: bool
    description: str = ""
    current_key_material_id: str = ""  # CurrentKeyMaterialId (symmetric keys): which material encrypts now


class RequestIds:
    """AWS's request ids of the requests each thread sent through one provider (the audit trail
    records them per call; providers rotate concurrently, so ids are kept per thread and never
    mixed). A long pagination keeps its last 64."""

    def __init__(self) -> None:
        self._local = threading.local()

    def note(self, request_id: str) -> None:
        ids = getattr(self._local, "ids", None)
        if ids is None:
            ids = self._local.ids = []
        ids.append(request_id)
        del ids[:-64]

    @property
    def last(self) -> str:
        """The id of the last request this thread sent ("" if none)."""
        ids = getattr(self._local, "ids", None)
        return ids[-1] if ids else ""

    def take(self) -> list[str]:
        """The ids this thread sent since the last take (oldest first), forgotten."""
        ids = getattr(self._local, "ids", None) or []
        self._local.ids = []
        return ids


#: A key whose tags these codes refuse is not ours (another team's key policy, an AWS managed key,
#: a key deleted between ListKeys and ListResourceTags).
NOT_READABLE_CODES = frozenset({"AccessDeniedException", "AccessDenied", "NotFoundException"})


@dataclass
class TagReading:
    """``list_tags_of_keys``' answer: every key's tags, None for a key whose tags may not be read
    (``NOT_READABLE_CODES``: not ours), and what it cost, for the audit trail's one entry:
    ``requests`` sent (retries included), keys ``refused``, answers ``throttled``, a bounded
    sample of AWS's request ids (``request_ids``: the first and last few, then the refused ones),
    and ``how`` the requests were sent (said once in verify's note)."""

    tags: dict[str, dict[str, str] | None]
    requests: int = 0
    refused: int = 0
    throttled: int = 0
    request_ids: list[str] = field(default_factory=list)
    how: str = ""


#: How many request ids a bulk read keeps for the audit trail (see ``sample_ids``).
SAMPLE_EDGE = 5
SAMPLE_REFUSED = 10


def sample_ids(ids: list[str], refused_ids: list[str]) -> list[str]:
    """The first and last ``SAMPLE_EDGE`` ids of a bulk read (in the order answered), then up to
    ``SAMPLE_REFUSED`` ids of refused requests: enough to find the read in CloudTrail and to quote
    a refusal to AWS Support, at a size that does not grow with the account."""
    ids = [i for i in ids if i]
    edges = ids if len(ids) <= 2 * SAMPLE_EDGE else ids[:SAMPLE_EDGE] + ids[-SAMPLE_EDGE:]
    extra = [i for i in refused_ids if i and i not in edges][:SAMPLE_REFUSED]
    return edges + extra


class KmsProvider(Protocol):
    region: str

    def create_key(self, *, key_spec: str, key_usage: str, description: str,
                   tags: dict[str, str], multi_region: bool = False) -> str:
        """CreateKey(Origin=EXTERNAL, ...) with Tags; returns the KeyId."""

    def get_parameters_for_import(self, key_id: str, wrapping_algorithm: str,
                                  wrapping_key_spec: str) -> ImportParameters:
        """GetParametersForImport; retries NotFoundException briefly (eventual consistency)."""

    def import_key_material(self, key_id: str, import_token: bytes, encrypted_key_material: bytes,
                            valid_to: datetime | None = None, import_type: str | None = None) -> str | None:
        """ImportKeyMaterial with KEY_MATERIAL_DOES_NOT_EXPIRE, or KEY_MATERIAL_EXPIRES + ValidTo;
        ``import_type`` (NEW_KEY_MATERIAL | EXISTING_KEY_MATERIAL, symmetric keys only) is sent only
        when given. Returns the KeyMaterialId AWS gives for symmetric keys, else None."""

    def delete_imported_key_material(self, key_id: str, key_material_id: str | None = None) -> None:
        """DeleteImportedKeyMaterial (of ``key_material_id``, else the current material): the key
        goes PendingImport at once (the kill switch)."""

    def rotate_key_on_demand(self, key_id: str) -> None:
        """RotateKeyOnDemand: the material imported as NEW_KEY_MATERIAL becomes current."""

    def describe_key(self, key_id: str) -> KeyDescription | None:
        """DescribeKey; None when the key does not exist."""

    def enable_key(self, key_id: str) -> None: ...

    def disable_key(self, key_id: str) -> None: ...

    def schedule_key_deletion(self, key_id: str, pending_window_days: int) -> datetime | None:
        """ScheduleKeyDeletion; a key already pending deletion (or gone) is not an error. Returns
        AWS's DeletionDate, or None when AWS gave none."""

    def create_alias(self, alias_name: str, key_id: str) -> None: ...

    def update_alias(self, alias_name: str, key_id: str) -> None: ...

    def delete_alias(self, alias_name: str) -> None:
        """DeleteAlias; an alias that does not exist is not an error."""

    def get_alias_target(self, alias_name: str) -> str | None:
        """The TargetKeyId of the alias (via ListAliases), None when there is no such alias."""

    def replicate_key(self, key_id: str, replica_region: str, *, description: str,
                      tags: dict[str, str]) -> str:
        """ReplicateKey into ``replica_region``; returns the replica's KeyId (same as the primary's)."""

    def get_public_key(self, key_id: str) -> bytes:
        """GetPublicKey: DER SubjectPublicKeyInfo."""

    def list_resource_tags(self, key_id: str) -> dict[str, str]: ...

    def tag_resource(self, key_id: str, tags: dict[str, str]) -> None:
        """TagResource: add or overwrite ``tags`` on the key (verify -fix restores lost ones)."""

    def list_keys(self) -> list[str]:
        """ListKeys: every key id in the region (recovery and drift detection only)."""

    def list_tags_of_keys(self, key_ids: list[str]) -> TagReading:
        """ListResourceTags of every key of ``key_ids``, concurrently, paced at its quota: one
        read for the audit trail, however many requests. A key whose tags may not be read
        (``NOT_READABLE_CODES``) maps to None; any other failure (after retries) raises."""

    def find_tagged(self, wanted: dict[str, str]) -> list[str]:
        """Key ids in the region whose tags include every pair of ``wanted`` (at least one):
        ``tag:GetResources`` where allowed, else ListKeys + concurrent ListResourceTags
        (``tagsearch``); keys whose tags cannot be read are not ours. ``tag_search_note`` then
        says, once, which path was taken."""

    tag_search_note: str | None

    def caller_identity(self) -> dict[str, str]:
        """STS GetCallerIdentity of the provider's credentials: ``Account``, ``Arn``, ``UserId``,
        ``RequestId`` (needs no IAM permission). The audit trail asks once per credentials."""

    def credential_ref(self) -> str:
        """Identifies the credentials and endpoint (only ever kept as a keyed digest)."""

    last_request_id: str  # AWS's id of this thread's last request through the provider

    def take_request_ids(self) -> list[str]:
        """AWS's ids of this thread's requests since the last take, oldest first."""

    def in_region(self, region: str) -> "KmsProvider":
        """The same credentials and endpoint, another region (for multi-Region replicas)."""
