"""``keymgmt operator escrow|recover|snapshot|rekey``: never lose a key.

    keymgmt operator escrow -key-shares=5 -key-threshold=3 [-format=json]
    keymgmt operator recover [-print] [-snapshot=FILE]         (shares on stdin, or prompted)
    keymgmt operator snapshot save FILE
    keymgmt operator snapshot restore FILE [-force] [-retire-source=URL]
    keymgmt operator rekey [-format=json]

Each takes ``-storage=URL`` to act on another state than the configured one. The algorithms
live in ``keymgmt_cli/store/`` (escrow, keysource, snapshot, rekey, retired); this module is the
commands, each read top to bottom; what they share (the options, the state they open, the shares
printed and read, warnings) is ``recoveryio.py``.
"""

from __future__ import annotations

import base64
import os
import sys
from typing import Any

import click

from keymgmt_cli.cli.recoveryio import (CONTEXT, authenticated, environ_of, format_option, open_state,
                                        print_shares, read_shares, storage_option, warn)
from keymgmt_cli.errors import PreconditionFailed, UsageError


# -- escrow ------------------------------------------------------------------------------------
@click.command("escrow", context_settings=CONTEXT)
@click.option("-key-shares", "--key-shares", "shares", type=int, default=5, show_default=True,
              help="Number of key shares to split the master key into.")
@click.option("-key-threshold", "--key-threshold", "threshold", type=int, default=3,
              show_default=True, help="Number of key shares needed to rebuild the master key.")
@format_option
@storage_option
@click.pass_obj
def escrow_cmd(obj: Any, shares: int, threshold: int, fmt: str, storage: str | None) -> None:
    """Split the master key with Shamir's secret sharing and print the shares once.

    As 'vault operator init': prints "Unseal Key N: ..." (or -format=json: unseal_keys_b64,
    unseal_shares, unseal_threshold). Each share names the state it belongs to and carries a
    check, so a mistyped share is reported as such. The state records only that an escrow
    exists (shares, threshold, when). Running it again makes a new set; earlier sets keep
    working until 'keymgmt operator rekey'.

    \b
    Example:
      keymgmt operator escrow -key-shares=5 -key-threshold=3
    """
    from keymgmt_cli.store import escrow, keysource, masterkey
    from keymgmt_cli.store.retired import check_writable

    escrow.check_counts(shares, threshold)
    environ = environ_of(obj)
    store = open_state(environ, storage)
    if store.get(keysource.STATE_DOC) is None:
        _initialize(obj, environ, store, storage)
    if keysource.shared(store, environ):
        key = keysource.load_key(store, environ)
    else:  # as any first write would: the key is created if the state has none yet
        key = masterkey.load_master_key(store.home, environ, create=True)
    verified = authenticated(store, key.key)  # the markers read and written are authenticated
    check_writable(verified)
    state_id = keysource.state_id(verified)
    from keymgmt_cli.audit.operations import Operation, run

    def split_and_record() -> None:
        escrow_id, texts = escrow.split(key.key, shares, threshold, state_id)
        print_shares(texts, threshold, fmt.lower())
        escrow.write_record(verified, escrow_id, shares, threshold, key.kcv)

    op = Operation(store, environ, "escrow", {"key_shares": shares, "key_threshold": threshold, "storage": storage})
    run(op, key.key, split_and_record,  # the shares are printed, never recorded
        result=lambda _: {"unseal_shares": shares, "unseal_threshold": threshold, "state_id": state_id})


def _initialize(obj: Any, environ: dict[str, str], store: Any, storage: str | None) -> None:
    """A state with nothing in it yet gets its state id (what shares are tagged with)."""
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.store import open_secret_box

    Engine(store, open_secret_box(store.home, environ, store=store), None).ensure_initialized()


# -- recover -----------------------------------------------------------------------------------
@click.command("recover", context_settings=CONTEXT)
@click.option("-print", "--print", "print_key", is_flag=True,
              help="Write the rebuilt master key (base64) to stdout instead of storing it (for a CI "
                   "secret store).")
@click.option("-snapshot", "--snapshot", "snapshot_file", default=None, metavar="FILE",
              help="Prove the key against this snapshot (for a new machine with no state yet).")
