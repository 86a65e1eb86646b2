"""Recording every AWS call a provider makes, from outside the provider.

``RecordingFactory`` wraps the engine's provider factory: each provider it returns (and each
``in_region`` sibling) is a ``RecordingProvider`` that appends ``{operation, region, key_id,
request_id, outcome, credentials}`` to a shared, thread-safe log (distributions in several
providers run in threads), and to the open request's journal (``journal``) as each call returns,
so calls made before a ``kill -9`` reach the crashed record. Arguments other than the key id
(import tokens, wrapped material, tags) are never recorded.

``request_id`` is AWS's id of the request (``ResponseMetadata.RequestId``, or the error response's)
as the provider saw it: the provider keeps the ids of each thread's requests (``take_request_ids``),
so concurrent calls never swap ids. A method that sent several requests (pagination, its own
retries after a throttle) lists them all in ``request_ids``. A bulk read (``BULK``: the tag
search's ListResourceTags on every key of a region) is one entry with a ``bulk`` part (keys,
requests, refused, throttled, a bounded sample of request ids: ``bulk_fields``), preceded in the
journal only by a ``started`` entry, so a kill during it still shows it had begun. ``credentials`` names the caller
identity (in the record's ``caller_identity``) whose credentials made the call.

The caller identity (STS GetCallerIdentity) is asked once per credentials and remembered in the
trail's head under a keyed digest of the provider's endpoint and access key id (never the key
itself): a second command with the same credentials makes no STS call; new credentials or another
endpoint give another digest, so the identity is asked again. A failed lookup is recorded as
``unknown`` with the reason, is not remembered (the next command asks again) and never fails the
command.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

#: Provider method -> AWS KMS operation, and whether it changes anything in AWS.
OPERATIONS: dict[str, tuple[str, bool]] = {
    "create_key": ("CreateKey", True),
    "get_parameters_for_import": ("GetParametersForImport", False),
    "import_key_material": ("ImportKeyMaterial", True),
    "describe_key": ("DescribeKey", False),
    "enable_key": ("EnableKey", True),
    "disable_key": ("DisableKey", True),
    "schedule_key_deletion": ("ScheduleKeyDeletion", True),
    "create_alias": ("CreateAlias", True),
    "update_alias": ("UpdateAlias", True),
    "delete_alias": ("DeleteAlias", True),
    "get_alias_target": ("ListAliases", False),
    "replicate_key": ("ReplicateKey", True),
    "get_public_key": ("GetPublicKey", False),
    "list_resource_tags": ("ListResourceTags", False),
    "tag_resource": ("TagResource", True),
    "list_keys": ("ListKeys", False),
    "list_tags_of_keys": ("ListResourceTags", False),
    "delete_imported_key_material": ("DeleteImportedKeyMaterial", True),
    "rotate_key_on_demand": ("RotateKeyOnDemand", True),
}
MUTATING = frozenset(op for op, mutating in OPERATIONS.values() if mutating)
#: Methods that send one operation for many keys: recorded as one entry (see ``bulk_fields``).
BULK = frozenset({"list_tags_of_keys"})


def key_id_of(method: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> str:
    """The KMS key (or alias) a call is about: never a secret."""
    if method == "create_key":
        return result if isinstance(result, str) else ""
    if method in ("create_alias", "update_alias"):
        name = args[0] if args else kwargs.get("alias_name", "")
        target = args[1] if len(args) > 1 else kwargs.get("key_id", "")
        return f"{target} ({name})"
    if method in ("delete_alias", "get_alias_target"):
        return str(args[0] if args else kwargs.get("alias_name", ""))
    if method in ("list_keys", "list_tags_of_keys"):
        return ""
    return str(args[0] if args else kwargs.get("key_id", ""))


def bulk_keys(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """How many keys a ``BULK`` method was asked about (its first argument, or ``key_ids=``)."""
    return len(args[0]) if args else len(kwargs.get("key_ids", []))


def bulk_fields(keys: int, result: Any = None) -> dict[str, Any]:
    """The ``bulk`` part of a bulk read's one entry: how many keys, requests (retries included),
    keys refused (AccessDenied/NotFound: not ours), throttled answers, and a bounded sample of AWS's
    request ids (``providers.base.sample_ids``: the first and last five, then up to ten refused
    ones). One entry however many keys the account holds: the trail's size and fsyncs do not grow
    with other teams' keys, and it stays honest about what was sent."""
    fields: dict[str, Any] = {"keys": keys}
    if result is not None:
        fields.update(requests=int(getattr(result, "requests", 0) or 0),
                      refused=int(getattr(result, "refused", 0) or 0),
                      throttled=int(getattr(result, "throttled", 0) or 0),
                      request_ids=[str(i) for i in getattr(result, "request_ids", []) or [] if i])
    return fields


