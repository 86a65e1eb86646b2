"""The read/list path of the store must not import cryptography, keyring or boto3."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ["cryptography", "keyring", "boto3", "botocore"]


def _loaded_after(code, tmp_path):
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO), KEYMGMT_HOME=str(tmp_path))
    env.pop("KEYMGMT_MASTER_KEY", None)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    return json.loads(out)


def test_store_package_and_file_store_import_nothing_heavy(tmp_path):
    assert _loaded_after("import keymgmt_cli.store, keymgmt_cli.store.filestore", tmp_path) == []


def test_reading_and_listing_import_nothing_heavy(tmp_path):
    code = """
        import os
        from keymgmt_cli.store import open_store, SecretBox
        from keymgmt_cli.store.memory import MemoryStore
        from keymgmt_cli.store import masterkey
        store = open_store(dict(os.environ, KEYMGMT_MASTER_KEY="A" * 43 + "="))  # documents are MAC'd
        store.put("m1/keys/k1", {"v": 1})
        assert store.get("m1/keys/k1") == {"v": 1} and store.list("m1/keys") == ["k1"]
        with store.lock("m1"):
            pass
        box = SecretBox(lambda: 1 / 0)  # never called on this path
        assert masterkey.describe_source(store.home, {"KEYMGMT_MASTER_KEY": "x"})
    """
    assert _loaded_after(code, tmp_path) == []


def test_master_key_from_env_needs_no_keyring_and_no_cryptography(tmp_path):
    code = """
        import base64, os
        from keymgmt_cli.store.masterkey import load_master_key
        env = {"KEYMGMT_MASTER_KEY": base64.b64encode(bytes(32)).decode()}
        load_master_key(os.environ["KEYMGMT_HOME"], env, create=True)
    """
    assert _loaded_after(code, tmp_path) == []


def test_the_probe_does_see_heavy_imports(tmp_path):
    """The check above can fail: sealing does load cryptography."""
    code = """
        from keymgmt_cli.store.seal import Sealer
        Sealer(bytes(32)).seal(b"x", "a")
    """
    assert "cryptography" in _loaded_after(code, tmp_path)


# -- the `keymgmt` command's read/list path: what it imports beyond a bare interpreter --------------
# The command as installed (bin/keymgmt, pyproject's script-files) runs under `python -S -X
# importtime` (no site, so no editable-install finder, which imports pathlib, re, enum, ... into
# every start-up of the dev venv); every import it makes beyond `python -S -c "import os"` (what
# site imports in any start-up) is compared with the lists below. bench/README.md has the cost of each.

LAUNCHER = REPO / "bin" / "keymgmt"
#: Modules the path must not import (each costs a measurable share of a bare interpreter start-up:
#: re alone, with enum, functools and collections, about half of one; json imports re; pathlib
#: drags fnmatch, ntpath, urllib.parse and ipaddress along).
STDLIB_BANNED = ["re", "enum", "json", "functools", "collections", "pathlib", "contextlib", "urllib",
                 "ipaddress", "fnmatch", "base64", "uuid", "typing", "dataclasses", "shutil", "tempfile",
                 "logging", "datetime", "warnings", "platformdirs", "yaml", "click", "rich", "boto3",
                 "botocore", "keyring", "cryptography"]
#: ... no OpenSSL even with the key (store/digests.py: HMAC over CPython's builtin SHA-256) ...
KEY_BANNED = ["hmac", "hashlib", "_hashlib"]
BUILTIN_SHA256 = ["_sha256", "_sha2"]  # 3.11, 3.12+ (importtime lists the one tried first, too)
#: The standard library's share of the path, at most: RLIMIT_CORE, the garbage collector's
#: settings (cli/entry.py; gc is built into the interpreter, nothing is loaded), json's C scanner,
#: and with the master key base64 (binascii), SHA-256 and constant-time comparison.
STDLIB_ALLOWED = ["__future__", "resource", "gc", "_json"]
KEYED_STDLIB_ALLOWED = ["binascii", "_operator"] + BUILTIN_SHA256
#: What the master key adds of keymgmt's: where it comes from, and the MACs.
KEYED_MODULES = ["keymgmt_cli.store.masterkey", "keymgmt_cli.store.digests"]
#: keymgmt's own modules on the path, exactly: a new one here costs every read (~0.1-0.2 ms each).
FAST_MODULES = sorted("""
    keymgmt_cli keymgmt_cli.app keymgmt_cli.cli keymgmt_cli.cli.entry keymgmt_cli.cli.fast
    keymgmt_cli.cli.goflags keymgmt_cli.cli.output keymgmt_cli.cli.render keymgmt_cli.cli.report
    keymgmt_cli.cli.verbs
    keymgmt_cli.engine keymgmt_cli.engine.core keymgmt_cli.engine.keys
    keymgmt_cli.engine.mounts keymgmt_cli.engine.names keymgmt_cli.engine.paths
    keymgmt_cli.engine.routing keymgmt_cli.engine.shapes keymgmt_cli.errors
    keymgmt_cli.store keymgmt_cli.store.auth keymgmt_cli.store.base keymgmt_cli.store.docjson
    keymgmt_cli.store.filestore keymgmt_cli.store.private_dir