@storage_option
@click.pass_obj
def recover_cmd(obj: Any, print_key: bool, snapshot_file: str | None, storage: str | None) -> None:
    """Rebuild the master key from escrow shares and put it back where keymgmt looks for it.

    Reads the shares one per line on stdin, or prompts for them without echo on a terminal.
    The rebuilt key must match the state's check value (or the snapshot's, with -snapshot).
    It is stored in the OS keyring when one is usable, else in master.key (0600) beside the
    state. Fewer shares than the threshold, a mistyped share, shares of another state or of an
    escrow from before a rekey: one line, exit 2, nothing written.

    \b
    Example:
      keymgmt operator recover < shares.txt
      keymgmt operator recover -print < shares.txt   # for KEYMGMT_MASTER_KEY in CI
    """
    from keymgmt_cli.store import escrow, keysource

    environ = environ_of(obj)
    store = open_state(environ, storage)
    # The master key is what is missing (or a wrong one is in the source): the state id and the
    # check value are read from the raw backend, and the state document is verified under the
    # rebuilt key once it is proven.
    store = getattr(store, "inner", store)
    if snapshot_file is not None:
        from keymgmt_cli.store import snapshotfile

        _, body, _ = snapshotfile.read(snapshot_file)
        state_id, kcv, kind = body["state_id"], body["seal"].get("kcv"), body["seal"].get("kind")
        where = os.path.abspath(snapshot_file)
    else:
        state_id = keysource.state_id(store)
        seal = keysource.state_seal(store, environ)
        kcv, kind, where = seal.kcv, seal.kind, store.location
    shares = read_shares(getattr(sys, "stdin"))
    key = escrow.combine(shares, state_id)
    keysource.prove(key, kcv, where)
    if snapshot_file is None:
        authenticated(store, key).get(keysource.STATE_DOC)  # StoreError if it was tampered with
    from keymgmt_cli.audit.operations import Operation

    # the key is what was missing: the records are written once it is proven (audit/operations.py);
    # a state that does not exist here yet (-snapshot on a new machine) has no trail to write to
    op = Operation(store, environ, "recover", {"print": print_key, "snapshot": snapshot_file, "storage": storage})
    recordable = snapshot_file is None or store.get(keysource.STATE_DOC) is not None
    if print_key:
        click.echo(base64.b64encode(key).decode("ascii"))
        if recordable:
            op.done(key, data={"stored": "printed to stdout (-print)"}, warn=warn)
        return
    if kind != "local" or keysource.shared(store, environ):
        raise PreconditionFailed(f"the master key of {where} comes from its seal ({kind}), which "
                                 "keymgmt cannot write; nothing was written",
                                 hint="re-run with -print and put the key into KEYMGMT_MASTER_KEY "
                                      "in your secret store")
    stored = keysource.put_recovered(store, environ, key)
    kcv = keysource.key_check_value(key)
    if recordable:
        op.done(key, data={"stored": stored}, warn=warn)
    if stored.startswith("already in place"):
        click.echo(f"Success! The shares rebuild the master key of {where} (kcv {kcv}); it is "
                   f"{stored}")
    else:
        click.echo(f"Success! The master key of {where} (kcv {kcv}) is recovered: {stored}")


# -- snapshot ----------------------------------------------------------------------------------
@click.group("snapshot", context_settings=CONTEXT)
def snapshot_group() -> None:
    """Save the whole state in one authenticated file, or restore one (as vault operator raft snapshot).

    \b
    Example:
      keymgmt operator snapshot save backup.snap
      keymgmt operator snapshot restore -storage=file:///tmp/restored backup.snap
    """


@snapshot_group.command("save", context_settings=CONTEXT)
@storage_option
@click.argument("file")
@click.pass_obj
def snapshot_save(obj: Any, storage: str | None, file: str) -> None:
    """Write every document of the state to FILE (0600), consistent and authenticated.

    Secrets stay sealed under the master key: the file alone reveals nothing. Holds the state's
    locks while reading, so no operation is half applied in it.

    \b
    Example:
      keymgmt operator snapshot save keymgmt-$(date +%F).snap
    """
    from keymgmt_cli.store import snapshot

    environ = environ_of(obj)
    out = snapshot.save(open_state(environ, storage), environ, file)
    click.echo(f"Success! Saved {out['documents']} documents of state {out['state_id']} to "
               f"{out['path']} ({out['bytes']} bytes)")


@snapshot_group.command("restore", context_settings=CONTEXT)
@click.option("-force", "--force", is_flag=True, help="Replace a state that is not empty.")
@click.option("-retire-source", "--retire-source", "retire_source", default=None, metavar="URL",
              help="Mark the state the snapshot came from (file:///PATH or dynamodb://...) retired: "
                   "it then refuses changes and names this state as where it lives now.")
@storage_option
@click.argument("file")
@click.pass_obj
def snapshot_restore(obj: Any, force: bool, retire_source: str | None, storage: str | None, file: str) -> None:
    """Restore FILE into an empty state (file or DynamoDB); -force replaces a non-empty one.

    Refuses a modified file and a master key that does not open it. The master key is the
    snapshot's: KEYMGMT_MASTER_KEY, the target's keyring or master.key (put it there with
    'keymgmt operator recover -snapshot=FILE'), or, for a KMS seal, AWS KMS.

    \b
    Example:
      keymgmt operator snapshot restore -storage=file:///tmp/restore-test backup.snap
      keymgmt operator snapshot restore -storage='dynamodb://keymgmt?region=eu-west-1' \\
          -retire-source=file://$HOME/.local/share/keymgmt backup.snap
    """
    from keymgmt_cli.store import snapshot
    environ = environ_of(obj)
    store = open_state(environ, storage)
    source = None
    if retire_source is not None:
        source = open_state(environ, retire_source)
        if source.location == store.location:
            raise UsageError("-retire-source names the state being restored into")
    if store.backend == "dynamodb":
        store.ensure_table()  # as 'operator init' does; an existing table is only checked
    out = snapshot.restore(store, environ, file, force=force)
    from keymgmt_cli.audit.operations import Operation
    from keymgmt_cli.store import keysource as _keysource

    op = Operation(store, environ, "snapshot/restore", {"snapshot": os.path.abspath(file), "force": force,
                                                         "retire_source": retire_source, "storage": storage})
    restored = {"documents": out["documents"], "state_id": out["state_id"], "location": out["location"],
                "master_key_source": out["master_key"]}
    if out.get("already"):
        click.echo(f"Success! {out['location']} holds the restore of this snapshot already (state "
                   f"{out['state_id']}); nothing was written")
        restored["already"] = True
    else:
        click.echo(f"Success! Restored {out['documents']} documents of state {out['state_id']} into "
                   f"{out['location']} (master key: {out['master_key']})")
    if source is not None:
        where = snapshot.retire_source(store, environ, file, source)
        click.echo(f"Retired {where}: it now refuses changes and points here.")
        restored["retired"] = where
    # the key is the snapshot's, opened again now that the target holds it (audit/operations.py)
    op.done(lambda: _keysource.load_key(store, environ).key, data=restored, warn=warn)


