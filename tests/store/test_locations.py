"""store/locations.py: a URL with user info (a name or password before '@') is refused where it
is parsed, and never shown or recorded with it."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from keymgmt_cli.audit.records import redact
from keymgmt_cli.errors import StoreError
from keymgmt_cli.store import open_store_url
from keymgmt_cli.store.kmsseal import parse_seal_url
from keymgmt_cli.store.locations import REDACTED, without_userinfo

SECRET = "Pa55w0rd-TOPSECRET"


@pytest.mark.parametrize("text, shown", [
    ("https://u:p@h:443/x", f"https://{REDACTED}@h:443/x"),
    ("dynamodb://t?region=r&endpoint=https://u:p@h", f"dynamodb://t?region=r&endpoint=https://{REDACTED}@h"),
    ("https://u:p@ss@h/a@b", f"https://{REDACTED}@h/a@b"),  # a raw '@' in the password, one in the path
    ("http://h/p?q=//x:y@z", f"http://h/p?q=//{REDACTED}@z"),
    ("file:///home/a@b/state", "file:///home/a@b/state"),  # '@' in a path is not user info
    ("/home/a@b/state", "/home/a@b/state"),
    ("awskms://alias/keymgmt-seal?region=eu-west-1", "awskms://alias/keymgmt-seal?region=eu-west-1"),
])
def test_without_userinfo(text, shown):
    assert without_userinfo(text) == shown


@given(st.text(alphabet=st.characters(blacklist_characters="/?#", blacklist_categories=("Cs",))),
       st.sampled_from(["https://", "dynamodb://t?region=r&endpoint=http://"]))
def test_a_password_never_survives(password, prefix):
    # whatever the password holds ('@' and ':' included), everything before the host goes
    assert without_userinfo(f"{prefix}user:{password}@host/p@q") == f"{prefix}{REDACTED}@host/p@q"


@pytest.mark.parametrize("url", [
    f"dynamodb://keymgmt?region=eu-west-1&endpoint=https://admin:{SECRET}@dynamo.example.com",
    f"dynamodb://admin:{SECRET}@keymgmt?region=eu-west-1",
    f"s3://admin:{SECRET}@bucket",
])
def test_a_storage_url_with_a_password_is_refused_without_echoing_it(url):
    with pytest.raises(StoreError) as err:
        open_store_url(url, {})
    assert SECRET not in str(err.value) and SECRET not in str(getattr(err.value, "hint", ""))


@pytest.mark.parametrize("url", [
    f"awskms://alias/k?region=eu-west-1&endpoint=https://admin:{SECRET}@kms.example.com",
    f"awskms://admin:{SECRET}@alias/k?region=eu-west-1",
    f"awskms://alias/k?region=eu-west-1&endpoint=https%3A%2F%2Fadmin%3A{SECRET}%40kms.example.com",
    f"awskms://admin:{SECRET}@alias/k",
    f"vault://admin:{SECRET}@host",
])
def test_a_seal_url_with_a_password_is_refused_without_echoing_it(url):
    with pytest.raises(StoreError, match="carries user info") as err:
        parse_seal_url(url)
    assert SECRET not in str(err.value)


def test_a_plain_field_is_recorded_without_user_info():
    class Keys:
        def digest(self, value):
            return "hmac-sha256:x"

    data = {"storage": f"dynamodb://t?region=r&endpoint=https://admin:{SECRET}@h",
            "moved_to": [f"https://a:{SECRET}@h"], "credentials": {"secret_key": SECRET}}
    recorded = redact(data, Keys())
    assert SECRET not in repr(recorded)
    assert recorded["storage"] == f"dynamodb://t?region=r&endpoint=https://{REDACTED}@h"
    assert recorded["credentials"] == "hmac-sha256:x"
