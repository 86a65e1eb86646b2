"""The command line: Vault's verbs over the engine (click is imported only under keymgmt_cli/cli).

`read`, `list`, `write` and `delete` run click-free (cli/verbs.py: Go's flag grammar, Vault's exit
codes); click serves their help and completion, and the other commands (secrets, status, verify,
path-help, operator, demo). Exit codes of those: 0 success, 1 a local problem (usage, the local
state), 2 the engine or AWS refused.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from keymgmt_cli import __version__
from keymgmt_cli.app import PROGRESS, Env, build_engine  # noqa: F401  (build_engine: re-exported)
from keymgmt_cli.cli import output, report, verbs
from keymgmt_cli.cli.complete import complete_path
from keymgmt_cli.cli.verbcommands import CONTEXT, format_option, verb_commands
from keymgmt_cli.cli.report import EXIT_ENGINE, EXIT_LOCAL, EXIT_OK, describe, exit_code_for, printable
from keymgmt_cli.errors import KeymgmtError, UsageError


def resolve_format(fmt: str | None, env: Env) -> str:
    """The format of the commands other than the four verbs (no raw: they have no response body)."""
    chosen = fmt or env.environ.get("KEYMGMT_FORMAT") or env.environ.get("VAULT_FORMAT") or "table"
    resolved = output.ACCEPTED.get(chosen.lower())
    if resolved is None or resolved == "raw":
        raise UsageError(f"Invalid output format: {chosen}")
    return resolved




class KeymgmtGroup(click.Group):
    """Runs a command and turns every error into one stderr line and the table's exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        extra.setdefault("obj", Env())
        env = extra["obj"] if extra["obj"] is not None else Env()
        code = None
        if argv and argv[0] in verbs.VERBS and complete_var is None and "_KEYMGMT_COMPLETE" not in os.environ:
            try:
                code = report.guarded(lambda: verbs.run(argv, env.environ, env.engine_for))
            finally:
                PROGRESS.close()
        if code is not None:
            if standalone_mode:
                sys.exit(code)
            return code
        code = _guarded(lambda: super(KeymgmtGroup, self).main(
            args=argv, prog_name="keymgmt", complete_var=complete_var,
            standalone_mode=False, **extra), argv)
        if standalone_mode:
            sys.exit(code)
        return code


    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and not ctx.resilient_parsing and self.get_command(ctx, args[0]) is None \
                and not args[0].startswith("-"):
            raise UnknownCommand(args[0])
        return super().resolve_command(ctx, args)


class UnknownCommand(Exception):
    """mitchellh/cli answers an unknown command with exit 127."""


