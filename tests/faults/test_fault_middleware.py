"""The local KMS middleware itself: AWS's quotas per operation and region, the observer's numbering,
phases and actions (error, throttle, dropped connection, before and after the KMS acted)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from support import middleware

pytestmark = pytest.mark.emulator


class Script:
    """Observer callback: records every call, answers from a table {(op, n, phase): action}."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.actions: dict[tuple[str, int, str], str] = {}
        self.lock = threading.Lock()

    def __call__(self, op: str, n: int, phase: str) -> str | None:
        with self.lock:
            self.calls.append((op, n, phase))
            return self.actions.get((op, n, phase))


@pytest.fixture(scope="module")
def script() -> Script:
    return Script()


@pytest.fixture(scope="module")
def kms(script: Script) -> Any:
    throttle = middleware.Throttle()
    with middleware.start(throttle=throttle, observer=script) as server:
        yield server


@pytest.fixture
def fresh(kms: Any, script: Script) -> Any:
    kms.reset()
    script.calls.clear()
    script.actions.clear()
    return kms


def client(kms: Any, region: str = "us-west-1") -> Any:
    return boto3.client("kms", endpoint_url=kms.endpoint_url, region_name=region, aws_access_key_id="mw",
                        aws_secret_access_key="mw", config=Config(retries={"total_max_attempts": 1}))


def code_of(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_quota_per_operation_and_region(fresh: Any) -> None:
    west, east = client(fresh), client(fresh, "us-east-1")
    key = west.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    gpfi = dict(KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    west.get_parameters_for_import(**gpfi)
    with pytest.raises(ClientError) as info:
        west.get_parameters_for_import(**gpfi)  # GetParametersForImport: 1 a second
    assert info.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    east_key = east.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    east.get_parameters_for_import(**{**gpfi, "KeyId": east_key})  # another region, another bucket
    time.sleep(1.05)
    west.get_parameters_for_import(**gpfi)
    assert [c.action for c in fresh.observer.log].count("throttled") == 1 == fresh.throttle.throttled
    west.describe_key(KeyId=key)  # no quota configured: never throttled
    assert {c.region for c in fresh.observer.log} == {"us-west-1", "us-east-1"}


def test_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    throttle = middleware.Throttle({"Op": 2}, clock=lambda: now[0])
    assert [throttle.allow("r", "Op") for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert [throttle.allow("r", "Op"), throttle.allow("r", "Op")] == [True, False]
    assert throttle.allow("other-region", "Op") and throttle.allow("r", "Unlimited")


def test_observer_numbers_per_operation_and_calls_before_and_after(fresh: Any, script: Script) -> None:
    c = client(fresh)
    first = c.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    c.describe_key(KeyId=first)
    c.create_key(Origin="EXTERNAL")
    assert script.calls == [("CreateKey", 1, "before"), ("CreateKey", 1, "after"), ("DescribeKey", 1, "before"),
                            ("DescribeKey", 1, "after"), ("CreateKey", 2, "before"), ("CreateKey", 2, "after")]
    assert fresh.observer.ops() == ["CreateKey", "DescribeKey", "CreateKey"]
    assert [(c.n, c.status) for c in fresh.observer.log] == [(1, 200), (1, 200), (2, 200)]
    assert fresh.observer.count("CreateKey") == 2


def test_actions_before_the_kms_acts(fresh: Any, script: Script) -> None:
    c = client(fresh)
    script.actions[("CreateKey", 1, "before")] = "error"
    script.actions[("CreateKey", 2, "before")] = "throttle"
    script.actions[("CreateKey", 3, "before")] = "drop"
    assert code_of(lambda: c.create_key(Origin="EXTERNAL")) == ("KMSInternalException", 500)
    assert code_of(lambda: c.create_key(Origin="EXTERNAL")) == ("ThrottlingException", 400)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        c.create_key(Origin="EXTERNAL")
    assert c.list_keys()["Keys"] == []  # none of the three was served
    assert ("CreateKey", 1, "after") not in script.calls
    assert [call.action for call in fresh.observer.log][:3] == ["error", "throttle", "drop"]


def test_actions_after_the_kms_acted(fresh: Any, script: Script) -> None:
    c = client(fresh)
    script.actions[("CreateKey", 1, "after")] = "drop"  # served, the response lost
    script.actions[("CreateKey", 2, "after")] = "error"  # served, answered as a failure
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        c.create_key(Origin="EXTERNAL")
    assert code_of(lambda: c.create_key(Origin="EXTERNAL")) == ("KMSInternalException", 500)
    assert len(c.list_keys()["Keys"]) == 2  # both keys exist: the client saw neither id


def test_other_requests_pass_through_and_reset_empties_everything(fresh: Any) -> None:
    c = client(fresh)
    c.create_key(Origin="EXTERNAL")
    fresh.reset()  # POST /moto-api/reset: not a KMS request, never numbered
    assert fresh.observer.log == []
    assert c.list_keys()["Keys"] == []
    assert fresh.observer.ops() == ["ListKeys"]


def test_loopback_only() -> None:
    with pytest.raises(ValueError):
        middleware.start("0.0.0.0")
