"""The command line: Vault's verbs over the engine. click lives here and nowhere else.

Each verb reads top to bottom: check arity, parse DATA, call the engine, render.
Exit codes, as Vault: 0 success, 1 a local problem (usage, unparsable data, -field not present,
the local state), 2 the engine or AWS refused.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from keymgmt_cli import __version__
from keymgmt_cli.cli import output
from keymgmt_cli.cli.complete import complete_data, complete_path
from keymgmt_cli.cli.kv import parse_data
from keymgmt_cli.cli.report import EXIT_ENGINE, EXIT_LOCAL, EXIT_OK, describe, exit_code_for, printable
from keymgmt_cli.errors import KeymgmtError, UsageError


class Env:
    """What a command needs from the outside world, injectable for tests (HTTPie's Environment)."""

    def __init__(self, environ: dict[str, str] | None = None, engine: Any = None):
        self.environ = dict(os.environ) if environ is None else environ
        self._engine = engine

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = build_engine(self.environ)
        return self._engine


def build_engine(environ: dict[str, str]) -> Any:
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.store import open_secret_box, open_store

    store = open_store(environ)

    def provider_factory(config: Any) -> Any:
        from keymgmt_cli.providers import awskms  # boto3 only when a KMS is called

        return awskms.connect(config)

    return Engine(store, open_secret_box(store.home, environ, store=store), provider_factory, progress=PROGRESS)


def _stdin() -> Any:
    """Read lazily, and only when a DATA item asks for it (k=- or -)."""
    return getattr(sys.stdin, "buffer", sys.stdin)


class _LazyProgress:
    """The terminal spinner, created on the first progress message (rich only then)."""

    def __init__(self) -> None:
        self._progress: Any = None

    def __call__(self, message: str) -> None:
        if self._progress is None:
            from keymgmt_cli.cli.terminal import Progress

            self._progress = Progress()
        self._progress(message)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()


PROGRESS = _LazyProgress()


# -- options shared by the verbs ---------------------------------------------------------------
def format_option(func: Any) -> Any:
    return click.option("-format", "--format", "fmt", default=None, metavar="FORMAT",
                        type=click.Choice(output.FORMATS, case_sensitive=False),
                        help="Output format: table (default), json or yaml; env KEYMGMT_FORMAT.")(func)


def field_option(func: Any) -> Any:
    return click.option("-field", "--field", "field", default=None, metavar="NAME",
                        help="Print only this field's raw value.")(func)


def resolve_format(fmt: str | None, env: Env) -> str:
    chosen = (fmt or env.environ.get("KEYMGMT_FORMAT") or "table").lower()
    if chosen not in output.FORMATS:
        raise UsageError(f"invalid format {chosen!r}; allowed: {', '.join(output.FORMATS)}")
    return chosen


CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}


