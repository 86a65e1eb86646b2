"""Recording every AWS call a provider makes, from outside the provider.

``RecordingFactory`` wraps the engine's provider factory: each provider it returns (and each
``in_region`` sibling) is a ``RecordingProvider`` that appends ``{operation, region, key_id,
request_id, outcome}`` to a shared, thread-safe log (distributions in several providers run in
threads). Arguments other than the key id (import tokens, wrapped material, tags) are never
recorded. ``request_id`` is the provider's ``last_request_id`` when it exposes one, else "".
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
    "delete_imported_key_material": ("DeleteImportedKeyMaterial", True),
}
MUTATING = frozenset(op for op, mutating in OPERATIONS.values() if mutating)


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
    if method == "list_keys":
        return ""
    return str(args[0] if args else kwargs.get("key_id", ""))


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.entries]


class RecordingProvider:
    """A provider whose calls are logged; anything else passes through unchanged."""

    def __init__(self, inner: Any, log: CallLog):
        self._inner = inner
        self._log = log

    @property
    def region(self) -> str:
        return self._inner.region

    def in_region(self, region: str) -> RecordingProvider:
        return RecordingProvider(self._inner.in_region(region), self._log)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in OPERATIONS or not callable(attr):
            return attr
        operation = OPERATIONS[name][0]

        def call(*args: Any, **kwargs: Any) -> Any:
            entry = {"operation": operation, "region": self._inner.region, "key_id": "", "request_id": "",
                     "outcome": "ok"}
            try:
                result = attr(*args, **kwargs)
            except Exception as error:
                entry["outcome"] = "error: " + str(getattr(error, "code", None) or type(error).__name__)
                entry["key_id"] = key_id_of(name, args, kwargs, None)
                entry["request_id"] = str(getattr(self._inner, "last_request_id", "") or "")
                self._log.add(entry)
                raise
            entry["key_id"] = key_id_of(name, args, kwargs, result)
            entry["request_id"] = str(getattr(self._inner, "last_request_id", "") or "")
            self._log.add(entry)
            return result

        return call


class RecordingFactory:
    """Wraps a provider factory; ``identities`` lists each provider's caller identity once."""

    def __init__(self, factory: Callable[[Any], Any], log: CallLog, remembered: dict[str, Any] | None = None):
        self.factory = factory
        self.log = log
        self.remembered = remembered if remembered is not None else {}
        self.identities: list[dict[str, Any]] = []
        self.learned: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, config: Any) -> RecordingProvider:
        inner = self.factory(config)
        with self._lock:
            self._identity(config, inner)
        return RecordingProvider(inner, self.log)

    def _identity(self, config: Any, inner: Any) -> None:
        ref = f"{getattr(config, 'region', '')}:{getattr(config, 'endpoint', '') or 'aws'}:" \
              f"{getattr(config, 'access_key', '') or 'default-credentials'}"
        import hashlib

        name = hashlib.sha256(ref.encode()).hexdigest()[:16]  # the access key id never in clear
        if any(i.get("credentials") == name for i in self.identities):
            return
        known = self.remembered.get(name)
        if known is None:
            ask = getattr(inner, "caller_identity", None)
            if callable(ask):
                try:
                    known = {"arn": str(ask().get("Arn", "unknown")), "source": "caller_identity()"}
                except Exception as error:  # an identity we cannot learn is recorded as such
                    known = {"arn": "unknown", "source": f"caller_identity() failed ({type(error).__name__})"}
                self.learned[name] = known
            else:
                known = {"arn": "unknown", "source": "the provider has no caller_identity()"}
        self.identities.append({"credentials": name, "region": getattr(config, "region", ""), **known})
