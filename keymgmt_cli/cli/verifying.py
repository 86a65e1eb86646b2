"""``keymgmt verify [-fix [-dry-run]] [PATH]``: drift, the command that fixes each finding, and
the repair itself (engine/verify.py, engine/repair.py); main.py registers the click command.

Exit codes: 0 in sync, 2 drift (or, with -fix, drift that remains or a distribution that could not
be repaired), 3 no drift found but a KMS provider could not be checked.
"""

from __future__ import annotations

import click

from keymgmt_cli.cli import output
from keymgmt_cli.cli.report import EXIT_ENGINE, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXIT_UNCHECKED = 3  # no drift found, but a provider could not be asked


def run(env: Any, fmt: str, path: str | None, fix: bool, dry_run: bool) -> None:
    from keymgmt_cli.cli.evidence import drift_note, explain_drift
    from keymgmt_cli.engine.verify import verify

    if dry_run and not fix:
        raise click.UsageError("-dry-run goes with -fix (verify alone changes nothing)")
    repaired = None
    if fix:
        from keymgmt_cli.cli.evidence import audited_call, print_plan
        from keymgmt_cli.engine.repair import repair
        from keymgmt_cli.store.retired import check_writable

        check_writable(env.engine.store)  # a retired state refuses every change
        if dry_run:
            from keymgmt_cli.engine.plan import plan

            print_plan("verify -fix", path or "", plan(env.engine, lambda planner: repair(planner, path)), fmt)
            return
        repaired = audited_call(env, "write", f"verify -fix {path or ''}".rstrip(), {},
                                lambda: repair(env.engine, path)).data
    result = explain_drift(env, verify(env.engine, path))
    if repaired is not None:
        result = {**result, "fixed": repaired["fixed"], "failed": repaired["failed"]}
        result["in_sync"] = result["in_sync"] and not repaired["failed"]
    from keymgmt_cli.engine.instances import lines as conflict_lines

    warnings = conflict_lines(result.get("conflicts", []))  # two live copies of the state: not drift
    if fmt != "table":
        click.echo(output.dump(output.envelope(result, warnings), fmt))
    else:
        for line in warnings:
            click.echo(printable(f"WARNING! {line}"), err=True)
        for item in (repaired or {}).get("fixed", []):
            version = f" v{item['version']}" if item["version"] is not None else ""
            click.echo(f"FIXED  {item['path']}{version}  {item['region']}  {item['key_id'] or '-'}: {item['action']}")
        for item in (repaired or {}).get("failed", []):
            click.echo(f"NOT FIXED  {item['path']}: {item['cause']}")
        for item in result["drift"]:
            version = f" v{item['version']}" if item["version"] is not None else ""
            click.echo(f"DRIFT  {item['path']}{version}  {item['region']}  {item['key_id'] or '-'}: {item['problem']}"
                       f"{drift_note(item)}")
            click.echo(f"       fix: {item['fix']}")
        for item in result["unchecked"]:
            click.echo(f"UNCHECKED  {item['path']}  {item['region']}: could not check: {item['cause']}")
            click.echo(f"       fix: {item['fix']}")
        for item in result.get("tag_search", []):  # which search found our tags, once per provider
            click.echo(f"note: {item['path']}: {item['note']}", err=True)
        status = ("in sync" if not result["drift"] and not result["unchecked"] else
                  f"{len(result['drift'])} problem(s)" if result["drift"] else
                  f"no drift found, {len(result['unchecked'])} provider(s) could not be checked")
        fixed = f"fixed {len(repaired['fixed'])}; " if repaired is not None else ""
        click.echo(f"{fixed}checked {result['distributions']} distribution(s), {result['kms_keys']} KMS key(s): {status}")
    if result["drift"] or (repaired or {}).get("failed"):
        raise click.exceptions.Exit(EXIT_ENGINE)
    if result["unchecked"]:
        raise click.exceptions.Exit(EXIT_UNCHECKED)
