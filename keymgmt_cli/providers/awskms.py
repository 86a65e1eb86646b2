"""AWS KMS through boto3: the only module of keymgmt that imports boto3 or botocore.

Callers import it lazily (``read``/``list`` never load boto3). Every botocore exception is
translated here into one ``ProviderError`` line that names the AWS operation, the region and the
AWS error code (see ``permissions.provider_error``); nothing above this module sees botocore.

Behaviour (reference sections 1.5, 2, 3 and 4):

* credentials: the provider's ``access_key``/``secret_key``/``session_token`` when given, else
  boto3's default chain (environment, shared file, SSO/assume-role, ECS task, EC2 instance);
* region: always ``ProviderConfig.region`` (``AWS_DEFAULT_REGION`` is never consulted);
* endpoint: ``ProviderConfig.endpoint``, else ``AWS_KMS_ENDPOINT`` (Vault's name), else whatever
  boto3 finds itself (``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL``, the config file);
* retries: botocore's ``standard`` mode with 8 attempts, then our own backoff on throttling;
  client-side pacing per (process, endpoint, region, operation) at AWS's default request quotas
  (off for loopback endpoints, ``pacing=False`` or ``KEYMGMT_AWS_PACING=off``);
* eventual consistency: ``NotFoundException`` right after ``CreateKey``/``ReplicateKey`` is
  retried for a few seconds by GetParametersForImport, ImportKeyMaterial and CreateAlias, and a
  replica still ``Creating`` is waited for by GetParametersForImport/ImportKeyMaterial.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.exceptions as bce
import botocore.loaders
from botocore.config import Config

from ..errors import ProviderError
from .base import ImportParameters, KeyDescription, ProviderConfig
from .permissions import CREDENTIALS_HINT, THROTTLING_CODES, provider_error

# AWS default request quotas, requests per second per account per region (reference 3.1).
REQUEST_QUOTAS: dict[str, float] = {
    "GetParametersForImport": 1,
    "CreateKey": 5,
    "CreateAlias": 5,
    "UpdateAlias": 5,
    "DeleteAlias": 15,
    "EnableKey": 5,
    "DisableKey": 5,
    "ImportKeyMaterial": 15,
    "DeleteImportedKeyMaterial": 15,
    "ScheduleKeyDeletion": 15,
    "CancelKeyDeletion": 5,
    "ReplicateKey": 5,
    "TagResource": 10,
    "ListAliases": 500,
    "DescribeKey": 2000,
    "ListResourceTags": 2000,
    "GetPublicKey": 1000,
}

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_RETRY_MODE = "standard"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Our own retries on throttling after botocore gave up: rounds and backoff (seconds).
THROTTLE_RETRIES = 3
THROTTLE_BASE_DELAY = 1.0
THROTTLE_MAX_DELAY = 16.0
# NotFoundException right after CreateKey/ReplicateKey (eventual consistency).
NOT_FOUND_WINDOW = 5.0
# A replica in state Creating right after ReplicateKey.
CREATING_WINDOW = 30.0

_LOOPBACK_HOSTS = {"localhost", "::1", "ip6-localhost"}
_PACING_OFF = {"0", "off", "false", "no", "disabled"}
_PACING_ON = {"1", "on", "true", "yes", "enabled"}


class _TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up. ``take`` reserves under a lock
    (the balance may go negative) and returns how long the caller must sleep: callers queue
    fairly and never exceed the rate on average."""

    def __init__(self, rate: float, capacity: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self, n: float = 1.0) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class _SharedSchedule:
    """The next free slot for one (endpoint, region, operation), in a small file that every keymgmt
    process of this user on this machine shares under flock: parallel CI steps then keep to the
    quota together instead of throttling each other into botocore's backoff. Threads too, since
    each take opens its own file description."""

    # A little under the quota: requests leave on schedule but arrive with network jitter, and one
    # arriving early is throttled into botocore's exponential backoff, which costs far more.
    MARGIN = 1.1

    def __init__(self, path: str, rate: float):
        self.path = path
        self.interval = self.MARGIN / float(rate)

    def take(self, n: float = 1.0) -> float:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0)
            try:
                booked = float(raw.decode() or 0)
            except ValueError:
                booked = 0.0
            now = time.time()
            slot = max(now, booked)
            data = repr(slot + n * self.interval).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return slot - now
        finally:
            os.close(fd)  # releases the lock


