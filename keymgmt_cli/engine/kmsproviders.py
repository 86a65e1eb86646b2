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
from keymgmt_cli.errors import InvalidRequest, NotFound, NoValue, PreconditionFailed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView as Engine
    from keymgmt_cli.providers.base import ProviderConfig


def _credentials_aad(mount: Mount, name: str) -> str:
    return mount.doc("kms", name) + "#credentials"


def _check_credentials(creds: dict[str, str]) -> None:
    if ("access_key" in creds) != ("secret_key" in creds):
        raise InvalidRequest("credentials need both access_key and secret_key, or neither")
    if "session_token" in creds and "access_key" not in creds:
        raise InvalidRequest("credentials session_token needs access_key and secret_key")
    for key in ("access_key", "secret_key", "session_token"):
        if key in creds and (not creds[key] or any(c.isspace() for c in creds[key])):
            raise InvalidRequest(f"credentials {key} is empty or contains whitespace")
    endpoint = creds.get("endpoint")
    if endpoint is not None and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?", endpoint):
        # never echoed: a URL can carry credentials (https://AK:SK@host) or come from an @file
        raise InvalidRequest("credentials endpoint is not an http(s) URL (scheme://host[:port][/path], "
                             "no user or password in it)")


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
    return ProviderConfig(region=region or doc["key_collection"], access_key=creds.get("access_key"),
                          secret_key=creds.get("secret_key"), session_token=creds.get("session_token"),
                          endpoint=creds.get("endpoint"))


def list_providers(engine: Engine, mount: Mount, values: dict[str, Any]) -> Response:
    names = engine.store.list(mount.doc("kms"))
    if not names:
        raise NoValue(f"No value found at {mount.path}kms")
    return Response({"keys": names})


def read_provider(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    doc = load_provider(engine, mount, name)
    return Response({"key_collection": doc["key_collection"], "provider": doc["provider"]})


def write_provider(engine: Engine, mount: Mount, values: dict[str, Any], name: str) -> Response:
    check_name("KMS provider", name)
    creds = values.get("credentials")
    if creds is not None:
        _check_credentials(creds)
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
        if creds is not None:
            doc["credentials"] = (engine.secrets.seal(json.dumps(creds).encode(), _credentials_aad(mount, name))
                                  if creds else None)
            doc["credential_keys"] = sorted(creds)
        _refuse_orphaning(engine, mount, name, doc)
        engine.put(mount.doc("kms", name), doc)
    return Response()


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
