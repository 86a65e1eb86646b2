"""AWS KMS as a ``base.KmsProvider``, through the AWS border (``keymgmt_cli/aws``): one method per
KMS operation, each next to its own tolerance for AWS's quirks, read beside its twin ``memory.py``.

Callers import it lazily (``read``/``list`` never load boto3). Clients, sessions, pacing and the
reading of botocore failures live in ``keymgmt_cli/aws``; how every request is paced, counted,
retried and worded is ``awskms_region.py`` (``KmsRegion``, which the provider stands on), the
wording itself ``awskms_wording.py``: one ``ProviderError`` line that names the AWS operation, the
region and the AWS error code (see ``permissions.provider_error``); nothing above it sees botocore.

Behaviour (reference sections 1.5, 2, 3 and 4):

* credentials: the provider's ``access_key``/``secret_key``/``session_token`` when given, or its
  ``profile``, else boto3's default chain (environment, shared file, SSO/assume-role, ECS task, EC2
  instance); ``role_arn`` assumes a role on top of these, or with ``web_identity_token_file``
  (``aws.session.credential_session``); resolved in ``connect``, before anything is recorded;
* region: always ``ProviderConfig.region`` (``AWS_DEFAULT_REGION`` is never consulted);
* endpoint: ``ProviderConfig.endpoint``, else ``AWS_KMS_ENDPOINT`` (Vault's name), else whatever
  boto3 finds itself (``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL``, the config file); plain
  http only to a loopback address, certificates always checked (``aws.transport``);
* retries, pacing, eventual consistency: ``awskms_region.py``; the operations that may follow a
  fresh ``CreateKey``/``ReplicateKey`` (GetParametersForImport, ImportKeyMaterial, CreateAlias)
  ask for its retries;
* the wrapping public key from GetParametersForImport must be RSA of the size asked for, with
  exponent 65537, or nothing is imported (``awskms_wrapping.check_wrapping_key``);
* keys tagged as ours are found with ``tag:GetResources`` where allowed, else by listing
  (``tagsearch``): ListKeys, then ``list_tags_of_keys`` (ListResourceTags on every key) through
  ``aws.bulkread`` (keymgmt's own signed requests, same endpoint, CA bundle and credentials as
  botocore) unless that cannot match botocore's transport (a proxy...), then botocore, said once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..aws import failures
from ..aws.session import (CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_MODE, READ_TIMEOUT,
                           credential_session)
from ..errors import ProviderError
from . import tagreading, tagsearch
from .awskms_region import (CREATING_WINDOW, NOT_FOUND_WINDOW, TAGGING, THROTTLE_RETRIES, Family,
                            KmsRegion)
from .awskms_wording import credentials_wording, tagging_wording
from .awskms_wrapping import check_wrapping_key
from .base import ImportParameters, KeyDescription, ProviderConfig, TagReading
from .permissions import CREDENTIALS_HINT, provider_error


class AwsKmsProvider(KmsRegion):
    """One region of AWS KMS. Implements ``base.KmsProvider``; ``KmsRegion`` sends its requests."""

    #: The source that gave this provider's credentials (botocore's method name), set by connect.
    credential_source: str | None = None

    # -- KmsProvider ------------------------------------------------------------------------

    def create_key(self, *, key_spec: str, key_usage: str, description: str,
                   tags: dict[str, str], multi_region: bool = False) -> str:
        params: dict[str, Any] = {
            "Origin": "EXTERNAL", "KeySpec": key_spec, "KeyUsage": key_usage,
            "Description": description, "MultiRegion": bool(multi_region),
        }
        if tags:
            params["Tags"] = _tag_list(tags)
        resp = self._call("CreateKey", tags=bool(tags), multi_region=multi_region, **params)
        key_id = resp["KeyMetadata"]["KeyId"]
        if resp.get("ResponseMetadata", {}).get("RetryAttempts", 0) and tags:
            # botocore re-sent CreateKey after a lost response: AWS may have made a key for each
            # attempt. Ours carry a unique operation tag, so the extras can be found and removed.
            self._drop_duplicates(key_id, tags)
        return key_id

    def _drop_duplicates(self, kept: str, tags: dict[str, str]) -> None:
        # By listing, not tag:GetResources: the duplicates are seconds old, and the tagging API
        # is eventually consistent (it may not list a key that new yet).
        for other in tagsearch.by_listing(self, tags):
            if other != kept:
                self.schedule_key_deletion(other, 7)

    def get_parameters_for_import(self, key_id: str, wrapping_algorithm: str,
                                  wrapping_key_spec: str) -> ImportParameters:
        resp = self._call("GetParametersForImport", retry_not_found=True, wait_creating=True,
                          KeyId=key_id, WrappingAlgorithm=wrapping_algorithm,
                          WrappingKeySpec=wrapping_key_spec)
        public_key_der = bytes(resp["PublicKey"])
        check_wrapping_key(public_key_der, wrapping_key_spec, self.region)
        return ImportParameters(key_id=resp["KeyId"], public_key_der=public_key_der,
                                import_token=bytes(resp["ImportToken"]),
                                valid_to=resp.get("ParametersValidTo"))

    def import_key_material(self, key_id: str, import_token: bytes, encrypted_key_material: bytes,
                            valid_to: datetime | None = None, import_type: str | None = None) -> str | None:
        params: dict[str, Any] = {"KeyId": key_id, "ImportToken": import_token,
                                  "EncryptedKeyMaterial": encrypted_key_material}
        if import_type is not None:
            params["ImportType"] = import_type
        if valid_to is None:
            params["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        else:
            params["ExpirationModel"] = "KEY_MATERIAL_EXPIRES"
            # naive means UTC, as in the twin (botocore would read it as local time)
            params["ValidTo"] = valid_to if valid_to.tzinfo else valid_to.replace(tzinfo=timezone.utc)
        # ImportType only when asked (on-demand rotation): KMS rejects it for asymmetric/HMAC keys.
        try:
            return self._call("ImportKeyMaterial", retry_not_found=True, wait_creating=True,
                              **params).get("KeyMaterialId")
        except ProviderError as err:
            # A token is spent by its first use: when botocore re-sends an import whose response was
            # lost, AWS refuses the token although the first attempt imported the material. A key
            # that holds material holds ours (AWS accepts only the same material again).
            if err.code != "InvalidImportTokenException" or not err.retry_attempts:
                raise
            described = self.describe_key(key_id)
            if described is None or described.state not in ("Enabled", "Disabled"):
                raise
            return None

    def delete_imported_key_material(self, key_id: str, key_material_id: str | None = None) -> None:
        params = {"KeyMaterialId": key_material_id} if key_material_id else {}
        self._call("DeleteImportedKeyMaterial", KeyId=key_id, **params)

    def rotate_key_on_demand(self, key_id: str) -> None:
        self._call("RotateKeyOnDemand", KeyId=key_id)

    def describe_key(self, key_id: str) -> KeyDescription | None:
        try:
            resp = self._call("DescribeKey", KeyId=key_id)
        except ProviderError as err:
            if err.code == "NotFoundException":
                return None
            raise
        return _description(resp["KeyMetadata"])

    def enable_key(self, key_id: str) -> None:
        self._call("EnableKey", KeyId=key_id)

    def disable_key(self, key_id: str) -> None:
        self._call("DisableKey", KeyId=key_id)

    def schedule_key_deletion(self, key_id: str, pending_window_days: int) -> datetime | None:
        """AWS's DeletionDate (None when AWS gave none: a primary waiting for its replicas, or a
        key already pending deletion or gone)."""
        if not 7 <= int(pending_window_days) <= 30:
            raise provider_error("ScheduleKeyDeletion", self.region, "ValidationException",
                                 f"PendingWindowInDays must be between 7 and 30, got {pending_window_days}")
        try:
            resp = self._call("ScheduleKeyDeletion", KeyId=key_id,
                              PendingWindowInDays=int(pending_window_days))
        except ProviderError as err:
            if err.code == "NotFoundException":
                return None
            if err.code == "KMSInvalidStateException":
                if "pending deletion" in str(err).lower() or "pending replica deletion" in str(err).lower():
                    return None
                described = self.describe_key(key_id)
                if described is None or described.state in ("PendingDeletion", "PendingReplicaDeletion"):
                    return None
            raise
        when = resp.get("DeletionDate")
        return when if isinstance(when, datetime) else None

    def create_alias(self, alias_name: str, key_id: str) -> None:
        self._call("CreateAlias", retry_not_found=True, AliasName=alias_name, TargetKeyId=key_id)

    def update_alias(self, alias_name: str, key_id: str) -> None:
        self._call("UpdateAlias", AliasName=alias_name, TargetKeyId=key_id)

    def delete_alias(self, alias_name: str) -> None:
        try:
            self._call("DeleteAlias", AliasName=alias_name)
        except ProviderError as err:
            if err.code != "NotFoundException":
                raise

    def get_alias_target(self, alias_name: str) -> str | None:
        marker = None
        while True:
            params: dict[str, Any] = {"Limit": 100}
            if marker:
                params["Marker"] = marker
            resp = self._call("ListAliases", **params)
            for entry in resp.get("Aliases", []):
                if entry.get("AliasName") == alias_name:
                    return entry.get("TargetKeyId")
            marker = resp.get("NextMarker")
            if not resp.get("Truncated") or not marker:
                return None

    def replicate_key(self, key_id: str, replica_region: str, *, description: str,
                      tags: dict[str, str]) -> str:
        params: dict[str, Any] = {"KeyId": key_id, "ReplicaRegion": replica_region,
                                  "Description": description}
        if tags:
            params["Tags"] = _tag_list(tags)
        # One ReplicateKey here counts as two CreateKey requests in the replica region.
        self._pace("CreateKey", region=replica_region, n=2)
        try:
            resp = self._call("ReplicateKey", tags=bool(tags), **params)
        except ProviderError as err:
            if err.code == "AlreadyExistsException":
                # A replica of this multi-Region key already lives there: it has the same key ID.
                return _bare_key_id(key_id)
            raise
        return resp["ReplicaKeyMetadata"]["KeyId"]

    def tag_resource(self, key_id: str, tags: dict[str, str]) -> None:
        self._call("TagResource", tags=True, KeyId=key_id,
                   Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())])

    def get_public_key(self, key_id: str) -> bytes:
        return bytes(self._call("GetPublicKey", KeyId=key_id)["PublicKey"])

    def list_resource_tags(self, key_id: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        marker = None
        while True:
            params: dict[str, Any] = {"KeyId": key_id, "Limit": 50}
            if marker:
                params["Marker"] = marker
            resp = self._call("ListResourceTags", **params)
            for tag in resp.get("Tags", []):
                tags[tag["TagKey"]] = tag.get("TagValue", "")
            marker = resp.get("NextMarker")
            if not resp.get("Truncated") or not marker:
                return tags

    def list_keys(self) -> list[str]:
        """Every KMS key id in the region (ListKeys, paginated). Used only to find keys we
        tagged but never recorded (recovery after a crash) and strays (verify)."""
        ids: list[str] = []
        marker = None
        while True:
            params: dict[str, Any] = {"Limit": 1000}
            if marker:
                params["Marker"] = marker
            resp = self._call("ListKeys", **params)
            ids.extend(entry["KeyId"] for entry in resp.get("Keys", []))
            marker = resp.get("NextMarker")
            if not resp.get("Truncated") or not marker:
                return ids

    def list_tags_of_keys(self, key_ids: list[str]) -> TagReading:
        """ListResourceTags of every key (``base.KmsProvider.list_tags_of_keys``): through
        ``aws.bulkread`` where it matches botocore's transport, else botocore (``tagreading``)."""
        return tagreading.read(self, key_ids)

    def find_tagged(self, wanted: dict[str, str]) -> list[str]:
        """Key ids in this region whose tags include ``wanted``: ``tag:GetResources`` where it
        is allowed, else ListKeys + concurrent ListResourceTags (``tagsearch``). Which path was
        taken is said once, in ``tag_search_note``."""
        return self._family.tag_search.run(self, wanted, self._get_resources)

    @property
    def tag_search_note(self) -> str | None:
        """One line saying how keys tagged as ours were found (None before the first search)."""
        return self._family.tag_search.note

    def _get_resources(self, wanted: dict[str, str]) -> list[str]:
        tagging = self._tagging_client()
        params: dict[str, Any] = {"TagFilters": tagsearch.tag_filters(wanted),
                                  "ResourceTypeFilters": ["kms:key"], "ResourcesPerPage": 100}
        found: list[str] = []
        while True:
            self._record("GetResources")
            resp = failures.call(tagging.get_resources, TAGGING, "GetResources",
                                 self.region, tagging_wording, **params)
            for entry in resp.get("ResourceTagMappingList", []):
                arn = entry.get("ResourceARN", "")
                tags = {t.get("Key"): t.get("Value", "") for t in entry.get("Tags", [])}
                # the filter is AWS's; checking it again costs nothing and guards against an
                # endpoint that ignores it
                if ":key/" in arn and f":{self.region}:" in arn and tagsearch.matches(tags, wanted):
                    found.append(_bare_key_id(arn))
            token = resp.get("PaginationToken")
            if not token:
                return found
            params["PaginationToken"] = token

    def in_region(self, region: str) -> "AwsKmsProvider":
        family = self._family
        with family.lock:
            sibling = family.members.get(region)
        if sibling is None:
            sibling = AwsKmsProvider(family, region)
            with family.lock:
                sibling = family.members.setdefault(region, sibling)
        return sibling

    def __repr__(self) -> str:
        return f"AwsKmsProvider(region={self.region!r}, endpoint={getattr(self, 'endpoint_url', None)!r})"


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": str(k), "TagValue": str(v)} for k, v in tags.items()]


