"""aws.sigv4 signs exactly as botocore's SigV4Auth: same request, same time, same credentials,
same Authorization (and X-Amz-Date, X-Amz-Security-Token) over many generated inputs: endpoints
(loopback with ports, regional, FIPS, IPv6, default ports), regions, services, JSON bodies with
non-ASCII text, targets, access keys, secrets, session tokens (none, with runs of spaces), times."""

from __future__ import annotations

import datetime
import json
import random
import string
from unittest import mock

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from keymgmt_cli.aws.sigv4 import Signer, host_header

ENDPOINTS = ["http://127.0.0.1:4566", "http://localhost:8080", "http://[::1]:9000", "http://127.0.0.1:80",
             "https://kms.us-west-1.amazonaws.com", "https://kms-fips.us-east-1.amazonaws.com:443",
             "https://kms.eu-central-1.amazonaws.com:8443", "https://vpce-0abc.kms.us-west-2.vpce.amazonaws.com",
             "https://KMS.Example.COM"]


def botocore_headers(url, body, target, service, region, access_key, secret, token, when):
    request = AWSRequest("POST", url.rstrip("/") + "/", data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(Credentials(access_key, secret, token), service, region).add_auth(request)
    return request.headers


def cases(count=400, seed=17):
    rng = random.Random(seed)
    printable = string.ascii_letters + string.digits + "+/=_-"
    for _ in range(count):
        body = {"KeyId": str(rng.getrandbits(128)), "Limit": rng.randint(1, 1000)}
        if rng.random() < 0.3:
            body["Marker"] = "".join(rng.choice(printable + "é€ ") for _ in range(rng.randint(1, 40)))
        token = None
        if rng.random() < 0.5:
            token = "".join(rng.choice(printable) for _ in range(rng.randint(16, 400)))
            if rng.random() < 0.2:
                token = token[:5] + "  " + token[5:]  # botocore signs its spaces collapsed
        yield (rng.choice(ENDPOINTS), json.dumps(body, ensure_ascii=rng.random() < 0.5).encode(),
               rng.choice(["TrentService.ListResourceTags", "TrentService.ListKeys", "TrentService.DescribeKey"]),
               rng.choice(["kms", "kms", "tagging"]), rng.choice(["us-west-1", "eu-central-1", "cn-north-1", "us-gov-west-1"]),
               "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
               "".join(rng.choice(printable) for _ in range(40)), token,
               datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 10 ** 9)))


@pytest.mark.parametrize("case", list(cases()))
def test_signature_equals_botocore(case):
    url, body, target, service, region, access_key, secret, token, when = case
    theirs = botocore_headers(url, body, target, service, region, access_key, secret, token, when)
    ours = Signer(url, region, service).sign(body, target, access_key, secret, token, when)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")
    assert ours["Host"] == host_header(url) == botocore.auth._host_from_url(url)


def test_the_signing_key_cache_follows_the_secret_and_the_day():
    signer = Signer("https://kms.us-west-1.amazonaws.com", "us-west-1", "kms")
    when = datetime.datetime(2026, 12, 6, 23, 59, 59)
    args = (b"{}", "TrentService.ListKeys", "AKIDX")
    first = signer.sign(*args, "secret-one", None, when)["Authorization"]
    assert signer.sign(*args, "secret-two", None, when)["Authorization"] != first  # a rotated secret
    later = when + datetime.timedelta(seconds=2)  # the next day: a new scope and key
    assert botocore_headers("https://kms.us-west-1.amazonaws.com", b"{}", "TrentService.ListKeys", "kms",
                            "us-west-1", "AKIDX", "secret-one", None, later)["Authorization"] == \
        signer.sign(*args, "secret-one", None, later)["Authorization"]


def test_an_endpoint_with_a_path_is_not_signed_here():
    with pytest.raises(ValueError):
        Signer("https://proxy.example.com/kms", "us-west-1", "kms")
