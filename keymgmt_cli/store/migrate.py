"""Moving a whole state between backends (``keymgmt operator migrate``), as ``vault operator migrate``.

Every document is copied, each secret unsealed with the source's box and sealed again under the
target's (bound to the same ``<doc id>#<field path>``); a target that already holds a state is
refused; afterwards every document is compared and every secret unsealed under the target's
seal. Run it while no other runner writes to the source. No click here: the CLI parses and renders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from keymgmt_cli.errors import PreconditionFailed, StoreError

META_PREFIX = "meta/"
_TOKEN_RE = re.compile(r"^v1\.[A-Za-z0-9_-]{38,}$")
#: Fields the engine seals, by document id: they must unseal, or the migration stops.
KNOWN_SEALED = (
    (re.compile(r"^ns/[^/]+/keys/[^/]+$"), re.compile(r"^versions/[^/]+/material$")),  # keys.material_aad
    (re.compile(r"^ns/[^/]+/kms/[^/]+$"), re.compile(r"^credentials$")),  # kmsproviders._credentials_aad
)


def seal_record(store: Any) -> dict[str, Any] | None:
    """The state's KMS seal record, or None (a local master key seals it)."""
    from keymgmt_cli.store.kmsseal import SEAL_DOC

    return store.get(SEAL_DOC)


def _box(load: Callable[[], Any]) -> Any:
    from keymgmt_cli.store import SecretBox

    return SecretBox(load)


def source_box(store: Any, environ: dict[str, str], seal_url: str | None = None) -> Any:
    """The box that opens the source's secrets (its seal record, else its local master key)."""
    if seal_url or store.backend not in ("file", "memory") or seal_record(store) is not None:
        from keymgmt_cli.store.kmsseal import load_shared_master_key

        return _box(lambda: load_shared_master_key(store, environ, seal_url))
    from keymgmt_cli.store.masterkey import load_master_key

    return _box(lambda: load_master_key(store.home, environ, create=False))


def existing_box(store: Any, environ: dict[str, str]) -> Any:
    return source_box(store, environ)


def target_box(store: Any, environ: dict[str, str], seal_url: str | None = None) -> Any:
    """The target's box, initialising its seal if it has none yet."""
    from keymgmt_cli.store import setting

    if seal_record(store) is None:
        if store.backend == "dynamodb":
            seal_url = seal_url or setting(environ, "seal")
            from keymgmt_cli.store.kmsseal import init_shared_seal

            init_shared_seal(store, environ, seal_url)
        elif seal_url:
            from keymgmt_cli.store.kmsseal import init_shared_seal

            init_shared_seal(store, environ, seal_url)
        else:
            from keymgmt_cli.store.masterkey import load_master_key

            return _box(lambda: load_master_key(store.home, environ, create=True))
    from keymgmt_cli.store.kmsseal import load_shared_master_key

    return _box(lambda: load_shared_master_key(store, environ, seal_url))


def list_ids(store: Any) -> list[str]:
    """Every document id of a store, sorted (the seal record under ``meta/`` included)."""
    return sorted(store.all_ids())


def state_ids(store: Any) -> list[str]:
    """The documents a migration copies: not ``meta/`` (each state's own), nor the audit trail
    kept in a DynamoDB state's documents (``audit/``): its chain is MAC'd under the source's master
    key; the source keeps it, and the target's trail begins with the migration's records."""
    from .auth import AUDIT_PREFIX

    return [i for i in list_ids(store) if not i.startswith((META_PREFIX, AUDIT_PREFIX))]


def check_migration(src: Any, dst: Any) -> list[str]:
    ids = state_ids(src)
    if not ids:
        raise PreconditionFailed(f"nothing to migrate: {src.location} holds no state")
    existing = state_ids(dst)
    if existing:
        raise PreconditionFailed(
            f"the target {dst.location} is not empty ({len(existing)} documents, e.g. "
            f"{existing[0]}); migrate refuses to overwrite a state",
            hint="migrate into a new table or directory")
    return ids


def walk_leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf of a JSON document with its path (keys, and list indexes as text)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk_leaves(v, path + (str(k),))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_leaves(v, path + (str(i),))
    else:
        yield path, value


