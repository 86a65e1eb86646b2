"""Transport (issue 9 item 4): plain http only to loopback, and a wrapping key that is not the one
asked for is refused before anything is imported. A loopback proxy in front of the local KMS
plays the man in the middle and swaps the wrapping key in GetParametersForImport's answer."""

from __future__ import annotations

import base64
import http.client
import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keymgmt_cli.aws import pacing
from keymgmt_cli.errors import ProviderError
from keymgmt_cli.providers.base import ProviderConfig
from support.fakeaws import fake_aws

REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch, tmp_path):
    fake_aws(monkeypatch, access_key="test", secret_key="test")


def connect(endpoint=None, **kwargs):
    from keymgmt_cli.providers.awskms import connect as real

    return real(ProviderConfig(region=REGION, endpoint=endpoint), **kwargs)


# -- endpoints ------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["http://example.com", "http://kms.eu-west-1.amazonaws.com",
                                      "http://10.0.0.1:4566", "http://127.0.0.1.example.com",
                                      "http://AKIAUSER:SECRETPART@example.com/"])
def test_plain_http_to_another_host_is_refused_before_any_call(endpoint):
    sent = []
    with pytest.raises(ProviderError) as info:
        connect(endpoint, on_call=lambda region, op: sent.append(op))
    err = info.value
    assert err.code == "InsecureEndpoint" and sent == []
    assert str(err).startswith("AWS KMS endpoint http://") and "only to a loopback" in str(err)
    assert "SECRETPART" not in str(err) + err.hint and "AKIAUSER" not in str(err)
    assert "\n" not in str(err)