_BUCKETS: dict[tuple[str, str, str], Any] = {}
_BUCKETS_LOCK = threading.Lock()


def pacing_dir() -> str | None:
    """Where the shared schedules live (KEYMGMT_PACING_DIR, else a private dir in the temp dir);
    None when it cannot be used, and then each process paces alone."""
    import tempfile

    path = os.environ.get("KEYMGMT_PACING_DIR") or os.path.join(tempfile.gettempdir(),
                                                                 f"keymgmt-pacing-{os.getuid()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if not os.access(path, os.W_OK) or os.stat(path).st_uid != os.getuid():
            return None
    except OSError:
        return None
    return path


def _bucket(endpoint: str, region: str, operation: str) -> Any:
    rate = REQUEST_QUOTAS.get(operation)
    if rate is None:
        return None
    key = (endpoint, region, operation)
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get(key)
        if bucket is None:
            shared = pacing_dir()
            if shared is not None:
                import hashlib

                name = hashlib.sha256("|".join(key).encode()).hexdigest()[:24]
                bucket = _SharedSchedule(os.path.join(shared, name), rate)
            else:
                bucket = _TokenBucket(rate)
            _BUCKETS[key] = bucket
        return bucket


def is_loopback(endpoint: str | None) -> bool:
    if not endpoint:
        return False
    host = (urlparse(endpoint if "://" in endpoint else f"http://{endpoint}").hostname or "").lower()
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def _pacing_wanted(pacing: bool | None, endpoint_url: str | None) -> bool:
    if pacing is not None:
        return pacing
    env = os.environ.get("KEYMGMT_AWS_PACING", "").strip().lower()
    if env in _PACING_OFF:
        return False
    if env in _PACING_ON:
        return True
    return not is_loopback(endpoint_url)  # emulators have no quota


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _translate(exc: Exception, operation: str, region: str, *, tags: bool = False,
               multi_region: bool = False) -> ProviderError:
    """One ProviderError for any botocore exception (never re-raise a library exception)."""
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {}) or {}
        code = error.get("Code") or "Unknown"
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return provider_error(operation, region, code, _one_line(error.get("Message") or ""),
                              http_status=status, tags=tags, multi_region=multi_region)

    code = type(exc).__name__
    prefix = f"AWS KMS {operation} in {region} failed: {code}: "
    retryable = False
    hint = None
    if isinstance(exc, bce.NoCredentialsError):
        text = prefix + "no AWS credentials found"
        hint = CREDENTIALS_HINT
    elif isinstance(exc, (bce.PartialCredentialsError, bce.CredentialRetrievalError,
                          bce.ProfileNotFound, bce.TokenRetrievalError, bce.SSOError,
                          bce.UnauthorizedSSOTokenError, bce.SSOTokenLoadError,
                          bce.InvalidConfigError)):
        text = prefix + _one_line(exc)
        hint = CREDENTIALS_HINT
    elif isinstance(exc, (bce.ConnectionError, bce.HTTPClientError)):
        # Refused, timed out, closed, proxy: worth retrying later; a bad certificate is not.
        retryable = not isinstance(exc, bce.SSLError)
        text = prefix + _one_line(exc)
        hint = ("check the network and the endpoint (credentials=endpoint=..., AWS_KMS_ENDPOINT or"
                " AWS_ENDPOINT_URL_KMS)")
    elif isinstance(exc, bce.ParamValidationError):
        text = prefix + _one_line(exc)
    elif isinstance(exc, (bce.BotoCoreError, ValueError)):
        text = prefix + _one_line(exc)
    else:  # pragma: no cover - _call only passes botocore exceptions
        text = prefix + _one_line(exc)
    err = ProviderError(text, code=code, hint=hint, retryable=retryable)
    err.operation = operation  # type: ignore[attr-defined]
    err.region = region  # type: ignore[attr-defined]
    return err


