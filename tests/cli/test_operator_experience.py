"""Issue 5: completions, path-help from the validating schemas, help with examples, JSON parity,
terminal-only rich output and progress."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from keymgmt_cli.cli.main import Env, cli
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.paths import ROUTES
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store import open_secret_box, open_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(cli_environ, tmp_path):
    world = MemoryKmsWorld()
    environ = dict(cli_environ, KEYMGMT_HOME=str(tmp_path / "state"))
    # the CLI's store and box: documents sealed and authenticated under the environment's master
    # key, as every other process of the test (completion) reads them
    store = open_store(environ)
    engine = Engine(store, open_secret_box(store.home, environ, store=store), lambda cfg: MemoryKms(cfg.region, world))
    return Env(environ, engine=engine)


@pytest.fixture
def invoke(env):
    runner = CliRunner()

    def run(*args, input=None):
        result = runner.invoke(cli, list(args), obj=env, input=input)
        assert "Traceback" not in result.output
        return result

    return run


@pytest.fixture
def populated(invoke):
    for args in (["write", "keymgmt/kms/aws1", "provider=awskms", "key_collection=us-west-1"],
                 ["write", "keymgmt/key/alpha", "type=aes256-gcm96"],
                 ["write", "keymgmt/key/sig", "type=ecdsa-p256"],
                 ["write", "keymgmt/kms/aws1/key/alpha", "purpose=encrypt,decrypt"]):
        assert invoke(*args).exit_code == 0, args
    return invoke


# -- completions ----------------------------------------------------------------------------------
def _complete(env, line: str, shell: str = "bash") -> list[str]:
    environ = dict(env.environ, _KEYMGMT_COMPLETE=f"{shell}_complete")
    if shell == "bash":
        environ.update(COMP_LINE=line, COMP_POINT=str(len(line)))
    else:
        words = line.split(" ")
        environ.update(COMP_WORDS=line, COMP_CWORD=str(len(words) - 1) if shell == "zsh" else words[-1])
    result = subprocess.run([sys.executable, "-m", "keymgmt_cli"], env=environ, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if shell == "zsh":  # type, value, description triples
        return [lines[i + 1] for i in range(0, len(lines), 3) if lines[i] == "plain"]
    return [line.split(",", 1)[1] for line in lines if line.startswith("plain,")]


@pytest.mark.parametrize("line,expected", [
    ("keymgmt re", ["read"]),
    ("keymgmt read keymgmt/k", ["keymgmt/key/", "keymgmt/kms/"]),
    ("keymgmt read keymgmt/key/", ["keymgmt/key/alpha", "keymgmt/key/sig"]),
    ("keymgmt list keymgmt/kms/aws1/", ["keymgmt/kms/aws1/key"]),
    ("keymgmt read keymgmt/kms/aws1/key/", ["keymgmt/kms/aws1/key/alpha"]),
    ("keymgmt write keymgmt/kms/aws1/key/", ["keymgmt/kms/aws1/key/alpha", "keymgmt/kms/aws1/key/alpha/",
                                          "keymgmt/kms/aws1/key/sig"]),
    ("keymgmt write keymgmt/key/alpha min", ["min_enabled_version="]),
    ("keymgmt write keymgmt/key/alpha type=ecdsa", ["type=ecdsa-p256", "type=ecdsa-p384", "type=ecdsa-p521"]),
    ("keymgmt write keymgmt/key/alpha deletion_allowed=", ["deletion_allowed=true", "deletion_allowed=false"]),
    ("keymgmt write keymgmt/kms/aws1/key/sig purpose=sign,v", ["purpose=sign,verify"]),
    # only what the key type can take: an aes256-gcm96 key is never offered sign (always refused)
    ("keymgmt write keymgmt/kms/aws1/key/alpha purpose=sign,v", []),
    ("keymgmt write keymgmt/kms/aws1/key/alpha purpose=encrypt,", ["purpose=encrypt,decrypt"]),
    ("keymgmt write keymgmt/kms/aws1/key/alpha purpose=", ["purpose=encrypt", "purpose=decrypt"]),
    ("keymgmt write keymgmt/kms/aws1/key/sig purpose=", ["purpose=sign", "purpose=verify"]),
    ("keymgmt write keymgmt/kms/aws1/key/new purpose=encrypt,", ["purpose=encrypt,decrypt", "purpose=encrypt,sign",
                                                             "purpose=encrypt,verify", "purpose=encrypt,wrap",
                                                             "purpose=encrypt,unwrap"]),
    ("keymgmt verify keymgmt/kms/", ["keymgmt/kms/aws1", "keymgmt/kms/aws1/"]),
    ("keymgmt due keymgmt/key/", ["keymgmt/key/alpha", "keymgmt/key/sig"]),
    ("keymgmt inventory keymgmt/k", ["keymgmt/key/", "keymgmt/kms/"]),
    ("keymgmt audit list -path=keymgmt/key/a", ["-path=keymgmt/key/alpha"]),
    ("keymgmt audit ", ["list", "verify", "export"]),
    ("keymgmt write keymgmt/kms/aws1 credentials=se", ["credentials=secret_key=", "credentials=session_token=",
                                                       "credentials=session_name="]),
    ("keymgmt read -format ", ["table", "json", "yaml"]),
])
def test_completion_from_live_state(env, populated, line, expected):
    assert sorted(_complete(env, line)) == sorted(expected)


def test_zsh_and_fish_protocols(env, populated):
    assert sorted(_complete(env, "keymgmt read keymgmt/key/", "zsh")) == ["keymgmt/key/alpha", "keymgmt/key/sig"]
    assert "keymgmt/kms/" in _complete(env, "keymgmt list keymgmt/", "fish")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_committed_bash_script_completes_across_word_breaks(env, populated, tmp_path):
    """bash splits `type=aes` at '='; the script must hand back only the part after it."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "keymgmt").write_text(f"#!/bin/sh\nexec {sys.executable} -m keymgmt_cli \"$@\"\n")
    (shim / "keymgmt").chmod(0o755)
    script = (
        f"source {ROOT / 'completions' / 'keymgmt.bash'}\n"
        'COMP_LINE="keymgmt write keymgmt/key/alpha type=aes"; COMP_POINT=${#COMP_LINE}\n'
        "COMP_WORDS=(keymgmt write keymgmt/key/alpha type = aes); COMP_CWORD=5\n"
        '_keymgmt_completion keymgmt 2>/dev/null; printf "%s\\n" "${COMPREPLY[@]}"\n')
    environ = dict(env.environ, PATH=f"{shim}:{os.environ['PATH']}")
    result = subprocess.run(["bash", "-c", script], env=environ, capture_output=True, text=True)
    assert result.stdout.splitlines() == ["aes256-gcm96"], result.stderr


