"""Credentials beyond access keys (issue 16 item 5): a named profile of the shared files, AssumeRole
(external_id, session_name, duration) and AssumeRoleWithWebIdentity, all through botocore's own
credential machinery (aws.session.credential_session), against moto's STS and KMS in-process.

Each account is its own moto backend, so a key made through a role of account A is invisible to
a role of account B: the tests prove the provider really uses the role's credentials."""

from __future__ import annotations

import datetime
import os
import socket

import pytest

from keymgmt_cli.errors import ProviderError
from keymgmt_cli.providers.awskms import connect
from keymgmt_cli.providers.base import ProviderConfig
from support.fakeaws import fake_aws

ROLE_A = "arn:aws:iam::111122223333:role/keymgmt-prod"
ROLE_B = "arn:aws:iam::444455556666:role/keymgmt-staging"
PROFILE_SECRET = "profileSECRETvalue0123456789abcdefghijkl"


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch):
    fake_aws(monkeypatch, access_key="AKIAENVIRONMENT0001", secret_key="env-secret")


@pytest.fixture
def moto_aws():
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def shared_files(tmp_path, monkeypatch):
    creds = tmp_path / "credentials"
    creds.write_text(f"[ops]\naws_access_key_id = AKIAPROFILEOPS00001\naws_secret_access_key = {PROFILE_SECRET}\n")
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return tmp_path


def assumed_roles(account: str) -> list:
    from moto.sts.models import sts_backends

    return list(sts_backends[account]["aws"].assumed_roles)


def frozen(provider):
    return provider._family.session.get_credentials().get_frozen_credentials()


def make_key(provider) -> str:
    return provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                               description="t", tags={})


def test_a_named_profile_of_the_shared_files(moto_aws, shared_files):
    provider = connect(ProviderConfig(region="us-west-2", profile="ops"))
    assert provider.credential_source == "shared-credentials-file"
    assert frozen(provider).access_key == "AKIAPROFILEOPS00001"  # not the environment's keys
    assert provider.region == "us-west-2"  # key_collection wins over the profile's region
    assert provider.describe_key(make_key(provider)) is not None


def test_without_anything_the_default_chain_is_reported(moto_aws):
    assert connect(ProviderConfig(region="us-west-2")).credential_source == "env"
    assert connect(ProviderConfig(region="us-west-2", access_key="AKIAX", secret_key="s")).credential_source == \
        "explicit"


@pytest.mark.parametrize("how", ["field", "environment"])
def test_an_unknown_profile_fails_at_connect(moto_aws, shared_files, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv("AWS_PROFILE", "nosuch")
    with pytest.raises(ProviderError) as caught:
        connect(ProviderConfig(region="us-west-2", profile="nosuch" if how == "field" else None))
    assert caught.value.code == "ProfileNotFound"
    assert str(caught.value).startswith("AWS KMS connect in us-west-2 failed: ProfileNotFound: ")


def test_no_credentials_anywhere_fails_at_connect(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ProviderError) as caught:
        connect(ProviderConfig(region="us-west-2", endpoint="http://127.0.0.1:9"))
    assert caught.value.code == "NoCredentialsError"


def test_assume_role_with_every_option_and_accounts_kept_apart(moto_aws):
    prod = connect(ProviderConfig(region="us-west-2", role_arn=ROLE_A, external_id="ext-1234",
                                  session_name="keymgmt-ci", duration=1800))
    staging = connect(ProviderConfig(region="us-west-2", role_arn=ROLE_B))
    assert prod.credential_source == staging.credential_source == "assume-role"
    [role] = assumed_roles("111122223333")
    assert (role.role_arn, role.external_id, role.session_name) == (ROLE_A, "ext-1234", "keymgmt-ci")
    lifetime = (role.expiration - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)).total_seconds()
    assert 1700 < lifetime <= 1800  # DurationSeconds=1800 (moto's default is 3600)
    assert frozen(prod).access_key != "AKIAENVIRONMENT0001"
    key_id = make_key(prod)
    assert prod.describe_key(key_id) is not None
    assert staging.describe_key(key_id) is None  # another account: the role's keys, not the source's
    [other] = assumed_roles("444455556666")
    assert other.session_name.startswith("botocore-session-")  # botocore's default name


