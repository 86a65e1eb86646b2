"""The evidence commands: ``audit list|verify|export``, ``inventory``, and the plumbing of
``-dry-run`` and of the audit trail around every mutating engine call.

``main.py`` registers the commands and sends ``write``/``delete`` through ``run_request``
(``secrets enable``/``disable`` through ``audited_call``); nothing else there knows about audit.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import click

from keymgmt_cli.cli import output
from keymgmt_cli.cli.complete import complete_path
from keymgmt_cli.errors import KeymgmtError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}
EXIT_BROKEN = 2


# -- the hooks main.py calls ----------------------------------------------------------------------
def run_request(env: Any, verb: str, path: str, data: dict[str, Any], *, dry_run: bool = False,
                fmt: str = "table") -> Any:
    """The engine's answer to the request, audited when it may change something; with ``dry_run``
    the plan is printed instead and None returned (nothing changed, no mutating AWS call)."""
    from keymgmt_cli.engine.routing import Request

    engine = env.engine
    request = Request(verb, path, data)
    if dry_run:
        from keymgmt_cli.engine.plan import plan

        print_plan(verb, path, plan(engine, lambda planner: planner.handle(request)), fmt)
        return None
    if verb not in ("write", "delete"):
        return engine.handle(request)
    from keymgmt_cli.audit.session import audited

    return audited(engine, env.environ, verb, path, data, lambda: engine.handle(request))


def audited_call(env: Any, verb: str, path: str, data: dict[str, Any], call: Callable[[], Any]) -> Any:
    """``call`` (a mutating engine call other than handle, e.g. a mount change) between audit records."""
    from keymgmt_cli.audit.session import audited

    return audited(env.engine, env.environ, verb, path, data, call)


def explain_drift(env: Any, result: dict[str, Any]) -> dict[str, Any]:
    """The drift check's result, each item marked changed behind keymgmt's back or not (from the trail)."""
    from keymgmt_cli.audit.drift import explain

    try:
        records = list(_trail(env, with_keys=False).records())
    except (KeymgmtError, OSError):
        records = []
    return explain(result, records)


def drift_note(item: dict[str, Any]) -> str:
    verdict = (item.get("audit") or {}).get("behind_our_back")
    if verdict is True:
        return "  [changed outside keymgmt: no audit record explains it]"
    if verdict is False:
        return "  [an unfinished keymgmt command: re-run it]"
    return ""


def print_plan(verb: str, path: str, result: dict[str, Any], fmt: str) -> None:
    if fmt != "table":
        click.echo(output.dump(result, fmt))
        return
    click.echo(f"Plan for: keymgmt {verb} {path}  (dry run: nothing was changed)")
    for warning in result["warnings"]:
        click.echo(output.warning_line(warning), err=True)
    click.echo("")
    click.echo("State changes:" if result["state_changes"] else "State changes: none")
    for change in result["state_changes"]:
        click.echo(f"  {change['action']:<7} {change['document']}  ({', '.join(change['fields'])})")
    click.echo("")
    click.echo("AWS calls, per region in order:" if result["aws_calls"] else "AWS calls: none")
    for region, calls in sorted(result["aws_calls"].items()):
        click.echo(f"  {region}")
        for number, call in enumerate(calls, 1):
            kind = "would change AWS" if call["mutating"] else ("read, sent" if call["sent"] else "read")
            target = call["key_id"] or (f"{call['keys']} key(s)" if call.get("keys") is not None else "-")
            click.echo(f"    {number:>3}. {call['operation']:<22} {target}  [{kind}]")
    click.echo("")
    click.echo(f"{result['mutating_calls']} call(s) would change AWS; none was sent.")


# -- audit ----------------------------------------------------------------------------------------
@click.group("audit", context_settings=CONTEXT)
def audit_group() -> None:
    """Read, verify and export the audit trail (who did what, and proof that nobody edited it).

    \b
    Example:
      keymgmt audit list -since=24h -path=keymgmt/key/
      keymgmt audit verify
      keymgmt audit export -format=jsonl > trail.jsonl
    """


def _trail(env: Any, with_keys: bool) -> Any:
    from keymgmt_cli.audit.session import open_trail

    return open_trail(env.engine, env.environ, with_keys=with_keys)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``24h``, ``30m``, ``7d``, ``90s`` ago, or an RFC 3339 time."""
    now = now or datetime.now(timezone.utc)
    value = text.strip()
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return now - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"invalid -since {value[:40]!r}; expected a duration (24h, 7d) or an RFC 3339 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _record_time(record: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record.get("time", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


@audit_group.command("list", context_settings=CONTEXT)
@click.option("-since", "--since", default=None, metavar="WHEN", help="Only records after WHEN (24h, 7d, or RFC 3339).")
@click.option("-path", "--path", "prefix", default=None, metavar="PREFIX", help="Only requests to paths under PREFIX.",
              shell_complete=complete_path)
@click.option("-format", "--format", "fmt", default="table", type=click.Choice(["table", "json"]),
              help="table (default) or json (the records as stored).")