def _bare_key_id(key_id: str) -> str:
    return key_id.rsplit("/", 1)[-1] if key_id.startswith("arn:") else key_id


def _description(md: dict) -> KeyDescription:
    return KeyDescription(
        key_id=md["KeyId"], arn=md["Arn"], state=md.get("KeyState", ""),
        enabled=bool(md.get("Enabled", False)),
        key_spec=md.get("KeySpec") or md.get("CustomerMasterKeySpec") or "",
        key_usage=md.get("KeyUsage", ""), origin=md.get("Origin", ""),
        multi_region=bool(md.get("MultiRegion", False)),
        description=md.get("Description") or "",
        current_key_material_id=md.get("CurrentKeyMaterialId") or "",
    )


def connect(config: ProviderConfig, *, pacing: bool | None = None,
            max_attempts: int | None = None, retry_mode: str | None = None,
            connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
            sleep: Callable[[float], None] = time.sleep, throttle_retries: int = THROTTLE_RETRIES,
            not_found_window: float = NOT_FOUND_WINDOW, creating_window: float = CREATING_WINDOW,
            on_call: Callable[[str, str], None] | None = None,
            clock: Callable[[], float] = time.monotonic) -> AwsKmsProvider:
    """An AWS KMS provider for ``config.region``.

    ``pacing``: None = on, unless ``KEYMGMT_AWS_PACING=off`` or the endpoint is a loopback
    address (an emulator). ``sleep`` and ``clock`` are injectable so tests need not wait for
    backoff; ``max_attempts``/``retry_mode`` go to botocore; ``throttle_retries`` are our extra
    rounds after botocore gave up on throttling; ``not_found_window``/``creating_window`` bound
    the eventual-consistency retries (seconds)."""
    if bool(config.access_key) != bool(config.secret_key):
        missing = "secret_key" if config.access_key else "access_key"
        raise ProviderError(
            f"AWS KMS credentials for {config.region} are incomplete: {missing} is missing",
            code="PartialCredentialsError", hint=CREDENTIALS_HINT)
    endpoint = config.endpoint or os.environ.get("AWS_KMS_ENDPOINT") or None
    if max_attempts is None:  # the SDK's own settings win over our default when the user gave them
        env_attempts = os.environ.get("AWS_MAX_ATTEMPTS", "")
        max_attempts = int(env_attempts) if env_attempts.isdigit() and int(env_attempts) > 0 else DEFAULT_MAX_ATTEMPTS
    if retry_mode is None:
        env_mode = os.environ.get("AWS_RETRY_MODE", "")
        retry_mode = env_mode if env_mode in ("legacy", "standard", "adaptive") else DEFAULT_RETRY_MODE
    # Credentials are resolved here, before the engine records anything (issue 16 item 4).
    session, credential_source = credential_session(
        config.region, access_key=config.access_key, secret_key=config.secret_key,
        session_token=config.session_token, profile=config.profile, role_arn=config.role_arn,
        external_id=config.external_id, session_name=config.session_name,
        duration=config.duration, web_identity_token_file=config.web_identity_token_file,
        wording=credentials_wording)
    family = Family(config, session, endpoint, pacing=pacing, max_attempts=max_attempts,
                     retry_mode=retry_mode, connect_timeout=connect_timeout,
                     read_timeout=read_timeout, sleep=sleep, throttle_retries=throttle_retries,
                     not_found_window=not_found_window, creating_window=creating_window,
                     on_call=on_call, clock=clock)
    provider = AwsKmsProvider(family, config.region)
    family.members[config.region] = provider
    provider.credential_source = credential_source
    return provider