_BOTO_ERRORS = (bce.BotoCoreError, bce.ClientError)

_SNAKE = {
    "CreateKey": "create_key", "GetParametersForImport": "get_parameters_for_import",
    "ImportKeyMaterial": "import_key_material", "DescribeKey": "describe_key",
    "EnableKey": "enable_key", "DisableKey": "disable_key",
    "ScheduleKeyDeletion": "schedule_key_deletion", "CreateAlias": "create_alias",
    "UpdateAlias": "update_alias", "DeleteAlias": "delete_alias", "ListAliases": "list_aliases",
    "ReplicateKey": "replicate_key", "GetPublicKey": "get_public_key",
    "ListResourceTags": "list_resource_tags", "DeleteImportedKeyMaterial": "delete_imported_key_material",
    "CancelKeyDeletion": "cancel_key_deletion", "TagResource": "tag_resource", "ListKeys": "list_keys",
}


class _Family:
    """What siblings made by ``in_region`` share: the boto3 Session, settings, the call log."""

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
        self.lock = threading.Lock()


class AwsKmsProvider:
    """One region of AWS KMS. Implements ``base.KmsProvider``.

    ``calls`` lists the AWS operation names called, in order (one entry per request we send,
    our own retries included; botocore's internal retries are not), shared with every sibling
    made by ``in_region``; ``call_log`` has (region, operation) pairs. ``on_call(region, op)``,
    if given to ``connect``, is called before each request."""

    def __init__(self, family: _Family, region: str):
        self._family = family
        self.region = region
        try:
            self._client = family.session.client(
                "kms", region_name=region, endpoint_url=family.endpoint,
                config=Config(
                    region_name=region,
                    retries={"mode": family.retry_mode, "max_attempts": family.max_attempts},
                    connect_timeout=family.connect_timeout,
                    read_timeout=family.read_timeout,
                    user_agent_extra="keymgmt",
                ))
        except (bce.BotoCoreError, ValueError) as exc:
            raise _translate(exc, "connect", region) from None
        self.endpoint_url: str = self._client.meta.endpoint_url
        self.pacing: bool = _pacing_wanted(family.pacing, self.endpoint_url)

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
        bucket = _bucket(self.endpoint_url, region or self.region, operation)
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
                return method(**params)
            except bce.ClientError as exc:
                error = exc.response.get("Error", {}) or {}
                code = error.get("Code") or ""
                message = (error.get("Message") or "").lower()
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
                err = _translate(exc, operation, self.region, tags=tags, multi_region=multi_region)
                # how often botocore re-sent this request (a lost response makes a retry look refused)
                err.retry_attempts = (exc.response.get("ResponseMetadata") or {}).get("RetryAttempts", 0)
                raise err from None
            except bce.BotoCoreError as exc:
                raise _translate(exc, operation, self.region, tags=tags,
                                 multi_region=multi_region) from None

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
        for other in self.list_keys():
            if other == kept:
                continue
            try:
                theirs = self.list_resource_tags(other)
            except ProviderError:
                continue  # not ours to read, so not ours
            if all(theirs.get(k) == v for k, v in tags.items()):
                self.schedule_key_deletion(other, 7)

    def get_parameters_for_import(self, key_id: str, wrapping_algorithm: str,
                                  wrapping_key_spec: str) -> ImportParameters:
        resp = self._call("GetParametersForImport", retry_not_found=True, wait_creating=True,
                          KeyId=key_id, WrappingAlgorithm=wrapping_algorithm,
                          WrappingKeySpec=wrapping_key_spec)
        return ImportParameters(key_id=resp["KeyId"], public_key_der=bytes(resp["PublicKey"]),
                                import_token=bytes(resp["ImportToken"]),
                                valid_to=resp.get("ParametersValidTo"))

    def import_key_material(self, key_id: str, import_token: bytes, encrypted_key_material: bytes,
                            valid_to: datetime | None = None) -> None:
        params: dict[str, Any] = {"KeyId": key_id, "ImportToken": import_token,
                                  "EncryptedKeyMaterial": encrypted_key_material}
        if valid_to is None:
            params["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        else:
            params["ExpirationModel"] = "KEY_MATERIAL_EXPIRES"
            # naive means UTC, as in the twin (botocore would read it as local time)
            params["ValidTo"] = valid_to if valid_to.tzinfo else valid_to.replace(tzinfo=timezone.utc)
        # Never ImportType: KMS rejects it for asymmetric/HMAC keys and its defaults are right.
        try:
            self._call("ImportKeyMaterial", retry_not_found=True, wait_creating=True, **params)
        except ProviderError as err:
            # A token is spent by its first use: when botocore re-sends an import whose response was
            # lost, AWS refuses the token although the first attempt imported the material. A key
            # that holds material holds ours (AWS accepts only the same material again).
            if err.code != "InvalidImportTokenException" or not getattr(err, "retry_attempts", 0):
                raise
            described = self.describe_key(key_id)
            if described is None or described.state not in ("Enabled", "Disabled"):
                raise

    def delete_imported_key_material(self, key_id: str) -> None:
        self._call("DeleteImportedKeyMaterial", KeyId=key_id)

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

    def schedule_key_deletion(self, key_id: str, pending_window_days: int) -> None:
        if not 7 <= int(pending_window_days) <= 30:
            raise provider_error("ScheduleKeyDeletion", self.region, "ValidationException",
                                 f"PendingWindowInDays must be between 7 and 30, got {pending_window_days}")
        try:
            self._call("ScheduleKeyDeletion", KeyId=key_id,
                       PendingWindowInDays=int(pending_window_days))
        except ProviderError as err:
            if err.code == "NotFoundException":
                return
            if err.code == "KMSInvalidStateException":
                if "pending deletion" in str(err).lower() or "pending replica deletion" in str(err).lower():
                    return
                described = self.describe_key(key_id)
                if described is None or described.state in ("PendingDeletion", "PendingReplicaDeletion"):
                    return
            raise

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
    )


