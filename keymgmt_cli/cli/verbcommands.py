"""The click faces of `read`, `list`, `write` and `delete`: their help and shell completion.

The verbs themselves run click-free (cli/verbs.py, dispatched by KeymgmtGroup.main and the console
script); should click run one of these commands anyway, it hands the same arguments to verbs.run.
"""

from __future__ import annotations

from typing import Any

import click

from keymgmt_cli.app import Env
from keymgmt_cli.cli import output, report, verbs
from keymgmt_cli.cli.complete import complete_data, complete_path

CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}


def format_option(func: Any) -> Any:
    return click.option("-format", "--format", "fmt", default=None, metavar="FORMAT",
                        shell_complete=lambda ctx, param, incomplete: [
                            f for f in output.FORMATS if f.startswith(incomplete)],
                        help="Output format: table (default), json, yaml (yml), pretty (a table); "
                             "env KEYMGMT_FORMAT, then VAULT_FORMAT.")(func)


def field_option(func: Any) -> Any:
    return click.option("-field", "--field", "field", default=None, metavar="NAME",
                        help="Print only this field's raw value.")(func)


def _delegate(verb: str, flags: list[str], positionals: list[str]) -> None:
    """The verbs run click-free (KeymgmtGroup.main); this is the same run when click is entered."""
    ctx = click.get_current_context()
    env = ctx.find_root().obj or Env()
    code = report.guarded(lambda: verbs.run([verb, *flags, "--", *positionals], env.environ, env.engine_for))
    raise click.exceptions.Exit(code or 0)


@click.command("read", context_settings=CONTEXT)
@format_option
@field_option
@click.argument("path", shell_complete=complete_path)
@click.argument("data", nargs=-1, shell_complete=complete_data)
def read_cmd(fmt: str | None, field: str | None, path: str, data: tuple[str, ...]) -> None:
    """Read the data at PATH (DATA K=V are sent as query parameters, as Vault).

    \b
    Example:
      keymgmt read keymgmt/key/example-key
      keymgmt read -field=latest_version keymgmt/key/example-key
      keymgmt read -format=json keymgmt/kms/example-kms/key/example-key | jq .data.versions
    """
    _delegate("read", _flags(fmt=fmt, field=field), [path, *data])


@click.command("list", context_settings=CONTEXT)
@format_option
@click.argument("path", shell_complete=complete_path)
def list_cmd(fmt: str | None, path: str) -> None:
    """List the names at PATH (nothing to list: "No value found at PATH/", exit 2; {} in json).

    \b
    Example:
      keymgmt list keymgmt/key
      keymgmt list -format=json keymgmt/kms/example-kms/key | jq -r '.[]'
    """
    _delegate("list", _flags(fmt=fmt), [path])


@click.command("write", context_settings=CONTEXT)
@format_option
@field_option
@click.option("-f", "-force", "--force", "force", is_flag=True,
              help="Allow the write to run with no data (rotate, replicate); -f=true/false too.")
@click.option("-dry-run", "--dry-run", "dry_run", is_flag=True,
              help="Print what would change (state, and every AWS call per region) and change nothing.")
@click.argument("path", shell_complete=complete_path)
@click.argument("data", nargs=-1, shell_complete=complete_data)
def write_cmd(fmt: str | None, field: str | None, force: bool, dry_run: bool, path: str,
              data: tuple[str, ...]) -> None:
    """Write DATA (K=V, K=@file, K=-, -, @file.json) to PATH.

    Flags go before PATH (as Vault: after it they are DATA, with a warning); Vault's HTTP flags
    (-address, -namespace, -tls-*, ...) are accepted and ignored with a warning.

    \b
    Example:
      keymgmt write keymgmt/key/example-key type=aes256-gcm96
      keymgmt write -f keymgmt/key/example-key/rotate
      keymgmt write keymgmt/key/example-key min_enabled_version=2 deletion_allowed=true
    """
    _delegate("write", _flags(fmt=fmt, field=field) + (["-force"] if force else []) +
              (["-dry-run"] if dry_run else []), [path, *data])


@click.command("delete", context_settings=CONTEXT)
@format_option
@click.option("-dry-run", "--dry-run", "dry_run", is_flag=True,
              help="Print what would change (state, and every AWS call per region) and change nothing.")
@click.option("-forget", "--forget", "forget", is_flag=True,
              help="MOUNT/kms/K/key/N only: drop the record without asking AWS (an endpoint that is gone), "
                   "listing every KMS key id and alias left there; asks on a terminal.")
@click.option("-force", "--force", "force", is_flag=True, help="With -forget: do not ask (needed without a terminal).")
@click.argument("path", shell_complete=complete_path)
@click.argument("data", nargs=-1, shell_complete=complete_data)
def delete_cmd(fmt: str | None, dry_run: bool, forget: bool, force: bool, path: str, data: tuple[str, ...]) -> None:
    """Delete the data at PATH (DATA for the few paths that take it).

    \b
    Example:
      keymgmt delete keymgmt/kms/example-kms/key/example-key pending_window_days=7
      keymgmt delete keymgmt/key/example-key
      keymgmt delete -forget keymgmt/kms/example-kms/key/example-key
    """
    _delegate("delete", _flags(fmt=fmt) + (["-dry-run"] if dry_run else []) + (["-forget"] if forget else [])
              + (["-force"] if force else []), [path, *data])


def _flags(fmt: str | None = None, field: str | None = None) -> list[str]:
    return ([f"-format={fmt}"] if fmt else []) + ([f"-field={field}"] if field is not None else [])


def verb_commands() -> list[click.Command]:
    return [read_cmd, list_cmd, write_cmd, delete_cmd]
