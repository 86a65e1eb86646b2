"""HMAC-SHA256, SHA-256 and constant-time comparison for the state's MACs, without loading OpenSSL.

Why: a ``read`` with the master key at hand computes a handful of HMAC-SHA256s over a few hundred
bytes. ``import hmac`` imports ``hashlib``, which loads OpenSSL's libcrypto through ``_hashlib`` and
probes every digest it offers: about 5.7 ms of CPU on the machine of bench/README.md, a third of a
bare interpreter start-up; ``_hashlib`` alone is still 3.8 ms. CPython's own SHA-256 (the module
``hashlib`` falls back to without OpenSSL: ``_sha256`` in 3.11, ``_sha2`` from 3.12) loads in
0.4 ms, and HMAC on top of it is the few lines of RFC 2104 that ``hmac.py`` itself runs when
OpenSSL cannot (``hmac._compute_digest_fallback``). Comparison is ``_operator._compare_digest``,
the constant-time function ``hmac.compare_digest`` is without OpenSSL (with it, a copy of the same
code in ``_hashlib``).

So the results are ``hmac.digest(key, msg, "sha256")``, ``hashlib.sha256(data).hexdigest()`` and
``hmac.compare_digest(a, b)``: ``tests/store/test_digests.py`` checks them against those on
arbitrary input (RFC 4231's vectors too). Where the builtin SHA-256 is missing, or refuses to run
(Python builds patched for FIPS mode block the non-OpenSSL hashes with ValueError), each function
calls ``hmac``/``hashlib`` instead. Only the store's MAC code and ``masterkey`` import this module,
so a read without the master key at hand loads no hash module at all.
"""

from __future__ import annotations

try:
    from _sha2 import sha256 as _sha256  # CPython 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # CPython 3.11
    except ImportError:  # no builtin SHA-256: hashlib's (OpenSSL's) below
        _sha256 = None
try:
    from _operator import _compare_digest
except ImportError:
    _compare_digest = None

_BLOCK = 64  # SHA-256's block size in bytes (RFC 2104's B)
_IPAD = bytes(x ^ 0x36 for x in range(256))  # translation tables: key XOR ipad / opad, bytewise
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """``hmac.digest(key, msg, "sha256")``: RFC 2104, H(K ^ opad, H(K ^ ipad, msg)), a key longer
    than the block hashed first, a shorter one padded with zeros."""
    if _sha256 is not None:
        try:
            key = memoryview(key).cast("B")  # its bytes, as hmac takes it (TypeError: not bytes-like)
            if len(key) > _BLOCK:
                key = _sha256(key).digest()
            key = bytes(key).ljust(_BLOCK, b"\0")
            inner = _sha256(key.translate(_IPAD))
            inner.update(msg)
            outer = _sha256(key.translate(_OPAD))
            outer.update(inner.digest())
            return outer.digest()
        except (TypeError, ValueError):  # not bytes, or a FIPS build refusing its builtin
            pass  # hashes: hmac's answer (OpenSSL's HMAC) or its own error
    import hmac

    return hmac.digest(key, msg, "sha256")


def sha256_hex(data: bytes) -> str:
    """``hashlib.sha256(data).hexdigest()``."""
    if _sha256 is not None:
        try:
            return _sha256(data).hexdigest()
        except (TypeError, ValueError):  # as above: hashlib's answer or its own error
            pass
    import hashlib

    return hashlib.sha256(data).hexdigest()


def equal(a: str | bytes, b: str | bytes) -> bool:
    """``hmac.compare_digest(a, b)``: constant-time, for ASCII strings or bytes-like objects."""
    if _compare_digest is not None:
        return _compare_digest(a, b)
    import hmac

    return hmac.compare_digest(a, b)