def test_committed_completion_scripts_are_generated_from_the_cli():
    for shell in ("bash", "zsh", "fish"):
        generated = subprocess.run([sys.executable, "-m", "keymgmt_cli"], capture_output=True, text=True,
                                   env=dict(os.environ, _KEYMGMT_COMPLETE=f"{shell}_source")).stdout
        assert (ROOT / "completions" / f"keymgmt.{shell}").read_text() == generated, \
            f"completions/keymgmt.{shell} is stale: regenerate it (see completions/README.md)"


# -- path-help ------------------------------------------------------------------------------------
def test_path_help_lists_fields_the_engine_validates(populated):
    doc = json.loads(populated("path-help", "-format=json", "keymgmt/key/alpha").output)
    fields = doc["operations"]["write"]["fields"]
    assert set(fields) == {"type", "replica_regions", "min_enabled_version", "deletion_allowed", "auto_rotate_period"}
    assert fields["type"]["allowed"][0] == "aes256-gcm96" and fields["type"]["default"] == "rsa-2048"
    text = populated("path-help", "keymgmt/kms/aws1/key/alpha").output
    assert "purpose (comma-separated list, required)" in text and "pending_window_days (int, default 30)" in text


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.pattern)
def test_path_help_and_validation_agree_on_allowed_values(populated, route):
    """Every allowed list path-help shows is exactly what the engine's refusal lists."""
    for verb, op in route.operations.items():
        for name, field in op.fields.items():
            if field.kind != "choice":
                continue
            sample = route.pattern.replace("(?P<name>[^/]+)", "aws1" if route.pattern.startswith("kms") else "alpha")
            sample = sample.replace("(?P<key_name>[^/]+)", "alpha")
            doc = json.loads(populated("path-help", "-format=json", f"keymgmt/{sample}").output)
            shown = doc["operations"][verb]["fields"][name]["allowed"]
            result = populated(verb, f"keymgmt/{sample}", f"{name}=not-a-value")
            assert result.exit_code == 2
            assert f"allowed: {', '.join(shown)}" in result.stderr


