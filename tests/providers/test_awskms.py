"""awskms: configuration (credentials, region, endpoint, pacing), retries and the translation of
every botocore failure into one ProviderError line. Error paths use botocore's Stubber (no
network); the happy paths run against moto in-process (see test_kms_contract.py for every method)
and one test goes over real HTTP to a moto server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

import time

import pytest
from botocore.stub import Stubber

from keymgmt_cli.errors import ProviderError
from keymgmt_cli.providers import awskms, awskms_region
from keymgmt_cli.aws.pacing import TokenBucket
from keymgmt_cli.providers.awskms import connect
from keymgmt_cli.providers.awskms_region import is_loopback
from keymgmt_cli.providers.base import ProviderConfig
from support.fakeaws import fake_aws

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-secret"
ARN = "arn:aws:kms:us-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch, tmp_path):
    """No user configuration, no metadata service, dummy env credentials."""
    fake_aws(monkeypatch, access_key="AKIAENVIRONMENT", secret_key="env-secret")


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stubbed(region="us-west-1", **kwargs):
    fake = FakeTime()
    options = dict(pacing=False, sleep=fake.sleep, clock=fake.clock)
    options.update(kwargs)
    provider = connect(ProviderConfig(region=region, access_key="AKIAEXPLICIT", secret_key=SECRET),
                       **options)
    return provider, Stubber(provider._client), fake


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_WRAPPING_KEYS: dict = {}


def wrapping_public_key(spec: str = "RSA_2048", exponent: int = 65537) -> bytes:
    """DER SubjectPublicKeyInfo of an RSA key of ``spec``'s size (cached: RSA-4096 is slow)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    bits = int(spec.split("_")[1])
    if (bits, exponent) not in _WRAPPING_KEYS:
        _WRAPPING_KEYS[bits, exponent] = rsa.generate_private_key(exponent, bits).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _WRAPPING_KEYS[bits, exponent]


KEY_METADATA = {"KeyId": KEY_ID, "Arn": ARN, "KeyState": "PendingImport", "Enabled": False,
                "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "EXTERNAL",
                "MultiRegion": False, "Description": "d"}


# -- configuration ----------------------------------------------------------------------------

def test_explicit_credentials_beat_environment():
    provider = connect(ProviderConfig(region="us-west-1", access_key="AKIAEXPLICIT",
                                      secret_key=SECRET, session_token="tok"), pacing=False)
    creds = provider._client._request_signer._credentials
    assert creds.access_key == "AKIAEXPLICIT"
    assert creds.secret_key == SECRET
    assert creds.token == "tok"


def test_default_chain_uses_environment_credentials():
    provider = connect(ProviderConfig(region="us-west-1"), pacing=False)
    assert provider._client._request_signer._credentials.access_key == "AKIAENVIRONMENT"


def test_incomplete_explicit_credentials_refused_before_any_call():
    with pytest.raises(ProviderError) as info:
        connect(ProviderConfig(region="us-west-1", access_key="AKIAONLY"))
    assert info.value.code == "PartialCredentialsError"
    assert "secret_key is missing" in str(info.value)