@click.pass_obj
def audit_list(env: Any, since: str | None, prefix: str | None, fmt: str) -> None:
    """List the audit records (does not verify them: see 'keymgmt audit verify').

    \b
    Example:
      keymgmt audit list -since=7d -path=keymgmt/key/example-key
    """
    after = parse_since(since) if since else None
    chosen = []
    for _where, record in _trail(env, with_keys=False).records():
        if not isinstance(record, dict):
            continue
        path = str((record.get("request") or {}).get("path", ""))
        if prefix and not path.startswith(prefix.lstrip("/")):
            continue
        when = _record_time(record)
        if after is not None and (when is None or when < after):
            continue
        chosen.append(record)
    if fmt == "json":
        click.echo(json.dumps(chosen, indent=1, sort_keys=True))
        return
    body = []
    for record in chosen:
        meta = record.get("keymgmt") or {}
        req = record.get("request") or {}
        result = "" if record.get("type") == "request" else (record.get("error") or "ok")
        body.append([str(meta.get("seq", "?")), str(record.get("time", "")), str(record.get("type", "")),
                     str(req.get("operation", "")), str(req.get("path", "")),
                     f"{meta.get('local_user', '?')}@{meta.get('host', '?')}", str(len(meta.get("aws_calls") or [])),
                     output.go_value(result)[:100]])
    if not body:
        click.echo("No audit records")
        return
    click.echo(output.rows(["Seq", "Time", "Type", "Operation", "Path", "Who", "AWS calls", "Result"], body))


@audit_group.command("verify", context_settings=CONTEXT)
@click.option("-format", "--format", "fmt", default="table", type=click.Choice(["table", "json"]))
@click.pass_obj
def audit_verify(env: Any, fmt: str) -> None:
    """Check the whole chain: exit 0 when it is whole, 2 naming the first bad record (an edited,
    deleted, reordered or truncated trail, or another master key).

    \b
    Example:
      keymgmt audit verify
    """
    from keymgmt_cli.audit import chain

    trail = _trail(env, with_keys=True)
    count, problem = chain.verify(trail.records(), trail.head(), trail.keys)
    if problem is None and count == 0 and trail.head() is None and env.engine.initialized():
        problem = chain.Problem(0, "start of trail", "missing: the state exists but has no audit trail "
                                                     "(deleted, elsewhere, or the state predates it)")
    if fmt == "json":
        click.echo(json.dumps({"whole": problem is None, "records": count, "location": trail.location,
                               "first_bad": None if problem is None else
                               {"seq": problem.seq, "where": problem.where, "problem": problem.what}}))
    elif problem is None:
        click.echo(f"audit trail whole: {count} record(s) in {trail.location}")
    if problem is not None:
        click.echo(f"Error: audit trail broken at {problem} (in {trail.location}; {count} record(s) before it verify)",
                   err=True)
        raise click.exceptions.Exit(EXIT_BROKEN)


@audit_group.command("export", context_settings=CONTEXT)
@click.option("-format", "--format", "fmt", default="jsonl", type=click.Choice(["jsonl"]),
              help="jsonl: one record per line, as stored (Vault's audit-device shape), for a SIEM.")
@click.pass_obj
def audit_export(env: Any, fmt: str) -> None:
    """Print every record, one JSON object per line, in chain order.

    \b
    Example:
      keymgmt audit export -format=jsonl | ship-to-siem
    """
    for where, record in _trail(env, with_keys=False).records():
        if not isinstance(record, dict):
            raise UsageError(f"audit record at {where} is not JSON; run 'keymgmt audit verify'")
        click.echo(json.dumps(record, sort_keys=True, ensure_ascii=False))


# -- inventory ----------------------------------------------------------------------------------
@click.command("inventory", context_settings=CONTEXT)
@click.option("-format", "--format", "fmt", default="table", type=click.Choice(["table", "json", "csv"]))
@click.argument("path", required=False, shell_complete=complete_path)
@click.pass_obj
def inventory_cmd(env: Any, fmt: str, path: str | None) -> None:
    """One row per key version and region, from the state (no AWS call), with the last rotation
    and who did it from the audit trail.

    \b
    Example:
      keymgmt inventory -format=csv > keys.csv
      keymgmt inventory keymgmt/key/example-key
    """
    from keymgmt_cli.engine.inventory import COLUMNS, inventory

    try:
        records = list(_trail(env, with_keys=False).records())
    except (KeymgmtError, OSError):  # an unreadable trail leaves the rotation columns empty, not the report
        records = []
    rows = inventory(env.engine, path, records)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    if not rows:
        click.echo("No keys")
        return
    shown = ("key_name", "mount", "version", "provider", "region", "kms_key_id", "alias", "enabled", "replica_of",
             "last_rotation")
    click.echo(output.rows(list(shown), [[output.go_value(row[c]) for c in shown] for row in rows]))


def register(cli: Any) -> None:
    cli.add_command(audit_group)
    cli.add_command(inventory_cmd)
