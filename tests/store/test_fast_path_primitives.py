"""The read path's cheaper primitives compute exactly what the ones they replace computed."""

import base64
import binascii
import hashlib
import hmac
import json
import os
import random
import re

from hypothesis import given
from hypothesis import strategies as st

from keymgmt_cli.store import auth
from keymgmt_cli.store.base import check_doc_id, is_segment
from keymgmt_cli.store.masterkey import _b64decode


def _b64decode_via_base64(text):
    """masterkey._b64decode as it was, on base64.b64decode."""
    body = text.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def test_master_key_decoding_without_base64_matches_base64():
    rng = random.Random(15)
    cases = ["", "=", "A", "AB", "ABC", "AAAA", "AAAA====", "AA==AA", "AA AA", "AA\nAA", "é" * 4,
             "-_-_", "+/+/", "+_-/", "\x00AAA"]
    for _ in range(2000):
        raw = os.urandom(rng.randint(0, 40))
        std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
        cases += [std, url, std.rstrip("=")]
        if std:
            i = rng.randrange(len(std))
            cases.append(std[:i] + rng.choice("!-_+/= \t€a.") + std[i + 1:])
    decoded = 0
    for text in cases:
        assert _b64decode(text) == _b64decode_via_base64(text), repr(text)
        decoded += _b64decode(text) is not None
    assert 0 < decoded < len(cases)  # both accepted and refused inputs were exercised


def test_document_mac_and_auth_key_are_unchanged():
    """hmac.digest (one shot) gives the MACs hmac.new gave: states written before still verify."""
    master = bytes(range(32))
    prk = hmac.new(b"keymgmt-state", master, hashlib.sha256).digest()
    want_key = hmac.new(prk, b"keymgmt document authentication v1\x01", hashlib.sha256).digest()
    assert auth.derive_auth_key(master) == want_key
    body = {"b": [1, "é"], "a": {"z": None, "y": True}}
    msg = b"\x00".join((b"keymgmt-doc-v1\x00" + b"sid", b"m/keys/k", b"7",
                        json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")))
    assert auth.document_mac(want_key, "sid", "m/keys/k", 7, body) == hmac.new(want_key, msg, hashlib.sha256).hexdigest()
    signed = auth.sign_document(want_key, "sid", "m/keys/k", 7, body)
    assert auth.check_document(want_key, "sid", "m/keys/k", signed) == 7
    signed["a"]["y"] = False
    assert auth.check_document(want_key, "sid", "m/keys/k", signed) is None


OLD_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.:@%+-]{1,240}$")


@given(st.one_of(st.text(st.sampled_from(list("aZ09_.:@%+-/ \n\té\x00")), max_size=12),
                 st.text(st.sampled_from("ab.:"), min_size=235, max_size=245), st.text(max_size=8)))
def test_segments_are_what_the_segment_regex_matched_but_a_trailing_newline(part):
    """is_segment (a character set) accepts what SEGMENT_RE did, except a segment ending in a
    newline, which its "$" let through."""
    old = bool(OLD_SEGMENT_RE.match(part)) and not part.endswith("\n")
    assert is_segment(part) == old


def test_a_document_id_with_a_trailing_newline_is_refused():
    for doc_id in ("m1/keys/k\n", "m1\n/keys"):
        try:
            check_doc_id(doc_id)
        except ValueError:
            continue
        raise AssertionError(f"{doc_id!r} accepted")
