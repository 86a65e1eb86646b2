"""The AWS border (issue 12 item 1): one reading of botocore failures into one error type whose
fields are declared, filled the same way for KMS providers, the DynamoDB state and the seal."""

from __future__ import annotations

import inspect
import pathlib
import re

import botocore.session
import pytest
from botocore.stub import Stubber

from keymgmt_cli import errors
from keymgmt_cli.aws import failures
from keymgmt_cli.errors import ProviderError

REGION = "us-east-1"


def stub_client(service):
    client = botocore.session.get_session().create_client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


def test_provider_error_declares_its_fields():
    params = inspect.signature(ProviderError.__init__).parameters
    for name in ("code", "hint", "retryable", "service", "operation", "region", "retry_attempts"):
        assert name in params


def test_no_field_is_bolted_onto_an_error_after_it_is_made():
    root = pathlib.Path(errors.__file__).parent
    bolted = [f"{p.relative_to(root)}:{n}" for p in root.rglob("*.py")
              for n, line in enumerate(p.read_text().splitlines(), 1)
              if re.search(r"\b(err|error|exc)\.(operation|region|service|retry_attempts|code)\s*=(?!=)", line)]
    assert bolted == []


def test_dynamodb_and_seal_failures_carry_the_same_fields():
    from keymgmt_cli.store.dynamostore import DynamoStore
    from keymgmt_cli.store.kmsseal import KmsSeal, SealSpec

    client, stub = stub_client("dynamodb")
    stub.add_client_error("get_item", service_error_code="ThrottlingException", service_message="slow",
                          http_status_code=400)
    with stub, pytest.raises(ProviderError) as info:
        DynamoStore("team", REGION, client=client).get("m/keys/k")
    err = info.value
    assert (err.service, err.operation, err.region, err.code, err.retryable) == (
        "dynamodb", "GetItem", REGION, "ThrottlingException", True)

    client, stub = stub_client("kms")
    stub.add_client_error("decrypt", service_error_code="AccessDeniedException", service_message="no")
    with stub, pytest.raises(ProviderError) as info:
        KmsSeal(SealSpec("alias/seal", REGION), client).decrypt(b"blob")
    err = info.value
    assert (err.service, err.operation, err.region, err.code, err.retryable) == (
        "kms", "Decrypt", REGION, "AccessDeniedException", False)


def test_failure_of_reads_every_kind_without_botocore_above_it():
    import botocore.exceptions as bce

    cases = [(bce.NoCredentialsError(), failures.NO_CREDENTIALS),
             (bce.ProfileNotFound(profile="p"), failures.CREDENTIALS),
             (bce.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), failures.CONNECTION),
             (bce.SSLError(endpoint_url="https://x", error="bad cert"), failures.TLS),
             (bce.ParamValidationError(report="KeyId missing"), failures.VALIDATION),
             (ValueError("bad url"), failures.OTHER)]
    for exc, kind in cases:
        failure = failures.failure_of(exc, "kms", "DescribeKey", REGION)
        assert failure.kind == kind and failure.code == type(exc).__name__
        assert "\n" not in failure.message


@pytest.mark.parametrize("token", ["session-token-never-shown\r", "session-token-never-shown\nX-Injected: 1"])
def test_a_session_token_holding_a_line_break_is_never_shown(token):
    """http.client refuses a header value with a line break and quotes it whole in its ValueError
    ("Invalid header value b'...'"), which botocore wraps in HTTPClientError: a session token
    exported with a trailing CR (a file edited on Windows, a CI secret with its newline) came out
    in the ProviderError, on stderr and in the audit trail."""
    client = botocore.session.get_session().create_client(
        "kms", region_name=REGION, endpoint_url="http://127.0.0.1:9", aws_access_key_id="AKIDX",
        aws_secret_access_key="secret-never-shown", aws_session_token=token)
    import botocore.exceptions as bce

    with pytest.raises(bce.HTTPClientError) as raised:
        client.list_keys()
    assert "session-token-never-shown" in str(raised.value)  # botocore's own text holds it
    failure = failures.failure_of(raised.value, "kms", "ListKeys", REGION)
    assert failure.kind == failures.CONNECTION and failure.code == "HTTPClientError"
    assert "session-token-never-shown" not in failure.message and "secret-never-shown" not in failure.message
    assert "Invalid header value" in failure.message
