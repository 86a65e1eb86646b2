"""store/digests.py gives exactly what hmac and hashlib give, with _hashlib and without it."""

import hashlib
import hmac
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from keymgmt_cli.store import digests

REPO = Path(__file__).resolve().parents[2]


@given(st.binary(max_size=200), st.binary(max_size=2000))
def test_hmac_sha256_is_hmac_digest(key, msg):
    assert digests.hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256")


def test_hmac_sha256_matches_rfc_4231_case_2():
    assert digests.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@given(st.binary(max_size=2000))
def test_sha256_hex_is_hashlib(data):
    assert digests.sha256_hex(data) == hashlib.sha256(data).hexdigest()


def _outcome(call, *args):
    try:
        return ("ok", call(*args))
    except Exception as error:  # noqa: BLE001 - the exception itself is what is compared
        return (type(error), str(error))


_comparable = st.one_of(st.text(max_size=70), st.binary(max_size=70), st.integers(), st.none())


@given(_comparable, _comparable)
def test_equal_is_compare_digest_for_anything(a, b):
    """The same answer, or the same refusal (non-ASCII strings, mixed types)."""
    assert _outcome(digests.equal, a, b) == _outcome(hmac.compare_digest, a, b)


@given(st.text(alphabet="0123456789abcdef", max_size=64))
def test_equal_strings(a):
    assert digests.equal(a, a) and digests.equal(a, a + "0") is False


def test_without_hashlib_the_functions_fall_back_to_hmac_and_hashlib():
    """A Python without the OpenSSL binding: the same results through hmac/hashlib."""
    code = textwrap.dedent("""
        import sys
        sys.modules["_hashlib"] = None  # import _hashlib now raises ImportError
        from keymgmt_cli.store import digests
        assert digests._hashlib is None
        import hashlib, hmac
        key, msg = b"k" * 70, b"message"
        assert digests.hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256")
        assert digests.sha256_hex(msg) == hashlib.sha256(msg).hexdigest()
        assert digests.equal("ab", "ab") and not digests.equal(b"ab", b"ac")
        print("fallback ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fallback ok"


@settings(max_examples=20)
@given(st.binary(max_size=100))
def test_an_unsupported_digest_falls_back_as_hmac_digest_does(msg):
    """hmac.digest falls back to its own HMAC when OpenSSL refuses the digest; so does this."""
    real = digests._hashlib

    class Refusing:
        UnsupportedDigestmodError = real.UnsupportedDigestmodError

        @staticmethod
        def hmac_digest(key, data, name):
            raise real.UnsupportedDigestmodError(name)

        @staticmethod
        def openssl_sha256(data):
            raise ValueError("blocked by policy")

        compare_digest = staticmethod(real.compare_digest)

    digests._hashlib = Refusing
    try:
        assert digests.hmac_sha256(b"key", msg) == hmac.digest(b"key", msg, "sha256")
        assert digests.sha256_hex(msg) == hashlib.sha256(msg).hexdigest()
    finally:
        digests._hashlib = real
