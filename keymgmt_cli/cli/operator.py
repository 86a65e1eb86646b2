"""``keymgmt operator``: set up a state backend and its seal, and move a whole state between backends.

    keymgmt operator init [-storage=URL] [-seal=URL]
    keymgmt operator migrate -from=URL -to=URL [-from-seal=URL] [-to-seal=URL] [-verify-only]

URLs: ``file:///PATH`` (a local state directory), ``dynamodb://TABLE?region=R[&endpoint=URL]``;
seals: ``awskms://KEY_ID_OR_ALIAS?region=R[&endpoint=URL]``.

``migrate`` (as ``vault operator migrate``) copies every document, unsealing each secret with the
source's master key and sealing it again under the target's, refuses a target that already holds
a state, and verifies afterwards that every document is there and every secret unseals to the
same bytes. Run it while no other runner writes to the source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import click

from keymgmt_cli.errors import PreconditionFailed, StoreError

CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}
META_PREFIX = "meta/"
_TOKEN_RE = re.compile(r"^v1\.[A-Za-z0-9_-]{38,}$")
#: Fields the engine seals, by document id: they must unseal, or the migration stops.
KNOWN_SEALED = (
    (re.compile(r"^ns/[^/]+/keys/[^/]+$"), re.compile(r"^versions/[^/]+/material$")),  # keys.material_aad
    (re.compile(r"^ns/[^/]+/kms/[^/]+$"), re.compile(r"^credentials$")),  # kmsproviders._credentials_aad
)


def _environ(obj: Any) -> dict[str, str]:
    environ = getattr(obj, "environ", None)
    return dict(os.environ) if environ is None else environ


@click.group("operator", context_settings=CONTEXT)
def operator_group() -> None:
    """Set up the state backend and its seal; move a state between backends.

    \b
    Example:
      keymgmt operator init -storage='dynamodb://keymgmt?region=eu-west-1' \\
          -seal='awskms://alias/keymgmt-seal?region=eu-west-1'
      keymgmt operator migrate -from=file://$HOME/.local/share/keymgmt \\
          -to='dynamodb://keymgmt?region=eu-west-1'
    """


# -- init --------------------------------------------------------------------------------------
@operator_group.command("init", context_settings=CONTEXT)
@click.option("-storage", "--storage", default=None, metavar="URL",
              help="Backend (default: KEYMGMT_STORAGE, the config file, else the local directory).")
@click.option("-seal", "--seal", "seal_url", default=None, metavar="URL",
              help="awskms://KEY_ID_OR_ALIAS?region=R[&endpoint=URL] (default: KEYMGMT_SEAL).")
@click.pass_obj
def init_cmd(obj: Any, storage: str | None, seal_url: str | None) -> None:
    """Create the DynamoDB table (or check it) and initialise the seal.

    The table: on-demand capacity, partition key pk and sort key sk (strings), TTL on
    lease_ttl. The seal: a data key from AWS KMS GenerateDataKey, stored only encrypted, in the
    table (item meta/seal). Re-running it checks both and changes nothing.

    \b
    Needs: dynamodb:DescribeTable, dynamodb:CreateTable, dynamodb:DescribeTimeToLive,
    dynamodb:UpdateTimeToLive, dynamodb:GetItem, dynamodb:PutItem, dynamodb:DeleteItem,
    dynamodb:UpdateItem, kms:GenerateDataKey and kms:Decrypt on the seal key.

    \b
    Example:
      keymgmt operator init -storage='dynamodb://keymgmt?region=eu-west-1' \\
          -seal='awskms://alias/keymgmt-seal?region=eu-west-1'
    """
    for line in init_backend(_environ(obj), storage, seal_url):
        click.echo(line)


def init_backend(environ: dict[str, str], storage: str | None = None,
                 seal_url: str | None = None) -> list[str]:
    from keymgmt_cli.store import open_store, open_store_url, setting

    store = open_store_url(storage, environ) if storage else open_store(environ)
    seal_url = seal_url or setting(environ, "seal")
    lines = []
    if store.backend == "dynamodb":
        lines.append(f"Storage:     {store.ensure_table()}")
    else:
        lines.append(f"Storage:     {store.backend} {store.location}")
    if seal_url or store.backend == "dynamodb" or _seal_record(store) is not None:
        _refuse_unsealed_state(store)
        from keymgmt_cli.store.kmsseal import init_shared_seal

        lines.append(f"Seal:        {init_shared_seal(store, environ, seal_url)}")
    else:
        from keymgmt_cli.store.masterkey import load_master_key

        lines.append(f"Master key:  {load_master_key(store.home, environ, create=True).source}")
    lines.append(f"Success! The state at {store.location} is ready.")
    return lines


def _seal_record(store: Any) -> dict[str, Any] | None:
    from keymgmt_cli.store.kmsseal import SEAL_DOC

    return store.get(SEAL_DOC)


def _refuse_unsealed_state(store: Any) -> None:
    """A state that already holds data under its local master key cannot just get a KMS seal."""
    if _seal_record(store) is None and store.get("state") is not None:
        raise PreconditionFailed(
            f"the state at {store.location} already holds data sealed by its local master key",
            hint="move it into a new KMS-sealed state instead: keymgmt operator migrate "
                 f"-from=file://{store.location} -to=URL -to-seal=awskms://KEY?region=R")


# -- migrate -----------------------------------------------------------------------------------
@operator_group.command("migrate", context_settings=CONTEXT)
@click.option("-from", "--from", "source", required=True, metavar="URL",
              help="The state to copy: file:///PATH or dynamodb://TABLE?region=R[&endpoint=URL].")
@click.option("-to", "--to", "target", required=True, metavar="URL",
              help="An empty (or freshly initialised) state to copy into.")
@click.option("-from-seal", "--from-seal", "from_seal", default=None, metavar="URL",
              help="Only if the source's seal record should be opened with another key id/endpoint.")
@click.option("-to-seal", "--to-seal", "to_seal", default=None, metavar="URL",
              help="awskms://KEY?region=R for the target (default for DynamoDB: KEYMGMT_SEAL).")
@click.option("-verify-only", "--verify-only", is_flag=True,
              help="Copy nothing; check that the target holds the source's state.")
@click.pass_obj
def migrate_cmd(obj: Any, source: str, target: str, from_seal: str | None, to_seal: str | None,
                verify_only: bool) -> None:
    """Copy a whole state from one backend to another, re-sealing every secret.

    Refuses a target that already holds documents. Afterwards every document is compared and
    every secret unsealed under the target's seal (-verify-only repeats that check).
    The source's seal: its seal record (KMS), else its local master key
    (KEYMGMT_MASTER_KEY, key file, OS keyring). The target's: its seal record if initialised,
    else -to-seal, else for DynamoDB KEYMGMT_SEAL (or KEYMGMT_MASTER_KEY), else for a
    directory its local master key (created if need be).

    \b
    Example:
      keymgmt operator migrate -from=file://$HOME/.local/share/keymgmt \\
          -to='dynamodb://keymgmt?region=eu-west-1' -to-seal='awskms://alias/keymgmt?region=eu-west-1'
    """
    from keymgmt_cli.store import open_store_url

    environ = _environ(obj)
    src = open_store_url(source, environ)
    dst = open_store_url(target, environ)
    if src.location == dst.location:
        raise PreconditionFailed(f"source and target are the same state ({src.location})")
    src_box = source_box(src, environ, from_seal)
    if verify_only:
        docs, secrets = verify_migration(src, dst, src_box, existing_box(dst, environ))
        click.echo(f"Success! {dst.location} holds the {docs} documents of {src.location}; "
                   f"all {secrets} secrets unseal.")
        return
    check_migration(src, dst)
    dst_box = target_box(dst, environ, to_seal)
    docs, secrets = migrate_state(src, dst, src_box, dst_box, progress=_progress)
    from keymgmt_cli.store.retired import retire, url_of  # one state, never two: the source refuses changes now

    retire(src, url_of(dst), (src.get("state") or {}).get("state_id"))
    click.echo(f"Success! Migrated {docs} documents ({secrets} secrets re-sealed under "
               f"{dst_box.source}) from {src.location} to {dst.location}; verified.")


def _progress(message: str) -> None:
    import sys

    if sys.stderr.isatty():
        click.echo(f"... {message}", err=True)


# -- the parts, for tests and other callers ------------------------------------------------------
def _box(load: Callable[[], Any]) -> Any:
    from keymgmt_cli.store import SecretBox

    return SecretBox(load)


def source_box(store: Any, environ: dict[str, str], seal_url: str | None = None) -> Any:
    """The box that opens the source's secrets (its seal record, else its local master key)."""
    if seal_url or store.backend not in ("file", "memory") or _seal_record(store) is not None:
        from keymgmt_cli.store.kmsseal import load_shared_master_key

        return _box(lambda: load_shared_master_key(store, environ, seal_url))
    from keymgmt_cli.store.masterkey import load_master_key

    return _box(lambda: load_master_key(store.home, environ, create=False))


