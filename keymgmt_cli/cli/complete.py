"""Shell completion from the live state: mounts, key and provider names, field names and values.

click generates the scripts (completions/ holds them); the scripts call keymgmt back with
_KEYMGMT_COMPLETE set, and these callbacks answer from the state (reads only, never AWS).
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import BashComplete, CompletionItem, add_completion_class, split_arg_string

_VERB_OF = {"read": "read", "list": "list", "write": "write", "delete": "delete"}


def _engine(ctx: click.Context) -> Any:
    obj = ctx.find_root().obj
    if obj is None:
        from keymgmt_cli.app import Env

        obj = Env()
    return obj.engine


def concrete_paths(engine: Any, verb: str) -> list[str]:
    """Every path the state makes meaningful for ``verb``, mount included."""
    from keymgmt_cli.engine.paths import ROUTES

    out: list[str] = []
    for mount in engine.mounts():
        keys = engine.store.list(mount.doc("keys"))
        kms = engine.store.list(mount.doc("kms"))
        rel: list[str] = ["key", "kms"]
        rel += [f"key/{k}" for k in keys] + [f"key/{k}/rotate" for k in keys] + [f"key/{k}/kms" for k in keys]
        rel += [f"kms/{p}" for p in kms] + [f"kms/{p}/key" for p in kms]
        for p in kms:
            dists = engine.store.list(mount.doc("dist", p))
            # write kms/P/key/<TAB> offers every key (to distribute); other verbs what is there
            names = keys if verb == "write" else dists
            rel += [f"kms/{p}/key/{k}" for k in names] + [f"kms/{p}/key/{k}/replicate" for k in dists]
        for path in rel:
            for route in ROUTES:
                if route.regex().match(path) and verb in route.operations:
                    out.append(mount.path + path)
                    break
    return out


def path_candidates(engine: Any, verb: str, incomplete: str) -> list[str]:
    mounts = [m.path for m in engine.mounts()]
    found: dict[str, None] = {}
    for full in concrete_paths(engine, verb) + mounts:
        if not full.startswith(incomplete):
            continue
        cut = full.find("/", len(incomplete))
        found[full[:cut + 1] if cut != -1 else full] = None
    if len(found) > 1:
        found.pop(incomplete, None)  # what is typed already is no suggestion
    return list(found)


def complete_path(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        verb = _VERB_OF.get(ctx.command.name or "", "read")
        return [CompletionItem(c) for c in path_candidates(_engine(ctx), verb, incomplete)]
    except Exception:  # completion must never print a traceback into the user's shell
        return []


def field_candidates(engine: Any, verb: str, path: str, incomplete: str) -> list[str]:
    from keymgmt_cli.engine.paths import ROUTES

    mount, rel = engine.resolve(path)
    fields: dict[str, Any] = {}
    for route in ROUTES:
        if route.regex().match(rel) and verb in route.operations:
            fields = route.operations[verb].fields
            break
    name, eq, value = incomplete.partition("=")
    if not eq:
        return [f"{n}=" for n in fields if n.startswith(name)]
    field = fields.get(name)
    if field is None:
        return []
    if field.kind == "bool":
        values = ["true", "false"]
    elif field.kind == "kvmap":
        values = [f"{k}=" for k in field.allowed or ()]
    elif field.kind == "commalist" and field.allowed:
        head, _, _last = value.rpartition(",")
        prefix = head + "," if head else ""
        chosen = set(head.split(",")) if head else set()
        values = [prefix + v for v in field.allowed if v not in chosen]
    else:
        values = list(field.allowed or ())
    return [f"{name}={v}" for v in values if v.startswith(value)]


def complete_data(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        path = ctx.params.get("path")
        if not path:
            return []
        verb = _VERB_OF.get(ctx.command.name or "", "write")
        return [CompletionItem(c) for c in field_candidates(_engine(ctx), verb, path, incomplete)]
    except Exception:
        return []


class KeymgmtBash(BashComplete):
    """bash splits words at '=' and ':' (COMP_WORDBREAKS), which would cut `type=aes...` in two;
    read the line itself instead, and hand bash back only the part after its word break."""

    name = "bash"
    source_template = r"""
%(complete_func)s() {
    local IFS=$'\n'
    local line="${COMP_LINE:0:$COMP_POINT}"
    local full="${line##*[[:space:]]}"
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local prefix="${full%%"$cur"}"
    local response type value
    response=$(env COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" %(complete_var)s=bash_complete $1)
    for completion in $response; do
        IFS=',' read type value <<< "$completion"
        if [[ $type == 'plain' ]]; then
            COMPREPLY+=("${value#"$prefix"}")
            [[ $value == */ || $value == *= || $value == *, ]] && compopt -o nospace
        fi
    done
    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""

    def get_completion_args(self) -> tuple[list[str], str]:
        line = os.environ.get("COMP_LINE", "")
        point = int(os.environ.get("COMP_POINT", len(line)))
        line = line[:point]
        words = split_arg_string(line)
        incomplete = "" if not line or line[-1].isspace() else (words.pop() if words else "")
        return words[1:], incomplete


add_completion_class(KeymgmtBash)
