"""`keymgmt delete -forget` end to end: a provider whose endpoint went away (a local KMS, stopped),
a removal stuck in "removing", the confirmation on a real pseudo-terminal, the refusal without one,
-force, the list of what is left, the audit trail, and the provider deleted afterwards."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from keymgmt_cli.localkms import server
from support.cli import km as run

pytestmark = pytest.mark.emulator
SECRET = "forget-secret"


def on_a_terminal(environ, *args, answer):
    """Run keymgmt with a pseudo-terminal as stdin (stdout and stderr piped); type ``answer``."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "keymgmt_cli", *args], env=environ, stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        slave = None
        os.write(master, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out, err
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def test_forget_a_distribution_whose_endpoint_is_gone(cli_environ):
    environ = dict(cli_environ, AWS_MAX_ATTEMPTS="1")

    def km(*args, **kwargs):
        result = run(environ, *args, **kwargs)
        assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr
        return result

    local = server.start()
    try:
        assert km("write", "keymgmt/kms/gone", "provider=awskms", "key_collection=us-west-2",
                  "credentials=access_key=AKIAFORGET", f"credentials=secret_key={SECRET}",
                  f"credentials=endpoint={local.endpoint_url}").returncode == 0
        for key in ("v", "u"):
            assert km("write", f"keymgmt/key/{key}", "type=aes256-gcm96").returncode == 0
            assert km("write", f"keymgmt/kms/gone/key/{key}", "purpose=encrypt,decrypt").returncode == 0
        versions = {key: json.loads(km("read", "-format=json", f"keymgmt/kms/gone/key/{key}").stdout)["data"]
                    for key in ("v", "u")}
        moved = km("write", "keymgmt/kms/gone", "credentials=access_key=AKIAFORGET",
                   f"credentials=secret_key={SECRET}", "credentials=endpoint=http://127.0.0.1:9")
        assert moved.returncode == 2 and "cannot change while keys are distributed" in moved.stderr
    finally:
        local.stop()

    stuck = km("delete", "keymgmt/kms/gone/key/v")
    assert stuck.returncode == 2
    assert km("delete", "keymgmt/kms/gone").returncode == 2  # refused: keys still distributed

    refused = km("delete", "-forget", "keymgmt/kms/gone/key/v", input="yes\n")  # stdin is not a terminal
    assert refused.returncode == 1 and "add -force" in refused.stderr
    assert km("read", "keymgmt/kms/gone/key/v").returncode == 0  # nothing changed

    code, out, err = on_a_terminal(environ, "delete", "-forget", "keymgmt/kms/gone/key/v", answer="no")
    assert code == 1 and "Aborted" in err, (code, out, err)
    assert km("read", "keymgmt/kms/gone/key/v").returncode == 0

    key_id = versions["v"]["versions"]["1"]
    code, out, err = on_a_terminal(environ, "delete", "-forget", "keymgmt/kms/gone/key/v", answer="yes")
    assert code == 0, (out, err)
    assert key_id in err  # shown before the question
    assert "Success! Forgot: keymgmt/kms/gone/key/v" in out
    assert f"KMS key {key_id} (version 1)" in out and f"alias alias/hashicorp/{versions['v']['name']}" in out
    assert f"aws kms schedule-key-deletion --key-id {key_id} --pending-window-in-days 7 --region us-west-2" in out

    forced = km("delete", "-forget", "-force", "-format=json", "keymgmt/kms/gone/key/u")
    assert forced.returncode == 0, forced.stderr
    left = json.loads(forced.stdout)["data"]["left_behind"]
    assert [i["key_id"] for i in left if i["kind"] == "kms_key"] == [versions["u"]["versions"]["1"]]

    assert km("delete", "keymgmt/kms/gone").returncode == 0  # now the provider can go
    trail = km("audit", "list", "-format=json")
    assert trail.returncode == 0
    assert key_id in trail.stdout and versions["u"]["versions"]["1"] in trail.stdout