def test_path_help_of_a_mount_and_of_nonsense(populated):
    doc = json.loads(populated("path-help", "-format=json", "keymgmt/").output)
    assert [p["route"] for p in doc["paths"]][:2] == ["keymgmt/key", "keymgmt/key/:name"]
    result = populated("path-help", "keymgmt/nope")
    assert result.exit_code == 2 and "unsupported path" in result.stderr


# -- help --------------------------------------------------------------------------------------------
def _commands(group: click.Group, prefix: list[str]):
    for name, command in group.commands.items():
        yield prefix + [name], command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + [name])


@pytest.mark.parametrize("path,command", list(_commands(cli, [])), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_every_command_has_help_with_a_real_example(invoke, path, command):
    result = invoke(*path, "--help")
    assert result.exit_code == 0
    assert command.help and len(command.help.split()) >= 3, f"{path} has no help text"
    assert "Example:" in result.output, f"keymgmt {' '.join(path)} --help has no example"
    example_lines = result.output.split("Example:", 1)[1].strip().splitlines()
    assert example_lines and example_lines[0].strip().startswith("keymgmt " + path[0])


# -- JSON parity with the reference shapes (section 1.3) ---------------------------------------------
SHAPES = {
    "keymgmt/key/sig": {"deletion_allowed": bool, "keys": dict, "latest_version": int,
                        "min_enabled_version": int, "name": str, "type": str},
    "keymgmt/kms/aws1": {"key_collection": str, "provider": str},
    "keymgmt/kms/aws1/key/alpha": {"name": str, "protection": str, "purpose": str, "rotation_mode": str,
                                   "suspended": bool,
                                   "versions": dict},
}


@pytest.mark.parametrize("path", list(SHAPES))
def test_read_json_matches_vault_shape(populated, path):
    body = json.loads(populated("read", "-format=json", path).output)
    assert list(body) == ["request_id", "lease_id", "lease_duration", "renewable", "data", "warnings",
                          "mount_type"]  # api.Secret's field order (Vault's CLI marshals the struct)
    assert {k: type(v) for k, v in body["data"].items()} == SHAPES[path]
    if path.endswith("sig"):
        assert set(body["data"]["keys"]["1"]) == {"creation_time", "public_key"}
    if path.endswith("alpha"):
        assert body["data"]["purpose"] == "encrypt,decrypt"
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in body["data"]["versions"].items())


@pytest.mark.parametrize("path,names", [("keymgmt/key", ["alpha", "sig"]), ("keymgmt/kms", ["aws1"]),
                                        ("keymgmt/kms/aws1/key", ["alpha"]), ("keymgmt/key/alpha/kms", ["aws1"])])
def test_list_json_is_the_bare_list_as_vault_prints_it(populated, path, names):
    assert json.loads(populated("list", "-format=json", path).output) == names


# -- terminal output ------------------------------------------------------------------------------------
def test_rich_table_on_a_terminal_plain_when_piped(cli_environ):
    subprocess.run([sys.executable, "-m", "keymgmt_cli", "write", "keymgmt/key/a", "type=aes256-gcm96"],
                   env=cli_environ, check=True, capture_output=True)
    piped = subprocess.run([sys.executable, "-m", "keymgmt_cli", "secrets", "list"], env=cli_environ,
                           capture_output=True, text=True).stdout
    assert "\x1b[" not in piped and piped.startswith("Path")
    script = shutil.which("script")
    if script is None:
        pytest.skip("util-linux script(1) is needed to give the CLI a terminal")
    cmd = f"{sys.executable} -m keymgmt_cli secrets list"
    tty = subprocess.run([script, "-qec", cmd, "/dev/null"], env=dict(cli_environ, TERM="xterm-256color"),
                         capture_output=True, text=True).stdout
    assert "\x1b[" in tty and "keymgmt/" in tty
    no_color = subprocess.run([script, "-qec", cmd, "/dev/null"],
                              env=dict(cli_environ, TERM="xterm-256color", NO_COLOR="1"),
                              capture_output=True, text=True).stdout
    assert "keymgmt/" in no_color and "\x1b[3" not in no_color  # no colour codes


def test_progress_only_on_a_terminal_and_never_in_ci():
    from keymgmt_cli.cli.terminal import Progress

    class Tty:
        def isatty(self):
            return True

    class Pipe:
        def isatty(self):
            return False

    assert Progress(Tty(), {"TERM": "xterm"}).enabled
    assert not Progress(Pipe(), {"TERM": "xterm"}).enabled
    assert not Progress(Tty(), {"TERM": "xterm", "CI": "true"}).enabled
    assert not Progress(Tty(), {"TERM": "dumb"}).enabled