def existing_box(store: Any, environ: dict[str, str]) -> Any:
    return source_box(store, environ)


def target_box(store: Any, environ: dict[str, str], seal_url: str | None = None) -> Any:
    """The target's box, initialising its seal if it has none yet."""
    from keymgmt_cli.store import setting

    if _seal_record(store) is None:
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
    if hasattr(store, "all_ids"):
        return list(store.all_ids())
    if store.backend == "file":
        return sorted(_file_ids(store.home))
    if store.backend == "memory":
        return sorted(store._docs)
    raise StoreError(f"cannot enumerate the documents of a {store.backend} store")


def _file_ids(root: Any) -> Iterator[str]:
    from keymgmt_cli.store.base import check_store_id

    root = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = [] if rel == "." else rel.split(os.sep)
        # .locks/ and doomed .del-* directories are the store's own; a collection ending in
        # ".json" is kept as "<name>.json~" (filestore._dir_segment)
        dirnames[:] = [d for d in dirnames if not d.startswith(".del-") and not (not parts and d == ".locks")]
        segments = [p[:-1] if p.endswith(".json~") else p for p in parts]
        for name in filenames:
            if not name.endswith(".json"):
                continue
            doc_id = "/".join(segments + [name[:-len(".json")]])
            try:
                check_store_id(doc_id)
            except ValueError:
                continue  # seal.json and other files of the store itself
            yield doc_id


def state_ids(store: Any) -> list[str]:
    return [i for i in list_ids(store) if not i.startswith(META_PREFIX)]


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


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, path + (str(k),))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, path + (str(i),))
    else:
        yield path, value


def _set(doc: Any, path: tuple[str, ...], value: Any) -> None:
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
    for path, value in _walk(doc):
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
            _set(doc, path, dst_box.seal(plaintext, aad))
            secrets += 1
        dst.put(doc_id, doc)
        if n % 100 == 0:
            progress(f"copied {n} of {len(ids)} documents")
    docs, checked = verify_migration(src, dst, src_box, dst_box)
    if checked != secrets:
        raise StoreError(f"verification unsealed {checked} secrets in {dst.location}, "
                         f"{secrets} were copied")
    return docs, secrets


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
            _set(want, path, None)
            _set(got, path, None)
            secrets += 1
        if want != got:
            raise StoreError(f"{doc_id} in {dst.location} differs from the source")
    return len(ids), secrets


def _get(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


from keymgmt_cli.cli.recovery import register as _register_recovery  # noqa: E402

_register_recovery(operator_group)