# -- rekey -------------------------------------------------------------------------------------
@click.command("rekey", context_settings=CONTEXT)
@format_option
@storage_option
@click.pass_obj
def rekey_cmd(obj: Any, fmt: str, storage: str | None) -> None:
    """Replace the master key and re-seal every secret under the new one.

    Crash-safe: interrupted anywhere, the state opens with the old or the new key and re-running
    finishes. Afterwards the old key is refused; with escrow, new shares are printed and the old
    ones rebuild nothing usable. KMS seal: a new data key (GenerateDataKey). A key from
    KEYMGMT_MASTER_KEY cannot be written back: the new one is printed once; put it into your
    secret store.

    \b
    Example:
      keymgmt operator rekey
    """
    from keymgmt_cli.store import rekey, retired

    environ = environ_of(obj)
    store = open_state(environ, storage)
    marker = store.get(retired.RETIRED_DOC)
    if marker is not None and store.get(retired.REKEY_DOC) is None:
        from keymgmt_cli.store import keysource

        # the marker is authenticated: proven under the state's key before it is obeyed
        retired.check_writable(authenticated(store, keysource.load_key(store, environ).key))
    fmt = fmt.lower()

    from keymgmt_cli.audit.operations import Operation, run
    from keymgmt_cli.store import keysource

    new_key: list[bytes] = []  # the new key when it lives in the environment (the response is MAC'd under it)

    def report(summary: dict[str, Any]) -> None:
        """Shown before the rekey's journal is removed: an interrupted print is shown again."""
        key = summary.get("master_key")
        if key is not None:
            new_key[:] = [bytes(key)]
        key_text = base64.b64encode(key).decode("ascii") if key is not None else None
        escrowed = summary["escrow"]
        if fmt == "json":
            import json

            out: dict[str, Any] = {"kcv": summary["kcv"], "resealed": summary["resealed"],
                                   "resumed": summary["resumed"],
                                   "master_key_source": summary["source"]}
            if key_text is not None:
                out["master_key_b64"] = key_text
            if escrowed:
                out.update(unseal_keys_b64=escrowed["texts"], unseal_shares=escrowed["shares"],
                           unseal_threshold=escrowed["threshold"])
            click.echo(json.dumps(out, indent=2))
            return
        if key_text is not None:
            click.echo(f"New master key (put it into KEYMGMT_MASTER_KEY now; not shown again): {key_text}")
            click.echo("")
        if escrowed:
            print_shares(escrowed["texts"], escrowed["threshold"], "table")
            click.echo("")
        finished = " (finished an interrupted rekey)" if summary["resumed"] else ""
        click.echo(f"Success! Rekeyed {store.location}{finished}: {summary['resealed']} secrets "
                   f"re-sealed; new master key kcv {summary['kcv']} in {summary['source']}; the old "
                   "key is refused from now on.")

    op = Operation(store, environ, "rekey", {"storage": storage})
    if store.get(rekey.REKEY_DOC) is not None:  # finishing an interrupted rekey: the trail may be half re-linked
        summary = rekey.rekey(store, environ, report=report)
        op.done(lambda: new_key[0] if new_key else keysource.load_key(store, environ).key,
                data=_rekey_result(summary), warn=warn)
        return
    run(op, keysource.load_key(store, environ).key, lambda: rekey.rekey(store, environ, report=report),
        result=_rekey_result,  # never the new key nor the new shares
        master_after=lambda _: new_key[0] if new_key else keysource.load_key(store, environ).key)


def _rekey_result(summary: dict[str, Any]) -> dict[str, Any]:
    return {"resealed": summary["resealed"], "resumed": summary["resumed"], "master_key_source": summary["source"],
            "unseal_shares": (summary.get("escrow") or {}).get("shares")}


def register(group: click.Group) -> None:
    """Add the recovery commands to ``keymgmt operator``."""
    for command in (escrow_cmd, recover_cmd, snapshot_group, rekey_cmd):
        group.add_command(command)
