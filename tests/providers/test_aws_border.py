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
