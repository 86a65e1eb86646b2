"""No phantom work (issue 16 item 4): a distribution that cannot get credentials fails before any
AWS call and leaves no `distributing` record, no `status` entry and no drift. Through the real
CLI, against the embedded local KMS, whose model data proves that no KMS key was made."""

from __future__ import annotations

import json

import pytest

from keymgmt_cli.localkms import server
from support.cli import km as run

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def kms():
    with server.start() as local:
        yield local


@pytest.fixture
def environ(cli_environ, tmp_path):
    config = tmp_path / "aws-config"
    config.write_text("[profile present]\nregion = us-west-2\n")
    creds = tmp_path / "aws-credentials"
    creds.write_text("[present]\naws_access_key_id = AKIAPRESENTPROFILE01\n"
                     "aws_secret_access_key = present-profile-secret\n")
    return dict(cli_environ, AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(creds),
                AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="1")


def kms_requests(kms) -> int:
    """How many KMS objects the local KMS holds (moto's model data, every account and region): a
    CreateKey adds one, so an unchanged count means no key was made."""
    import urllib.request

    with urllib.request.urlopen(kms.endpoint_url + "/moto-api/data.json") as reply:  # moto's own API
        data = json.load(reply)
    return sum(len(v) for v in data.get("kms", {}).values())


CASES = {
    "unknown AWS_PROFILE": ({"AWS_PROFILE": "nosuch"}, [], "ProfileNotFound"),
    "unknown profile": ({}, ["credentials=profile=nosuch"], "ProfileNotFound"),
    "no credentials anywhere": ({}, [], "NoCredentialsError"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_distribution_without_credentials_leaves_nothing(environ, kms, case):
    extra_env, creds, code = CASES[case]

    def km(*args, env=environ):
        return run(env, *args)

    assert km("write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
              f"credentials=endpoint={kms.endpoint_url}", *creds).returncode == 0
    assert km("write", "keymgmt/key/k", "type=aes256-gcm96").returncode == 0
    before = kms_requests(kms)
    failed = km("write", "keymgmt/kms/e/key/k", "purpose=encrypt,decrypt", env=dict(environ, **extra_env))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert code in failed.stderr and failed.stdout == ""
    assert "Traceback" not in failed.stderr and len(failed.stderr.strip().splitlines()) <= 2  # error + hint
    assert kms_requests(kms) == before  # no KMS key made
    listed = km("list", "keymgmt/kms/e/key")
    assert listed.returncode == 2 and "No value found" in listed.stderr  # no distributing record
    status = json.loads(km("status", "-format=json").stdout)
    assert status["unfinished"] == []
    assert [m["distributions"] for m in status["mounts"]] == [0]
    working = dict(environ, AWS_PROFILE="present") if case != "unknown profile" else environ
    if case == "unknown profile":  # fix the provider instead: the profile that exists
        assert km("write", "keymgmt/kms/e", "credentials=profile=present").returncode == 0
    verify = km("verify", env=working)
    assert verify.returncode == 0, verify.stdout + verify.stderr  # and no drift to report
    # once credentials resolve, the same command works, and read says where they came from
    done = km("write", "keymgmt/kms/e/key/k", "purpose=encrypt,decrypt", env=working)
    assert done.returncode == 0, done.stderr
    assert kms_requests(kms) > before  # the count does see a key being made
    provider = json.loads(km("read", "-format=json", "keymgmt/kms/e").stdout)["data"]
    assert provider["credential_source"] == "shared-credentials-file"
    assert "present-profile-secret" not in json.dumps(provider)


def test_a_refused_role_leaves_nothing(environ, kms):
    """With role_arn the AssumeRole call is made before the intent is recorded: STS refusing it (here:
    unreachable) fails the command with nothing recorded and no KMS call."""
    env = dict(environ, AWS_PROFILE="present", AWS_ENDPOINT_URL_STS="http://127.0.0.1:9")

    def km(*args):
        return run(env, *args)

    assert km("write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
              f"credentials=endpoint={kms.endpoint_url}",
              "credentials=role_arn=arn:aws:iam::111122223333:role/keymgmt").returncode == 0
    assert km("write", "keymgmt/key/k", "type=aes256-gcm96").returncode == 0
    before = kms_requests(kms)
    failed = km("write", "keymgmt/kms/e/key/k", "purpose=encrypt,decrypt")
    assert failed.returncode == 2
    assert "AWS STS AssumeRole in us-west-2 failed: EndpointConnectionError" in failed.stderr
    assert kms_requests(kms) == before
    assert json.loads(km("status", "-format=json").stdout)["unfinished"] == []
    ok = run(dict(env, AWS_ENDPOINT_URL_STS=kms.endpoint_url), "write", "keymgmt/kms/e/key/k",
             "purpose=encrypt,decrypt")
    assert ok.returncode == 0, ok.stderr  # moto's STS on 127.0.0.1: the role is assumed
    assert kms_requests(kms) > before
    provider = json.loads(km("read", "-format=json", "keymgmt/kms/e").stdout)["data"]
    assert provider["credential_source"] == "assume-role"
    assert provider["credential_keys"] == ["endpoint", "role_arn"]
