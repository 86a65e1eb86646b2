"""Shell completion from the live state: mounts, key and provider names, field names and values.

click generates the scripts (completions/ holds them) from the templates below, ours for all three
shells; the scripts call keymgmt back with _KEYMGMT_COMPLETE set, and these callbacks answer from
the state (reads only, never AWS).
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import (BashComplete, CompletionItem, FishComplete, ZshComplete, add_completion_class,
                                    split_arg_string)

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
        top = ctx.parent is not None and ctx.parent.parent is None  # `keymgmt list`, not `keymgmt audit list`
        verb = _VERB_OF.get(ctx.command.name or "", "read") if top else "read"
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
        takes = _takes(engine, mount, rel) if name == "purpose" else None
        values = [prefix + v for v in field.allowed
                  if v not in chosen and (takes is None or takes(chosen | {v}))]
    else:
        values = list(field.allowed or ())
    return [f"{name}={v}" for v in values if v.startswith(value)]


def _takes(engine: Any, mount: Any, rel: str) -> Any:
    """For a distribution path whose key is in the state: a test of whether a set of purposes is
    one AWS can honour for that key's type (``purpose=encrypt,`` then offers ``decrypt`` and never
    ``sign``, which key_usage_for would refuse); None when the key is unknown (offer every purpose)."""
    from keymgmt_cli.engine import shapes
    from keymgmt_cli.engine.keytypes import KEY_TYPES

    parts = rel.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "kms" or parts[2] != "key":
        return None
    key = shapes.load(engine.store, mount.doc("keys", parts[3]), shapes.key) or {}
    key_type = KEY_TYPES.get(key.get("type", ""))
    if key_type is None:
        return None
    return lambda wanted: any(wanted <= covered for _usage, covered in key_type.usages)


def complete_data(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        path = ctx.params.get("path")
        if not path:
            return []
        verb = _VERB_OF.get(ctx.command.name or "", "write")
        return [CompletionItem(c) for c in field_candidates(_engine(ctx), verb, path, incomplete)]
    except Exception:
        return []


class _WholeWords:
    """Every shell gets whole words: click answers ``-path=keymgmt/k`` with the value alone
    (``keymgmt/key/``), which zsh and fish would put in place of the whole word, option and all;
    give it back with its ``-path=`` (bash strips what precedes its word break itself)."""

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        items = super().get_completions(args, incomplete)  # type: ignore[misc]
        name, eq, _value = incomplete.partition("=")
        if not (eq and name.startswith("-")):
            return items
        head = name + "="
        return [item if item.value.startswith(head) else CompletionItem(head + item.value, type=item.type,
                                                                          help=item.help) for item in items]


class KeymgmtBash(_WholeWords, BashComplete):
    """bash splits words at '=' and ':' (COMP_WORDBREAKS), which would cut `type=aes...` in two;
    read the line itself instead, and hand bash back only the part after its word break."""

    name = "bash"
    source_template = r"""
%(complete_func)s() {
    local IFS=$'\n'
    local line="${COMP_LINE:0:$COMP_POINT}"
    local full="${line##*[[:space:]]}"
    # readline replaces only what follows the last COMP_WORDBREAKS character of the word (after
    # `type=` that is nothing, not COMP_WORDS' "="): strip everything up to it from each reply
    local cur="$full" i
    for (( i=${#full}-1; i>=0; i-- )); do
        if [[ "$COMP_WORDBREAKS" == *"${full:i:1}"* ]]; then cur="${full:i+1}"; break; fi
    done
    local prefix="${full:0:${#full}-${#cur}}"
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


class KeymgmtZsh(_WholeWords, ZshComplete):
    """click's zsh protocol with our own script (so the committed script does not change with the
    installed click): a word that ends in '/', '=' or ',' is not finished, so zsh adds no space
    after it (``key/<TAB>`` then goes on to the key names, ``type=<TAB>`` to the types)."""

    name = "zsh"
    source_template = r"""#compdef %(prog_name)s

%(complete_func)s() {
    local -a response described spaced unspaced
    (( ! $+commands[%(prog_name)s] )) && return 1

    response=("${(@f)$(env COMP_WORDS="${words[*]}" COMP_CWORD=$((CURRENT-1)) %(complete_var)s=zsh_complete %(prog_name)s)}")

    for type key descr in ${response}; do
        [[ "$type" == "plain" ]] || continue
        if [[ "$descr" != "_" ]]; then
            described+=("$key":"$descr")
        elif [[ "$key" == */ || "$key" == *= || "$key" == *, ]]; then
            unspaced+=("$key")
        else
            spaced+=("$key")
        fi
    done

    (( ${#described} )) && _describe -V unsorted described -U
    (( ${#spaced} )) && compadd -U -V unsorted -a spaced
    (( ${#unspaced} )) && compadd -U -S '' -V unsorted -a unspaced
    return 0
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    # autoload from fpath, call function directly
    %(complete_func)s "$@"
else
    # eval/source/. command, register function for later
    compdef %(complete_func)s %(prog_name)s
fi
"""


class KeymgmtFish(_WholeWords, FishComplete):
    """click's fish protocol with our own script: it splits each answer at its first comma only
    (``plain,purpose=encrypt,decrypt`` is one word with a comma in it, not two fields)."""

    name = "fish"
    source_template = r"""function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) COMP_CWORD=(commandline -t) %(prog_name)s);

    for completion in $response;
        set -l metadata (string split -m 1 "," -- $completion);
        if test $metadata[1] = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)";
"""


for _shell in (KeymgmtBash, KeymgmtZsh, KeymgmtFish):
    add_completion_class(_shell)
