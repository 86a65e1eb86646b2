"""AWS KMS as a ``base.KmsProvider``, through the AWS border (``keymgmt_cli/aws``).

Callers import it lazily (``read``/``list`` never load boto3). Clients, sessions, pacing and the
reading of botocore failures live in ``keymgmt_cli/aws``; this module words every failure as one
``ProviderError`` line that names the AWS operation, the region and the AWS error code (see
``permissions.provider_error``); nothing above it sees botocore.

Behaviour (reference sections 1.5, 2, 3 and 4):

* credentials: the provider's ``access_key``/``secret_key``/``session_token`` when given, or its
  ``profile``, else boto3's default chain (environment, shared file, SSO/assume-role, ECS task, EC2
  instance); ``role_arn`` assumes a role on top of these, or with ``web_identity_token_file``
  (``aws.session.credential_session``); resolved in ``connect``, before anything is recorded;
* region: always ``ProviderConfig.region`` (``AWS_DEFAULT_REGION`` is never consulted);
* endpoint: ``ProviderConfig.endpoint``, else ``AWS_KMS_ENDPOINT`` (Vault's name), else whatever
  boto3 finds itself (``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL``, the config file); plain
  http only to a loopback address, certificates always checked (``aws.transport``);
* retries: botocore's ``standard`` mode with 8 attempts, then our own backoff on throttling;
  client-side pacing per (endpoint, region, operation) at AWS's default request quotas
  (``aws.pacing``; off for loopback endpoints, ``pacing=False`` or ``KEYMGMT_AWS_PACING=off``);
* eventual consistency: ``NotFoundException`` right after ``CreateKey``/``ReplicateKey`` is
  retried for a few seconds by GetParametersForImport, ImportKeyMaterial and CreateAlias, and a
  replica still ``Creating`` is waited for by GetParametersForImport/ImportKeyMaterial;
* the wrapping public key from GetParametersForImport must be RSA of the size asked for, with
  exponent 65537, or nothing is imported (``check_wrapping_key``);
* keys tagged as ours are found with ``tag:GetResources`` where allowed, else by listing
  (``tagsearch``): ListKeys, then ``list_tags_of_keys`` (ListResourceTags on every key) through
  ``aws.bulkread`` (keymgmt's own signed requests, same endpoint, CA bundle and credentials as
  botocore) unless that cannot match botocore's transport (a proxy...), then botocore, said once.

Over 400 lines on purpose: one class with one method per KMS operation of the provider protocol,
each next to its own tolerance for AWS's quirks, read beside its twin ``memory.py``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..aws import bulkread, failures, pacing
from ..aws.codes import THROTTLING_CODES
from ..aws.failures import BOTO_ERRORS, Failure, failure_of, request_id_of
from ..aws.session import (CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_MODE, READ_TIMEOUT,
                           access_key_id, client as make_client, credential_session)
from ..errors import ProviderError
from . import tagreading, tagsearch
from .base import ImportParameters, KeyDescription, ProviderConfig, RequestIds, TagReading
from .permissions import CREDENTIALS_HINT, provider_error

# Our own retries on throttling after botocore gave up: rounds and backoff (seconds).
THROTTLE_RETRIES = 3
THROTTLE_BASE_DELAY = 1.0
THROTTLE_MAX_DELAY = 16.0
# NotFoundException right after CreateKey/ReplicateKey (eventual consistency).
NOT_FOUND_WINDOW = 5.0
# A replica in state Creating right after ReplicateKey.
CREATING_WINDOW = 30.0
# The Resource Groups Tagging API's service name in botocore.
TAGGING = "resourcegroupstaggingapi"

is_loopback = pacing.is_loopback


def _wording(*, tags: bool = False, multi_region: bool = False) -> Callable[[Failure], ProviderError]:
    """How a failed KMS call reads: ``AWS KMS <Operation> in <region> failed: <Code>: ...``."""

    def word(failure: Failure) -> ProviderError:
        if failure.kind == failures.RESPONSE:
            return provider_error(failure.operation, failure.region, failure.code, failure.message,
                                  http_status=failure.http_status, tags=tags,
                                  multi_region=multi_region, retry_attempts=failure.retry_attempts)
        prefix = f"AWS KMS {failure.operation} in {failure.region} failed: {failure.code}: "
        if failure.kind == failures.NO_CREDENTIALS:
            return failure.error(prefix + "no AWS credentials found", hint=CREDENTIALS_HINT)
        if failure.kind == failures.CREDENTIALS:
            return failure.error(prefix + failure.message, hint=CREDENTIALS_HINT)
        if failure.kind in (failures.CONNECTION, failures.TLS):
            # Refused, timed out, closed, proxy: worth retrying later; a bad certificate is not.
            return failure.error(prefix + failure.message,
                                 retryable=failure.kind == failures.CONNECTION,
                                 hint="check the network and the endpoint (credentials=endpoint=...,"
                                      " AWS_KMS_ENDPOINT or AWS_ENDPOINT_URL_KMS)")
        return failure.error(prefix + failure.message)

    return word


def _credentials_wording(failure: Failure) -> ProviderError:
    """How a failure to get the provider's credentials reads: a refused STS role call names STS
    (not a KMS permission); anything else reads as a failed KMS ``connect``."""
    if failure.service != "sts":
        return _wording()(failure)
    return failure.error(f"AWS STS {failure.operation} in {failure.region} failed: {failure.code}: "
                         f"{failure.message}",
                         retryable=failure.kind == failures.CONNECTION or failure.code in THROTTLING_CODES,
                         hint="check the provider's credentials=role_arn=... (the role's trust policy, "
                              "external_id, the source credentials or the web identity token)")


def _tagging_wording(failure: Failure) -> ProviderError:
    """A refused tag:GetResources (only ever shown inside the note of the fallback)."""
    return failure.error(f"AWS Resource Groups Tagging API {failure.operation} in "
                         f"{failure.region} failed: {failure.code}: {failure.message}",
                         retryable=failure.code in THROTTLING_CODES)


def _sts_wording(failure: Failure) -> ProviderError:
    """A failed GetCallerIdentity (recorded as the reason the identity is unknown, never shown alone)."""
    return failure.error(f"AWS STS {failure.operation} in {failure.region} failed: {failure.code}: "
                         f"{failure.message}", retryable=failure.kind == failures.CONNECTION)


_SNAKE = {
    "CreateKey": "create_key", "GetParametersForImport": "get_parameters_for_import",
    "ImportKeyMaterial": "import_key_material", "DescribeKey": "describe_key",
    "EnableKey": "enable_key", "DisableKey": "disable_key",
    "ScheduleKeyDeletion": "schedule_key_deletion", "CreateAlias": "create_alias",
    "UpdateAlias": "update_alias", "DeleteAlias": "delete_alias", "ListAliases": "list_aliases",
    "ReplicateKey": "replicate_key", "GetPublicKey": "get_public_key",
    "ListResourceTags": "list_resource_tags", "DeleteImportedKeyMaterial": "delete_imported_key_material",
    "CancelKeyDeletion": "cancel_key_deletion", "TagResource": "tag_resource", "ListKeys": "list_keys",
    "RotateKeyOnDemand": "rotate_key_on_demand",
}


class _Family:
    """What siblings made by ``in_region`` share: the session (credentials), settings, the call log."""

    def __init__(self, config: ProviderConfig, session: Any, endpoint: str | None, *,
                 pacing: bool | None, max_attempts: int, retry_mode: str,
                 connect_timeout: float, read_timeout: float, sleep: Callable[[float], None],
                 throttle_retries: int, not_found_window: float, creating_window: float,
                 on_call: Callable[[str, str], None] | None, clock: Callable[[], float]):
        self.config = config
        self.clock = clock
        self.session = session
        self.endpoint = endpoint
        self.pacing = pacing
        self.max_attempts = max_attempts
        self.retry_mode = retry_mode
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.sleep = sleep
        self.throttle_retries = throttle_retries
        self.not_found_window = not_found_window
        self.creating_window = creating_window
        self.on_call = on_call
        self.calls: list[str] = []
        self.call_log: list[tuple[str, str]] = []
        self.members: dict[str, AwsKmsProvider] = {}
        self.tag_search = tagsearch.TagSearch()
        self.lock = threading.Lock()
        self.identity: dict[str, str] | None = None  # GetCallerIdentity's answer, asked once


class AwsKmsProvider:
    """One region of AWS KMS. Implements ``base.KmsProvider``.

    ``calls`` lists the AWS operation names called, in order (one entry per request we send,
    our own retries included; botocore's internal retries are not), shared with every sibling
    made by ``in_region``; ``call_log`` has (region, operation) pairs. ``on_call(region, op)``,
    if given to ``connect``, is called before each request."""

    #: The source that gave this provider's credentials (botocore's method name), set by connect.
    credential_source: str | None = None

    def __init__(self, family: _Family, region: str):
        self._family = family
        self.region = region
        self._client = make_client(family.session, "kms", region, family.endpoint,
                                   wording=_wording(), max_attempts=family.max_attempts,
                                   retry_mode=family.retry_mode,
                                   connect_timeout=family.connect_timeout,
                                   read_timeout=family.read_timeout)
        self._tagging: Any = None
        self._bulk: Any = None  # aws.bulkread.BulkReader, or why it cannot be used here (str)
        self.endpoint_url: str = self._client.meta.endpoint_url
        self.pacing: bool = pacing.pacing_wanted(family.pacing, self.endpoint_url)
        # AWS's request ids of the requests this thread sent (providers rotate in threads)
        self._ids = RequestIds()

    # -- plumbing -------------------------------------------------------------------------

    @property
    def calls(self) -> list[str]:
        return self._family.calls

    @property
    def call_log(self) -> list[tuple[str, str]]:
        return self._family.call_log

    def _pace(self, operation: str, region: str | None = None, n: float = 1.0) -> None:
        if not self.pacing:
            return
        bucket = pacing.bucket(self.endpoint_url, region or self.region, operation)
        if bucket is not None:
            wait = bucket.take(n)
            if wait > 0:
                self._family.sleep(wait)

    def _record(self, operation: str) -> None:
        with self._family.lock:
            self._family.calls.append(operation)
            self._family.call_log.append((self.region, operation))
        if self._family.on_call is not None:
            self._family.on_call(self.region, operation)

    def _call(self, operation: str, *, tags: bool = False, multi_region: bool = False,
              retry_not_found: bool = False, wait_creating: bool = False, **params: Any) -> dict:
        """Send one KMS request: pace, count, retry what is worth retrying, translate errors."""
        method = getattr(self._client, _SNAKE[operation])
        sleep = self._family.sleep
        throttled = 0
        waits = 0
        clock = self._family.clock
        started = clock()
        while True:
            self._pace(operation)
            self._record(operation)
            try:
                resp = method(**params)
            except BOTO_ERRORS as exc:
                failure = failure_of(exc, "kms", operation, self.region)
            else:
                self._ids.note(request_id_of(resp))
                return resp
            self._ids.note(failure.request_id)
            if failure.kind == failures.RESPONSE:
                code, message = failure.code, failure.message.lower()
                elapsed = clock() - started
                if code in THROTTLING_CODES and throttled < self._family.throttle_retries:
                    delay = min(THROTTLE_MAX_DELAY, THROTTLE_BASE_DELAY * 2 ** throttled)
                    throttled += 1
                    sleep(delay / 2 + random.uniform(0, delay / 2))
                    continue
                window = None
                if code == "NotFoundException" and retry_not_found:
                    window = self._family.not_found_window
                elif (code == "KMSInvalidStateException" and wait_creating
                      and "creating" in message):
                    window = self._family.creating_window
                if window is not None and elapsed < window:
                    delay = min(2.0, 0.1 * 2 ** waits, window - elapsed)
                    waits += 1
                    sleep(max(delay, 0.0))
                    continue
            raise _wording(tags=tags, multi_region=multi_region)(failure) from None

    @property
    def last_request_id(self) -> str:
        """AWS's id of the last request this thread sent through this provider ("" if none)."""
        return self._ids.last

    def take_request_ids(self) -> list[str]:
        """AWS's ids of the requests this thread sent since the last take (oldest first), forgotten."""
        return self._ids.take()

    def credential_ref(self) -> str:
        """What identifies this provider's credentials and endpoint: the endpoint and the access key
        id (resolved from the default chain when the provider names none; with the profile that gave
        it), or for ``role_arn`` the role itself (its temporary keys change at every AssumeRole). Never recorded as it is:
        the audit trail keeps a keyed digest of it, to ask for the caller identity again when it changes."""
        config = self._family.config
        role = getattr(config, "role_arn", None)
        if role:  # a role's temporary access key changes at every AssumeRole: the role is the identity
            return f"{self.endpoint_url}|role|{role}|{getattr(config, 'external_id', '') or ''}"
        profile = getattr(config, "profile", None) or ""
        return f"{self.endpoint_url}|{profile}|{access_key_id(self._family.session)}"

    def caller_identity(self) -> dict[str, str]:
        """STS GetCallerIdentity for this provider's credentials (``Account``, ``Arn``, ``UserId``,
        ``RequestId``), asked once per provider family. It needs no IAM permission. STS is asked at
        the provider's endpoint when that is a loopback emulator (which serves every service), else
        at STS's own regional endpoint. ProviderError (one line) when it fails."""
        family = self._family
        with family.lock:
            if family.identity is not None:
                return dict(family.identity)
        endpoint = family.endpoint if is_loopback(family.endpoint) else None
        sts = make_client(family.session, "sts", self.region, endpoint, wording=_sts_wording,
                          max_attempts=2, retry_mode=family.retry_mode,
                          connect_timeout=family.connect_timeout, read_timeout=family.read_timeout)
        try:
            resp = failures.call(sts.get_caller_identity, "sts", "GetCallerIdentity", self.region, _sts_wording)
        finally:
            sts.close()
        identity = {"Account": str(resp.get("Account") or ""), "Arn": str(resp.get("Arn") or ""),
                    "UserId": str(resp.get("UserId") or ""), "RequestId": request_id_of(resp)}
        with family.lock:
            family.identity = identity
        return dict(identity)

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

    def before_request(self, operation: str) -> None:
        """Pace and count one request sent outside ``_call`` (``tagreading``'s bulk read)."""
        self._pace(operation)
        self._record(operation)

    def word_failure(self, failure: Failure) -> ProviderError:
        """The one-line ProviderError of a failed KMS request (as ``_call`` words it)."""
        return _wording()(failure)

    def bulk_reader(self) -> Any:
        """``aws.bulkread.BulkReader`` for this region's client, or why not (one phrase: a proxy, a
        mock answering botocore's requests...); decided once per provider."""
        with self._family.lock:
            if self._bulk is None:
                family = self._family
                try:
                    credentials = family.session.get_credentials()
                    found: Any = bulkread.BulkReader.for_client(
                        self._client, family.session, credentials, max_attempts=family.max_attempts,
                        throttle_retries=family.throttle_retries,
                        connect_timeout=family.connect_timeout, read_timeout=family.read_timeout,
                        sleep=family.sleep, clock=family.clock)
                except Exception as error:  # botocore's own (a config it cannot read): botocore decides
                    found = f"the transport settings could not be read ({type(error).__name__})"
                self._bulk = found
            return self._bulk

    def find_tagged(self, wanted: dict[str, str]) -> list[str]:
        """Key ids in this region whose tags include ``wanted``: ``tag:GetResources`` where it
        is allowed, else ListKeys + concurrent ListResourceTags (``tagsearch``). Which path was
        taken is said once, in ``tag_search_note``."""
        return self._family.tag_search.run(self, wanted, self._get_resources)

    @property
    def tag_search_note(self) -> str | None:
        """One line saying how keys tagged as ours were found (None before the first search)."""
        return self._family.tag_search.note

    def _tagging_client(self) -> Any:
        """The Resource Groups Tagging API client of this region (same session and endpoint)."""
        if self._tagging is None:
            family = self._family
            self._tagging = make_client(family.session, TAGGING, self.region, family.endpoint,
                                        wording=_tagging_wording, max_attempts=2,
                                        retry_mode=family.retry_mode,
                                        connect_timeout=family.connect_timeout,
                                        read_timeout=family.read_timeout)
        return self._tagging

    def _get_resources(self, wanted: dict[str, str]) -> list[str]:
        tagging = self._tagging_client()
        params: dict[str, Any] = {"TagFilters": tagsearch.tag_filters(wanted),
                                  "ResourceTypeFilters": ["kms:key"], "ResourcesPerPage": 100}
        found: list[str] = []
        while True:
            self._record("GetResources")
            resp = failures.call(tagging.get_resources, TAGGING, "GetResources",
                                 self.region, _tagging_wording, **params)
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

    def close(self) -> None:
        for member in list(self._family.members.values()):
            member._client.close()
            if member._tagging is not None:
                member._tagging.close()

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


def check_wrapping_key(public_key_der: bytes, wrapping_key_spec: str, region: str) -> None:
    """The wrapping public key from GetParametersForImport must be an RSA key of the size
    ``wrapping_key_spec`` asks for, with exponent 65537: anything else may be a key planted by
    someone on the path, and the material wrapped under it would be theirs. ProviderError
    (one line, before any import) otherwise."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from ..transfer import WRAPPING_KEY_SPECS

    def refuse(why: str) -> ProviderError:
        return ProviderError(
            f"AWS KMS GetParametersForImport in {region} returned a wrapping key that is not the "
            f"one asked for ({why}); nothing was imported",
            code="UnexpectedWrappingKey", service="kms", operation="GetParametersForImport",
            region=region, hint="check the endpoint: something between keymgmt and AWS KMS may "
                                "be replacing the wrapping key")

    bits = WRAPPING_KEY_SPECS.get(wrapping_key_spec)
    if bits is None:
        raise refuse(f"unknown wrapping key spec {wrapping_key_spec!r}")
    try:
        key = load_der_public_key(public_key_der)
    except (ValueError, TypeError):
        raise refuse("not a DER public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise refuse(f"{type(key).__name__.lstrip('_')}, expected RSA")
    if key.key_size != bits:
        raise refuse(f"RSA-{key.key_size}, expected {wrapping_key_spec}")
    if key.public_numbers().e != 65537:
        raise refuse("its public exponent is not 65537")


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
        wording=_credentials_wording)
    family = _Family(config, session, endpoint, pacing=pacing, max_attempts=max_attempts,
                     retry_mode=retry_mode, connect_timeout=connect_timeout,
                     read_timeout=read_timeout, sleep=sleep, throttle_retries=throttle_retries,
                     not_found_window=not_found_window, creating_window=creating_window,
                     on_call=on_call, clock=clock)
    provider = AwsKmsProvider(family, config.region)
    family.members[config.region] = provider
    provider.credential_source = credential_source
    return provider