class KeymgmtGroup(click.Group):
    """Runs a command and turns every error into one stderr line and the table's exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        extra.setdefault("obj", Env())
        code = _guarded(lambda: super(KeymgmtGroup, self).main(
            args=argv, prog_name="keymgmt", complete_var=complete_var,
            standalone_mode=False, **extra), argv)
        if standalone_mode:
            sys.exit(code)
        return code


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


def _emit(env: Env, verb: str, path: str, response: Any, fmt: str, field: str | None) -> None:
    for warning in response.warnings:
        click.echo(printable(f"WARNING: {warning}"), err=True)
    data = response.data
    if field is not None:
        if not data or field not in data:
            raise UsageError(f'Field "{field}" not present in secret')
        click.echo(output.scalar(data[field]))
        return
    if fmt != "table":
        if data is None and verb in ("write", "delete"):
            return  # as Vault: nothing to print
        if verb == "list":
            click.echo(output.dump(data["keys"], fmt))  # as Vault: the bare list
            return
        click.echo(output.dump(output.envelope(data, response.warnings), fmt))
        return
    if verb == "write" and data is None:
        click.echo(f"Success! Data written to: {path}")
    elif verb == "delete":
        click.echo(f"Success! Data deleted (if it existed) at: {path}")
    elif verb == "list":
        click.echo(output.key_list(data["keys"]))
    elif data:
        _table(data)


def _table(data: dict[str, Any]) -> None:
    from keymgmt_cli.cli import terminal

    if terminal.wants_rich(sys.stdout):
        terminal.print_kv_table(data, output.scalar)
    else:
        click.echo(output.table(data))


def _rows(headers: list[str], body: list[list[str]]) -> None:
    from keymgmt_cli.cli import terminal

    if terminal.wants_rich(sys.stdout):
        terminal.print_rows(headers, body)
    else:
        click.echo(output.rows(headers, body))


def _check_writable(env: Env) -> None:
    from keymgmt_cli.store.retired import check_writable  # a retired state refuses every change

    check_writable(env.engine.store)


def _run(env: Env, verb: str, path: str, data: dict[str, Any], fmt: str, field: str | None) -> None:
    from keymgmt_cli.engine.routing import Request

    if verb in ("write", "delete"):
        _check_writable(env)
    response = env.engine.handle(Request(verb, path, data))
    _emit(env, verb, path, response, fmt, field)


@cli.command("read", context_settings=CONTEXT)
@format_option
@field_option
@click.argument("path", shell_complete=complete_path)
@click.pass_obj
def read_cmd(env: Env, fmt: str | None, field: str | None, path: str) -> None:
    """Read the data at PATH.

    \b
    Example:
      keymgmt read keymgmt/key/example-key
      keymgmt read -field=latest_version keymgmt/key/example-key
      keymgmt read -format=json keymgmt/kms/example-kms/key/example-key | jq .data.versions
    """
    _run(env, "read", path, {}, resolve_format(fmt, env), field)


@cli.command("list", context_settings=CONTEXT)
@format_option
@click.argument("path", shell_complete=complete_path)
@click.pass_obj
def list_cmd(env: Env, fmt: str | None, path: str) -> None:
    """List the names at PATH (an empty list is "No value found", exit 2, as Vault).

    \b
    Example:
      keymgmt list keymgmt/key
      keymgmt list -format=json keymgmt/kms/example-kms/key | jq -r '.[]'
    """
    _run(env, "list", path, {}, resolve_format(fmt, env), None)


@cli.command("write", context_settings=CONTEXT)
@format_option
@field_option
@click.option("-f", "-force", "--force", "force", is_flag=True,
              help="Allow the write to run with no data (rotate, replicate).")
@click.argument("path", shell_complete=complete_path)
@click.argument("data", nargs=-1, shell_complete=complete_data)
@click.pass_obj
def write_cmd(env: Env, fmt: str | None, field: str | None, force: bool, path: str, data: tuple[str, ...]) -> None:
    """Write DATA (K=V, K=@file, K=-, -, @file.json) to PATH.

    \b
    Example:
      keymgmt write keymgmt/key/example-key type=aes256-gcm96
      keymgmt write -f keymgmt/key/example-key/rotate
      keymgmt write keymgmt/key/example-key min_enabled_version=2 deletion_allowed=true
    """
    fmt = resolve_format(fmt, env)
    if not data and not force:
        raise UsageError("Must supply data or use -force")
    parsed = parse_data(data, _stdin())
    _run(env, "write", path, parsed, fmt, field)


@cli.command("delete", context_settings=CONTEXT)
@format_option
@click.argument("path", shell_complete=complete_path)
@click.argument("data", nargs=-1, shell_complete=complete_data)
@click.pass_obj
def delete_cmd(env: Env, fmt: str | None, path: str, data: tuple[str, ...]) -> None:
    """Delete the data at PATH (DATA for the few paths that take it).

    \b
    Example:
      keymgmt delete keymgmt/kms/example-kms/key/example-key pending_window_days=7
      keymgmt delete keymgmt/key/example-key
    """
    fmt = resolve_format(fmt, env)
    parsed = parse_data(data, _stdin())
    _run(env, "delete", path, parsed, fmt, None)


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
    mount = env.engine.enable_mount(engine_type, mount_path, description)
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
    env.engine.disable_mount(path, force=force)
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
        for line in data["unfinished"]:
            click.echo(f"  {line}")
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


@cli.command("verify", context_settings=CONTEXT)
@format_option
@click.argument("path", required=False)
@click.pass_obj
def verify_cmd(env: Env, fmt: str | None, path: str | None) -> None:
    """Compare the state with AWS KMS (drift detection); exit 0 in sync, 2 on drift.

    PATH narrows the check: a mount, MOUNT/key/NAME, MOUNT/kms/NAME or MOUNT/kms/NAME/key/KEY.
    Read-only: DescribeKey, ListResourceTags, GetPublicKey, ListAliases, ListKeys.

    \b
    Example:
      keymgmt verify
      keymgmt verify -format=json keymgmt/kms/example-kms | jq '.data.drift[]'
    """
    from keymgmt_cli.engine.verify import verify

    fmt = resolve_format(fmt, env)
    result = verify(env.engine, path)
    if fmt != "table":
        click.echo(output.dump(output.envelope(result, []), fmt))
    else:
        for item in result["drift"]:
            version = f" v{item['version']}" if item["version"] is not None else ""
            click.echo(f"DRIFT  {item['path']}{version}  {item['region']}  {item['key_id'] or '-'}: {item['problem']}")
        status = "in sync" if result["in_sync"] else f"{len(result['drift'])} problem(s)"
        click.echo(f"checked {result['distributions']} distribution(s), {result['kms_keys']} KMS key(s): {status}")
    if not result["in_sync"]:
        raise click.exceptions.Exit(EXIT_ENGINE)


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
_VERBING = {"read": "reading", "list": "listing", "write": "writing data to", "delete": "deleting"}


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
    except click.exceptions.Abort:
        click.echo("Error: aborted", err=True)
        return EXIT_LOCAL
    except click.UsageError as error:
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


from keymgmt_cli.cli.operator import operator_group  # noqa: E402  (registered after the group exists)

cli.add_command(operator_group)
