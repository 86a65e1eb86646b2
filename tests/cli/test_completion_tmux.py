"""The committed completion scripts in real interactive bash, zsh and fish (issue 16 item 6).

Each shell runs in a private tmux server with only the committed script loaded; the test types a
command line, presses Tab, and reads the command line back off the screen. A typed sentinel (``@``)
after the Tab shows whether the shell added a space (a finished word) or not (``key/``, ``type=``).
A shell that is not installed is skipped with its name; CI (.ci/run) installs all three.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
from pathlib import Path

import pytest

from support.cli import km
from tmux_pane import TMUX, Pane, prompt_line

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "completions"

# Each shell: how to start it bare (no rc files), and the line that loads the committed script
SHELLS = {
    "bash": (["bash", "--norc", "--noprofile"],
             # show-all-if-ambiguous: list on the first Tab, as zsh and fish do
             f"PS1='$ '; bind 'set show-all-if-ambiguous on'; source {SCRIPTS / 'keymgmt.bash'}; clear"),
    "zsh": (["zsh", "-f"],
            f"PROMPT='$ '; autoload -Uz compinit; compinit -u -D; source {SCRIPTS / 'keymgmt.zsh'}; clear"),
    "fish": (["fish", "--no-config"],
             "function fish_prompt; echo -n '$ '; end; set -g fish_autosuggestion_enabled 0; "
             f"source {SCRIPTS / 'keymgmt.fish'}; clear"),
}

# (typed, the command line after Tab and the sentinel '@'): one candidate, completed in place
COMPLETES = [
    # bash used to give type==aes256-gcm96 (it replaced COMP_WORDS' "=" where readline replaces "")
    ("keymgmt write keymgmt/key/alpha type=ae", "keymgmt write keymgmt/key/alpha type=aes256-gcm96 @"),
    ("keymgmt write keymgmt/key/alpha deletion_allowed=f", "keymgmt write keymgmt/key/alpha deletion_allowed=false @"),
    ("keymgmt write keymgmt/key/alpha min_en", "keymgmt write keymgmt/key/alpha min_enabled_version=@"),
    # an aes256-gcm96 key can only take encrypt,decrypt: the one offer after "encrypt,"
    ("keymgmt write keymgmt/kms/aws1/key/alpha purpose=encrypt,",
     "keymgmt write keymgmt/kms/aws1/key/alpha purpose=encrypt,decrypt @"),
    # an ecdsa key only sign,verify
    ("keymgmt write keymgmt/kms/aws1/key/sig purpose=sign,", "keymgmt write keymgmt/kms/aws1/key/sig purpose=sign,verify @"),
    ("keymgmt write keymgmt/ke", "keymgmt write keymgmt/key/@"),
    ("keymgmt verify keymgmt/kms/a", "keymgmt verify keymgmt/kms/aws1 @"),
    ("keymgmt due keymgmt/key/al", "keymgmt due keymgmt/key/alpha @"),
    ("keymgmt inventory keymgmt/key/s", "keymgmt inventory keymgmt/key/sig @"),
    ("keymgmt audit list -path=keymgmt/key/al", "keymgmt audit list -path=keymgmt/key/alpha @"),
    ("keymgmt audit ver", "keymgmt audit verify @"),
]

# (typed, candidates that must be listed, candidates that must not): several candidates
LISTS = [
    ("keymgmt write keymgmt/key/alpha type=", ["aes256-gcm96", "ecdsa-p521"], []),
    ("keymgmt write keymgmt/kms/aws1/key/sig purpose=", ["sign", "verify"], ["encrypt", "decrypt"]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A state with keys alpha (aes256-gcm96) and sig (ecdsa-p256) and provider aws1 (no AWS call:
    nothing is distributed), and a `keymgmt` on PATH that runs this checkout."""
    tmp = tmp_path_factory.mktemp("completion")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    environ.update(KEYMGMT_HOME=str(tmp / "state"), KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    for args in (["write", "keymgmt/key/alpha", "type=aes256-gcm96"], ["write", "keymgmt/key/sig", "type=ecdsa-p256"],
                 ["write", "keymgmt/kms/aws1", "provider=awskms", "key_collection=us-west-1"]):
        done = km(environ, *args)
        assert done.returncode == 0, done.stderr
    shim = tmp / "bin"
    shim.mkdir()
    (shim / "keymgmt").write_text(f"#!/bin/sh\nexec {sys.executable} -m keymgmt_cli \"$@\"\n")
    (shim / "keymgmt").chmod(0o755)
    shell_env = {"HOME": str(tmp), "TERM": "screen", "LANG": "C.UTF-8",
                 "PATH": f"{shim}:/usr/local/bin:/usr/bin:/bin",
                 "KEYMGMT_HOME": environ["KEYMGMT_HOME"], "KEYMGMT_MASTER_KEY": environ["KEYMGMT_MASTER_KEY"]}
    return tmp, shell_env


@pytest.fixture(params=sorted(SHELLS), scope="module")
def shell(request, world):
    name = request.param
    if TMUX is None:
        pytest.skip("tmux is not installed (apt-get install tmux; .ci/run installs it)")
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (apt-get install {name}; .ci/run installs it)")
    tmp, shell_env = world
    workdir = tmp / name
    workdir.mkdir()
    command, setup = SHELLS[name]
    pane = Pane(workdir, command, dict(shell_env, HOME=str(workdir)))
    pane.wait(lambda s: s.strip() != "", f"{name} to start", timeout=30)
    pane.type(setup)
    pane.keys("Enter")
    pane.wait(lambda s: s.strip() == "$", f"{name} to load the completion script and clear")
    pane.name = name
    yield pane
    pane.close()


def _fresh(pane: Pane) -> None:
    pane.keys("C-c")
    pane.wait(lambda s: prompt_line(s) == "", "an empty command line after C-c")
    pane.type("clear")
    pane.wait(lambda s: prompt_line(s) == "clear", "the typed clear")
    pane.keys("Enter")
    pane.wait(lambda s: s.strip() == "$", "a cleared screen")


@pytest.mark.parametrize("typed,after", COMPLETES, ids=[c[0].split(" ", 1)[1] for c in COMPLETES])
def test_tab_completes_in_place(shell, typed, after):
    _fresh(shell)
    shell.type(typed)
    shell.wait(lambda s: prompt_line(s) == typed, "the typed line")
    shell.keys("Tab")
    # the completion calls keymgmt back (a Python start): wait for the line to change, then mark
    shell.wait(lambda s: prompt_line(s) != typed, f"{shell.name} to complete {typed!r}")
    shell.type("@")
    screen = shell.wait(lambda s: prompt_line(s).endswith("@"), "the sentinel")
    assert prompt_line(screen) == after, f"{shell.name}: {typed!r} + Tab\n{screen}"


@pytest.mark.parametrize("typed,listed,absent", LISTS, ids=[c[0].split(" ", 1)[1] for c in LISTS])
def test_tab_lists_candidates_without_touching_the_word(shell, typed, listed, absent):
    _fresh(shell)
    shell.type(typed)
    shell.wait(lambda s: prompt_line(s) == typed, "the typed line")
    shell.keys("Tab")

    def listed_all(screen: str) -> bool:
        below = screen.split(typed, 1)[-1]
        return all(any(word.endswith(c) for word in below.split()) for c in listed)

    screen = shell.wait(listed_all, f"{shell.name} to list {listed}")
    line = prompt_line(screen)
    assert line == typed, f"{shell.name} changed the word (the doubled '=' of issue 16): {line!r}\n{screen}"
    words = screen.split(typed, 1)[-1].split()
    for candidate in absent:
        assert not any(w.endswith(("=" + candidate, "," + candidate)) or w == candidate for w in words), \
            f"{shell.name} offered {candidate!r}, which the key type refuses\n{screen}"