""".split())


def _importtime(args, env):
    """(exit code, stdout, every module name `-X importtime` reports) of `python -S -X importtime ARGS`."""
    proc = subprocess.run([sys.executable, "-S", "-X", "importtime", *args], env=env, capture_output=True,
                          text=True, cwd="/")
    names = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return proc.returncode, proc.stdout, names[1:]  # [0] is the header line


def _command_imports(argv, environ):
    """What `keymgmt ARGV` (the launcher) imports beyond a start-up, and its output."""
    env = {k: v for k, v in environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPATH"] = str(REPO)
    _, _, base = _importtime(["-c", "import os"], env)
    code, out, names = _importtime([str(LAUNCHER), *argv], env)
    assert code == 0, (argv, out)
    return out, [m for m in names if m not in set(base)]


@pytest.fixture(scope="module")
def keyed_state(tmp_path_factory):
    """A local state with one key, and the environment (master key set) that wrote it."""
    import base64 as b64

    tmp_path = tmp_path_factory.mktemp("fast")
    home = tmp_path / "state"
    key = b64.b64encode(os.urandom(32)).decode()
    env = dict(os.environ, KEYMGMT_HOME=str(home), KEYMGMT_MASTER_KEY=key)
    for name in ("KEYMGMT_STORAGE", "KEYMGMT_SEAL"):
        env.pop(name, None)
    env["KEYMGMT_CONFIG"] = str(tmp_path / "no-config.json")
    subprocess.run([sys.executable, "-m", "keymgmt_cli", "write", "keymgmt/key/k1", "type=aes256-gcm96"],
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    return env


def _banned(added, names):
    return [m for m in added if m in names or m.split(".")[0] in names]


@pytest.mark.parametrize("argv,shown", [(["read", "keymgmt/key/k1"], "name                   k1"),
                                        (["list", "keymgmt/key"], "Keys\n----\nk1")])
@pytest.mark.parametrize("keyed", [True, False], ids=["master key set", "no master key"])
def test_read_and_list_import_only_the_fast_path(keyed_state, argv, shown, keyed):
    environ = keyed_state if keyed else {k: v for k, v in keyed_state.items() if k != "KEYMGMT_MASTER_KEY"}
    out, added = _command_imports(argv, environ)
    assert shown in out  # the command did its work (with the key: after checking the MACs)
    banned = STDLIB_BANNED + KEY_BANNED + ([] if keyed else BUILTIN_SHA256 + KEYED_MODULES)
    assert _banned(added, banned) == []
    stdlib = sorted(m for m in added if not m.startswith("keymgmt_cli"))
    allowed = STDLIB_ALLOWED + (KEYED_STDLIB_ALLOWED if keyed else [])
    assert [m for m in stdlib if m not in allowed] == []
    own = sorted(m for m in added if m.startswith("keymgmt_cli"))
    expected = sorted(FAST_MODULES + (KEYED_MODULES if keyed else []))
    assert own == expected, sorted(set(own) ^ set(expected))


def test_the_command_is_the_launcher_that_imports_no_re():
    """pyproject installs bin/keymgmt as the command (an entry point's generated wrapper imports re
    with pip before 25.0), and the launcher itself imports nothing but keymgmt's entry."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["script-files"] == ["bin/keymgmt"]
    assert "keymgmt" not in project["project"].get("scripts", {})
    text = LAUNCHER.read_text()
    assert text.startswith("#!python\n") and os.access(LAUNCHER, os.X_OK)
    code_lines = [line for line in text.splitlines()[1:] if line.strip() and not line.startswith("#")]
    assert code_lines == ["from keymgmt_cli.cli.entry import main", "main()"]


def test_the_import_probe_sees_what_a_command_imports(keyed_state):
    """The probe above can fail: with the key set, reads check MACs (SHA-256); `-format=json`
    imports json (and with it re); masterkey's describe_source imports pathlib."""
    _, added = _command_imports(["read", "keymgmt/key/k1"], keyed_state)
    assert set(BUILTIN_SHA256) & set(added)
    _, added = _command_imports(["read", "-format=json", "keymgmt/key/k1"], keyed_state)
    assert {"json", "re"} <= set(_banned(added, STDLIB_BANNED))
    probe_env = {k: v for k, v in keyed_state.items() if k != "PYTHONPATH"}
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        before = set(sys.modules)
        import keymgmt_cli.store.masterkey
        keymgmt_cli.store.masterkey.describe_source("/nonexistent", {{"KEYMGMT_MASTER_KEY": "x"}})
        print(" ".join(sorted(set(sys.modules) - before)))
    """)
    added = subprocess.run([sys.executable, "-S", "-c", code], env=probe_env, capture_output=True,
                           text=True, check=True).stdout.split()
    assert "pathlib" in _banned(added, STDLIB_BANNED)