def test_region_is_config_region_not_aws_default_region(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    provider = connect(ProviderConfig(region="us-west-1"), pacing=False)
    assert provider.region == "us-west-1"
    assert provider._client.meta.region_name == "us-west-1"
    assert "us-west-1" in provider.endpoint_url


def test_endpoint_from_config_beats_vault_env(monkeypatch):
    monkeypatch.setenv("AWS_KMS_ENDPOINT", "http://127.0.0.1:9")
    provider = connect(ProviderConfig(region="us-west-1", endpoint="http://localhost:4566"))
    assert provider.endpoint_url == "http://localhost:4566"
    assert provider.pacing is False  # loopback: an emulator has no quota


def test_endpoint_from_aws_kms_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_KMS_ENDPOINT", "http://127.0.0.1:4599")
    provider = connect(ProviderConfig(region="us-west-1"))
    assert provider.endpoint_url == "http://127.0.0.1:4599"
    assert provider.pacing is False


def test_endpoint_from_aws_endpoint_url_kms(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:4600")
    provider = connect(ProviderConfig(region="us-west-1"))
    assert provider.endpoint_url == "http://127.0.0.1:4600"
    assert provider.pacing is False


def test_in_region_shares_credentials_endpoint_and_call_log():
    provider = connect(ProviderConfig(region="us-west-1", access_key="AKIAEXPLICIT", secret_key=SECRET,
                                      endpoint="http://127.0.0.1:4566"))
    other = provider.in_region("eu-central-1")
    assert other.region == "eu-central-1"
    assert other._client.meta.region_name == "eu-central-1"
    assert other.endpoint_url == "http://127.0.0.1:4566"
    assert other._client._request_signer._credentials.access_key == "AKIAEXPLICIT"
    assert other.calls is provider.calls
    assert provider.in_region("eu-central-1") is other
    assert provider.in_region("us-west-1") is provider


def test_pacing_defaults(monkeypatch):
    assert connect(ProviderConfig(region="us-west-1")).pacing is True
    assert connect(ProviderConfig(region="us-west-1", endpoint="https://kms.vpce.example")).pacing is True
    assert connect(ProviderConfig(region="us-west-1", endpoint="http://127.0.0.1:1"), pacing=True).pacing is True
    monkeypatch.setenv("KEYMGMT_AWS_PACING", "off")
    assert connect(ProviderConfig(region="us-west-1")).pacing is False
    assert connect(ProviderConfig(region="us-west-1"), pacing=True).pacing is True


@pytest.mark.parametrize("endpoint, expected", [
    ("http://127.0.0.1:4566", True), ("http://localhost:5000", True), ("http://[::1]:80", True),
    ("127.0.0.2:99", True), ("https://kms.us-east-1.amazonaws.com", False), (None, False),
    ("http://localhost.example.com", False),
])
def test_is_loopback(endpoint, expected):
    assert is_loopback(endpoint) is expected


def test_secret_values_never_in_repr():
    config = ProviderConfig(region="us-west-1", access_key="AKIAEXPLICIT", secret_key=SECRET,
                            session_token="session-secret")
    provider = connect(config, pacing=False)
    for text in (repr(config), repr(provider)):
        assert SECRET not in text and "session-secret" not in text


# -- pacing -----------------------------------------------------------------------------------

def test_token_bucket_paces_to_rate():
    fake = FakeTime()
    bucket = TokenBucket(1, clock=fake.clock)
    assert bucket.take() == 0
    assert bucket.take() == pytest.approx(1.0)
    assert bucket.take() == pytest.approx(2.0)  # queued behind the previous reservation
    fake.now += 10
    assert bucket.take() == 0
    fast = TokenBucket(5, clock=fake.clock)
    assert [fast.take() for _ in range(5)] == [0] * 5
    assert fast.take() == pytest.approx(0.2)


def _take_slots(path: str, rate: float, count: int, out) -> None:
    from keymgmt_cli.aws.pacing import SharedSchedule

    schedule = SharedSchedule(path, rate)
    for _ in range(count):
        wait = schedule.take()
        time.sleep(wait)
        out.put(time.time())


def test_shared_schedule_paces_several_processes_together(tmp_path):
    """Three processes drawing from one schedule at 20/s send 30 requests no faster than 20/s."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    path = str(tmp_path / "slot")
    procs = [ctx.Process(target=_take_slots, args=(path, 20.0, 10, out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    stamps = sorted(out.get(timeout=60) for _ in range(30))
    for proc in procs:
        proc.join(timeout=60)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert stamps[-1] - stamps[0] >= 29 * 0.05  # 29 intervals of at least 50 ms (55 with the margin)
    assert sorted(gaps)[len(gaps) // 2] >= 0.045  # the median gap is the quota's interval


def test_get_parameters_for_import_paced_at_one_per_second():
    fake = FakeTime()
    provider = connect(ProviderConfig(region="us-west-1", access_key="AKIAEXPLICIT", secret_key=SECRET,
                                      endpoint="https://kms.pacing-test.invalid"),
                       sleep=fake.sleep, clock=fake.clock)
    assert provider.pacing
    stub = Stubber(provider._client)
    response = {"KeyId": ARN, "ImportToken": b"t", "PublicKey": wrapping_public_key("RSA_4096"),
                "ParametersValidTo": datetime.now(timezone.utc)}
    for _ in range(2):
        stub.add_response("get_parameters_for_import", response)
    with stub:
        for _ in range(2):
            provider.get_parameters_for_import(KEY_ID, "RSAES_OAEP_SHA_256", "RSA_4096")
    # the schedule runs on real time: the second call waits about a second (the quota, plus 10%)
    assert len(fake.sleeps) == 1 and 0.5 < fake.sleeps[0] <= 1.1


# -- error translation --------------------------------------------------------------------------

def test_access_denied_names_operation_region_code_and_permission():
    provider, stub, _ = stubbed()
    stub.add_client_error("create_key", service_error_code="AccessDeniedException",
                          service_message="User: arn:aws:iam::111122223333:user/bob is not authorized "
                                          "to perform: kms:CreateKey", http_status_code=400)
    with stub, pytest.raises(ProviderError) as info:
        provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                            description="d", tags={"k": "v"})
    err = info.value
    assert err.code == "AccessDeniedException"
    assert str(err).startswith("AWS KMS CreateKey in us-west-1 failed: AccessDeniedException: User:")
    assert str(err).endswith("(needs kms:CreateKey and kms:TagResource)")
    assert "kms:TagResource" in err.hint
    assert not err.retryable
    assert "\n" not in str(err)
    assert SECRET not in str(err) + (err.hint or "")


@pytest.mark.parametrize("method, args, operation, permission", [
    ("get_parameters_for_import", (KEY_ID, "RSAES_OAEP_SHA_256", "RSA_4096"), "GetParametersForImport",
     "kms:GetParametersForImport"),
    ("import_key_material", (KEY_ID, b"t", b"m"), "ImportKeyMaterial", "kms:ImportKeyMaterial"),
    ("enable_key", (KEY_ID,), "EnableKey", "kms:EnableKey"),
    ("disable_key", (KEY_ID,), "DisableKey", "kms:DisableKey"),
    ("schedule_key_deletion", (KEY_ID, 7), "ScheduleKeyDeletion", "kms:ScheduleKeyDeletion"),
    ("create_alias", ("alias/a", KEY_ID), "CreateAlias", "kms:CreateAlias"),
    ("update_alias", ("alias/a", KEY_ID), "UpdateAlias", "kms:UpdateAlias"),
    ("delete_alias", ("alias/a",), "DeleteAlias", "kms:DeleteAlias"),
    ("get_alias_target", ("alias/a",), "ListAliases", "kms:ListAliases"),
    ("describe_key", (KEY_ID,), "DescribeKey", "kms:DescribeKey"),
    ("get_public_key", (KEY_ID,), "GetPublicKey", "kms:GetPublicKey"),
    ("list_resource_tags", (KEY_ID,), "ListResourceTags", "kms:ListResourceTags"),
])
def test_access_denied_for_every_operation(method, args, operation, permission):
    provider, stub, _ = stubbed()
    stub.add_client_error(awskms_region._SNAKE[operation], service_error_code="AccessDeniedException",
                          service_message="not authorized", http_status_code=400)
    with stub, pytest.raises(ProviderError) as info:
        getattr(provider, method)(*args)
    assert info.value.code == "AccessDeniedException"
    assert str(info.value) == (f"AWS KMS {operation} in us-west-1 failed: AccessDeniedException: "
                               f"not authorized (needs {permission})")


def test_access_denied_on_replicate_names_replica_create_key():
    provider, stub, _ = stubbed()
    stub.add_client_error("replicate_key", service_error_code="AccessDeniedException",
                          service_message="denied", http_status_code=400)
    with stub, pytest.raises(ProviderError) as info:
        provider.replicate_key(KEY_ID, "eu-west-1", description="d", tags={"a": "b"})
    assert "(needs kms:ReplicateKey and kms:CreateKey and kms:TagResource)" in str(info.value)


def test_server_error_is_retryable_and_credentials_error_has_hint():
    provider, stub, _ = stubbed()
    stub.add_client_error("enable_key", service_error_code="KMSInternalException",
                          service_message="boom", http_status_code=500)
    stub.add_client_error("enable_key", service_error_code="UnrecognizedClientException",
                          service_message="The security token included in the request is invalid.",
                          http_status_code=400)
    with stub:
        with pytest.raises(ProviderError) as first:
            provider.enable_key(KEY_ID)
        with pytest.raises(ProviderError) as second:
            provider.enable_key(KEY_ID)
    assert first.value.retryable and first.value.code == "KMSInternalException"
    assert not second.value.retryable
    assert "credentials=access_key=" in second.value.hint
    assert SECRET not in str(second.value) + second.value.hint


def test_no_credentials(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ProviderError) as info:  # resolved by connect, before anything is recorded
        connect(ProviderConfig(region="us-east-1", endpoint=f"http://127.0.0.1:{closed_port()}"),
                max_attempts=1)
    err = info.value
    assert err.code == "NoCredentialsError"
    assert str(err) == "AWS KMS connect in us-east-1 failed: NoCredentialsError: no AWS credentials found"
    assert "credentials=access_key=... credentials=secret_key=..." in err.hint
    assert "AWS_ACCESS_KEY_ID" in err.hint and "AWS_PROFILE" in err.hint
    assert not err.retryable


def test_partial_environment_credentials(monkeypatch):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ProviderError) as info:  # botocore resolves credentials with the client
        connect(ProviderConfig(region="us-east-1", endpoint=f"http://127.0.0.1:{closed_port()}"))
    assert str(info.value).startswith("AWS KMS connect in us-east-1 failed: PartialCredentialsError: ")
    assert info.value.code == "PartialCredentialsError"
    assert "AWS_SECRET_ACCESS_KEY" in str(info.value)
    assert "credentials=access_key=" in info.value.hint


def test_unknown_profile(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ProviderError) as info:
        connect(ProviderConfig(region="us-east-1")).describe_key(KEY_ID)
    assert info.value.code == "ProfileNotFound"
    assert "no-such-profile" in str(info.value)


def test_connection_refused_is_one_retryable_line():
    port = closed_port()
    provider = connect(ProviderConfig(region="us-east-1", endpoint=f"http://127.0.0.1:{port}"),
                       max_attempts=1, connect_timeout=2)
    with pytest.raises(ProviderError) as info:
        provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                            description="", tags={})
    err = info.value
    assert err.code == "EndpointConnectionError"
    assert str(err).startswith("AWS KMS CreateKey in us-east-1 failed: EndpointConnectionError: ")
    assert f"127.0.0.1:{port}" in str(err)
    assert err.retryable
    assert "AWS_ENDPOINT_URL_KMS" in err.hint
    assert err.__cause__ is None and err.__suppress_context__  # no botocore exception escapes


def test_invalid_endpoint_url():
    with pytest.raises(ProviderError) as info:
        connect(ProviderConfig(region="us-east-1", endpoint="not a url"))
    assert "connect in us-east-1 failed" in str(info.value)


def test_param_validation_error_translated():
    provider, _, _ = stubbed()
    with pytest.raises(ProviderError) as info:
        provider.enable_key("")
    assert info.value.code == "ParamValidationError"
    assert str(info.value).startswith("AWS KMS EnableKey in us-west-1 failed: ParamValidationError: ")
    assert "\n" not in str(info.value)


# -- retries ------------------------------------------------------------------------------------

def test_throttling_retried_beyond_botocore():
    provider, stub, fake = stubbed()
    for _ in range(2):
        stub.add_client_error("create_key", service_error_code="ThrottlingException",
                              service_message="Rate exceeded", http_status_code=400)
    stub.add_response("create_key", {"KeyMetadata": KEY_METADATA},
                      {"Origin": "EXTERNAL", "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT",
                       "Description": "d", "MultiRegion": False,
                       "Tags": [{"TagKey": "k", "TagValue": "v"}]})
    with stub:
        key_id = provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                                     description="d", tags={"k": "v"})
    stub.assert_no_pending_responses()
    assert key_id == KEY_ID
    assert provider.calls == ["CreateKey"] * 3
    assert len(fake.sleeps) == 2 and fake.sleeps[1] > 0


def test_throttling_gives_up_with_retryable_error():
    provider, stub, fake = stubbed(throttle_retries=2)
    for _ in range(3):
        stub.add_client_error("enable_key", service_error_code="ThrottlingException",
                              service_message="Rate exceeded", http_status_code=400)
    with stub, pytest.raises(ProviderError) as info:
        provider.enable_key(KEY_ID)
    assert info.value.code == "ThrottlingException" and info.value.retryable
    assert "quota" in info.value.hint
    assert len(fake.sleeps) == 2


def test_not_found_after_create_key_retried():
    provider, stub, fake = stubbed()
    stub.add_response("create_key", {"KeyMetadata": KEY_METADATA})
    for _ in range(2):
        stub.add_client_error("get_parameters_for_import", service_error_code="NotFoundException",
                              service_message=f"Key '{ARN}' does not exist", http_status_code=400)
    valid_to = datetime.now(timezone.utc) + timedelta(hours=24)
    stub.add_response("get_parameters_for_import",
                      {"KeyId": ARN, "ImportToken": b"token", "PublicKey": wrapping_public_key("RSA_4096"),
                       "ParametersValidTo": valid_to})
    stub.add_client_error("import_key_material", service_error_code="NotFoundException",
                          service_message="not yet", http_status_code=400)
    stub.add_response("import_key_material", {},
                      {"KeyId": KEY_ID, "ImportToken": b"token", "EncryptedKeyMaterial": b"blob",
                       "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
    stub.add_client_error("create_alias", service_error_code="NotFoundException",
                          service_message="not yet", http_status_code=400)
    stub.add_response("create_alias", {}, {"AliasName": "alias/hashicorp/k-1", "TargetKeyId": KEY_ID})
    with stub:
        key_id = provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                                     description="d", tags={})
        params = provider.get_parameters_for_import(key_id, "RSAES_OAEP_SHA_256", "RSA_4096")
        provider.import_key_material(key_id, params.import_token, b"blob")
        provider.create_alias("alias/hashicorp/k-1", key_id)
    stub.assert_no_pending_responses()
    assert params.key_id == ARN and params.import_token == b"token" and params.valid_to == valid_to
    assert provider.calls == ["CreateKey", "GetParametersForImport", "GetParametersForImport",
                              "GetParametersForImport", "ImportKeyMaterial", "ImportKeyMaterial",
                              "CreateAlias", "CreateAlias"]
    assert len(fake.sleeps) == 4 and sum(fake.sleeps) < 2


def test_not_found_retry_is_bounded():
    provider, stub, fake = stubbed(not_found_window=5.0)
    for _ in range(40):
        stub.add_client_error("get_parameters_for_import", service_error_code="NotFoundException",
                              service_message="gone", http_status_code=400)
    with stub, pytest.raises(ProviderError) as info:
        provider.get_parameters_for_import(KEY_ID, "RSAES_OAEP_SHA_256", "RSA_4096")
    assert info.value.code == "NotFoundException"
    assert 4.9 <= sum(fake.sleeps) <= 5.01
    assert 3 < len(provider.calls) < 15


def test_not_found_not_retried_for_other_operations():
    provider, stub, fake = stubbed()
    stub.add_client_error("enable_key", service_error_code="NotFoundException",
                          service_message="gone", http_status_code=400)
    with stub, pytest.raises(ProviderError) as info:
        provider.enable_key(KEY_ID)
    assert info.value.code == "NotFoundException" and fake.sleeps == []


def test_replica_still_creating_is_waited_for():
    provider, stub, fake = stubbed()
    stub.add_client_error("get_parameters_for_import", service_error_code="KMSInvalidStateException",
                          service_message=f"{ARN} is creating.", http_status_code=400)
    stub.add_response("get_parameters_for_import", {"KeyId": ARN, "ImportToken": b"t",
                                                     "PublicKey": wrapping_public_key("RSA_4096")})
    with stub:
        params = provider.get_parameters_for_import(KEY_ID, "RSAES_OAEP_SHA_256", "RSA_4096")
    assert params.valid_to is None and len(fake.sleeps) == 1


# -- tolerated errors, pagination, parameters ------------------------------------------------------

def test_schedule_key_deletion_tolerates_pending_deletion_and_not_found():
    provider, stub, _ = stubbed()
    stub.add_client_error("schedule_key_deletion", service_error_code="KMSInvalidStateException",
                          service_message=f"{ARN} is pending deletion.", http_status_code=400)
    stub.add_client_error("schedule_key_deletion", service_error_code="NotFoundException",
                          service_message="gone", http_status_code=400)
    stub.add_client_error("schedule_key_deletion", service_error_code="KMSInvalidStateException",
                          service_message="state", http_status_code=400)
    stub.add_response("describe_key", {"KeyMetadata": dict(KEY_METADATA, KeyState="PendingReplicaDeletion")})
    stub.add_client_error("schedule_key_deletion", service_error_code="KMSInvalidStateException",
                          service_message=f"{ARN} is updating.", http_status_code=400)
    stub.add_response("describe_key", {"KeyMetadata": dict(KEY_METADATA, KeyState="Updating")})
    with stub:
        provider.schedule_key_deletion(KEY_ID, 7)
        provider.schedule_key_deletion(KEY_ID, 30)
        provider.schedule_key_deletion(KEY_ID, 30)
        with pytest.raises(ProviderError) as info:
            provider.schedule_key_deletion(KEY_ID, 30)
    assert info.value.code == "KMSInvalidStateException"


def test_schedule_key_deletion_window_checked_before_any_call():
    provider, _, _ = stubbed()
    with pytest.raises(ProviderError) as info:
        provider.schedule_key_deletion(KEY_ID, 6)
    assert info.value.code == "ValidationException" and provider.calls == []


def test_delete_alias_tolerates_not_found_only():
    provider, stub, _ = stubbed()
    stub.add_client_error("delete_alias", service_error_code="NotFoundException",
                          service_message="Alias is not found.", http_status_code=400)
    stub.add_client_error("delete_alias", service_error_code="KMSInternalException",
                          service_message="boom", http_status_code=500)
    with stub:
        provider.delete_alias("alias/a")
        with pytest.raises(ProviderError):
            provider.delete_alias("alias/a")


def test_describe_key_none_when_missing_error_otherwise():
    provider, stub, _ = stubbed()
    stub.add_client_error("describe_key", service_error_code="NotFoundException",
                          service_message="gone", http_status_code=400)
    stub.add_response("describe_key", {"KeyMetadata": KEY_METADATA}, {"KeyId": KEY_ID})
    with stub:
        assert provider.describe_key(KEY_ID) is None
        described = provider.describe_key(KEY_ID)
    assert (described.state, described.enabled, described.arn, described.description) == (
        "PendingImport", False, ARN, "d")


def test_get_alias_target_follows_pages():
    provider, stub, _ = stubbed()
    stub.add_response("list_aliases", {"Aliases": [{"AliasName": "alias/a", "TargetKeyId": "k1"}],
                                       "Truncated": True, "NextMarker": "m1"}, {"Limit": 100})
    stub.add_response("list_aliases", {"Aliases": [{"AliasName": "alias/b", "TargetKeyId": "k2"}],
                                       "Truncated": False}, {"Limit": 100, "Marker": "m1"})
    stub.add_response("list_aliases", {"Aliases": [{"AliasName": "alias/a", "TargetKeyId": "k1"}],
                                       "Truncated": False}, {"Limit": 100})
    with stub:
        assert provider.get_alias_target("alias/b") == "k2"
        assert provider.get_alias_target("alias/c") is None
    assert provider.calls == ["ListAliases"] * 3


def test_list_resource_tags_follows_pages():
    provider, stub, _ = stubbed()
    stub.add_response("list_resource_tags", {"Tags": [{"TagKey": "a", "TagValue": "1"}],
                                             "Truncated": True, "NextMarker": "m"},
                      {"KeyId": KEY_ID, "Limit": 50})
    stub.add_response("list_resource_tags", {"Tags": [{"TagKey": "b", "TagValue": "2"}], "Truncated": False},
                      {"KeyId": KEY_ID, "Limit": 50, "Marker": "m"})
    with stub:
        assert provider.list_resource_tags(KEY_ID) == {"a": "1", "b": "2"}


def test_import_with_expiry_sends_valid_to_and_never_import_type():
    provider, stub, _ = stubbed()
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    stub.add_response("import_key_material", {},
                      {"KeyId": KEY_ID, "ImportToken": b"t", "EncryptedKeyMaterial": b"m",
                       "ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": when})
    with stub:
        provider.import_key_material(KEY_ID, b"t", b"m", valid_to=when)
    stub.assert_no_pending_responses()


def test_create_key_parameters_multi_region_without_tags():
    provider, stub, _ = stubbed()
    stub.add_response("create_key", {"KeyMetadata": dict(KEY_METADATA, KeyId="mrk-1", MultiRegion=True)},
                      {"Origin": "EXTERNAL", "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT",
                       "Description": "x", "MultiRegion": True})
    with stub:
        assert provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                                   description="x", tags={}, multi_region=True) == "mrk-1"


def test_replicate_key_parameters_and_already_exists():
    provider, stub, _ = stubbed()
    stub.add_response("replicate_key", {"ReplicaKeyMetadata": dict(KEY_METADATA, KeyId="mrk-1")},
                      {"KeyId": "mrk-1", "ReplicaRegion": "eu-west-1", "Description": "r",
                       "Tags": [{"TagKey": "a", "TagValue": "b"}]})
    stub.add_client_error("replicate_key", service_error_code="AlreadyExistsException",
                          service_message="exists", http_status_code=400)
    with stub:
        assert provider.replicate_key("mrk-1", "eu-west-1", description="r", tags={"a": "b"}) == "mrk-1"
        arn = "arn:aws:kms:us-west-1:111122223333:key/mrk-1"
        assert provider.replicate_key(arn, "eu-west-1", description="r", tags={}) == "mrk-1"


def test_on_call_hook_sees_region_and_operation():
    seen = []
    provider, stub, _ = stubbed(on_call=lambda region, op: seen.append((region, op)))
    stub.add_response("enable_key", {})
    with stub:
        provider.enable_key(KEY_ID)
    assert seen == [("us-west-1", "EnableKey")] and provider.call_log == seen


def test_only_the_aws_border_imports_boto3():
    """Every AWS user (KMS providers, the DynamoDB state, its KMS seal) goes through the one AWS
    border package, keymgmt_cli/aws: nothing else imports boto3 or botocore."""
    import pathlib

    root = pathlib.Path(awskms.__file__).parents[1]
    users = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if "localkms" not in p.relative_to(root).parts
                   and any(line.lstrip().startswith(("import boto", "from boto"))
                           for line in p.read_text().splitlines()))
    assert users and all(user.startswith("aws/") for user in users), users


# -- end to end against moto with keymgmt's import double ------------------------------------------

def _byok(provider, algorithm="RSAES_OAEP_SHA_256", wrapping_key_spec="RSA_4096"):
    from keymgmt_cli import transfer

    key_id = provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                                 description="keymgmt example-key v1",
                                 tags={"hashicorp:keymgmt:key_name": "example-key"})
    params = provider.get_parameters_for_import(key_id, algorithm, wrapping_key_spec)
    blob = transfer.wrap_key_material(os.urandom(32), params.public_key_der, algorithm)
    provider.import_key_material(key_id, params.import_token, blob)
    provider.create_alias("alias/hashicorp/example-key-1700000000", key_id)
    return key_id


def test_full_import_in_process_with_engine_defaults():
    from moto import mock_aws

    from keymgmt_cli import transfer
    from keymgmt_cli.localkms import moto_import

    moto_import.install()
    algorithm, wrapping_key_spec = transfer.default_wrapping("SYMMETRIC_DEFAULT")
    with mock_aws():
        provider = connect(ProviderConfig(region="us-west-1"), pacing=False)
        key_id = _byok(provider, algorithm, wrapping_key_spec)
        described = provider.describe_key(key_id)
        assert (described.state, described.enabled) == ("Enabled", True)
        assert provider.get_alias_target("alias/hashicorp/example-key-1700000000") == key_id
    assert provider.calls == ["CreateKey", "GetParametersForImport", "ImportKeyMaterial", "CreateAlias",
                              "DescribeKey", "ListAliases"]


def test_full_import_over_http_to_local_moto_server(monkeypatch):
    from keymgmt_cli.localkms.server import start

    with start() as local:
        provider = connect(ProviderConfig(region="eu-west-1", access_key="test", secret_key="test",
                                          endpoint=local.endpoint_url))
        assert provider.pacing is False
        key_id = _byok(provider, wrapping_key_spec="RSA_2048")
        assert provider.describe_key(key_id).state == "Enabled"
        monkeypatch.setenv("AWS_KMS_ENDPOINT", local.endpoint_url)
        via_env = connect(ProviderConfig(region="eu-west-1"))  # env credentials, Vault's endpoint variable
        assert via_env.describe_key(key_id).state == "Enabled"
        assert via_env.list_resource_tags(key_id) == {"hashicorp:keymgmt:key_name": "example-key"}
        with pytest.raises(ProviderError) as info:
            via_env.enable_key("1234abcd-0000-0000-0000-000000000000")
        assert info.value.code == "NotFoundException"
        assert str(info.value).startswith("AWS KMS EnableKey in eu-west-1 failed: NotFoundException: ")
