"""The shared seal: the master key of a team state, sealed by AWS KMS (envelope encryption).

``KEYMGMT_SEAL=awskms://KEY_ID_OR_ALIAS?region=R[&endpoint=URL]``. ``keymgmt operator init``
asks KMS for a data key (``GenerateDataKey``, ``AES_256``) and keeps only its encrypted form, in
the state itself: document ``meta/seal`` (an item in the DynamoDB table, or
``<home>/meta/seal.json`` for a local state). Every runner that needs a secret calls ``Decrypt``
once and uses the plaintext data key as the master key of ``seal.py`` (AES-256-GCM per secret).
Without ``kms:Decrypt`` on that key nobody can unseal anything, and disabling the key (or
scheduling its deletion) locks every secret of the state at once.

The record names the KMS key (its ARN), its region and endpoint, so runners that share the
table need only ``KEYMGMT_STORAGE``; ``KEYMGMT_SEAL``, when set, must name the same key (KMS
checks: ``Decrypt`` is called with that ``KeyId``). A key check value (KCV) of the data key is
kept too, so a wrong key is reported as such.

A DynamoDB state may instead be sealed with ``KEYMGMT_MASTER_KEY`` (the same base64 value on
every runner, from the CI's secret store): the record then holds only its KCV. The OS keyring
and the key file cannot be shared by a team, so they are refused for DynamoDB.

Its KMS client comes from the AWS border (``keymgmt_cli/aws``) through ``awsclient``, as does
``dynamostore``'s.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ProviderError, StoreError
from .locations import refuse_userinfo, without_userinfo
from .masterkey import ENV_SOURCE, ENV_VAR, MasterKey, _is_kcv, _parse_env_key, key_check_value

SEAL_DOC = "meta/seal"
SEAL_ENV = "KEYMGMT_SEAL"
ENCRYPTION_CONTEXT = {"keymgmt": "state-master-key"}
_INIT_HINT = "run 'keymgmt operator init' with KEYMGMT_SEAL=awskms://KEY?region=R"


@dataclass(frozen=True)
class SealSpec:
    key_id: str
    region: str
    endpoint: str | None = None

    @property
    def url(self) -> str:
        return f"awskms://{self.key_id}?region={self.region}" + (
            f"&endpoint={self.endpoint}" if self.endpoint else "")


def parse_seal_url(url: str) -> SealSpec:
    """``awskms://KEY_ID_OR_ALIAS?region=R[&endpoint=URL]``; StoreError when malformed.

    The key may be a key id, a key ARN, ``alias/NAME`` or an alias ARN.
    """
    text = url.strip()
    refuse_userinfo(text, SEAL_ENV)  # the URL's own authority and a nested endpoint= alike
    if not text.startswith("awskms://"):
        raise StoreError(f"{SEAL_ENV}={without_userinfo(text)[:80]!r} is not supported; expected "
                         "awskms://KEY_ID_OR_ALIAS?region=R[&endpoint=URL]")
    rest = text[len("awskms://"):]
    key_id, _, query = rest.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - {"region", "endpoint"})
    if unknown:
        raise StoreError(f"{SEAL_ENV}: unknown parameter {unknown[0]!r} (allowed: region, endpoint)")
    region = params.get("region", "").strip()
    if not key_id or any(c.isspace() for c in key_id):
        raise StoreError(f"{SEAL_ENV} names no KMS key; expected awskms://KEY_ID_OR_ALIAS?region=R")
    if not region:
        raise StoreError(f"{SEAL_ENV}={without_userinfo('awskms://' + key_id)} needs ?region=R (the KMS key's region)")
    endpoint = params.get("endpoint") or None
    if endpoint is not None:  # once more decoded: endpoint=https%3A%2F%2Fuser%40host hides its '@'
        refuse_userinfo(endpoint, f"{SEAL_ENV}: endpoint")
    if endpoint is not None and not urlsplit(endpoint).scheme.startswith("http"):
        raise StoreError(f"{SEAL_ENV}: endpoint {endpoint[:80]!r} is not an http(s) URL")
    return SealSpec(key_id, region, endpoint)


class KmsSeal:
    """GenerateDataKey / Decrypt for one KMS key; every botocore error becomes a ProviderError."""

    def __init__(self, spec: SealSpec, client: Any = None):
        self.spec = spec
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from .awsclient import make_client

            self._client = make_client("kms", self.spec.region, self.spec.endpoint)
        return self._client

    def generate(self) -> tuple[bytes, bytes, str]:
        """(plaintext, ciphertext, key ARN) of a new 256-bit data key."""
        out = self._call("GenerateDataKey", KeyId=self.spec.key_id, KeySpec="AES_256",
                         EncryptionContext=ENCRYPTION_CONTEXT)
        return out["Plaintext"], out["CiphertextBlob"], out.get("KeyId", self.spec.key_id)

    def decrypt(self, ciphertext: bytes) -> tuple[bytes, str]:
        out = self._call("Decrypt", KeyId=self.spec.key_id, CiphertextBlob=ciphertext,
                         EncryptionContext=ENCRYPTION_CONTEXT)
        return out["Plaintext"], out.get("KeyId", self.spec.key_id)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from ..aws.failures import call

        method = getattr(self.client, "generate_data_key" if operation == "GenerateDataKey"
                         else "decrypt")
        return call(method, "kms", operation, self.spec.region, self._word, **kwargs)

    def _word(self, failure: Any) -> ProviderError:
        from ..aws import failures

        key, region, operation = self.spec.key_id, self.spec.region, failure.operation
        if failure.kind == failures.RESPONSE:
            return _translate(failure, key)
        if failure.kind == failures.NO_CREDENTIALS:
            return failure.error(f"no AWS credentials for AWS KMS {operation} on seal key {key} "
                                 f"in {region}", code="NoCredentials",
                                 hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                                      "AWS_SECRET_ACCESS_KEY")
        where = self.spec.endpoint or f"the {region} endpoint"
        return failure.error(f"AWS KMS {operation} on seal key {key} failed: cannot reach "
                             f"{where} ({failure.code})", retryable=True)


def _translate(failure: Any, key: str) -> ProviderError:
    """The words for an error answer of KMS to the seal's ``GenerateDataKey``/``Decrypt``
    (``failure``: an ``aws.failures.Failure``)."""
    operation, region, code = failure.operation, failure.region, failure.code
    message = failure.message[:200]
    call = f"AWS KMS {operation} in {region}"
    if code == "DisabledException":
        return failure.error(f"seal key {key} is disabled ({call}: DisabledException); the "
                             "state's secrets cannot be unsealed",
                             hint=f"enable it: aws kms enable-key --key-id {key} --region {region}")
    if code == "KMSInvalidStateException":
        return failure.error(f"seal key {key} cannot be used in its current state ({call}: "
                             f"{code}: {message})",
                             hint="a key pending deletion can be restored with aws kms "
                                  "cancel-key-deletion")
    if code == "NotFoundException":
        return failure.error(f"seal key {key} was not found in {region} ({call}: {code})",
                             hint=f"check {SEAL_ENV}")
    if code in ("AccessDeniedException", "AccessDenied"):
        return failure.error(f"{call} on seal key {key} was denied: {code} (needs "
                             f"kms:{operation})")
    if code in ("IncorrectKeyException", "InvalidCiphertextException"):
        return failure.error(f"the state's seal was not made by seal key {key} ({call}: {code})",
                             hint=f"set {SEAL_ENV} to the key that initialised the "
                                  "state, or unset it to use the recorded one")
    if code in ("UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException",
                "InvalidSignatureException"):
        return failure.error(f"{call} on seal key {key} was refused: {code} (the AWS "
                             "credentials are not valid)")
    return failure.error(f"{call} on seal key {key} failed: {code}: {message}",
                         retryable=code in ("ThrottlingException", "KMSInternalException",
                                            "DependencyTimeoutException"))


# -- the record --------------------------------------------------------------------------------


def read_record(store: Any) -> dict[str, Any] | None:
    """The seal record, or None. A record without a well-formed check value is corrupt: the
    check value is what proves a master key, so it is never re-created for an existing record."""
    record = store.get(SEAL_DOC)
    if record is not None and record.get("kind") not in ("awskms", "env"):
        raise StoreError(f"the seal record {SEAL_DOC} in {store.location} is corrupt "
                         f"(kind {record.get('kind')!r})", hint="restore it from a backup")
    if record is not None and not _is_kcv(record.get("kcv")):
        raise StoreError(f"the seal record {SEAL_DOC} in {store.location} is corrupt (its key "
                         "check value is missing or malformed); refusing a master key it "
                         "cannot prove", hint="restore it from a backup (it holds no secret)")
    return record


def _spec_of(record: dict[str, Any]) -> SealSpec:
    return SealSpec(record.get("key_arn") or record["key_id"], record["region"],
                    record.get("endpoint") or None)


def describe_record(record: dict[str, Any] | None, location: str) -> str:
    """One line for ``keymgmt status``; no KMS call."""
    if record is None:
        return f"none yet ({_INIT_HINT})"
    if record["kind"] == "env":
        return f"{ENV_SOURCE} (kcv {record.get('kcv')} recorded in {location})"
    return f"awskms:{record.get('key_arn') or record.get('key_id')} (sealed data key in {location})"


def load_shared_master_key(store: Any, environ: Mapping[str, str], seal_url: str | None = None,
                           *, kms_client: Any = None) -> MasterKey:
    """The master key of a state whose seal record lives in the state itself."""
    spec = parse_seal_url(seal_url) if seal_url else None
    record = read_record(store)
    if record is None:
        if spec is None and environ.get(ENV_VAR) is None:
            raise StoreError(f"the state in {store.location} needs a shared seal: set {SEAL_ENV}"
                             f"=awskms://KEY_ID_OR_ALIAS?region=R (or {ENV_VAR}) and run "
                             "'keymgmt operator init'",
                             hint="the OS keyring and key files are per machine: a team "
                                  "cannot share them")
        if store.get("state") is not None:
            raise StoreError(f"the state in {store.location} holds data but its seal record "
                             f"({SEAL_DOC}) is missing; refusing a master key it cannot prove",
                             hint=f"restore {SEAL_DOC} from a backup (it holds no secret)")
        raise StoreError(f"the state in {store.location} has no seal yet; run "
                         "'keymgmt operator init'")
    if record["kind"] == "env":
        if spec is not None:
            raise StoreError(f"the state in {store.location} is sealed with {ENV_VAR}, but "
                             f"{SEAL_ENV} is set", hint=f"unset {SEAL_ENV}, or migrate the "
                                                        "state to a KMS seal")
        value = environ.get(ENV_VAR)
        if value is None:
            raise StoreError(f"no master key: the state in {store.location} is sealed with "
                             f"{ENV_VAR} (kcv {record.get('kcv')}), which is not set",
                             hint=f"set {ENV_VAR} to the team's key")
        master = MasterKey(_parse_env_key(value), ENV_SOURCE)
        _check_kcv(master, record, store.location)
        return master
    seal = KmsSeal(spec or _spec_of(record), kms_client)
    try:
        blob = base64.b64decode(record["encrypted_key"], validate=True)
    except (KeyError, ValueError, TypeError):
        raise StoreError(f"the seal record {SEAL_DOC} in {store.location} is corrupt "
                         "(encrypted_key)", hint="restore it from a backup") from None
    plaintext, arn = seal.decrypt(blob)
    if len(plaintext) != 32:
        raise StoreError(f"seal key {seal.spec.key_id} returned a {len(plaintext)}-byte data "
                         "key; expected 32")
    master = MasterKey(plaintext, f"awskms:{arn}")
    _check_kcv(master, record, store.location)
    return master


def _check_kcv(master: MasterKey, record: dict[str, Any], location: str) -> None:
    if not hmac.compare_digest(str(record.get("kcv", "")), master.kcv):
        raise StoreError(f"master key from {master.source} does not match the one that sealed "
                         f"the state in {location} (kcv {master.kcv}, expected "
                         f"{record.get('kcv')})",
                         hint="use the key the state was initialised with")


def init_shared_seal(store: Any, environ: Mapping[str, str], seal_url: str | None = None,
                     *, kms_client: Any = None) -> str:
    """Create the seal record (or check the existing one); one line saying what was done.

    Safe to run from two machines at once: the record is written with a conditional put, and
    the loser checks the winner's record instead.
    """
    with store.lock(SEAL_DOC, timeout=120):
        return _init_locked(store, environ, seal_url, kms_client)


def _init_locked(store: Any, environ: Mapping[str, str], seal_url: str | None,
                 kms_client: Any) -> str:
    from .dynamoleases import SharedStateError  # the conditional put's conflict

    existing = read_record(store)
    if existing is None and store.get("state") is not None:
        # a state whose seal record is gone: a new seal would leave it sealed under two keys
        raise StoreError(f"the state in {store.location} holds data but has no seal record "
                         f"({SEAL_DOC}); refusing to create a new seal for it",
                         hint=f"restore {SEAL_DOC} from a backup (it holds no secret)")
    if existing is None:
        if seal_url:
            spec = parse_seal_url(seal_url)
            plaintext, blob, arn = KmsSeal(spec, kms_client).generate()
            record = {"format": 1, "kind": "awskms", "key_id": spec.key_id, "key_arn": arn,
                      "region": spec.region, "endpoint": spec.endpoint,
                      "encrypted_key": base64.b64encode(blob).decode("ascii"),
                      "encryption_context": ENCRYPTION_CONTEXT,
                      "kcv": key_check_value(plaintext), "created": _now()}
            what = f"awskms:{arn} (new data key from GenerateDataKey)"
        elif environ.get(ENV_VAR) is not None:
            master = MasterKey(_parse_env_key(environ[ENV_VAR]), ENV_SOURCE)
            record = {"format": 1, "kind": "env", "kcv": master.kcv, "created": _now()}
            what = f"{ENV_SOURCE} (kcv {master.kcv} recorded)"
        else:
            raise StoreError(f"no seal for {store.location}: set {SEAL_ENV}=awskms://"
                             f"KEY_ID_OR_ALIAS?region=R (or {ENV_VAR})",
                             hint="a shared state needs a key every runner can use")
        try:
            store.put(SEAL_DOC, record)
            return what
        except SharedStateError:
            pass  # another runner initialised it meanwhile: check theirs
    master = load_shared_master_key(store, environ, seal_url, kms_client=kms_client)
    return f"{master.source} (existing; data key decrypted and checked)"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