@click.group(cls=KeymgmtGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-v", "-version", "--version", prog_name="keymgmt")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Vault's keymgmt CLI grammar, for AWS KMS, from any shell.

    \b
    Example:
      keymgmt write keymgmt/kms/example-kms provider=awskms key_collection=us-west-1 \\
          credentials=access_key=AKIA... credentials=secret_key=...
      keymgmt write keymgmt/key/example-key type=aes256-gcm96
      keymgmt write keymgmt/kms/example-kms/key/example-key purpose=encrypt,decrypt
    """
    if ctx.obj is None:
        ctx.obj = Env()


def _rows(headers: list[str], body: list[list[str]]) -> None:
    from keymgmt_cli.cli import terminal

    if terminal.wants_rich(sys.stdout):
        terminal.print_rows(headers, body)
    else:
        click.echo(output.rows(headers, body))


def _check_writable(env: Env) -> None:
    from keymgmt_cli.store.retired import check_writable  # a retired state refuses every change

    check_writable(env.engine.store)


# -- secrets: mounts ------------------------------------------------------------------------------
@cli.group("secrets", context_settings=CONTEXT)
def secrets_group() -> None:
    """Manage mounts: independent namespaces of keys and providers (one per environment, say).

    \b
    Example:
      keymgmt secrets enable -path=keymgmt-prod keymgmt
      keymgmt secrets list
    """


@secrets_group.command("enable", context_settings=CONTEXT)
@click.option("-path", "--path", "mount_path", default=None, metavar="PATH", help="Mount path (default: the type).")
@click.option("-description", "--description", default="", metavar="TEXT", help="A human-friendly description.")
@click.argument("engine_type", metavar="TYPE")
@click.pass_obj
def secrets_enable(env: Env, mount_path: str | None, description: str, engine_type: str) -> None:
    """Enable a secrets engine of TYPE (keymgmt) at a path.

    \b
    Example:
      keymgmt secrets enable -path=keymgmt-staging keymgmt
    """
    _check_writable(env)
    from keymgmt_cli.cli.evidence import audited_call

    mount = audited_call(env, "enable", f"sys/mounts/{mount_path or engine_type}",
                         {"type": engine_type, "description": description},
                         lambda: env.engine.enable_mount(engine_type, mount_path, description))
    click.echo(f"Success! Enabled the {engine_type} secrets engine at: {mount.path}")


@secrets_group.command("disable", context_settings=CONTEXT)
@click.option("-force", "--force", "force", is_flag=True,
              help="Also delete keys whose deletion_allowed is false (Vault deletes them without asking).")
@click.argument("path")
@click.pass_obj
def secrets_disable(env: Env, force: bool, path: str) -> None:
    """Disable the mount at PATH and delete its keys (refused while keys are distributed, and while
    any key has deletion_allowed=false unless -force is given).

    \b
    Example:
      keymgmt secrets disable keymgmt-staging/
    """
    _check_writable(env)
    from keymgmt_cli.cli.evidence import audited_call

    audited_call(env, "disable", f"sys/mounts/{path}", {"force": force},
                 lambda: env.engine.disable_mount(path, force=force))
    click.echo(f"Success! Disabled the secrets engine (if it existed) at: {path.strip('/')}/")


@secrets_group.command("list", context_settings=CONTEXT)
@format_option
@click.pass_obj
def secrets_list(env: Env, fmt: str | None) -> None:
    """List the mounts.

    \b
    Example:
      keymgmt secrets list -format=json
    """
    fmt = resolve_format(fmt, env)
    mounts = env.engine.mounts()
    if fmt != "table":
        data = {m.path: {"type": m.type, "description": m.description, "uuid": m.uuid} for m in mounts}
        click.echo(output.dump(data, fmt))
        return
    _rows(["Path", "Type", "Description"], [[m.path, m.type, m.description or "n/a"] for m in mounts])


@cli.command("status", context_settings=CONTEXT)
@format_option
@click.pass_obj
def status_cmd(env: Env, fmt: str | None) -> None:
    """Show where the state lives, the master-key source, the mounts and unfinished operations.

    \b
    Example:
      keymgmt status
    """
    from keymgmt_cli.store import describe_master_key

    fmt = resolve_format(fmt, env)
    engine = env.engine
    info = engine.status()
    data = {"backend": engine.store.backend, "location": engine.store.location,
            "master_key": describe_master_key(engine.store, env.environ),
            "escrow": _describe_escrow(engine.store, env.environ), **info}
    if fmt != "table":
        click.echo(output.dump(data, fmt))
        return
    click.echo(f"State:       {data['backend']} {data['location']}")
    click.echo(f"Master key:  {data['master_key']}")
    click.echo(f"Escrow:      {data['escrow']}")
    click.echo("")
    _rows(["Mount", "Keys", "KMS providers", "Distributions"],
          [[m["path"], str(m["keys"]), str(m["kms_providers"]), str(m["distributions"])] for m in data["mounts"]])
    click.echo("")
    if data["unfinished"]:
        click.echo("Unfinished operations (re-run the command to finish):")
        for item in data["unfinished"]:
            version = f" to version {item['version']}" if item.get("version") else ""
            abandon = f"  abandon: {item['abandon']}" if item["abandon"] else ""
            click.echo(f"  {item['path']}: {item['operation']}{version}; finish: {item['finish']}{abandon}")
    else:
        click.echo("Unfinished operations: none")


def _describe_escrow(store: Any, environ: dict[str, str]) -> str:
    from keymgmt_cli.store.escrow import describe_for_status

    return describe_for_status(store, environ)


@cli.command("path-help", context_settings=CONTEXT)
@format_option
@click.argument("path", shell_complete=complete_path)
@click.pass_obj
def path_help_cmd(env: Env, fmt: str | None, path: str) -> None:
    """Show the operations and fields of PATH (a mount shows all its paths), as vault path-help.

    Generated from the field schemas the engine validates with.

    \b
    Example:
      keymgmt path-help keymgmt/
      keymgmt path-help keymgmt/kms/example-kms/key/example-key
    """
    from keymgmt_cli.engine.pathhelp import path_help

    fmt = resolve_format(fmt, env)
    doc = path_help(env.engine, path)
    if fmt != "table":
        click.echo(output.dump(doc, fmt))
        return
    click.echo(output.path_help_text(doc))


EXIT_UNCHECKED = 3  # verify: no drift found, but a provider could not be asked


@cli.command("verify", context_settings=CONTEXT)
@click.option("-fix", "--fix", "fix", is_flag=True, help="Repair what drifted (under the same locks as every "
              "command), report what keymgmt will not touch, then verify again.")
@click.option("-dry-run", "--dry-run", "dry_run", is_flag=True, help="With -fix: print the plan, change nothing.")
@format_option
@click.argument("path", required=False, shell_complete=complete_path)
@click.pass_obj
def verify_cmd(env: Env, fmt: str | None, path: str | None, fix: bool, dry_run: bool) -> None:
    """Compare the state with AWS KMS (drift detection); exit 0 in sync, 2 on drift, 3 when no drift
    was found but a KMS provider could not be checked (each is named with its cause; the others are
    checked still). Each finding names the command that fixes it.

    PATH narrows the check: a mount, MOUNT/key/NAME, MOUNT/kms/NAME or MOUNT/kms/NAME/key/KEY.
    Read-only: DescribeKey, ListResourceTags, GetPublicKey, ListAliases, ListKeys, tag:GetResources.
    -fix re-imports missing material, enables/disables per min_enabled_version, restores tags and
    repoints our alias; strays and aliases that are not ours are reported, never deleted or taken.

    \b
    Example:
      keymgmt verify
      keymgmt verify -format=json keymgmt/kms/example-kms | jq '.data.drift[]'
      keymgmt verify -fix -dry-run keymgmt/kms/example-kms
    """
    from keymgmt_cli.cli import verifying

    verifying.run(env, resolve_format(fmt, env), path, fix, dry_run)


@cli.command("demo", context_settings=CONTEXT)
@click.option("--keep", is_flag=True, help="Keep the throwaway state directory afterwards.")
def demo_cmd(keep: bool) -> None:
    """Run a full key lifecycle against an embedded local KMS on 127.0.0.1 (no AWS account).

    Needs the local extra: pip install 'keymgmt[local]'.

    \b
    Example:
      keymgmt demo
    """
    try:
        from keymgmt_cli.cli.demo import DemoFailed, run_demo
        import moto  # noqa: F401  (the embedded KMS)
    except ImportError:
        raise UsageError("the demo needs the embedded local KMS: pip install 'keymgmt[local]'") from None
    try:
        run_demo(keep=keep)
    except DemoFailed as error:
        raise UsageError(f"demo failed: {error}") from None


# -- entry point ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None, env: Env | None = None) -> None:
    cli.main(args=argv, prog_name="keymgmt", obj=env or Env())


def _guarded(call: Any, args: list[str]) -> int:
    try:
        try:
            result = call()
        finally:
            PROGRESS.close()
        return result if isinstance(result, int) else EXIT_OK
    except click.exceptions.Exit as done:
        return done.exit_code
    except UnknownCommand as error:
        click.echo(printable(f"Unknown command: {error} (see 'keymgmt -help')"), err=True)
        return 127
    except click.exceptions.Abort:
        click.echo("Error: aborted", err=True)
        return EXIT_LOCAL
    except click.UsageError as error:
        if isinstance(error, getattr(click.exceptions, "NoArgsIsHelpError", ())):  # click >= 8.2
            return _bare_group_help(error.ctx)
        command = error.ctx.command_path if error.ctx else "keymgmt"
        click.echo(printable(f"Error: {error.format_message()} (see '{command} --help')"), err=True)
        return EXIT_LOCAL
    except KeymgmtError as error:
        for line in describe(args, error):
            click.echo(line, err=True)
        return exit_code_for(error)
    except KeyboardInterrupt:
        click.echo("Error: interrupted; what was done is recorded, re-run the command to finish", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug: one line, never a traceback (KEYMGMT_DEBUG=1 shows it)
        if os.environ.get("KEYMGMT_DEBUG"):
            raise
        click.echo(f"Error: internal error ({type(error).__name__}); please report it "
                   "(KEYMGMT_DEBUG=1 shows the traceback)", err=True)
        return EXIT_ENGINE


def _bare_group_help(ctx: click.Context) -> int:
    """A command group run without a subcommand, as Vault's CLI library (mitchellh/cli) answers it:
    the help, whole, on stderr (Vault's HelpWriter), exit 127 for bare ``keymgmt`` (no command:
    cli.go's "invalid or blank" branch) and 1 for a group (its Run returns RunResultHelp)."""
    click.echo(ctx.get_help(), err=True)
    return 127 if ctx.parent is None else EXIT_LOCAL


from keymgmt_cli.cli.operator import operator_group  # noqa: E402  (registered after the group exists)

cli.add_command(operator_group)
for _command in verb_commands():
    cli.add_command(_command)

from keymgmt_cli.cli.due import due_cmd  # noqa: E402

cli.add_command(due_cmd)

from keymgmt_cli.cli.evidence import register as _register_evidence  # noqa: E402

_register_evidence(cli)
