"""``keymgmt due``: what needs action over time (expiring material, rotations due by
auto_rotate_period, operations left half-done), and ``-apply`` to perform it from cron or CI.

Exit codes: 0 nothing is due (or, with ``-apply``, everything due was done); 2 something is due
(or failed). So ``keymgmt due || alert`` and ``*/10 * * * * keymgmt due -apply`` both work.
"""

from __future__ import annotations

import os
from typing import Any

import click

from keymgmt_cli.cli import output
from keymgmt_cli.cli.complete import complete_path
from keymgmt_cli.cli.report import EXIT_ENGINE
from keymgmt_cli.errors import UsageError

CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}


@click.command("due", context_settings=CONTEXT)
@click.option("-within", "--within", "within", default="30d", metavar="DURATION",
              help="Report material expiring and rotations due within this window (default 30d).")
@click.option("-apply", "--apply", "apply", is_flag=True,
              help="Rotate keys past their auto_rotate_period and renew material expiring within the window.")
@click.option("-format", "--format", "fmt", default=None, metavar="FORMAT",
              type=click.Choice(output.FORMATS, case_sensitive=False), help="table (default), json or yaml.")
@click.argument("path", required=False, shell_complete=complete_path)
@click.pass_obj
def due_cmd(env: Any, within: str, apply: bool, fmt: str | None, path: str | None) -> None:
    """List what needs action: material expiring within -within, rotations due by
    auto_rotate_period, unfinished operations. Exit 0 when nothing is due, 2 when something is.

    \b
    Example:
      keymgmt due -within=14d
      keymgmt due -format=json | jq '.data.items[] | .fix'
      keymgmt due -apply          # from cron: rotate and renew what is due
    """
    from keymgmt_cli.engine import lifetime
    from keymgmt_cli.engine.durations import parse_duration
    from keymgmt_cli.errors import InvalidRequest

    environ = getattr(env, "environ", None) or dict(os.environ)
    fmt = (fmt or environ.get("KEYMGMT_FORMAT") or environ.get("VAULT_FORMAT") or "table").lower()
    if fmt not in output.FORMATS:
        raise UsageError(f"invalid format {fmt!r}; allowed: {', '.join(output.FORMATS)}")
    try:
        seconds = parse_duration(within, "-within")
    except InvalidRequest as error:
        raise UsageError(str(error)) from None
    engine = env.engine
    items = lifetime.apply_due(engine, path, seconds) if apply else lifetime.due(engine, path, seconds)
    if apply:  # what is left needing a person: failures and what -apply does not do (unfinished operations)
        failed = [i for i in items if not i["outcome"].startswith(("rotated", "renewed", "already", "not yet", "finished"))]
    else:
        failed = items
    if fmt != "table":
        click.echo(output.dump(output.envelope({"items": items, "due": bool(failed)}, []), fmt))
    else:
        for item in items:
            where = item["path"] + (f" v{item['version']} {item['region']}" if item.get("version") else "")
            deadline = item["deadline"] or "now"
            tail = f"  -> {item['outcome']}" if apply else f"  fix: {item['fix']}"
            click.echo(f"{item['kind'].upper():<10} {where}  {deadline}{tail}")
        if not items:
            click.echo("nothing is due")
    if failed:
        raise click.exceptions.Exit(EXIT_ENGINE)