_LOADER_LOCK = threading.Lock()
_LOADER: Any = None


def _session(**kwargs: Any) -> Any:
    """A boto3 Session sharing one botocore data loader with every other in this process.

    Each provider needs its own session (its own credentials), but a fresh session re-reads and
    parses botocore's KMS service model, ~100 ms of CPU; rotating in 4 providers at once paid it 4
    times under the GIL. The loader only caches those JSON models, so sharing it is safe."""
    global _LOADER
    session = boto3.session.Session(**kwargs)
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        session._session.register_component("data_loader", _LOADER)
    return session


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
    try:
        if config.access_key and config.secret_key:
            session = _session(
                aws_access_key_id=config.access_key, aws_secret_access_key=config.secret_key,
                aws_session_token=config.session_token or None, region_name=config.region)
        else:
            session = _session(region_name=config.region)
    except (bce.BotoCoreError, ValueError) as exc:
        raise _translate(exc, "connect", config.region) from None
    family = _Family(config, session, endpoint, pacing=pacing, max_attempts=max_attempts,
                     retry_mode=retry_mode, connect_timeout=connect_timeout,
                     read_timeout=read_timeout, sleep=sleep, throttle_retries=throttle_retries,
                     not_found_window=not_found_window, creating_window=creating_window,
                     on_call=on_call, clock=clock)
    provider = AwsKmsProvider(family, config.region)
    family.members[config.region] = provider
    return provider