def set_at(doc: Any, path: tuple[str, ...], value: Any) -> None:
    """Put ``value`` at ``path`` (as ``walk_leaves`` names it) in ``doc``."""
    for part in path[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    if isinstance(doc, list):
        doc[int(path[-1])] = value
    else:
        doc[path[-1]] = value


def _known(doc_id: str, field: str) -> bool:
    return any(d.match(doc_id) and f.match(field) for d, f in KNOWN_SEALED)


def sealed_fields(doc_id: str, doc: dict[str, Any], box: Any) -> Iterator[tuple[tuple[str, ...], str, bytes]]:
    """(path, aad, plaintext) of every secret in ``doc`` (aad ``<doc id>#<path>``, as the engine binds).

    A field the engine is known to seal must unseal; any other value shaped like a sealed token
    is treated as a secret only if it unseals under its own path.
    """
    for path, value in walk_leaves(doc):
        field = "/".join(path)
        aad = f"{doc_id}#{field}"
        known = _known(doc_id, field)
        if known and value is None:
            continue  # a provider without credentials
        if not (isinstance(value, str) and _TOKEN_RE.match(value)):
            if known:
                raise StoreError(f"cannot migrate {aad}: not a sealed value (corrupt state)")
            continue
        try:
            plaintext = box.unseal(value, aad)
        except StoreError:
            if known:
                raise
            continue
        yield path, aad, plaintext


def _order(ids: list[str]) -> list[str]:
    """Entities first, then the mounts that make them reachable, the state document last."""
    return sorted(ids, key=lambda i: (2 if i == "state" else 1 if i.startswith("mounts/") else 0, i))


def migrate_state(src: Any, dst: Any, src_box: Any, dst_box: Any,
                  progress: Callable[[str], None] = lambda message: None) -> tuple[int, int]:
    """Copy every document of ``src`` into the empty ``dst``; (documents, secrets). Verifies."""
    ids = check_migration(src, dst)
    secrets = 0
    for n, doc_id in enumerate(_order(ids), 1):
        doc = src.get(doc_id)
        if doc is None:
            raise StoreError(f"{doc_id} vanished from {src.location} during the migration; "
                             "stop the other runners and migrate again into an empty target")
        for path, aad, plaintext in list(sealed_fields(doc_id, doc, src_box)):
            set_at(doc, path, dst_box.seal(plaintext, aad))
            secrets += 1
        dst.put(doc_id, doc)
        if n % 100 == 0:
            progress(f"copied {n} of {len(ids)} documents")
    docs, checked = verify_migration(src, dst, src_box, dst_box)
    if checked != secrets:
        raise StoreError(f"verification unsealed {checked} secrets in {dst.location}, "
                         f"{secrets} were copied")
    record_origin(src, dst)
    return docs, secrets


def record_origin(src: Any, dst: Any) -> None:
    """The target is a new copy (instance) of the source's state, and the source is retired
    right after (``operator migrate`` always retires it), so the keys the target inherits, tagged
    with the source's instance, are not another live state's (``retired.py``)."""
    import time

    from keymgmt_cli.store.retired import ORIGIN_DOC, lineage, new_instance

    source = lineage(src)
    retired = list(source["retired"]) + ([source["id"]] if source["id"] else [])
    state = src.get("state") or {}
    dst.get(ORIGIN_DOC)
    dst.put(ORIGIN_DOC, {"format": 1, "copy_of": state.get("state_id"), "migrated_from": src.location,
                         "source_instance": source["id"], "retired_instances": retired,
                         "source_retired": True,
                         "restored_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    new_instance(dst)


def verify_migration(src: Any, dst: Any, src_box: Any, dst_box: Any) -> tuple[int, int]:
    """Every source document is in ``dst``, equal but for its secrets, which unseal to the same
    bytes under the target's seal; nothing else is there. (documents, secrets)"""
    ids, there = state_ids(src), state_ids(dst)
    missing = sorted(set(ids) - set(there))
    extra = sorted(set(there) - set(ids))
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise StoreError(f"{dst.location} does not match {src.location}: {len(missing)} documents "
                         f"missing, {len(extra)} unexpected ({what})")
    secrets = 0
    for doc_id in ids:
        want, got = src.get(doc_id), dst.get(doc_id)
        if want is None or got is None:
            raise StoreError(f"{doc_id} vanished during verification")
        for path, aad, plain in list(sealed_fields(doc_id, want, src_box)):
            try:
                value = _get(got, path)
                there = dst_box.unseal(value, aad) if isinstance(value, str) else None
            except (KeyError, IndexError, ValueError, TypeError, StoreError):
                there = None
            if there != plain:
                raise StoreError(f"{aad} in {dst.location} does not unseal to the source's secret")
            set_at(want, path, None)
            set_at(got, path, None)
            secrets += 1
        if want != got:
            raise StoreError(f"{doc_id} in {dst.location} differs from the source")
    return len(ids), secrets


def _get(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc
