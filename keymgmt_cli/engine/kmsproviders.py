"""Handlers for kms/:name and kms (Vault's keymgmt API 8-11).

Credentials are sealed as one JSON map bound to the provider's document; reads never return them.
"""

from __future__ import annotations

import json
import re

from keymgmt_cli.engine import shapes
from keymgmt_cli.engine.mounts import Mount, now_rfc3339
from keymgmt_cli.engine.names import check_name
from keymgmt_cli.engine.routing import Response
from keymgmt_cli.errors import InvalidRequest, NotFound, NoValue, PreconditionFailed, StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView as Engine
    from keymgmt_cli.providers.base import ProviderConfig


def _credentials_aad(mount: Mount, name: str) -> str:
    return mount.doc("kms", name) + "#credentials"


#: Keys that belong together: giving any key of a group on an update replaces the whole group
#: (a session token belongs to the keys it was issued with; an external id to its role).
_GROUPS = ({"access_key", "secret_key", "session_token"},
           {"role_arn", "external_id", "session_name", "duration", "web_identity_token_file"})
_LEADERS = {"access_key": _GROUPS[0], "secret_key": _GROUPS[0], "role_arn": _GROUPS[1]}
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
_SESSION_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{2,64}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}")
_PROFILE = re.compile(r"[A-Za-z0-9+=,.@_:/-]{1,128}")
#: Bounds for the role session's DurationSeconds. STS takes 15m-12h (a role's own maximum may be
#: lower: STS then refuses), but botocore refreshes credentials that have less than 15 minutes
#: left, so a session shorter than 30m would cost an AssumeRole call before almost every request.
MIN_ROLE_SECONDS, MAX_ROLE_SECONDS = 1800, 43200


def role_seconds(text: str) -> int:
    """Seconds of ``duration`` (a Vault duration: 3600, 1h, 90m)."""
    from keymgmt_cli.engine.durations import parse_duration

    return parse_duration(text, "credentials duration")


def _check_credentials(creds: dict[str, str]) -> None:
    """The credentials map as it will be stored: one source of credentials, each value well formed.
    Messages name keys, never values (a value may be a secret, or come from a file)."""
    if ("access_key" in creds) != ("secret_key" in creds):
        raise InvalidRequest("credentials need both access_key and secret_key, or neither")
    if "session_token" in creds and "access_key" not in creds:
        raise InvalidRequest("credentials session_token needs access_key and secret_key")
    for key in sorted(set(creds) - {"endpoint"}):  # the endpoint has its own check below
        if not creds[key] or any(c.isspace() for c in creds[key]):
            raise InvalidRequest(f"credentials {key} is empty or contains whitespace")
    if "profile" in creds and "access_key" in creds:
        raise InvalidRequest("credentials profile and access_key/secret_key are two sources of credentials; "
                             "give one of them")
    for key in ("external_id", "session_name", "duration", "web_identity_token_file"):
        if key in creds and "role_arn" not in creds:
            raise InvalidRequest(f"credentials {key} needs role_arn")
    if "web_identity_token_file" in creds:
        for other in ("access_key", "profile"):
            if other in creds:
                raise InvalidRequest(f"credentials web_identity_token_file and {other} conflict: "
                                     "AssumeRoleWithWebIdentity uses the token alone")
        if "external_id" in creds:
            raise InvalidRequest("credentials external_id does not apply with web_identity_token_file "
                                 "(AssumeRoleWithWebIdentity takes no external id)")
    checks = (("role_arn", _ROLE_ARN, "an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"),
              ("session_name", _SESSION_NAME, "2-64 of A-Z a-z 0-9 +=,.@_-"),
              ("external_id", _EXTERNAL_ID, "2-1224 of A-Z a-z 0-9 +=,.@:/_-"),
              ("profile", _PROFILE, "a profile name of the shared AWS files"))
    for key, pattern, what in checks:
        if key in creds and not pattern.fullmatch(creds[key]):
            raise InvalidRequest(f"credentials {key} is not {what}")
    if "duration" in creds:
        seconds = role_seconds(creds["duration"])
        if not MIN_ROLE_SECONDS <= seconds <= MAX_ROLE_SECONDS:
            raise InvalidRequest("credentials duration must be between 30m and 12h (botocore refreshes "
                                 "role credentials 15m before they expire)")
    endpoint = creds.get("endpoint")
    if endpoint is not None and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?", endpoint):
        # never echoed: a URL can carry credentials (https://AK:SK@host) or come from an @file
        raise InvalidRequest("credentials endpoint is not an http(s) URL (scheme://host[:port][/path], "
                             "no user or password in it)")