@pytest.mark.parametrize("endpoint", ["http://example.com\\@127.0.0.1:4566", "http://example.com\\\\@[::1]:4566"])
def test_a_backslash_cannot_pass_another_host_off_as_loopback(endpoint, monkeypatch):
    """urlsplit reads the host after the '@' (127.0.0.1); urllib3, which botocore sends with, ends
    the host at the backslash and connects to example.com in plain http. From the environment
    (AWS_KMS_ENDPOINT, AWS_ENDPOINT_URL_KMS) nothing else checks the URL."""
    with pytest.raises(ProviderError) as info:
        connect(endpoint)
    assert info.value.code == "InsecureEndpoint" and "http://example.com " in str(info.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", endpoint)
    with pytest.raises(ProviderError) as info:
        connect()
    assert info.value.code == "InsecureEndpoint"


@pytest.mark.parametrize("endpoint", ["http://ip6-localhost:4566", "http://ip6-loopback:4566"])
def test_names_that_may_come_from_dns_are_not_loopback(endpoint):
    """ip6-localhost and ip6-loopback are only /etc/hosts entries of some distributions; where
    they are missing the resolver asks DNS (with the search domains), whose answer a man in the
    middle can give."""
    with pytest.raises(ProviderError) as info:
        connect(endpoint)
    assert info.value.code == "InsecureEndpoint"


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4566\\@example.com"])
def test_a_backslash_after_a_loopback_host_is_read_as_botocore_reads_it(endpoint):
    """urllib3 connects to 127.0.0.1 there: loopback, as is_loopback now says."""
    from keymgmt_cli.aws.transport import is_loopback

    assert is_loopback(endpoint)


def test_plain_http_found_by_botocore_itself_is_refused(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://example.com")
    with pytest.raises(ProviderError) as info:
        connect()
    assert info.value.code == "InsecureEndpoint"


@pytest.mark.parametrize("endpoint", ["https://kms.example.com", "http://127.0.0.1:4566",
                                      "http://localhost:1", "http://[::1]:4566", None])
def test_https_anywhere_and_http_to_loopback_are_accepted(endpoint):
    assert connect(endpoint, pacing=False).endpoint_url


def test_the_dynamodb_state_and_the_seal_refuse_plain_http_elsewhere():
    from keymgmt_cli.store.dynamostore import DynamoStore
    from keymgmt_cli.store.kmsseal import KmsSeal, SealSpec

    with pytest.raises(ProviderError) as info:
        DynamoStore("t", REGION, "http://dynamo.example.com").get("m/keys/k")
    assert info.value.code == "InsecureEndpoint" and str(info.value).startswith("DynamoDB endpoint")
    with pytest.raises(ProviderError) as info:
        KmsSeal(SealSpec("alias/seal", REGION, "http://kms.example.com")).decrypt(b"x")
    assert info.value.code == "InsecureEndpoint"


# -- the wrapping key -----------------------------------------------------------------------------

_KEYS: dict = {}


def public_der(kind: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if kind not in _KEYS:
        if kind == "rsa-2048":
            key = rsa.generate_private_key(65537, 2048)
        elif kind == "rsa-4096-e3":
            key = rsa.generate_private_key(3, 4096)
        elif kind == "ec":
            key = ec.generate_private_key(ec.SECP384R1())
        else:
            raise ValueError(kind)
        _KEYS[kind] = key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    return _KEYS[kind]


class SwappingProxy:
    """A loopback HTTP proxy to ``upstream`` that records each KMS operation and, when ``swap``
    holds a DER key, puts it in place of GetParametersForImport's wrapping key."""

    def __init__(self, upstream: str):
        self.upstream = upstream.split("://", 1)[1]
        self.swap: bytes | None = None
        self.operations: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                proxy.operations.append(target.rsplit(".", 1)[-1])
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("POST", self.path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                if target.endswith("GetParametersForImport") and resp.status == 200 and proxy.swap:
                    doc = json.loads(data)
                    doc["PublicKey"] = base64.b64encode(proxy.swap).decode()
                    data = json.dumps(doc).encode()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date",
                                         "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def local_kms():
    from keymgmt_cli.localkms.server import start

    with start() as local:
        yield local


@pytest.fixture
def proxy(local_kms):
    p = SwappingProxy(local_kms.endpoint_url)
    yield p
    p.close()


@pytest.mark.parametrize("swap, why", [("rsa-2048", "RSA-2048, expected RSA_4096"),
                                       ("rsa-4096-e3", "public exponent is not 65537"),
                                       ("ec", "expected RSA")])
def test_a_swapped_wrapping_key_is_refused_before_import(proxy, swap, why):
    provider = connect(proxy.endpoint_url)
    key_id = provider.create_key(key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT",
                                 description="d", tags={})
    proxy.swap = public_der(swap)
    with pytest.raises(ProviderError) as info:
        provider.get_parameters_for_import(key_id, "RSAES_OAEP_SHA_256", "RSA_4096")
    err = info.value
    assert err.code == "UnexpectedWrappingKey" and why in str(err)
    assert str(err).startswith(f"AWS KMS GetParametersForImport in {REGION} returned a wrapping key")
    assert "\n" not in str(err)
    assert proxy.operations == ["CreateKey", "GetParametersForImport"]


def test_the_engine_imports_nothing_under_a_swapped_key_and_the_honest_key_works(proxy):
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.engine.routing import Request
    from keymgmt_cli.providers.awskms import connect as real
    from keymgmt_cli.store.memory import MemoryStore

    from twins import memory_secret_box

    engine = Engine(MemoryStore(), memory_secret_box(),
                    lambda cfg: real(ProviderConfig(region=cfg.region, endpoint=proxy.endpoint_url)))
    engine.handle(Request("write", "keymgmt/kms/aws1", {"provider": "awskms", "key_collection": REGION}))
    engine.handle(Request("write", "keymgmt/key/k", {"type": "aes256-gcm96"}))
    proxy.swap = public_der("rsa-2048")
    with pytest.raises(ProviderError) as info:
        engine.handle(Request("write", "keymgmt/kms/aws1/key/k", {"purpose": "encrypt,decrypt"}))
    assert info.value.code == "UnexpectedWrappingKey" and "nothing was imported" in str(info.value)
    assert "GetParametersForImport" in proxy.operations and "ImportKeyMaterial" not in proxy.operations
    proxy.swap = None  # the man in the middle leaves: re-running finishes with AWS's own key
    engine.handle(Request("write", "keymgmt/kms/aws1/key/k", {"purpose": "encrypt,decrypt"}))
    assert "ImportKeyMaterial" in proxy.operations


def test_check_wrapping_key_accepts_the_size_asked_for():
    from keymgmt_cli.providers.awskms_wrapping import check_wrapping_key

    check_wrapping_key(public_der("rsa-2048"), "RSA_2048", REGION)
    for spec in ("RSA_3072", "RSA_4096", "SM2"):
        with pytest.raises(ProviderError):
            check_wrapping_key(public_der("rsa-2048"), spec, REGION)
    with pytest.raises(ProviderError) as info:
        check_wrapping_key(b"not der", "RSA_2048", REGION)
    assert "not a DER public key" in str(info.value)


# -- the pacing schedule's directory -------------------------------------------------------------

def test_pacing_dir_is_the_users_runtime_or_state_dir_never_tmp(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    path = pacing.pacing_dir({"XDG_RUNTIME_DIR": str(runtime)})
    assert path == str(runtime / "keymgmt" / "pacing")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    runtime.chmod(0o777)  # a runtime dir others may write is not used
    state = tmp_path / "state"
    assert pacing.pacing_dir({"XDG_RUNTIME_DIR": str(runtime), "XDG_STATE_HOME": str(state)}) == \
        str(state / "keymgmt" / "pacing")
    assert stat.S_IMODE(os.stat(state / "keymgmt").st_mode) == 0o700


def test_pacing_dir_refuses_links_and_open_directories(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    assert pacing.pacing_dir({"KEYMGMT_PACING_DIR": str(link)}) is None
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    assert pacing.pacing_dir({"KEYMGMT_PACING_DIR": str(open_dir)}) is None


def test_schedule_file_is_opened_without_following_links(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    slot = tmp_path / "slot"
    slot.symlink_to(victim)
    schedule = pacing.SharedSchedule(str(slot), 5)
    assert schedule.take() == 0  # paces alone, in this process
    assert victim.read_text() == "precious"


def test_schedule_books_batches_for_high_quotas_and_keeps_the_rate(tmp_path):
    """At 2,000/s one file access books 100 slots; handed out in order, 0.55 ms apart."""
    schedule = pacing.SharedSchedule(str(tmp_path / "slot"), 2000)
    assert schedule.batch == 100
    waits = [schedule.take() for _ in range(300)]
    booked = float((tmp_path / "slot").read_text())
    assert booked - time.time() == pytest.approx(300 * schedule.interval, abs=0.05)
    assert waits[-1] == pytest.approx(299 * schedule.interval, abs=0.05)
    low = pacing.SharedSchedule(str(tmp_path / "low"), 1)
    assert low.batch == 1 and low.take() == 0 and low.take() == pytest.approx(1.1, abs=0.05)
