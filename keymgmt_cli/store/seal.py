"""Sealing secrets in the state with AES-256-GCM under the master key.

Token: ``"v1." + base64url(nonce[12] || ciphertext || tag[16])``, unpadded. The nonce is random
(96 bits, NIST SP 800-38D section 8.2.2): fine for the few thousand seals a state sees in
its life under one key. The associated data binds a sealed value to where it belongs (document
id and field, e.g. ``"keymgmt/keys/k1#versions.1.material"``), so a token copied to another
document or field fails to unseal instead of silently decrypting.

The only module of the store that imports ``cryptography``; callers import it lazily.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import StoreError

TOKEN_PREFIX = "v1."
_NONCE_BYTES = 12
_TAG_BYTES = 16
_AAD_CONTEXT = b"keymgmt-seal-v1\x00"


def _aad(aad: str) -> bytes:
    return _AAD_CONTEXT + aad.encode("utf-8")


class Sealer:
    """Seals and unseals with one 32-byte master key. Never shows the key in its repr."""

    __slots__ = ("_aead",)

    def __init__(self, master_key: bytes):
        if not isinstance(master_key, (bytes, bytearray)) or len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(bytes(master_key))

    def __repr__(self) -> str:
        return "Sealer(<master key hidden>)"

    def seal(self, plaintext: bytes, aad: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, bytes(plaintext), _aad(aad))
        return TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def unseal(self, token: str, aad: str) -> bytes:
        blob = _decode_token(token)
        if blob is None or len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise StoreError(f"cannot unseal {aad}: not a sealed value (corrupt or tampered state)")
        try:
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(aad))
        except InvalidTag:
            raise StoreError(f"cannot unseal {aad}: wrong master key or tampered state") from None


def _decode_token(token: object) -> bytes | None:
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        return None
    body = token[len(TOKEN_PREFIX):]
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
