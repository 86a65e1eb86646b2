"""Every ```sh block of README.md, run in order against the local KMS, so README cannot drift.

The blocks run top to bottom in one fresh state (``KEYMGMT_HOME`` and ``KEYMGMT_MASTER_KEY`` of a
temporary directory, which is also the working directory and HOME), with this checkout's
``keymgmt`` first on PATH and the local KMS (moto + the import double, 127.0.0.1) as the endpoint
of every AWS call (``AWS_KMS_ENDPOINT``, ``AWS_ENDPOINT_URL``): no AWS account, no network.

Conventions, for whoever edits README (also stated in README's "Day two" section):

* Each ```sh block runs in its own ``bash``; its commands share shell variables, blocks share
  only the state on disk. Lines ending in ``\\`` continue; comment lines are ignored.
* A command must exit 0, unless its trailing comment starts with ``exit N`` (``# exit 2: refused
  while keys are distributed``): then it must exit N.
* ``<!-- readme-test: skip (REASON) -->`` on the line before a block (blank lines may come
  between) skips it; REASON is required. Keep skips few: a block that needs real AWS, or that
  starts a server or installs software.

A failure names the README line of the command and of its block, the exit codes, and the
command's own output.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keymgmt_cli.localkms import server

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->")
EXPECT = re.compile(r"\s#\s*exit\s+(?P<code>\d+)\b")
MARK = "__readme_line__"


@dataclass
class Command:
    line: int  # 1-based README line where the command starts
    text: str
    expect: int


@dataclass
class Block:
    line: int  # the README line of the opening fence
    skip: str | None
    commands: list[Command] = field(default_factory=list)


def parse(text: str) -> list[Block]:
    """The ```sh blocks of a markdown text, with their skip marker and their commands."""
    lines = text.splitlines()
    found: list[Block] = []
    pending: str | None = None
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        marker = SKIP.search(stripped)
        if marker:
            pending = marker["reason"].strip() or "(no reason given)"
        elif stripped.startswith("```"):
            fence, lang = i, stripped[3:].strip()
            body: list[tuple[int, str]] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append((i + 1, lines[i]))
                i += 1
            if lang == "sh":
                found.append(Block(fence + 1, pending, _commands(body)))
            pending = None
        elif stripped:
            pending = None  # a marker applies only to the block right after it
        i += 1
    return found


def _commands(body: list[tuple[int, str]]) -> list[Command]:
    out: list[Command] = []
    start, parts = 0, []  # type: ignore[var-annotated]
    for number, raw in body:
        if not parts:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            start = number
        if raw.rstrip().endswith("\\"):
            parts.append(raw.rstrip()[:-1])
            continue
        parts.append(raw)
        text = "\n".join(parts)
        expect = EXPECT.search(text)
        out.append(Command(start, text, int(expect["code"]) if expect else 0))
        parts = []
    if parts:
        text = "\n".join(parts)
        out.append(Command(start, text, 0))
    return out


def script(block: Block) -> str:
    """The bash script of a block: each command preceded by a marker line (so the output can be
    split per command) and followed by a check of its exit code."""
    out = ["set -o pipefail"]
    for command in block.commands:
        out.append(f"echo '{MARK} {command.line}'")
        out.append(command.text)
        out.append(f"__rc=$?; if [ $__rc -ne {command.expect} ]; then "
                   f"echo \"{MARK} {command.line} exited $__rc\"; exit 97; fi")
    return "\n".join(out) + "\n"


def failure(block: Block, output: str) -> str | None:
    """None when the block ran as README says, else what went wrong, where."""
    failed = re.search(rf"^{MARK} (\d+) exited (\d+)$", output, re.M)
    if failed is None:
        return None
    line, code = int(failed[1]), int(failed[2])
    command = next(c for c in block.commands if c.line == line)
    own = output.split(f"{MARK} {line}\n", 1)[-1].split(f"{MARK} {line} exited", 1)[0]
    shown = "\n".join(own.rstrip().splitlines()[-15:])
    return (f"README.md line {line} (the ```sh block at line {block.line}) exited {code}, "
            f"expected {command.expect}:\n  $ {command.text}\n{_indent(shown)}")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# -- the conventions themselves -------------------------------------------------------------------
