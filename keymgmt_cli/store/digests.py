"""HMAC-SHA256, SHA-256 and constant-time comparison for the state's MACs, straight from OpenSSL.

Why not ``hmac`` and ``hashlib``: ``import hashlib`` probes every digest OpenSSL offers (and
``hmac`` imports ``hashlib`` and ``warnings``), about 3 ms of every ``read`` with the master key at
hand, while what a read needs is three functions of CPython's ``_hashlib`` (the OpenSSL binding,
about 1 ms to load), and they are the very functions those modules call:

* ``hmac.digest(key, msg, "sha256")`` is ``_hashlib.hmac_digest(key, msg, "sha256")`` (the
  one-shot HMAC; ``hmac.py`` falls back to its pure-Python HMAC only when OpenSSL lacks the digest);
* ``hmac.compare_digest`` is ``_hashlib.compare_digest``;
* ``hashlib.sha256`` is ``_hashlib.openssl_sha256`` (``hashlib`` falls back to the builtin
  ``_sha256`` when OpenSSL refuses it).

Where ``_hashlib`` is missing (a Python built without OpenSSL) or refuses SHA-256, each function
falls back to ``hmac``/``hashlib``, so the results are always theirs;
``tests/store/test_digests.py`` checks them against ``hmac``/``hashlib`` on arbitrary input, both
ways. Only the store's MAC code and ``masterkey`` import this module, so a read without the
master key at hand loads no OpenSSL at all.
"""

from __future__ import annotations

try:
    import _hashlib
except ImportError:  # no OpenSSL binding: hmac and hashlib have their own fallbacks
    _hashlib = None


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """``hmac.digest(key, msg, "sha256")``."""
    if _hashlib is not None:
        try:
            return _hashlib.hmac_digest(key, msg, "sha256")
        except _hashlib.UnsupportedDigestmodError:  # as hmac.digest: then its own HMAC
            pass
    import hmac

    return hmac.digest(key, msg, "sha256")


def sha256_hex(data: bytes) -> str:
    """``hashlib.sha256(data).hexdigest()``."""
    if _hashlib is not None:
        try:
            return _hashlib.openssl_sha256(data).hexdigest()
        except ValueError:  # OpenSSL's policy refuses it: hashlib then uses the builtin _sha256
            pass
    import hashlib

    return hashlib.sha256(data).hexdigest()


def equal(a: str | bytes, b: str | bytes) -> bool:
    """``hmac.compare_digest(a, b)``: constant-time, for ASCII strings or bytes."""
    if _hashlib is not None:
        return _hashlib.compare_digest(a, b)
    import hmac

    return hmac.compare_digest(a, b)
