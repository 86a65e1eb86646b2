"""The tag search's bulk ListResourceTags without botocore's client (aws.bulkread, issue 17).

Against a KMS-shaped server on 127.0.0.1 (tests/providers/fake_kms_http.py) that checks every
request's signature with botocore's own SigV4Auth: strays named exactly, a session token, a
throttling storm, connections dropped mid-batch, 5xx, a refused key, plain http to a
non-loopback host and a certificate not trusted (both refused), a trusted private CA, a proxy (the
botocore path, said), credentials that refresh. Every test counts what the server saw; none times
anything."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import uuid

import pytest

from keymgmt_cli.aws import bulkread
from keymgmt_cli.errors import ProviderError
from keymgmt_cli.providers.awskms import connect
from keymgmt_cli.providers.base import ProviderConfig

from fake_kms_http import FakeKms
from support.fakeaws import fake_aws

REGION = "us-west-1"
AKID, SECRET, TOKEN = "AKIDBULKTEST", "bulk-secret-never-shown", "bulk-session-token-never-shown"
OURS = {"keymgmt:state_id": "s1", "keymgmt:mount": "keymgmt/", "keymgmt:kms": "aws1"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    fake_aws(monkeypatch)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def account(foreign: int = 60, strays: int = 3) -> tuple[dict[str, dict[str, str]], list[str]]:
    near = [{**OURS, "keymgmt:state_id": "other"}, {**OURS, "keymgmt:kms": "aws2"}, {"team": "x"}, {}]
    keys = {str(uuid.uuid4()): near[i % len(near)] for i in range(foreign)}
    planted = []
    for i in range(strays):
        key_id = str(uuid.uuid4())
        keys[key_id] = {**OURS, "keymgmt:op": f"op{i}"}
        planted.append(key_id)
    return keys, sorted(planted)


@pytest.fixture
def fake():
    servers = []

    def make(keys, token=None, tls=None):
        server = FakeKms(keys, {AKID: (SECRET, token)}, tls=tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def provider(endpoint, token=None, **options):
    return connect(ProviderConfig(region=REGION, endpoint=endpoint, access_key=AKID, secret_key=SECRET,
                                  session_token=token), pacing=False, sleep=lambda s: None, **options)


@pytest.mark.parametrize("token", [None, TOKEN])
def test_lean_path_names_every_stray_with_botocore_equal_signatures(fake, token):
    keys, planted = account()
    server = fake(keys, token=token)
    kms = provider(server.endpoint_url, token)
    assert sorted(kms.find_tagged(OURS)) == planted
    assert server.bad_signatures == 0  # every request, lean and botocore, signed as botocore signs
    lean = [r for r in server.requests if r["headers"].get("User-Agent") == bulkread.USER_AGENT]
    assert len(lean) == len(keys) == server.count("ListResourceTags")  # all of them on the lean path
    assert all((r["headers"].get("X-Amz-Security-Token") == token) for r in lean)
    assert "keymgmt's own signed requests (http" in kms.tag_search_note


def test_a_wrong_signature_would_be_caught(fake):
    """The server's check is real: a request signed with another secret is refused, and the lean
    path then hands the read to botocore (whose signature is refused too: the error is botocore's)."""
    keys, _ = account(foreign=3, strays=0)
    server = fake(keys)
    kms = connect(ProviderConfig(region=REGION, endpoint=server.endpoint_url, access_key=AKID,
                                 secret_key="another-secret"), pacing=False, sleep=lambda s: None)
    with pytest.raises(ProviderError) as refused:
        kms.list_tags_of_keys(list(keys))
    assert refused.value.code == "InvalidSignatureException" and server.bad_signatures >= 4
    assert "another-secret" not in str(refused.value)


def test_a_refused_signature_stops_the_batch_before_every_key_is_sent(fake):
    """A failure no key can escape ends the lean batch: the requests in flight finish, no more go
    out, and botocore reads instead; not one refused request per key of the region."""
    keys, _ = account(foreign=600, strays=0)
    server = fake(keys)
    kms = connect(ProviderConfig(region=REGION, endpoint=server.endpoint_url, access_key=AKID,
                                 secret_key="another-secret"), pacing=False, sleep=lambda s: None)
    with pytest.raises(ProviderError) as refused:
        kms.list_tags_of_keys(list(keys))
    assert refused.value.code == "InvalidSignatureException"
    lean = [r for r in server.requests if r["target"].endswith(".ListResourceTags")
            and r["headers"].get("User-Agent") == bulkread.USER_AGENT]
    assert 1 <= len(lean) <= bulkread.WORKERS, len(lean)


def test_throttling_storm_is_retried_and_counted(fake):
    keys, planted = account(foreign=40)
    server = fake(keys)
    storm = set()

    def fault(n, target, key_id):  # each key's first two reads throttled
        if target.endswith("ListResourceTags"):
            with server.lock:
                seen = sum(1 for k in storm if k[0] == key_id)
                if seen < 2:
                    storm.add((key_id, n))
                    return "throttle"
        return None

    server.fault = fault
    kms = provider(server.endpoint_url)
    reading = kms.list_tags_of_keys(list(keys))
    assert reading.tags == keys
    assert reading.throttled == 2 * len(keys) and reading.requests == 3 * len(keys)
    assert server.count("ListResourceTags") == 3 * len(keys)


def test_throttling_that_never_ends_fails_the_read_not_the_key(fake):
    keys, _ = account(foreign=5, strays=0)
    server = fake(keys)
    server.fault = lambda n, target, key: "throttle"
    kms = provider(server.endpoint_url, max_attempts=3, throttle_retries=2)
    with pytest.raises(ProviderError) as failed:
        kms.list_tags_of_keys(list(keys))
    assert failed.value.code == "ThrottlingException"  # never "not ours": the search fails instead
    assert server.count("ListResourceTags") == 5 * len(keys)  # botocore's 3 tries + our 2 rounds
    assert str(failed.value).startswith("AWS KMS ListResourceTags in us-west-1 failed: ThrottlingException")


def test_connections_dropped_mid_batch_are_retried(fake):
    keys, planted = account(foreign=50)
    server = fake(keys)
    server.fault = lambda n, target, key: "drop" if n % 7 == 3 else None
    kms = provider(server.endpoint_url)
    assert sorted(kms.find_tagged(OURS)) == planted
    dropped = sum(1 for n in range(len(server.requests)) if n % 7 == 3)
    assert dropped >= 5 and server.count("ListResourceTags") > len(keys)


def test_server_errors_are_retried_then_fail(fake):
    keys, _ = account(foreign=8, strays=0)
    server = fake(keys)
    server.fault = lambda n, target, key: "500" if n < 6 else None
    assert provider(server.endpoint_url).list_tags_of_keys(list(keys)).tags == keys
    server.fault = lambda n, target, key: "500"
    with pytest.raises(ProviderError) as failed:
        provider(server.endpoint_url, max_attempts=2).list_tags_of_keys(list(keys))
    assert failed.value.code == "KMSInternalException"


def test_a_key_we_may_not_read_is_not_ours(fake):
    keys, planted = account(foreign=10)
    server = fake(keys)
    server.fault = lambda n, target, key: "denied" if key == planted[0] else None
    kms = provider(server.endpoint_url)
    reading = kms.list_tags_of_keys(list(keys))
    assert reading.tags[planted[0]] is None and reading.refused == 1
    assert sum(v is not None for v in reading.tags.values()) == len(keys) - 1
    assert any(i.endswith("-400") for i in reading.request_ids)  # the refused one's id is kept
    assert sorted(kms.find_tagged(OURS)) == planted[1:]


def test_requests_in_flight_are_bounded_by_workers(fake, monkeypatch):
    keys, _ = account(foreign=120, strays=0)
    server = fake(keys)
    server.delay = 0.02
    monkeypatch.setattr(bulkread, "WORKERS", 6)
    provider(server.endpoint_url).list_tags_of_keys(list(keys))
    assert 2 <= server.peak <= 6
    server.peak = 0
    monkeypatch.setattr(bulkread, "WORKERS", 40)
    provider(server.endpoint_url).list_tags_of_keys(list(keys))
    assert server.peak > 6


# -- what the transport refuses, and where botocore keeps the read ---------------------------------

def self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


def test_a_certificate_not_trusted_is_refused_and_not_retried(fake, tmp_path, monkeypatch):
    context, _ = self_signed(tmp_path)
    keys, _ = account(foreign=4, strays=0)
    server = fake(keys, tls=context)
    kms = provider(server.endpoint_url)
    assert isinstance(kms.bulk_reader(), bulkread.BulkReader)  # https: the lean path is taken
    with pytest.raises(ProviderError) as refused:
        kms.list_tags_of_keys(list(keys))
    assert refused.value.code == "SSLError" and "certificate verify failed" in str(refused.value)
    assert server.requests == []  # nothing was sent over the untrusted channel


def test_a_private_ca_in_aws_ca_bundle_is_trusted_as_botocore_trusts_it(fake, tmp_path, monkeypatch):
    context, cert = self_signed(tmp_path)
    monkeypatch.setenv("AWS_CA_BUNDLE", cert)
    keys, planted = account(foreign=20)
    server = fake(keys, tls=context)
    kms = provider(server.endpoint_url)
    assert sorted(kms.find_tagged(OURS)) == planted
    assert "keymgmt's own signed requests (https" in kms.tag_search_note
    assert server.bad_signatures == 0 and server.count("ListResourceTags") == len(keys)


def test_plain_http_to_a_host_that_is_not_loopback_is_refused():
    with pytest.raises(ProviderError) as refused:
        provider("http://192.0.2.10:4566")
    assert refused.value.code == "InsecureEndpoint"

    class Meta:  # the lean path's own check, should a client ever carry such an endpoint
        endpoint_url = "http://192.0.2.10:4566"

    class Client:
        meta = Meta()

    assert "plain http" in bulkread.BulkReader.for_client(Client(), None, object())


def test_a_proxy_keeps_the_read_on_botocore_and_says_so(fake, monkeypatch):
    keys, planted = account(foreign=10)
    server = fake(keys)
    kms = provider(server.endpoint_url)  # its botocore client is made without a proxy, so that
    # this test needs no proxy server; the lean path is decided while one is configured
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert kms.bulk_reader() == "an HTTP(S) proxy is configured"
    monkeypatch.delenv("HTTP_PROXY")
    assert sorted(kms.find_tagged(OURS)) == planted
    assert "botocore (48 threads): an HTTP(S) proxy is configured" in kms.tag_search_note
    assert all(r["headers"].get("User-Agent") != bulkread.USER_AGENT for r in server.requests)


def test_no_proxy_alone_or_another_scheme_s_proxy_is_not_a_proxy(fake, monkeypatch):
    """botocore takes the proxy of the endpoint's scheme: NO_PROXY alone (which urllib lists as a
    "no" proxy) or an HTTPS_PROXY for an http endpoint leaves the lean path on; HTTP_PROXY does not."""
    server = fake({})
    monkeypatch.setenv("NO_PROXY", "example.com")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert isinstance(provider(server.endpoint_url).bulk_reader(), bulkread.BulkReader)
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    assert provider(server.endpoint_url).bulk_reader() == "an HTTP(S) proxy is configured"


def test_refreshing_credentials_are_taken_again(fake):
    """Credentials are frozen per batch (every REFREEZE_SECONDS): new keys from a refresh sign
    the next requests, as botocore's refreshable credentials would."""
    keys, _ = account(foreign=12, strays=0)
    server = FakeKms(keys, {"AKIDOLD": ("old-secret", "old-token"), "AKIDNEW": ("new-secret", None)})
    now = [0.0]

    class Frozen:
        def __init__(self, access_key, secret_key, token):
            self.access_key, self.secret_key, self.token = access_key, secret_key, token

    class Refreshing:
        taken = 0

        def get_frozen_credentials(self):
            Refreshing.taken += 1
            return Frozen("AKIDOLD", "old-secret", "old-token") if now[0] < 100 else Frozen("AKIDNEW", "new-secret", None)

    try:
        reader = bulkread.BulkReader(server.endpoint_url, REGION, "kms", "TrentService", Refreshing(),
                                     tls=None, clock=lambda: now[0], workers=1)
        bodies = [f'{{"KeyId": "{k}"}}'.encode() for k in keys]
        first = reader.run("ListResourceTags", bodies[:6], pace=lambda: None)
        now[0] = 200.0  # past REFREEZE_SECONDS: the next batch takes the credentials again
        second = reader.run("ListResourceTags", bodies[6:], pace=lambda: None)
        assert all(r.answer is not None for r in first.replies + second.replies)
        used = [r["headers"]["Authorization"].split("Credential=")[1].split("/")[0] for r in server.requests]
        assert used == ["AKIDOLD"] * 6 + ["AKIDNEW"] * 6
        assert [("X-Amz-Security-Token" in r["headers"]) for r in server.requests] == [True] * 6 + [False] * 6
        assert server.bad_signatures == 0 and Refreshing.taken == 2
    finally:
        server.close()


def test_no_secret_in_errors_reprs_or_readings(fake):
    keys, _ = account(foreign=3, strays=0)
    server = fake(keys, token=TOKEN)
    kms = provider(server.endpoint_url, TOKEN)
    reading = kms.list_tags_of_keys(list(keys))
    server.fault = lambda n, target, key: "500"
    with pytest.raises(ProviderError) as failed:
        provider(server.endpoint_url, TOKEN, max_attempts=1).list_tags_of_keys(list(keys))
    shown = repr(reading) + str(failed.value) + repr(kms.bulk_reader()) + repr(failed.value)
    assert SECRET not in shown and TOKEN not in shown


def test_a_session_token_with_a_line_break_fails_in_one_line_without_the_token(fake):
    """http.client refuses such a header with a ValueError quoting the token whole; it escaped the
    worker thread (an internal error, the token in KEYMGMT_DEBUG's traceback) instead of failing
    the read in one line."""
    keys, _ = account(foreign=3, strays=0)
    token = TOKEN + "\r"
    server = fake(keys, token=token)
    kms = provider(server.endpoint_url, token)
    assert not isinstance(kms.bulk_reader(), str)
    with pytest.raises(ProviderError) as failed:
        kms.list_tags_of_keys(list(keys))
    shown = str(failed.value) + repr(failed.value) + str(failed.value.__cause__) + str(failed.value.__context__)
    assert TOKEN not in shown and SECRET not in shown
    assert len(server.requests) == 0 and "InvalidHeader" in str(failed.value)


def test_an_answer_larger_than_any_listresourcetags_answer_is_not_read_whole(fake):
    """A broken or hostile endpoint (an operator's custom one, a loopback port another local user
    took) answering gigabytes: each of the 96 workers held its whole body in memory. 50 tags of at
    most 128 + 256 characters fit in far less than bulkread.MAX_RESPONSE_BYTES; past it the read
    fails (a key whose tags were not read is not a key proven not ours)."""
    keys, _ = account(foreign=3, strays=0)
    server = fake(keys)
    server.fault = lambda n, target, key: "huge" if target.endswith("ListResourceTags") else None
    with pytest.raises(ProviderError) as failed:
        provider(server.endpoint_url, max_attempts=1).list_tags_of_keys(list(keys))
    assert "ResponseTooLarge" in str(failed.value) and "\n" not in str(failed.value)


def test_credentials_that_cannot_be_refreshed_fail_the_read_as_botocore_words_it(fake):
    """A role's credentials expiring mid-read with STS unreachable: get_frozen_credentials raises
    botocore's CredentialRetrievalError, which escaped the worker (an internal error) where a
    botocore call gives the provider's one-line credentials error."""
    import botocore.exceptions as bce

    keys, _ = account(foreign=3, strays=0)
    server = fake(keys)

    class Expired:
        def get_frozen_credentials(self):
            raise bce.CredentialRetrievalError(provider="assume-role", error_msg="STS unreachable")

    reader = bulkread.BulkReader(server.endpoint_url, REGION, "kms", "TrentService", Expired(), tls=None, workers=2)
    batch = reader.run("ListResourceTags", [f'{{"KeyId": "{k}"}}'.encode() for k in keys], pace=lambda: None)
    assert [r.failure.kind for r in batch.replies] == ["credentials"] * 3
    assert {r.failure.code for r in batch.replies} == {"CredentialRetrievalError"}
    assert server.requests == []
