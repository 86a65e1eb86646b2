"""`keymgmt due -apply` from two processes at once, as two cron runners would start it (issue 13):
against the embedded local KMS, with the keymgmt processes' clocks moved two hours ahead by
libfaketime (the key's auto_rotate_period is the one-hour minimum), exactly one rotation happens,
both runners exit 0, and nothing is due afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import boto3
import pytest

from keymgmt_cli.localkms import server
from support.cli import km as run

pytestmark = pytest.mark.emulator

REGION = "us-west-2"
FAKETIME = shutil.which("faketime")


@pytest.fixture
def kms(monkeypatch):
    monkeypatch.delenv("KEYMGMT_LOCALKMS_CLOCK_OFFSET", raising=False)
    with server.start() as local:
        yield local


@pytest.mark.skipif(FAKETIME is None, reason="needs libfaketime's faketime (.ci/run installs it)")
def test_two_runners_at_once_rotate_once(cli_environ, kms):
    def km(*args):
        result = run(cli_environ, *args)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    assert km("write", "keymgmt/kms/e", "provider=awskms", f"key_collection={REGION}",
              "credentials=access_key=AKIADUERUNNERS", "credentials=secret_key=due-secret",
              f"credentials=endpoint={kms.endpoint_url}").returncode == 0
    assert km("write", "keymgmt/key/k", "type=aes256-gcm96", "auto_rotate_period=1h").returncode == 0
    assert km("write", "keymgmt/kms/e/key/k", "purpose=encrypt,decrypt").returncode == 0
    assert km("due", "-within=10m").returncode == 0  # not yet: the period starts at version 1's creation

    later = [FAKETIME, "-f", "+2h", sys.executable, "-m", "keymgmt_cli"]
    check = run(cli_environ, "due", "-format=json", "-within=10m", prefix=later)
    assert check.returncode == 2, check.stderr
    assert [i["kind"] for i in json.loads(check.stdout)["data"]["items"]] == ["rotation"]

    runners = [subprocess.Popen(later + ["due", "-apply"], env=cli_environ, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(r.wait(timeout=300), r.stdout.read(), r.stderr.read()) for r in runners]
    assert sum("-> rotated" in out for _code, out, _err in outcomes) == 1, outcomes  # the other re-checked
    for code, _out, err in outcomes:
        assert code == 0, err
        assert "Traceback" not in err

    key = json.loads(km("read", "-format=json", "keymgmt/key/k").stdout)["data"]
    assert key["latest_version"] == 2  # one rotation, not two
    dist = json.loads(km("read", "-format=json", "keymgmt/kms/e/key/k").stdout)["data"]
    assert sorted(dist["versions"]) == ["1", "2"]
    client = boto3.client("kms", region_name=REGION, endpoint_url=kms.endpoint_url,
                          aws_access_key_id="AKIADUERUNNERS", aws_secret_access_key="due-secret")
    keys = [k["KeyId"] for k in client.list_keys()["Keys"]]
    assert sorted(keys) == sorted(dist["versions"].values())  # no second version's key, no orphan
    alias = client.list_aliases()["Aliases"]
    ours = [a for a in alias if a["AliasName"] == f"alias/hashicorp/{dist['name']}"]
    assert [a["TargetKeyId"] for a in ours] == [dist["versions"]["2"]]
    assert run(cli_environ, "due", "-within=10m", prefix=later).returncode == 0  # nothing left to do
    assert km("verify").returncode == 0
