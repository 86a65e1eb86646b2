"""store/digests.py gives exactly what hmac and hashlib give, with CPython's builtin SHA-256 and
without it."""

import hashlib
import hmac
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keymgmt_cli.store import digests

REPO = Path(__file__).resolve().parents[2]


@given(st.one_of(st.binary(max_size=64), st.binary(min_size=65, max_size=300)), st.binary(max_size=2000))
def test_hmac_sha256_is_hmac_digest(key, msg):
    """Keys up to the block size (padded) and longer (hashed first)."""
    assert digests.hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256")


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


_bytes_like = st.one_of(st.binary(max_size=150), st.binary(max_size=150).map(bytearray),
                       st.binary(max_size=150).map(memoryview), st.text(max_size=5), st.integers(0, 5), st.none())


@given(_bytes_like, _bytes_like)
def test_hmac_sha256_of_anything_is_hmac_digest_or_its_error(key, msg):
    assert _outcome(digests.hmac_sha256, key, msg) == _outcome(hmac.digest, key, msg, "sha256")


@given(_bytes_like)
def test_sha256_hex_of_anything_is_hashlib_or_its_error(data):
    assert _outcome(digests.sha256_hex, data) == _outcome(lambda d: hashlib.sha256(d).hexdigest(), data)


@pytest.mark.parametrize("key,data,want", [  # RFC 4231 4.2-4.7 (HMAC-SHA-256), case 5 truncates
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
                    b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
])
def test_hmac_sha256_meets_rfc_4231(key, data, want):
    assert digests.hmac_sha256(key, data).hex() == want


def test_without_builtin_sha256_the_functions_fall_back_to_hmac_and_hashlib():
    """A Python without its own SHA-256 (or without _operator): the same results through
    hmac/hashlib (OpenSSL)."""
    code = textwrap.dedent("""
        import sys
        for name in ("_sha2", "_sha256", "_operator"):
            sys.modules[name] = None  # importing it now raises ImportError
        from keymgmt_cli.store import digests
        assert digests._sha256 is None and digests._compare_digest is None
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
def test_a_refusing_builtin_sha256_falls_back_to_hmac_and_hashlib(msg):
    """Python builds patched for FIPS mode make the builtin hashes raise ValueError: then OpenSSL's."""
    real = digests._sha256

    def refusing(*args):
        raise ValueError("[digital envelope routines] unsupported")

    digests._sha256 = refusing
    try:
        assert digests.hmac_sha256(b"key", msg) == hmac.digest(b"key", msg, "sha256")
        assert digests.sha256_hex(msg) == hashlib.sha256(msg).hexdigest()
    finally:
        digests._sha256 = real


def test_the_digests_load_no_openssl():
    code = textwrap.dedent("""
        import sys
        from keymgmt_cli.store import digests
        digests.hmac_sha256(b"k", b"m"), digests.sha256_hex(b"m"), digests.equal("a", "a")
        print(sorted(m for m in ("_hashlib", "hashlib", "hmac") if m in sys.modules))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _wide_views():
    import array

    yield memoryview(array.array("I", range(20)))  # 80 bytes, 20 items: over the block in bytes only
    yield array.array("H", range(40))
    yield memoryview(bytes(range(128))).cast("B", (2, 64))  # 2 rows of 64: len() 2, 128 bytes
    yield memoryview(bytes(range(20)))[::2]  # not contiguous: hmac refuses it (BufferError)
    yield [1, 2, 3]  # not bytes-like at all: hmac's TypeError
    yield (1, 2)


@pytest.mark.parametrize("key", list(_wide_views()), ids=lambda k: type(k).__name__)
def test_a_key_whose_length_is_not_its_size_in_bytes_is_hmac_digest(key):
    """RFC 2104 pads or hashes the key by its length in bytes; len() of a memoryview or array of
    wider items counts items (and of a list, ints that are no key at all): the builtin path gave
    another MAC, or one where hmac refuses the key."""
    assert _outcome(digests.hmac_sha256, key, b"msg") == _outcome(hmac.digest, key, b"msg", "sha256")
