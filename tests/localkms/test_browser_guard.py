"""The local KMS answers loopback SDK clients only: no bind beyond loopback, no CORS, no browser requests."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from keymgmt_cli.localkms import server
from keymgmt_cli.localkms.browser_guard import refusal

pytestmark = pytest.mark.emulator

EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def kms() -> Iterator[server.LocalKms]:
    with server.start() as running:
        yield running


def _client(kms: server.LocalKms, **headers: str):
    client = boto3.client("kms", endpoint_url=kms.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")

    def add(request, **_):
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register("before-sign.kms.*", add)
    return client


def _raw(kms: server.LocalKms, method: str, headers: dict[str, str]):
    base = {"X-Amz-Target": "TrentService.ListKeys", "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, "
                             "SignedHeaders=host, Signature=00"}
    request = urllib.request.Request(kms.endpoint_url + "/", data=b"{}" if method == "POST" else None,
                                     method=method, headers={**base, **headers})
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as exc:
        response = exc
    with response:
        return response.status, dict(response.headers.items()), response.read()


def _cors(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


def test_sdk_requests_are_served_without_cors_headers(kms):
    status, headers, body = _raw(kms, "POST", {})
    assert status == 200 and b'"Keys"' in body
    assert _cors(headers) == {}  # moto's flask-cors sends Access-Control-Allow-Origin: * here


def test_a_request_from_a_web_page_is_refused_without_effect(kms):
    honest = _client(kms)
    before = len(honest.list_keys()["Keys"])
    with pytest.raises(ClientError) as caught:
        _client(kms, Origin=EVIL).create_key(Description="planted by a web page")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert EVIL not in str(caught.value)  # the refusal does not echo header values
    assert _cors(caught.value.response["ResponseMetadata"]["HTTPHeaders"]) == {}
    assert len(honest.list_keys()["Keys"]) == before


def test_origin_header_gets_no_cors_headers_and_is_refused(kms):
    status, headers, body = _raw(kms, "POST", {"Origin": EVIL})
    assert status == 403 and b"AccessDeniedException" in body and b"Keys" not in body
    assert _cors(headers) == {}


def test_preflight_is_refused(kms):
    status, headers, _ = _raw(kms, "OPTIONS", {"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type,x-amz-target"})
    assert status == 403
    assert _cors(headers) == {}


@pytest.mark.parametrize("headers", [
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},  # another local origin is still a web page
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
    {"Host": "evil.example"},  # DNS rebinding: the page's own name pointed at 127.0.0.1
    {"Host": "10.0.0.1:4566"},
])
def test_other_browser_requests_are_refused(kms, headers):
    status, response_headers, _ = _raw(kms, "POST", headers)
    assert status == 403 and _cors(response_headers) == {}


@pytest.mark.parametrize("host", ["127.0.0.1:4566", "127.0.0.1", "localhost:80", "[::1]:8080", "127.1.2.3"])
def test_loopback_host_names_pass(host):
    assert refusal({"REQUEST_METHOD": "POST", "HTTP_HOST": host}) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_binding_beyond_loopback_is_refused(host):
    with pytest.raises(ValueError, match="loopback"):
        server.start(host)
