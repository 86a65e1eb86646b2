"""The progress spinners on a real terminal (issue 16 item 8), read off a tmux screen.

A rotation distributes to two providers at once against the local KMS (slowed so that the work is
visible): while it runs the screen shows one spinner line per provider, and when it is done the
result line stands alone (no spinner frame before ``Success!``, no leftover spinner line). Not on
a terminal, with TERM=dumb, or under CI there is never a spinner.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import sys
import time

import pytest

from keymgmt_cli.localkms import server
from support.cli import km
from tmux_pane import TMUX, Pane, prompt_line

SPINNER = {chr(c) for c in range(0x2800, 0x2900)}  # rich's "dots" frames are braille characters
DELAY = {"seconds": 0.0}  # per local KMS request while a watched command runs (0.04: some seconds)


def _slow(app):
    def slowed(environ, start_response):
        time.sleep(DELAY["seconds"])
        return app(environ, start_response)

    return slowed


@pytest.fixture(scope="module")
def kms(tmp_path_factory):
    os.environ.pop("KEYMGMT_LOCALKMS_CLOCK_OFFSET", None)
    with server.start(wrap=_slow) as local:
        yield local


@pytest.fixture(scope="module")
def world(tmp_path_factory, kms):
    if TMUX is None or shutil.which("bash") is None:
        pytest.skip("tmux or bash is not installed (apt-get install tmux; .ci/run installs it)")
    tmp_path = tmp_path_factory.mktemp("spinner")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    environ.pop("CI", None)
    environ.update(KEYMGMT_HOME=str(tmp_path / "state"), KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    steps = [["write", f"keymgmt/kms/{p}", "provider=awskms", "key_collection=us-west-1",
              "credentials=access_key=AKIASPINNERSPINNER00", "credentials=secret_key=spinner-secret",
              f"credentials=endpoint={kms.endpoint_url}"] for p in ("p1", "p2")]
    steps += [["write", "keymgmt/key/k", "type=aes256-gcm96"],
              ["write", "keymgmt/kms/p1/key/k", "purpose=encrypt,decrypt"],
              ["write", "keymgmt/kms/p2/key/k", "purpose=encrypt,decrypt"]]
    for args in steps:
        done = km(environ, *args)
        assert done.returncode == 0, done.stderr
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "keymgmt").write_text(f"#!/bin/sh\nexec {sys.executable} -m keymgmt_cli \"$@\"\n")
    (shim / "keymgmt").chmod(0o755)
    shell_env = {"HOME": str(tmp_path), "TERM": "screen", "LANG": "C.UTF-8",
                 "PATH": f"{shim}:/usr/local/bin:/usr/bin:/bin",
                 "KEYMGMT_HOME": environ["KEYMGMT_HOME"], "KEYMGMT_MASTER_KEY": environ["KEYMGMT_MASTER_KEY"]}
    pane = Pane(tmp_path, ["bash", "--norc", "--noprofile"], shell_env, width=150)
    pane.wait(lambda s: s.strip() != "", "bash to start", timeout=30)
    pane.type("PS1='$ '; clear")
    pane.keys("Enter")
    pane.wait(lambda s: s.strip() == "$", "a cleared screen")
    yield pane
    pane.close()


def _run(pane: Pane, command: str, escapes: bool = False) -> tuple[list[str], str]:
    """Type ``command``, watch the screen until the prompt is back; (every screen seen, the last)."""
    pane.type("clear")
    pane.keys("Enter")
    pane.wait(lambda s: s.strip() == "$", "a cleared screen")
    pane.type(command)
    pane.wait(lambda s: prompt_line(s) == command, "the typed command")
    DELAY["seconds"] = 0.04
    try:
        pane.keys("Enter")
        seen: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = pane.screen(escapes)
            seen.append(screen)
            plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)
            lines = [line for line in plain.splitlines() if line.strip()]
            if len(lines) >= 2 and lines[-1] == "$" and prompt_line(plain) == "":
                return seen, screen
            time.sleep(0.05)
    finally:
        DELAY["seconds"] = 0.0
    raise AssertionError(f"{command!r} did not finish; the screen:\n{pane.screen()}")


def _spinner_lines(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if line[:1] in SPINNER]


def test_rotation_shows_one_line_per_provider_then_only_the_result(world):
    seen, final = _run(world, "keymgmt write -f keymgmt/key/k/rotate")
    lines = [line for line in final.splitlines() if line.strip()]
    assert lines == ["$ keymgmt write -f keymgmt/key/k/rotate", "Success! Data written to: keymgmt/key/k/rotate", "$"], \
        final
    assert not SPINNER & set(final), final
    # while it ran: the two providers each on their own line, at the same time
    both = [s for s in seen if {line.split()[1] for line in _spinner_lines(s) if len(line.split()) > 1} >= {"p1:", "p2:"}]
    assert both, "never saw p1 and p2 on their own spinner lines at once; screens seen:\n" + "\n--\n".join(
        dict.fromkeys(seen))
    for screen in both:
        assert len([line for line in _spinner_lines(screen) if " p1: " in line]) == 1, screen


@pytest.mark.parametrize("command", [
    "keymgmt write -f keymgmt/key/k/rotate 2>&1 | cat",  # stderr not a terminal
    "TERM=dumb keymgmt write -f keymgmt/key/k/rotate",
    "CI=true keymgmt write -f keymgmt/key/k/rotate",
])
def test_no_spinner_off_a_terminal(world, command):
    seen, final = _run(world, command)
    assert not any(SPINNER & set(screen) for screen in seen), "a spinner frame appeared:\n" + "\n--\n".join(
        s for s in seen if SPINNER & set(s))
    lines = [line for line in final.splitlines() if line.strip()]
    assert lines[1:] == ["Success! Data written to: keymgmt/key/k/rotate", "$"], final


def test_spinner_colour_follows_no_color(world):
    def coloured(screens: list[str]) -> list[str]:
        return [line for s in screens for line in s.splitlines()
                if SPINNER & set(line) and re.search(r"\x1b\[(?:[0-9;]*;)?3[0-9]", line)]

    seen, _final = _run(world, "keymgmt write -f keymgmt/key/k/rotate", escapes=True)
    assert coloured(seen), "the spinner was expected in colour without NO_COLOR"
    seen, _final = _run(world, "NO_COLOR=1 keymgmt write -f keymgmt/key/k/rotate", escapes=True)
    assert any(SPINNER & set(s) for s in seen), "no spinner seen with NO_COLOR (it only drops colour)"
    assert not coloured(seen), coloured(seen)[:3]
