"""The recovery commands' input and output (``escrow``, ``recover``, ``snapshot``, ``rekey``): the
options that choose the state (``-storage``) and the output (``-format``), the state opened with
its documents authenticated (under a proven master key when the key itself is in question), the
escrow shares printed once and read back (without echo on a terminal), warnings on stderr.

Apart from ``recovery.py`` so that each command there reads top to bottom as options, the
algorithm's call (``keymgmt_cli/store/``) and its record; nothing here decides anything.
"""

from __future__ import annotations

import os
from typing import Any

import click

CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}
FORMATS = ("table", "json")


def environ_of(obj: Any) -> dict[str, str]:
    environ = getattr(obj, "environ", None)
    return dict(os.environ) if environ is None else environ


def open_state(environ: dict[str, str], storage: str | None) -> Any:
    from keymgmt_cli.store import AuthStore, cheap_auth_key, open_store, open_store_url

    if not storage:
        return open_store(environ)
    inner = open_store_url(storage, environ)  # documents authenticated, as open_store's are
    return AuthStore(inner, lambda: cheap_auth_key(inner, environ))


def storage_option(func: Any) -> Any:
    return click.option("-storage", "--storage", default=None, metavar="URL",
                        help="The state (default: KEYMGMT_STORAGE, the config file, else the local "
                             "directory).")(func)


def format_option(func: Any) -> Any:
    return click.option("-format", "--format", "fmt", default="table",
                        type=click.Choice(FORMATS, case_sensitive=False),
                        help="table (default) or json.")(func)


def print_shares(shares: list[str], threshold: int, fmt: str, extra: dict[str, Any] | None = None) -> None:
    import json

    if fmt == "json":
        click.echo(json.dumps({"unseal_keys_b64": shares, "unseal_shares": len(shares),
                               "unseal_threshold": threshold, **(extra or {})}, indent=2))
        return
    for n, share in enumerate(shares, 1):
        click.echo(f"Unseal Key {n}: {share}")
    click.echo("")
    click.echo(f"The master key was split into {len(shares)} key shares with a key threshold of "
               f"{threshold}.")
    click.echo("keymgmt keeps none of them: give each to a different person or place now; they "
               "are not shown again.")
    click.echo(f"Any {threshold} of them rebuild the master key: keymgmt operator recover")


def authenticated(store: Any, master: bytes) -> Any:
    """The state's backend seen through the document MACs under ``master`` (a proven key): the
    state id that shares are tagged with is the authenticated one."""
    from keymgmt_cli.store.auth import AuthStore, derive_auth_key

    auth_key = derive_auth_key(master)
    return AuthStore(getattr(store, "inner", store), lambda: auth_key)


def read_shares(stream: Any) -> list[str]:
    if stream.isatty():
        from keymgmt_cli.store import escrow

        first = click.prompt("Unseal Key 1 (will be hidden)", hide_input=True, err=True)
        shares = [first]
        needed = escrow.threshold_of(first)
        while len(shares) < needed:
            shares.append(click.prompt(f"Unseal Key {len(shares) + 1} of {needed} (will be hidden)",
                                       hide_input=True, err=True))
        return shares
    return [line.strip() for line in stream.read().splitlines() if line.strip()]


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)