def test_role_credentials_are_refreshed_as_boto3_does(moto_aws, monkeypatch):
    provider = connect(ProviderConfig(region="us-west-2", role_arn=ROLE_A, duration=1800))
    credentials = provider._family.session.get_credentials()
    first = credentials.get_frozen_credentials().access_key
    assert len(assumed_roles("111122223333")) == 1
    make_key(provider)
    assert len(assumed_roles("111122223333")) == 1  # reused while valid
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1790)
    # botocore's clocks (the credentials' and its fetcher cache's): the session is about to expire
    import botocore.credentials

    monkeypatch.setattr(botocore.credentials, "_local_now", lambda: later)
    credentials._time_fetcher = lambda: later
    make_key(provider)
    assert len(assumed_roles("111122223333")) == 2
    assert credentials.get_frozen_credentials().access_key != first


def test_assume_role_from_a_profile(moto_aws, shared_files, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "nosuch")  # the provider's profile wins, for the role's session too
    provider = connect(ProviderConfig(region="us-west-2", profile="ops", role_arn=ROLE_A))
    assert provider.credential_source == "assume-role"
    from moto.sts.models import sts_backends  # the profile's keys signed the AssumeRole call

    assert len(sts_backends["111122223333"]["aws"].assumed_roles) == 1


def test_web_identity(moto_aws, tmp_path):
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl\n")
    provider = connect(ProviderConfig(region="us-west-2", role_arn=ROLE_A, session_name="gha",
                                      web_identity_token_file=str(token)))
    assert provider.credential_source == "assume-role-with-web-identity"
    [role] = assumed_roles("111122223333")
    assert (role.role_arn, role.session_name) == (ROLE_A, "gha")
    assert provider.describe_key(make_key(provider)) is not None


@pytest.mark.parametrize("content", [None, ""])
def test_an_unreadable_or_empty_token_file_is_one_line(moto_aws, tmp_path, content):
    token = tmp_path / "token"
    if content is not None:
        token.write_text(content)
    with pytest.raises(ProviderError) as caught:
        connect(ProviderConfig(region="us-west-2", role_arn=ROLE_A, web_identity_token_file=str(token)))
    assert caught.value.code == "CredentialRetrievalError"
    assert ("cannot be read (FileNotFoundError)" if content is None else "is empty") in str(caught.value)
    assert str(caught.value).startswith("AWS STS AssumeRoleWithWebIdentity in us-west-2 failed: ")
    assert "\n" not in str(caught.value)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_sts_is_a_retryable_sts_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ProviderError) as caught:
        connect(ProviderConfig(region="us-west-2", role_arn=ROLE_A))
    assert str(caught.value).startswith("AWS STS AssumeRole in us-west-2 failed: EndpointConnectionError")
    assert caught.value.retryable and "role_arn" in caught.value.hint
    assert "env-secret" not in str(caught.value)


def test_plain_http_sts_off_loopback_is_refused_before_sending(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://sts.example.com")
    with pytest.raises(ProviderError) as caught:
        connect(ProviderConfig(region="us-west-2", role_arn=ROLE_A))
    assert caught.value.code == "InsecureEndpoint"


def test_secrets_never_in_the_config_repr():
    config = ProviderConfig(region="us-west-2", access_key="AKIAX", secret_key=PROFILE_SECRET,
                            external_id="ext-secret-id", role_arn=ROLE_A)
    assert PROFILE_SECRET not in repr(config) and "ext-secret-id" not in repr(config)
    assert os.environ.get("AWS_PROFILE") is None


def test_the_audit_asks_each_role_for_its_own_identity():
    """Two providers in one region and endpoint but with other roles are two identities: the audit
    trail must not record the first role's ARN for calls made as the second."""
    from keymgmt_cli.audit.calls import CallLog, RecordingFactory

    class Inner:
        region = "us-west-2"

        def __init__(self, arn):
            self.arn = arn

        def caller_identity(self):
            return {"Arn": self.arn}

    factory = RecordingFactory(lambda config: Inner(config.role_arn or "arn:aws:iam::1:user/keys"), CallLog())
    for config in (ProviderConfig(region="us-west-2", role_arn=ROLE_A), ProviderConfig(region="us-west-2", role_arn=ROLE_B),
                   ProviderConfig(region="us-west-2", role_arn=ROLE_A), ProviderConfig(region="us-west-2")):
        factory(config)
    assert [i["arn"] for i in factory.identities] == [ROLE_A, ROLE_B, "arn:aws:iam::1:user/keys"]