SAMPLE = """\
text
<!-- readme-test: skip (needs AWS) -->

```sh
keymgmt write real/aws
```
```sh
# a comment
keymgmt write keymgmt/kms/p provider=awskms \\
    key_collection=us-west-1
keymgmt delete keymgmt/kms/p   # exit 2: refused while keys are distributed
```
<!-- readme-test: skip (orphaned marker) -->
prose in between
```sh
echo runs
```
```json
{"not": "shell"}
```
"""


def test_parse_follows_the_conventions():
    skipped, multi, orphan = parse(SAMPLE)
    assert (skipped.line, skipped.skip) == (4, "needs AWS")
    assert multi.skip is None and [(c.line, c.expect) for c in multi.commands] == [(9, 0), (11, 2)]
    assert multi.commands[0].text == "keymgmt write keymgmt/kms/p provider=awskms \n    key_collection=us-west-1"
    assert orphan.skip is None  # a marker followed by prose applies to nothing


def test_a_failing_command_is_named_by_its_readme_line(tmp_path):
    block = parse("```sh\ntrue\nfalse   # exit 0\necho never\n```\n")[0]
    done = subprocess.run(["bash", "-c", script(block)], capture_output=True, text=True, cwd=tmp_path)
    message = failure(block, done.stdout + done.stderr)
    assert message is not None and message.startswith("README.md line 3 (the ```sh block at line 1) exited 1")
    assert "never" not in done.stdout  # the block stops at its first failure
    ok = parse("```sh\nfalse   # exit 1\n```\n")[0]
    done = subprocess.run(["bash", "-c", script(ok)], capture_output=True, text=True, cwd=tmp_path)
    assert failure(ok, done.stdout + done.stderr) is None


def test_skips_are_few_and_say_why():
    blocks = parse(README.read_text())
    skipped = [b for b in blocks if b.skip]
    assert all(b.skip != "(no reason given)" for b in skipped), [b.line for b in skipped]
    assert len([b for b in blocks if not b.skip]) > len(skipped), \
        f"README skips as many sh blocks as it runs: {[(b.line, b.skip) for b in skipped]}"


# -- README itself --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kms():
    os.environ.pop("KEYMGMT_LOCALKMS_CLOCK_OFFSET", None)
    with server.start() as local:
        yield local


def test_every_readme_block_runs_against_the_local_kms(tmp_path, kms):
    blocks = [b for b in parse(README.read_text()) if not b.skip]
    assert blocks, "README has no runnable ```sh block"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "keymgmt").write_text(f"#!/bin/sh\nexec {sys.executable} -m keymgmt_cli \"$@\"\n")
    (shim / "keymgmt").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    environ = {
        "PATH": f"{shim}:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work), "XDG_CONFIG_HOME": str(work / ".config"), "XDG_DATA_HOME": str(work / ".local/share"),
        "LANG": "C.UTF-8", "TERM": "dumb", "CI": "true",
        "KEYMGMT_HOME": str(work / "state"), "KEYMGMT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        # every AWS call goes to the local KMS; no credentials or config of this machine leak in
        "AWS_KMS_ENDPOINT": kms.endpoint_url, "AWS_ENDPOINT_URL": kms.endpoint_url,
        "AWS_ACCESS_KEY_ID": "AKIAREADMEREADMEREAD", "AWS_SECRET_ACCESS_KEY": "readme-test-secret",
        "AWS_CONFIG_FILE": str(work / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true", "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    problems = []
    for block in blocks:
        done = subprocess.run(["bash", "-c", script(block)], cwd=work, env=environ, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)  # one stream: in order
        problem = failure(block, done.stdout)
        if problem is None and done.returncode != 0:
            problem = f"the ```sh block at line {block.line} exited {done.returncode}:\n{_indent(done.stdout)}"
        if problem:
            problems.append(problem)
    assert not problems, f"{len(problems)} of {len(blocks)} README blocks do not run as written:\n\n" + \
        "\n\n".join(problems)
