"""Errors never quote a file's contents nor a value that could be a secret (issue 9, item 6).

Every field of every writable path gets ``field=@FILE`` (and the file as a JSON object through
``@FILE``) where the file holds a distinctive secret; whatever the outcome, stdout and stderr must
not contain any 12-character piece of it. Secrets typed in the wrong place (a bare argument, a
credentials key, credentials=secret_key=-) are not echoed and not stored.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from keymgmt_cli.cli.main import Env, cli
from keymgmt_cli.engine import schemas

SECRET = "Zq8vS3cr3tM4terial+DoNotPrint/" + "x" * 10
FIELDS = {
    "keymgmt/key/k": schemas.KEY_FIELDS,
    "keymgmt/kms/p": schemas.KMS_FIELDS,
    "keymgmt/kms/p/key/k": schemas.DIST_FIELDS,
}


def _pieces(secret: str, size: int = 12) -> list[str]:
    return [secret[i:i + size] for i in range(len(secret) - size + 1)]


@pytest.fixture
def run(cli_environ, tmp_path):
    def invoke(argv, stdin=None):
        env = Env(cli_environ)

        def no_aws(config):
            raise AssertionError("no AWS call in these tests")

        env.engine.provider_factory = no_aws
        result = CliRunner().invoke(cli, argv, obj=env, input=stdin)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result
    return invoke


def _assert_not_leaked(result, secret=SECRET):
    shown = result.stdout + result.stderr
    leaked = [p for p in _pieces(secret) if p in shown]
    assert not leaked, (leaked[:1], shown)


@pytest.mark.parametrize("path,field", [(p, f) for p, fields in FIELDS.items() for f in fields])
@pytest.mark.parametrize("content", [SECRET, SECRET + "\n", json.dumps({"k": SECRET}), "=" + SECRET,
                                     SECRET + "=" + SECRET, "KEYMGMT_MASTER_KEY=" + SECRET + "\0PATH=/bin"])
def test_file_contents_never_in_an_error(run, tmp_path, path, field, content):
    secret_file = tmp_path / "secret"
    secret_file.write_text(content)
    run(["write", "keymgmt/key/k", "type=aes256-gcm96"])
    _assert_not_leaked(run(["write", path, f"{field}=@{secret_file}"]))
    (tmp_path / "obj.json").write_text(json.dumps({field: content}))
    _assert_not_leaked(run(["write", path, f"@{tmp_path / 'obj.json'}"]))
    _assert_not_leaked(run(["write", path, "-"], stdin=json.dumps({field: [content, content]})))


@pytest.mark.parametrize("argv", [
    ["write", "keymgmt/kms/p", "provider=awskms", "key_collection=us-west-1", SECRET],  # a bare argument
    ["write", "keymgmt/kms/p", "provider=awskms", "key_collection=us-west-1", f"credentials={SECRET}=x"],
    ["write", "keymgmt/kms/p", "provider=awskms", "key_collection=us-west-1", f"credentials={SECRET}"],
    ["write", "keymgmt/key/k", f"type={SECRET}"],
    ["write", "keymgmt/key/k", f"min_enabled_version={SECRET}"],
    ["write", "keymgmt/key/k", f"deletion_allowed={SECRET}"],
    ["write", "-f=" + SECRET, "keymgmt/key/k"],
])
def test_values_typed_in_the_wrong_place_are_not_echoed(run, argv):
    result = run(argv)
    assert result.exit_code in (1, 2)
    _assert_not_leaked(result)


def test_credentials_secret_key_dash_is_refused_not_stored(run, cli_environ):
    base = ["write", "keymgmt/kms/p", "provider=awskms", "key_collection=us-west-1", "credentials=access_key=AKIA1"]
    result = run(base + ["credentials=secret_key=-"], stdin=SECRET)
    assert result.exit_code == 2
    assert "does not read stdin" in result.stderr and "hint: pass credentials as JSON" in result.stderr
    _assert_not_leaked(result)
    assert run(["read", "keymgmt/kms/p"]).exit_code == 2  # nothing was created
    result = run(base + ["credentials=secret_key=@/etc/hostname"])
    assert result.exit_code == 2 and "@..." in result.stderr


def test_credentials_from_a_json_file_and_from_stdin(run, tmp_path):
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"access_key": "AKIAFROMFILE0000", "secret_key": SECRET}))
    base = ["write", "keymgmt/kms/p", "provider=awskms", "key_collection=us-west-1"]
    assert run(base + [f"credentials=@{creds}"]).exit_code == 0
    body = json.dumps({"credentials": {"access_key": "AKIAFROMSTDIN000", "secret_key": SECRET}})
    assert run(["write", "keymgmt/kms/q", "provider=awskms", "key_collection=us-west-1", "-"], stdin=body).exit_code == 0
    for name in ("p", "q"):
        _assert_not_leaked(run(["read", "-format=json", f"keymgmt/kms/{name}"]))


def test_the_scan_can_fail():
    class Shown:
        stdout, stderr = "", "oops: " + SECRET[3:20]
    with pytest.raises(AssertionError):
        _assert_not_leaked(Shown)


def test_cli_process_does_not_dump_core(cli_environ, tmp_path):
    """RLIMIT_CORE is 0 (soft and hard) in a keymgmt process, set at start-up by the entry point."""
    import subprocess
    import sys

    probe = ("import resource, sys\n"
             "from keymgmt_cli.cli import entry\n"
             "entry.no_core_dumps()\n"
             "print(resource.getrlimit(resource.RLIMIT_CORE))\n")
    out = subprocess.run([sys.executable, "-c", probe], env={**cli_environ, "PYTHONPATH": os.getcwd()},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(0, 0)"