MAX_REMEMBERED = 64


class CallLog:
    """The calls of one command, in the order they returned; each also goes to ``journal`` at once."""

    def __init__(self, journal: Any = None) -> None:
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []
        self.journal = journal
        self.journal_error = ""

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.entries.append(entry)
            self._journal(entry)

    def begin(self, entry: dict[str, Any]) -> None:
        """A long read is starting: written to the journal only (not to the response's list), so
        a command killed during it leaves a crashed record that says it had begun."""
        with self._lock:
            self._journal(entry)

    def _journal(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` to the journal (the caller holds the lock); after a first failure, no more."""
        if self.journal is not None and not self.journal_error:
            try:
                self.journal.append(entry)
            except Exception as error:  # the response still lists the call; a crash would lose it
                self.journal_error = f"the calls journal could not be written ({type(error).__name__})"

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.entries]


def _take_ids(inner: Any) -> list[str]:
    take = getattr(inner, "take_request_ids", None)
    if callable(take):
        return [str(i) for i in take() if i]
    last = str(getattr(inner, "last_request_id", "") or "")
    return [last] if last else []


class RecordingProvider:
    """A provider whose calls are logged; anything else passes through unchanged."""

    def __init__(self, inner: Any, log: CallLog, credentials: str = ""):
        self._inner = inner
        self._log = log
        self._credentials = credentials

    @property
    def region(self) -> str:
        return self._inner.region

    def in_region(self, region: str) -> RecordingProvider:
        return RecordingProvider(self._inner.in_region(region), self._log, self._credentials)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in OPERATIONS or not callable(attr):
            return attr
        operation = OPERATIONS[name][0]

        def call(*args: Any, **kwargs: Any) -> Any:
            entry = {"operation": operation, "region": self._inner.region, "key_id": "", "request_id": "",
                     "outcome": "ok", "credentials": self._credentials}
            _take_ids(self._inner)  # forget ids of requests not made through this wrapper
            if name in BULK:
                self._log.begin({**entry, "outcome": "started", "bulk": bulk_fields(bulk_keys(args, kwargs))})
            try:
                result = attr(*args, **kwargs)
            except Exception as error:
                entry["outcome"] = "error: " + str(getattr(error, "code", None) or type(error).__name__)
                self._add(entry, name, args, kwargs, None)
                raise
            self._add(entry, name, args, kwargs, result)
            return result

        return call

    def _add(self, entry: dict[str, Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             result: Any) -> None:
        entry["key_id"] = key_id_of(name, args, kwargs, result)
        if name in BULK:  # one entry for the whole read (its requests ran in other threads)
            _take_ids(self._inner)
            entry["bulk"] = bulk_fields(bulk_keys(args, kwargs), result)
            sample = entry["bulk"].get("request_ids") or []
            entry["request_id"] = sample[-1] if sample else ""
            self._log.add(entry)
            return
        ids = _take_ids(self._inner)
        entry["request_id"] = ids[-1] if ids else ""
        if len(ids) > 1:
            entry["request_ids"] = ids
        self._log.add(entry)


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4].isdigit() else ""


class RecordingFactory:
    """Wraps a provider factory; ``identities`` lists each provider's caller identity once,
    ``learned`` the identities asked of STS in this command (for the trail's head to remember)."""

    def __init__(self, factory: Callable[[Any], Any], log: CallLog, remembered: dict[str, Any] | None = None,
                 digest: Callable[[str], str] | None = None):
        self.factory = factory
        self.log = log
        self.remembered = remembered if remembered is not None else {}
        self.digest = digest
        self.identities: list[dict[str, Any]] = []
        self.learned: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, config: Any) -> RecordingProvider:
        inner = self.factory(config)
        with self._lock:
            name = self._identity(config, inner)
        return RecordingProvider(inner, self.log, name)

    def _name(self, config: Any, inner: Any) -> str:
        ref_of = getattr(inner, "credential_ref", None)
        ref = ref_of() if callable(ref_of) else (f"{getattr(config, 'endpoint', '') or 'aws'}|"
                                                 f"{getattr(config, 'access_key', '') or 'default-credentials'}")
        # another profile or role is another identity (two accounts behind one region and endpoint);
        # appended only when set, so the names remembered for access-key providers stay the same
        sources = [getattr(config, k, None) or "" for k in ("profile", "role_arn", "web_identity_token_file")]
        if any(sources):
            ref += "|" + "|".join(sources)
        if self.digest is not None:
            return self.digest("caller-identity\x00" + ref).split(":", 1)[-1][:32]
        import hashlib

        return hashlib.sha256(ref.encode()).hexdigest()[:32]

    def _identity(self, config: Any, inner: Any) -> str:
        name = self._name(config, inner)
        if any(i.get("credentials") == name for i in self.identities):
            return name
        known = self.remembered.get(name)
        if isinstance(known, dict) and known.get("arn") and known.get("arn") != "unknown":
            known = {"arn": str(known["arn"]), "account": str(known.get("account") or _account_of(known["arn"])),
                     "source": f"remembered (GetCallerIdentity at {known.get('learned_at', '?')}, request id "
                               f"{known.get('request_id', '') or '?'})"}
        else:
            known = self._ask(name, inner)
        self.identities.append({"credentials": name, "region": getattr(config, "region", ""), **known})
        return name

    def _ask(self, name: str, inner: Any) -> dict[str, Any]:
        from keymgmt_cli.audit.records import now

        ask = getattr(inner, "caller_identity", None)
        if not callable(ask):
            return {"arn": "unknown", "account": "unknown", "source": "the provider has no caller_identity()"}
        try:
            answer = ask()
        except Exception as error:  # an identity we cannot learn is recorded as such, never fatal
            reason = " ".join(str(error).split())[:300] or type(error).__name__
            return {"arn": "unknown", "account": "unknown", "source": f"GetCallerIdentity failed: {reason}"}
        arn = str(answer.get("Arn") or "")
        account = str(answer.get("Account") or "") or _account_of(arn)
        if not arn:
            return {"arn": "unknown", "account": account or "unknown", "source": "GetCallerIdentity named no ARN"}
        request_id = str(answer.get("RequestId") or "")
        self.learned[name] = {"arn": arn, "account": account, "learned_at": now(), "request_id": request_id}
        return {"arn": arn, "account": account, "source": f"GetCallerIdentity (request id {request_id or '?'})"}


def prune(identities: dict[str, Any]) -> None:
    """Keep the ``MAX_REMEMBERED`` most recently learned identities in a head (credentials rotate)."""
    if len(identities) > MAX_REMEMBERED:
        ordered = sorted(identities, key=lambda n: str((identities[n] or {}).get("learned_at", "")))
        for name in ordered[: len(identities) - MAX_REMEMBERED]:
            del identities[name]