def merge_credentials(stored: dict[str, str], given: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The credentials an update leaves, and what it changed, in words (for a warning).

    Vault's keymgmt API documents no update rule for the ``credentials`` map; replacing it whole
    made rotating access keys silently drop a stored ``endpoint``. So an update merges by key:
    a key given with a value is set, ``KEY=`` (empty) removes it, other keys stay; giving
    ``access_key`` or ``secret_key`` replaces the whole key group (an old ``session_token`` would
    belong to other keys), giving ``role_arn`` replaces the role group. An empty map
    (``credentials=@empty.json`` holding ``{}``) removes them all. Names only, never values."""
    if not given:
        return {}, ([f"removed {', '.join(sorted(stored))}"] if stored else [])
    merged = dict(stored)
    for leader, group in _LEADERS.items():
        if given.get(leader):
            for key in group:
                merged.pop(key, None)
    for key, value in given.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    changed = sorted(k for k in merged if k in given and stored.get(k) != merged[k])
    same = sorted(k for k in merged if k in given and stored.get(k) == merged[k])
    removed = sorted(k for k in stored if k not in merged)
    kept = sorted(k for k in merged if k not in given)
    words = []
    for label, keys in (("set", changed), ("unchanged", same), ("removed", removed), ("kept", kept)):
        if keys:
            words.append(f"{label} {', '.join(keys)}")
    return merged, words


def load_provider(engine: Engine, mount: Mount, name: str) -> dict[str, Any]:
    check_name("KMS provider", name)
    doc = shapes.load(engine.store, mount.doc("kms", name), shapes.provider)
    if doc is None:
        raise NotFound(f"KMS provider {name!r} not found in {mount.path}",
                       hint=f"create it: keymgmt write {mount.path}kms/{name} provider=awskms key_collection=REGION")
    return doc


def provider_config(engine: Engine, mount: Mount, doc: dict[str, Any], region: str | None = None) -> ProviderConfig:
    from keymgmt_cli.providers.base import ProviderConfig

    creds: dict[str, str] = {}
    if doc.get("credentials"):
        creds = json.loads(engine.secrets.unseal(doc["credentials"], _credentials_aad(mount, doc["name"])))
    duration = creds.get("duration")
    return ProviderConfig(region=region or doc["key_collection"], access_key=creds.get("access_key"),
                          secret_key=creds.get("secret_key"), session_token=creds.get("session_token"),
                          endpoint=creds.get("endpoint"), profile=creds.get("profile"),
                          role_arn=creds.get("role_arn"), external_id=creds.get("external_id"),
                          session_name=creds.get("session_name"),
                          duration=role_seconds(duration) if duration else None,
                          web_identity_token_file=creds.get("web_identity_token_file"))


def record_credential_source(engine: Engine, mount: Mount, name: str, source: str | None) -> None:
    """Remember which source gave provider ``name`` its credentials (``read`` shows it). Written
    only when it changed, so a command that resolves the same source again writes nothing. A note,
    not a record the engine acts on: a store that cannot take it now (its lock busy, a retired
    state) leaves the previous note, and the command goes on."""
    if not source:
        return
    doc = shapes.load(engine.store, mount.doc("kms", name), shapes.provider)
    if doc is None or doc.get("credential_source") == source:
        return
    try:
        with engine.store.lock(mount.lock("kms", name), timeout=5.0):
            doc = shapes.load(engine.store, mount.doc("kms", name), shapes.provider)
            if doc is not None and doc.get("credential_source") != source:
                doc["credential_source"], doc["credential_source_time"] = source, now_rfc3339(engine.clock())
                engine.put(mount.doc("kms", name), doc)
    except StoreError:
        pass


def list_providers(engine: Engine, mount: Mount, values: dict[str, Any]) -> Response:
    names = engine.store.list(mount.doc("kms"))
    if not names:
        raise NoValue(f"No value found at {mount.path}kms")
    return Response({"keys": names})


def read_provider(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    doc = load_provider(engine, mount, name)
    data: dict[str, Any] = {"key_collection": doc["key_collection"], "provider": doc["provider"]}
    # Beyond Vault (README, deliberate differences): which credential keys are set (never their
    # values) and which source the last command that resolved credentials got them from.
    if doc.get("credential_keys"):
        data["credential_keys"] = list(doc["credential_keys"])
    if doc.get("credential_source"):
        data["credential_source"] = doc["credential_source"]
        data["credential_source_time"] = doc.get("credential_source_time", "")
    return Response(data)


def write_provider(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    check_name("KMS provider", name)
    given = values.get("credentials")
    warnings: list[str] = []
    with engine.store.lock(mount.lock("kms", name)):
        doc = shapes.load(engine.store, mount.doc("kms", name), shapes.provider)
        if doc is None:
            for required in ("provider", "key_collection"):
                if required not in values:
                    raise InvalidRequest(f"missing required field {required!r} to create KMS provider {name!r}")
            doc = {"name": name, "provider": values["provider"], "key_collection": values["key_collection"],
                   "credentials": None, "credential_keys": [], "created": now_rfc3339()}
        else:
            for immutable in ("provider", "key_collection"):
                if immutable in values and values[immutable] != doc[immutable]:
                    raise InvalidRequest(f"{immutable} cannot be changed after creation "
                                         f"(KMS provider {name!r} has {doc[immutable]})")
        if given is not None:
            stored: dict[str, str] = {}
            if doc.get("credentials"):  # needed to merge; clearing them all ({}) needs no unsealing
                stored = (json.loads(engine.secrets.unseal(doc["credentials"], _credentials_aad(mount, name)))
                          if given else {key: "" for key in doc.get("credential_keys", [])})
            creds, words = merge_credentials(stored, given)
            _check_credentials(creds)
            if stored and words:
                warnings.append("credentials merged by key: " + "; ".join(words))
            if creds != stored or not given or doc.get("credentials") is None:
                doc["credentials"] = (engine.secrets.seal(json.dumps(creds).encode(), _credentials_aad(mount, name))
                                      if creds else None)
                doc["credential_keys"] = sorted(creds)
            if creds != stored or not given:  # the next command tells which source these resolve to
                doc.pop("credential_source", None)
                doc.pop("credential_source_time", None)
        _refuse_orphaning(engine, mount, name, doc)
        engine.put(mount.doc("kms", name), doc)
    return Response(warnings=warnings)


def _refuse_orphaning(engine: Engine, mount: Mount, name: str, doc: dict[str, Any]) -> None:
    """The endpoint is where the provider's KMS keys live: changed while keys are distributed
    there, every later call (rotation, removal, verify) would go to the new one, and the keys made
    at the old one would be orphaned while keymgmt reported success. So the change is refused
    until they are removed (or forgotten, when the old endpoint is gone for good). The records do
    not carry the endpoint per distribution: one provider, one endpoint.

    Other credentials at the same endpoint may be another account, where the keys do not exist:
    one DescribeKey of a recorded key with the new credentials must find it, else the change is
    refused too (with the cause)."""
    old = shapes.load(engine.store, mount.doc("kms", name), shapes.provider)
    if old is None or old.get("credentials") == doc.get("credentials"):
        return
    keys = engine.store.list(mount.doc("dist", name))
    if not keys:
        return
    new_config = provider_config(engine, mount, doc)
    if provider_config(engine, mount, old).endpoint == new_config.endpoint:
        _probe(engine, mount, name, keys, new_config)
        return
    raise PreconditionFailed(
        f"the endpoint of KMS provider {name!r} cannot change while keys are distributed to it "
        f"({', '.join(keys)}): their KMS keys are at the current endpoint and would be orphaned",
        hint=f"remove them first (keymgmt delete {mount.path}kms/{name}/key/{keys[0]}); if the current "
             f"endpoint is gone for good: keymgmt delete -forget {mount.path}kms/{name}/key/{keys[0]}")


def _probe(engine: Engine, mount: Mount, name: str, keys: list[str], config: ProviderConfig) -> None:
    from keymgmt_cli.errors import ProviderError

    probe = None
    for key_name in keys:
        dist = shapes.load(engine.store, mount.doc("dist", name, key_name), shapes.distribution)
        live = [rec["key_id"] for _v, rec in sorted((dist or {}).get("versions", {}).items())
                if rec.get("key_id") and not rec.get("deleted")]
        if live:
            probe = live[0]
            break
    if probe is None or engine.provider_factory is None:
        return  # nothing recorded in AWS yet: nothing to lose
    hint = (f"give credentials of the account that holds them, or remove the keys first "
            f"(keymgmt delete {mount.path}kms/{name}/key/{keys[0]})")
    try:
        found = engine.provider_factory(config).describe_key(probe)
    except ProviderError as error:
        raise PreconditionFailed(f"the new credentials of KMS provider {name!r} could not be checked against its "
                                 f"distributed keys ({error})", hint=hint) from None
    if found is None:
        raise PreconditionFailed(f"the new credentials of KMS provider {name!r} do not see its KMS key {probe} "
                                 f"(another account?): the keys distributed there would be orphaned", hint=hint)


def delete_provider(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    check_name("KMS provider", name)
    with engine.store.lock(mount.lock("kms", name)):
        if engine.store.get(mount.doc("kms", name)) is None:
            return Response()
        keys = engine.store.list(mount.doc("dist", name))
        if keys:
            raise PreconditionFailed(
                f"KMS provider {name!r} still holds distributed keys: {', '.join(keys)}",
                hint=f"remove them first: keymgmt delete {mount.path}kms/{name}/key/{keys[0]}")
        engine.store.delete(mount.doc("kms", name))
    return Response()
