"""One region of an awskms provider family: its botocore clients and how a request is sent on them.

``KmsRegion`` is what ``awskms.AwsKmsProvider`` stands on; the provider itself is one method per KMS
operation. Here, for every request whatever the operation:

* pacing per (endpoint, region, operation) at AWS's default request quotas (``aws.pacing``; off
  for loopback endpoints, ``pacing=False`` or ``KEYMGMT_AWS_PACING=off``);
* counting: ``calls``/``call_log`` (shared by the family), ``on_call``, AWS's request ids per thread;
* retries: botocore's ``standard`` mode with 8 attempts, then our own backoff on throttling;
  ``NotFoundException`` right after ``CreateKey``/``ReplicateKey`` retried for a few seconds, and
  a replica still ``Creating`` waited for, where the operation asks for it (eventual consistency);
* every failure worded once (``awskms_wording``);
* the other clients a region needs: the tagging API's, and STS's for the caller identity (asked
  once per family), and ``aws.bulkread``'s reader for the tag search's bulk read (``tagreading``).

``Family`` is what siblings made by ``in_region`` share: the session (credentials), the settings,
the call log. Apart from ``awskms.py`` so that the adapter reads as the KMS API it adapts, with
the discipline every call goes through written once, here.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from ..aws import bulkread, failures, pacing
from ..aws.codes import THROTTLING_CODES
from ..aws.failures import BOTO_ERRORS, Failure, failure_of, request_id_of
from ..aws.session import access_key_id, client as make_client
from ..errors import ProviderError
from . import tagsearch
from .awskms_wording import kms_wording, sts_wording, tagging_wording
from .base import ProviderConfig, RequestIds


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


class Family:
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
        self.members: dict[str, KmsRegion] = {}
        self.tag_search = tagsearch.TagSearch()
        self.lock = threading.Lock()
        self.identity: dict[str, str] | None = None  # GetCallerIdentity's answer, asked once


class KmsRegion:
    """The clients of one region of a provider family, and how a request is sent on them.

    ``calls`` lists the AWS operation names called, in order (one entry per request we send,
    our own retries included; botocore's internal retries are not), shared with every sibling
    made by ``in_region``; ``call_log`` has (region, operation) pairs. ``on_call(region, op)``,
    if given to ``connect``, is called before each request."""

    def __init__(self, family: Family, region: str):
        self._family = family
        self.region = region
        self._client = make_client(family.session, "kms", region, family.endpoint,
                                   wording=kms_wording(), max_attempts=family.max_attempts,
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
            raise kms_wording(tags=tags, multi_region=multi_region)(failure) from None

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
        sts = make_client(family.session, "sts", self.region, endpoint, wording=sts_wording,
                          max_attempts=2, retry_mode=family.retry_mode,
                          connect_timeout=family.connect_timeout, read_timeout=family.read_timeout)
        try:
            resp = failures.call(sts.get_caller_identity, "sts", "GetCallerIdentity", self.region, sts_wording)
        finally:
            sts.close()
        identity = {"Account": str(resp.get("Account") or ""), "Arn": str(resp.get("Arn") or ""),
                    "UserId": str(resp.get("UserId") or ""), "RequestId": request_id_of(resp)}
        with family.lock:
            family.identity = identity
        return dict(identity)

    # -- for the tag search ---------------------------------------------------------------

    def before_request(self, operation: str) -> None:
        """Pace and count one request sent outside ``_call`` (``tagreading``'s bulk read)."""
        self._pace(operation)
        self._record(operation)

    def word_failure(self, failure: Failure) -> ProviderError:
        """The one-line ProviderError of a failed KMS request (as ``_call`` words it)."""
        return kms_wording()(failure)

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

    def _tagging_client(self) -> Any:
        """The Resource Groups Tagging API client of this region (same session and endpoint)."""
        if self._tagging is None:
            family = self._family
            self._tagging = make_client(family.session, TAGGING, self.region, family.endpoint,
                                        wording=tagging_wording, max_attempts=2,
                                        retry_mode=family.retry_mode,
                                        connect_timeout=family.connect_timeout,
                                        read_timeout=family.read_timeout)
        return self._tagging

    def close(self) -> None:
        for member in list(self._family.members.values()):
            member._client.close()
            if member._tagging is not None:
                member._tagging.close()
