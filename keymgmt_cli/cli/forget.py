"""``keymgmt delete -forget [-force] [-dry-run] MOUNT/kms/NAME/key/KEY`` (engine/forget.py): the
confirmation and the list of what is left in AWS.

Forgetting changes nothing in AWS and cannot be undone, so it asks: on a terminal it shows what
would be left behind and wants ``yes``; without a terminal (a script, CI) it refuses unless
``-force`` is given. Exit 1 for a refusal before anything changed, 2 when the engine refuses.
"""

from __future__ import annotations

import sys

from keymgmt_cli.cli import output
from keymgmt_cli.cli.report import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXIT_OK, EXIT_LOCAL, EXIT_ENGINE = 0, 1, 2


def _lines(items: list[dict[str, Any]]) -> list[str]:
    out = []
    for item in items:
        if item["kind"] == "kms_key":
            what = f"KMS key {item['key_id']} (version {item['version']})"
        elif item["kind"] == "alias":
            what = f"alias {item['alias']}" + (f" -> {item['key_id']}" if item["key_id"] else "")
        else:
            what = f"a KMS key of version {item['version']} that may exist, never recorded"
        out.append(f"  {item['region']}  {what}\n      clean up: {item['cleanup']}")
    return out


def run(path: str, flags: dict[str, Any], fmt: str, env: Any, io: Any, stdin: Any = None) -> int:
    """The exit code; a KeymgmtError raised here is reported by verbs.run as any failed delete."""
    from keymgmt_cli.engine import forget

    stdin = stdin if stdin is not None else sys.stdin
    engine = env.engine
    if flags.get("dry-run"):
        from keymgmt_cli.cli.evidence import print_plan
        from keymgmt_cli.engine.plan import plan

        print_plan("delete -forget", path, plan(engine, lambda planner: forget.forget(planner, path)), fmt)
        return EXIT_OK
    if not flags.get("force"):
        shown = forget.preview(engine, path)  # a wrong path is refused before anything is asked
        if shown is None:
            io.out(f"Success! Nothing recorded at: {printable(path)}\n")
            return EXIT_OK  # nothing to forget, nothing to ask
        isatty = getattr(stdin, "isatty", None)
        if not (isatty and isatty()):
            io.err(f"Error deleting {printable(path)}: -forget drops the local record without asking AWS and "
                   "needs a confirmation on a terminal; add -force to forget without one\n")
            return EXIT_LOCAL
        io.err(f"Forget {shown['path']} ({shown['state']}) without asking AWS? Nothing in AWS changes; "
               "what may be left there:\n")
        io.err("".join(line + "\n" for line in _lines(shown["left_behind"])) or "  nothing\n")
        io.err("Type yes to forget: ")
        if stdin.readline().strip() != "yes":
            io.err("Aborted; nothing was changed\n")
            return EXIT_LOCAL
    from keymgmt_cli.cli.evidence import audited_call
    from keymgmt_cli.store.retired import check_writable

    check_writable(engine.store)
    response = audited_call(env, "delete", path, {"forget": True}, lambda: forget.forget(engine, path))
    data = response.data
    if fmt != "table":
        io.out(output.dump(output.envelope(data, response.warnings), fmt) + "\n")
        return EXIT_OK
    if not data["forgotten"]:
        io.out(f"Success! Nothing recorded at: {data['path']}\n")
        return EXIT_OK
    io.out(f"Success! Forgot: {data['path']}\n")
    if data["left_behind"]:
        io.out("Left in AWS (keymgmt no longer knows them; clean them up by hand):\n")
        io.out("".join(line + "\n" for line in _lines(data["left_behind"])))
    return EXIT_OK
