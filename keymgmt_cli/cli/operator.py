"""``keymgmt operator``: set up a state backend and its seal, and move a whole state between backends.

    keymgmt operator init [-storage=URL] [-seal=URL]
    keymgmt operator migrate -from=URL -to=URL [-from-seal=URL] [-to-seal=URL] [-verify-only]

URLs: ``file:///PATH`` (a local state directory), ``dynamodb://TABLE?region=R[&endpoint=URL]``;
seals: ``awskms://KEY_ID_OR_ALIAS?region=R[&endpoint=URL]``.

The commands parse their flags, call ``keymgmt_cli.store.migrate`` (the copy, the re-sealing and
the verification live there) and print the result.
"""

from __future__ import annotations

import os
from typing import Any

import click

from keymgmt_cli.errors import PreconditionFailed

CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}


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
    from keymgmt_cli.audit.operations import Operation

    environ = _environ(obj)
    op = Operation(None, environ, "init", {"storage": storage, "seal": seal_url})
    for line in init_backend(environ, storage, seal_url):
        click.echo(line)
    # the master key exists only now: request and response are written together (audit/operations.py)
    from keymgmt_cli.store import keysource, open_store, open_store_url

    op.store = open_store_url(storage, environ) if storage else open_store(environ)
    if op.trail_in_state() and op.store.get("state") is None:
        return  # records would make the fresh table non-empty, and migrate into it refuse (README)
    op.done(lambda: keysource.load_key(op.store, environ).key, data={"location": op.store.location}, warn=_warn)


def init_backend(environ: dict[str, str], storage: str | None = None,
                 seal_url: str | None = None) -> list[str]:
    from keymgmt_cli.store import open_store, open_store_url, setting
    from keymgmt_cli.store.migrate import seal_record

    store = open_store_url(storage, environ) if storage else open_store(environ)
    seal_url = seal_url or setting(environ, "seal")
    lines = []
    if store.backend == "dynamodb":
        lines.append(f"Storage:     {store.ensure_table()}")
    else:
        lines.append(f"Storage:     {store.backend} {store.location}")
    if seal_url or store.backend == "dynamodb" or seal_record(store) is not None:
        _refuse_unsealed_state(store)
        from keymgmt_cli.store.kmsseal import init_shared_seal

        lines.append(f"Seal:        {init_shared_seal(store, environ, seal_url)}")
    else:
        from keymgmt_cli.store.masterkey import load_master_key

        lines.append(f"Master key:  {load_master_key(store.home, environ, create=True).source}")
    lines.append(f"Success! The state at {store.location} is ready.")
    return lines


def _refuse_unsealed_state(store: Any) -> None:
    """A state that already holds data under its local master key cannot just get a KMS seal."""
    from keymgmt_cli.store.migrate import seal_record

    if seal_record(store) is None and store.get("state") is not None:
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
    from keymgmt_cli.store.migrate import (check_migration, existing_box, migrate_state, source_box,
                                           target_box, verify_migration)
    from keymgmt_cli.store.auth import authenticated

    environ = _environ(obj)
    src = open_store_url(source, environ)
    dst = open_store_url(target, environ)
    if src.location == dst.location:
        raise PreconditionFailed(f"source and target are the same state ({src.location})")
    src_box = source_box(src, environ, from_seal)
    src = authenticated(src, src_box)  # every source document verified before it is copied
    if verify_only:
        dst_box = existing_box(dst, environ)
        docs, secrets = verify_migration(src, authenticated(dst, dst_box), src_box, dst_box)
        click.echo(f"Success! {dst.location} holds the {docs} documents of {src.location}; "
                   f"all {secrets} secrets unseal.")
        return
    check_migration(src, dst)
    from keymgmt_cli.audit.keys import master_key_bytes
    from keymgmt_cli.audit.operations import Operation

    data = {"from": source, "to": target, "from_seal": from_seal, "to_seal": to_seal}
    op = Operation(src, environ, "migrate", data)  # the source's trail: request now, response after
    copied = op.trail_in_state()  # a trail in the source's documents is copied: records go in after
    if not copied:
        op.begin(master_key_bytes(src_box))
    try:
        dst_box = target_box(dst, environ, to_seal)
        dst = authenticated(dst, dst_box, state_id=src.current_state_id())  # state document comes last
        docs, secrets = migrate_state(src, dst, src_box, dst_box, progress=_progress)
        from keymgmt_cli.store.retired import retire, url_of  # one state, never two: the source refuses changes now

        retire(src, url_of(dst), (src.get("state") or {}).get("state_id"))
    except BaseException as error:
        op.end(master_key_bytes(src_box), error=error)
        raise
    result = {"documents": docs, "secrets": secrets, "moved_to": dst.location}
    if copied:
        op.done(master_key_bytes(src_box), data=result, warn=_warn)
    else:
        op.end(master_key_bytes(src_box), data=result)
    # the target's trail: its key is known once the copy is made (audit/operations.py)
    Operation(dst, environ, "migrate", data).done(master_key_bytes(dst_box),
                                                  data={**result, "copied_from": src.location}, warn=_warn)
    click.echo(f"Success! Migrated {docs} documents ({secrets} secrets re-sealed under "
               f"{dst_box.source}) from {src.location} to {dst.location}; verified.")


@operator_group.command("upgrade", context_settings=CONTEXT)
@click.pass_obj
def upgrade_cmd(obj: Any) -> None:
    """Authenticate, once, a state last written by a keymgmt without document MACs.

    Refuses a key it cannot prove and a state that looks upgraded already (see store/upgrade.py).

    \b
    Example:
      keymgmt operator upgrade
    """
    from keymgmt_cli.store import open_secret_box, open_store
    from keymgmt_cli.store.upgrade import upgrade_state

    from keymgmt_cli.audit.keys import master_key_bytes
    from keymgmt_cli.audit.operations import Operation, run

    environ = _environ(obj)
    store = open_store(environ)
    box = open_secret_box(store.home, environ, store=store.inner)
    op = Operation(store.inner, environ, "upgrade", {})
    click.echo(run(op, master_key_bytes(box), lambda: upgrade_state(store.inner, box)))


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _progress(message: str) -> None:
    import sys

    if sys.stderr.isatty():
        click.echo(f"... {message}", err=True)


from keymgmt_cli.cli.recovery import register as _register_recovery  # noqa: E402

_register_recovery(operator_group)
