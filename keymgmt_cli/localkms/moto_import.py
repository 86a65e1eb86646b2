"""Strict AWS KMS "import key material" (BYOK) test double on top of moto.

moto 5.2.x implements KMS keys but not ``GetParametersForImport``,
``ImportKeyMaterial`` or ``DeleteImportedKeyMaterial``, and it treats
``Origin=EXTERNAL`` keys like ordinary keys (Enabled, with random material).
:func:`install` monkeypatches moto's KMS so that it behaves like AWS KMS for
the BYOK lifecycle, in-process (``moto.mock_aws``) and in moto's server mode.

The double is meant to be *stricter* than AWS's documented rules, never
looser.  Where AWS's behaviour is unknown we refuse.  The choices that go
beyond AWS's documented rules:

* An import token is spent by the first ``ImportKeyMaterial`` call that
  presents it for a key, whether the call succeeds or fails.  A call that fails
  earlier, on its own parameters or on the key's state, does not spend it.
  Each wrapping key pair comes from a fresh RSA key generation.  It is given
  out once and forgotten after use (see :class:`_WrappingKeyPool`).
* "Same key material" on reimport means byte-identical material.  For RSA/ECC
  keys that is the same PKCS#8 DER encoding, not just the same key.
* Symmetric keys accept ``RSAES_OAEP_SHA_*`` only.  RSA keys accept
  ``RSA_AES_KEY_WRAP_SHA_*`` only.  ECC keys accept both, except P-521 with an
  RSA_2048 wrapping key and OAEP.  This is the AWS developer guide table.  The
  API model text is looser.
* ``EXTERNAL`` keys are limited to SYMMETRIC_DEFAULT (ENCRYPT_DECRYPT),
  RSA_2048/3072/4096 (ENCRYPT_DECRYPT or SIGN_VERIFY) and
  ECC_NIST_P256/P384/P521 or ECC_SECG_P256K1 (SIGN_VERIFY).  HMAC, SM2 and
  KEY_AGREEMENT imports are refused with UnsupportedOperationException.
* ``ImportType=NEW_KEY_MATERIAL`` on a key that already has material (the
  2025 on-demand rotation flow) is refused: it is not emulated.
* Material with ``KEY_MATERIAL_EXPIRES`` really expires.  The check is lazy and
  runs when the key is next used or described.

The clock used for token expiry and material expiry can be replaced with
:func:`set_clock`, for example in tests.

Pinned to ``moto>=5.2,<5.3``.  Every patch below says which moto internals it
relies on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import moto
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
)
from moto.core.exceptions import JsonRESTError
from moto.kms import utils as kms_utils
from moto.kms.exceptions import (
    AccessDeniedException,
    AlreadyExistsException,
    NotFoundException,
    ValidationException,
)
from moto.kms.models import Key, KmsBackend, kms_backends
from moto.kms.responses import KmsResponse

__all__ = [
    "install",
    "installed",
    "prewarm",
    "set_clock",
    "TOKEN_VALIDITY_SECONDS",
]

_log = logging.getLogger(__name__)

TOKEN_VALIDITY_SECONDS = 24 * 3600  # "Each public key and import token set is valid for 24 hours."
MAX_VALID_TO_SECONDS = 365 * 86400  # ValidTo "maximum value is 365 days from the request date"
_MAX_BLOB = 6144  # EncryptedKeyMaterial / ImportToken: 1..6144 bytes

_LOCK = threading.RLock()
_INSTALLED = False

# --------------------------------------------------------------------------- clock

_clock: Callable[[], float] = time.time


def set_clock(clock: Callable[[], float] | None) -> None:
    """Replace the clock (epoch seconds) used for token and material expiry. Pass None to restore."""
    global _clock
    _clock = clock if clock is not None else time.time


def _now() -> float:
    return float(_clock())


# --------------------------------------------------------------------------- errors
# moto turns any JsonRESTError into {"__type": ..., "message": ...} with HTTP 400, and botocore
# then raises ClientError with that __type as the Code (same mechanism as moto/kms/exceptions.py).


class _KmsError(JsonRESTError):
    code = 400
    kms_code = "KMSInternalException"

    def __init__(self, message: str = "") -> None:
        super().__init__(self.kms_code, message)


class KMSInvalidStateException(_KmsError):
    kms_code = "KMSInvalidStateException"


class DisabledException(_KmsError):
    kms_code = "DisabledException"


class UnsupportedOperationException(_KmsError):
    kms_code = "UnsupportedOperationException"


class InvalidImportTokenException(_KmsError):
    kms_code = "InvalidImportTokenException"


class ExpiredImportTokenException(_KmsError):
    kms_code = "ExpiredImportTokenException"


class IncorrectKeyMaterialException(_KmsError):
    kms_code = "IncorrectKeyMaterialException"


class InvalidCiphertextException(_KmsError):
    kms_code = "InvalidCiphertextException"


class InvalidKeyUsageException(_KmsError):
    kms_code = "InvalidKeyUsageException"


def _enum_error(value: Any, member: str, allowed: Iterable[str]) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


# --------------------------------------------------------------------------- constants

_SYMMETRIC = "SYMMETRIC_DEFAULT"
_RSA_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
_PENDING_DELETION = ("PendingDeletion", "PendingReplicaDeletion")
_ORIGINS = ("AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE")

_ALL_WRAPPING_ALGORITHMS = (
    "RSAES_PKCS1_V1_5",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
    "SM2PKE",
)
_OAEP_HASH = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}
_KWP_HASH = {"RSA_AES_KEY_WRAP_SHA_1": hashes.SHA1, "RSA_AES_KEY_WRAP_SHA_256": hashes.SHA256}
_ALL_WRAPPING_KEY_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096", "SM2")

_EXPIRATION_MODELS = ("KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE")
_IMPORT_TYPES = ("NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL")

# DER-encoded OID contents (without tag/length) of the PKCS#8 AlgorithmIdentifier we accept.
_OID_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
_OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1


def _key_family(key_spec: str) -> str:
    if key_spec == _SYMMETRIC:
        return "symmetric"
    if key_spec in _RSA_BITS:
        return "rsa"
    if key_spec in _EC_CURVES:
        return "ecc"
    return "other"


def _allowed_wrapping(key_spec: str) -> tuple[str, ...]:
    family = _key_family(key_spec)
    if family == "symmetric":
        return ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1")
    if family == "rsa":
        return ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1")
    if family == "ecc":
        return ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1")
    return ()


# --------------------------------------------------------------------------- per-key import state


@dataclass
class _ImportState:
    """What the double knows about a key's imported material (stored on the moto Key object)."""

    #: KeyMaterialId of the material the key is permanently associated with (None until the first import).
    bound_material_id: str | None = None
    has_material: bool = False
    expiration_model: str | None = None
    valid_to: float | None = None
    description: str | None = None


def _state(key: Key) -> _ImportState:
    st = getattr(key, "_localkms_import", None)
    if st is None:
        st = _ImportState()
        key._localkms_import = st  # type: ignore[attr-defined]
    return st


def _material_id(key: Key, material: bytes) -> str:
    # AWS derives the KeyMaterialId from the KMS key ID and the material. Replicas share the key ID.
    return hashlib.sha256(key.id.encode("utf-8") + b"\x00" + material).hexdigest()


def _forget_material(key: Key) -> None:
    """Drop the key's material, like DeleteImportedKeyMaterial or expiry do."""
    st = _state(key)
    st.has_material = False
    st.expiration_model = None
    st.valid_to = None
    # None rather than random bytes: a code path this patch misses then fails loudly
    # instead of silently using material that AWS would not have.
    key.key_material = None
    key.private_key = None
    if key.key_state not in _PENDING_DELETION:
        key.key_state = "PendingImport"
        key.enabled = False


def _expire_due(key: Key) -> None:
    if getattr(key, "origin", None) != "EXTERNAL":
        return
    st = _state(key)
    if st.has_material and st.valid_to is not None and _now() >= st.valid_to:
        _forget_material(key)


def _require_enabled(key: Key) -> None:
    """AWS key-state rules for cryptographic operations (moto checks no state at all)."""
    _expire_due(key)
    state = key.key_state
    if state == "Enabled":
        return
    if state == "Disabled":
        raise DisabledException(f"{key.arn} is disabled.")
    if state == "PendingImport":
        raise KMSInvalidStateException(f"{key.arn} is pending import.")
    if state in _PENDING_DELETION:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
    raise KMSInvalidStateException(f"{key.arn} is {state}.")


def _lookup(backend: KmsBackend, key_id: Any) -> Key | None:
    """Best-effort resolution (id, ARN, alias, alias ARN); None lets moto raise its own NotFound."""
    if not isinstance(key_id, str) or not key_id:
        return None
    try:
        return backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:
        return None


# --------------------------------------------------------------------------- wrapping key pool


class _WrappingKeyPool:
    """Fresh RSA wrapping key pairs, each given out exactly once.

    RSA-4096 key generation takes 0.3–1 s.  After the first request for a spec,
    one spare pair of that spec is generated in a background daemon thread, so
    the next request usually gets a pair at once.  A pair is removed from the
    pool when it is given out.  It is never given out again, and it is dropped
    once its token has been used.  No pair is persisted.
    """

    SPARES = 1

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._spares: dict[str, deque[rsa.RSAPrivateKey]] = {s: deque() for s in ("RSA_2048", "RSA_3072", "RSA_4096")}
        self._wanted: set[str] = set()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _generate(spec: str) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[spec])

    def take(self, spec: str) -> rsa.RSAPrivateKey:
        with self._cv:
            self._wanted.add(spec)
            spare = self._spares[spec].popleft() if self._spares[spec] else None
            self._ensure_thread()
            self._cv.notify_all()
        return spare if spare is not None else self._generate(spec)

    def prewarm(self, specs: Iterable[str]) -> None:
        with self._cv:
            for spec in specs:
                if spec not in self._spares:
                    raise ValueError(f"unknown wrapping key spec {spec!r}")
                self._wanted.add(spec)
            self._ensure_thread()
            self._cv.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._fill, name="localkms-wrapping-keys", daemon=True)
            self._thread.start()

    def _fill(self) -> None:
        while True:
            with self._cv:
                todo = next((s for s in sorted(self._wanted) if len(self._spares[s]) < self.SPARES), None)
                if todo is None:
                    self._cv.wait()
                    continue
            pair = self._generate(todo)
            with self._cv:
                self._spares[todo].append(pair)


_POOL = _WrappingKeyPool()


def prewarm(specs: Iterable[str] = ("RSA_4096",)) -> None:
    """Start generating spare wrapping key pairs of these specs in the background."""
    _POOL.prewarm(specs)


# --------------------------------------------------------------------------- import tokens


@dataclass
class _Token:
    key_id: str
    algorithm: str
    wrapping_spec: str
    expires_at: float
    private_key: rsa.RSAPrivateKey | None
    used: bool = False


def _tokens(backend: KmsBackend) -> dict[bytes, _Token]:
    # Stored on the per-account, per-region backend.  A token from another region is
    # therefore unknown here, and moto's backend reset (mock_aws start/stop) drops the tokens.
    reg = backend.__dict__.get("_localkms_tokens")
    if reg is None:
        reg = backend.__dict__["_localkms_tokens"] = {}
    return reg


def _prune(reg: dict[bytes, _Token]) -> None:
    now = _now()
    for tok, rec in list(reg.items()):
        if now >= rec.expires_at + TOKEN_VALIDITY_SECONDS:  # keep a day of tombstones for good error messages
            del reg[tok]


# --------------------------------------------------------------------------- request helpers


def _params(resp: KmsResponse) -> dict[str, Any]:
    try:
        body = json.loads(resp.body or "{}")
    except (TypeError, ValueError):
        raise ValidationException("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationException("Request body must be a JSON object")
    return body


def _required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        member = name[0].lower() + name[1:]
        raise ValidationException(
            f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
            "Member must not be null"
        )
    return value


def _blob(params: dict[str, Any], name: str) -> bytes:
    raw = _required(params, name)
    member = name[0].lower() + name[1:]
    if not isinstance(raw, str):
        raise ValidationException(f"'{member}' must be a base64-encoded blob")
    try:
        data = base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValidationException(f"'{member}' is not valid base64") from None
    if not 1 <= len(data) <= _MAX_BLOB:
        raise ValidationException(
            f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
            f"Member must have length between 1 and {_MAX_BLOB}"
        )
    return data


def _resolve_key_id_or_arn(resp: KmsResponse, key_id: Any) -> Key:
    """KeyId that must be a key ID or key ARN of this account and region (aliases refused)."""
    if not isinstance(key_id, str):
        raise ValidationException("KeyId must be a string")
    # moto's own check: raw id or key ARN, else NotFoundException("Invalid keyId ...").
    resp._validate_cmk_id(key_id)
    if key_id.startswith("arn:"):
        parts = key_id.split(":", 5)
        if len(parts) != 6 or parts[3] != resp.region or parts[4] != resp.current_account:
            # moto only splits at ":key/"; AWS does not accept another region's or account's ARN.
            raise NotFoundException(f"Key '{key_id}' does not exist")
    return resp.kms_backend.keys[resp.kms_backend.get_key_id(key_id)]


def _require_external(key: Key) -> None:
    if key.origin != "EXTERNAL":
        raise UnsupportedOperationException(
            f"{key.arn} origin is {key.origin} which is not valid for this operation."
        )


def _require_not_pending_deletion(key: Key) -> None:
    if key.key_state in _PENDING_DELETION:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")


def _parse_timestamp(value: Any, member: str) -> float:
    # botocore's JSON protocol sends timestamps as epoch seconds; accept ISO 8601 strings too.
    if isinstance(value, bool):
        raise ValidationException(f"'{member}' is not a valid timestamp")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationException(f"'{member}' is not a valid timestamp") from None
        if parsed.tzinfo is None:
            raise ValidationException(f"'{member}' must include a time zone")
        return parsed.timestamp()
    raise ValidationException(f"'{member}' is not a valid timestamp")


# --------------------------------------------------------------------------- unwrap and material checks


def _oaep(hash_cls: type[hashes.HashAlgorithm]) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)


def _unwrap(tok: _Token, blob: bytes) -> bytes:
    priv = tok.private_key
    assert priv is not None
    k = priv.key_size // 8
    bad = InvalidCiphertextException("KMS could not decrypt the encrypted (wrapped) key material.")
    try:
        if tok.algorithm in _OAEP_HASH:
            if len(blob) != k:
                raise bad
            return priv.decrypt(blob, _oaep(_OAEP_HASH[tok.algorithm]))
        # RSA_AES_KEY_WRAP_SHA_*: RSA-OAEP(ephemeral AES-256 key) || AES-KWP(RFC 5649, material)
        if len(blob) <= k:
            raise bad
        aes_key = priv.decrypt(blob[:k], _oaep(_KWP_HASH[tok.algorithm]))
        if len(aes_key) != 32:
            raise bad
        return aes_key_unwrap_with_padding(aes_key, blob[k:])
    except (ValueError, InvalidUnwrap):
        raise bad from None


def _der_element(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content_start, content_end) of the DER element at pos; ValueError if malformed."""
    if pos + 2 > len(buf):
        raise ValueError("truncated")
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4 or pos + n > len(buf):
            raise ValueError("bad length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > len(buf):
        raise ValueError("truncated")
    return tag, pos, pos + length


def _pkcs8_algorithm_oid(material: bytes) -> bytes:
    """Return the algorithm OID of an unencrypted PKCS#8 PrivateKeyInfo; ValueError otherwise.

    PKCS#1 RSAPrivateKey, SEC1 ECPrivateKey and EncryptedPrivateKeyInfo all fail here.
    """
    tag, start, end = _der_element(material, 0)
    if tag != 0x30 or end != len(material):
        raise ValueError("not a single DER SEQUENCE")
    tag, v_start, v_end = _der_element(material, start)  # version INTEGER (0 = v1, 1 = v2 / OneAsymmetricKey)
    if tag != 0x02 or material[v_start:v_end] not in (b"\x00", b"\x01"):
        raise ValueError("no PKCS#8 version")
    tag, a_start, a_end = _der_element(material, v_end)  # AlgorithmIdentifier SEQUENCE
    if tag != 0x30:
        raise ValueError("no AlgorithmIdentifier")
    tag, o_start, o_end = _der_element(material, a_start)
    if tag != 0x06:
        raise ValueError("no algorithm OID")
    tag, _, _ = _der_element(material, a_end)  # privateKey OCTET STRING
    if tag != 0x04:
        raise ValueError("no privateKey OCTET STRING")
    return material[o_start:o_end]


def _check_material(key: Key, material: bytes) -> Any:
    """Validate material for the key spec; return the parsed private key (asymmetric) or the bytes."""
    spec = key.key_spec
    family = _key_family(spec)
    if family == "symmetric":
        if len(material) != 32:
            raise IncorrectKeyMaterialException(
                f"Key material for {spec} must be exactly 32 bytes (256-bit), got {len(material)} bytes."
            )
        return material
    want_oid = _OID_RSA_ENCRYPTION if family == "rsa" else _OID_EC_PUBLIC_KEY
    try:
        oid = _pkcs8_algorithm_oid(material)
    except ValueError as exc:
        raise IncorrectKeyMaterialException(
            f"Key material for {spec} must be a DER-encoded, unencrypted PKCS#8 private key ({exc})."
        ) from None
    if oid != want_oid:
        raise IncorrectKeyMaterialException(f"Key material is not a {family.upper()} private key, as {spec} requires.")
    try:
        priv = serialization.load_der_private_key(material, password=None)
    except (ValueError, TypeError) as exc:
        raise IncorrectKeyMaterialException(f"Key material is not a valid private key: {exc}") from None
    if family == "rsa":
        if not isinstance(priv, rsa.RSAPrivateKey) or priv.key_size != _RSA_BITS[spec]:
            size = getattr(priv, "key_size", "?")
            raise IncorrectKeyMaterialException(f"{spec} requires a {_RSA_BITS[spec]}-bit RSA key, got {size} bits.")
    else:
        curve = _EC_CURVES[spec]
        if not isinstance(priv, ec.EllipticCurvePrivateKey) or not isinstance(priv.curve, curve):
            got = getattr(getattr(priv, "curve", None), "name", "?")
            raise IncorrectKeyMaterialException(f"{spec} requires an EC key on {curve.name}, got {got}.")
    return priv


def _moto_private_key(key_spec: str, priv: Any) -> Any:
    """Wrap an imported private key in moto's own key class (moto.kms.utils).

    moto 5.2 keeps asymmetric keys in ``Key.private_key`` as ``RSAPrivateKey(key_size)`` or
    ``ECDSAPrivateKey(key_spec)``.  Their constructors generate a new key.  We bypass them with
    ``__new__`` and set the attributes their sign/verify/public_key methods read:
    RSA: ``key_size``, ``private_key``.  ECDSA: ``private_key``, ``valid_signing_algorithms``.
    """
    if key_spec in _RSA_BITS:
        obj = kms_utils.RSAPrivateKey.__new__(kms_utils.RSAPrivateKey)
        obj.key_size = priv.key_size
        obj.private_key = priv
        return obj
    obj = kms_utils.ECDSAPrivateKey.__new__(kms_utils.ECDSAPrivateKey)
    obj.private_key = priv
    obj.valid_signing_algorithms = {
        "ECC_NIST_P256": ["ECDSA_SHA_256"],
        "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
        "ECC_NIST_P384": ["ECDSA_SHA_384"],
        "ECC_NIST_P521": ["ECDSA_SHA_512"],
    }[key_spec]
    return obj


# --------------------------------------------------------------------------- new actions (KmsResponse methods)
# moto's BaseResponse.call_action maps the X-Amz-Target action (e.g. "GetParametersForImport") to a
# snake_case *function* defined on the response class.  Adding functions to KmsResponse is enough.


def _get_parameters_for_import(self: KmsResponse) -> str:
    params = _params(self)
    key_id = _required(params, "KeyId")
    algorithm = _required(params, "WrappingAlgorithm")
    wrapping_spec = _required(params, "WrappingKeySpec")
    if algorithm not in _ALL_WRAPPING_ALGORITHMS:
        raise _enum_error(algorithm, "wrappingAlgorithm", _ALL_WRAPPING_ALGORITHMS)
    if wrapping_spec not in _ALL_WRAPPING_KEY_SPECS:
        raise _enum_error(wrapping_spec, "wrappingKeySpec", _ALL_WRAPPING_KEY_SPECS)
    if algorithm == "RSAES_PKCS1_V1_5":
        raise UnsupportedOperationException(
            "RSAES_PKCS1_V1_5 is no longer supported as a wrapping algorithm (since October 10, 2023)."
        )
    if algorithm == "SM2PKE" or wrapping_spec == "SM2":
        raise UnsupportedOperationException("SM2 wrapping is only available in China Regions.")

    with _LOCK:
        key = _resolve_key_id_or_arn(self, key_id)
        _require_external(key)
        _expire_due(key)
        _require_not_pending_deletion(key)
        allowed = _allowed_wrapping(key.key_spec)
        if algorithm not in allowed:
            raise ValidationException(
                f"Wrapping algorithm {algorithm} is not supported for {key.key_spec} key material. "
                f"Use one of: {', '.join(allowed)}."
            )
        if key.key_spec == "ECC_NIST_P521" and wrapping_spec == "RSA_2048" and algorithm in _OAEP_HASH:
            raise ValidationException(
                "ECC_NIST_P521 key material cannot be wrapped with an RSA_2048 wrapping key and "
                f"{algorithm}. Use a larger wrapping key or an RSA_AES_KEY_WRAP_SHA_* wrapping algorithm."
            )
        reg = _tokens(self.kms_backend)
        _prune(reg)

    private_key = _POOL.take(wrapping_spec)  # may take ~1 s for RSA_4096; done outside the lock
    token = b"localkms-import-token-v1:" + secrets.token_bytes(48)
    expires_at = _now() + TOKEN_VALIDITY_SECONDS
    with _LOCK:
        reg[token] = _Token(
            key_id=key.id,
            algorithm=algorithm,
            wrapping_spec=wrapping_spec,
            expires_at=expires_at,
            private_key=private_key,
        )
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return json.dumps(
        {
            "KeyId": key.arn,
            "ImportToken": base64.b64encode(token).decode("ascii"),
            "PublicKey": base64.b64encode(public_der).decode("ascii"),
            "ParametersValidTo": expires_at,
        }
    )


_DESCRIPTION_RE = re.compile(r"^[a-zA-Z0-9:/_\s.-]+$")
_MATERIAL_ID_RE = re.compile(r"^[a-f0-9]{64}$")


def _import_key_material(self: KmsResponse) -> str:
    params = _params(self)
    key_id = _required(params, "KeyId")
    token_bytes = _blob(params, "ImportToken")
    wrapped = _blob(params, "EncryptedKeyMaterial")
    expiration_model = params.get("ExpirationModel") or "KEY_MATERIAL_EXPIRES"  # AWS default
    valid_to_raw = params.get("ValidTo")
    import_type = params.get("ImportType")
    material_description = params.get("KeyMaterialDescription")
    requested_material_id = params.get("KeyMaterialId")

    # Parameter rules that do not depend on the key.
    if expiration_model not in _EXPIRATION_MODELS:
        raise _enum_error(expiration_model, "expirationModel", _EXPIRATION_MODELS)
    now = _now()
    valid_to: float | None = None
    if expiration_model == "KEY_MATERIAL_DOES_NOT_EXPIRE":
        if valid_to_raw is not None:
            raise ValidationException("ValidTo must not be set when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.")
    else:
        if valid_to_raw is None:
            raise ValidationException("A ValidTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES.")
        valid_to = _parse_timestamp(valid_to_raw, "validTo")
        if valid_to <= now:
            raise ValidationException("ValidTo must be in the future.")
        if valid_to - now > MAX_VALID_TO_SECONDS:
            raise ValidationException("ValidTo must be at most 365 days from the request date.")
    if import_type is not None and import_type not in _IMPORT_TYPES:
        raise _enum_error(import_type, "importType", _IMPORT_TYPES)
    if material_description is not None and (
        not isinstance(material_description, str)
        or len(material_description) > 256
        or not _DESCRIPTION_RE.match(material_description)
    ):
        raise ValidationException("KeyMaterialDescription must match ^[a-zA-Z0-9:/_\\s.-]+$ (at most 256 characters).")
    if requested_material_id is not None and (
        not isinstance(requested_material_id, str) or not _MATERIAL_ID_RE.match(requested_material_id)
    ):
        raise ValidationException("KeyMaterialId must be 64 lowercase hexadecimal characters.")

    with _LOCK:
        key = _resolve_key_id_or_arn(self, key_id)
        _require_external(key)
        _expire_due(key)
        _require_not_pending_deletion(key)
        if key.key_state not in ("PendingImport", "Enabled", "Disabled"):
            raise KMSInvalidStateException(f"{key.arn} is {key.key_state}.")
        symmetric = key.key_spec == _SYMMETRIC
        if not symmetric and (
            import_type is not None or material_description is not None or requested_material_id is not None
        ):
            # "only usable with symmetric encryption keys"; KMS rejects ImportType for other keys.
            raise ValidationException(
                "ImportType, KeyMaterialDescription and KeyMaterialId are only supported for "
                "SYMMETRIC_DEFAULT keys."
            )
        st = _state(key)
        effective_type = import_type or ("EXISTING_KEY_MATERIAL" if st.bound_material_id else "NEW_KEY_MATERIAL")
        if effective_type == "NEW_KEY_MATERIAL" and requested_material_id is not None:
            raise ValidationException("You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL.")

        # Token checks.  The token is spent from here on, whatever happens next.
        reg = _tokens(self.kms_backend)
        tok = reg.get(token_bytes)
        if tok is None:
            raise InvalidImportTokenException("The import token is invalid or was not issued in this Region.")
        if tok.used:
            raise InvalidImportTokenException("The import token has already been used.")
        tok.used = True
        unwrap_token = _Token(tok.key_id, tok.algorithm, tok.wrapping_spec, tok.expires_at, tok.private_key)
        tok.private_key = None  # forget the wrapping key pair
        if now >= tok.expires_at:
            raise ExpiredImportTokenException("The import token has expired.")
        if tok.key_id != key.id:
            raise InvalidImportTokenException("The import token is associated with a different KMS key.")

        material = _unwrap(unwrap_token, wrapped)
        parsed = _check_material(key, material)
        new_id = _material_id(key, material)

        if effective_type == "EXISTING_KEY_MATERIAL":
            if st.bound_material_id is None:
                raise IncorrectKeyMaterialException(
                    "ImportType EXISTING_KEY_MATERIAL, but no key material is associated with this key."
                )
            if new_id != st.bound_material_id:
                raise IncorrectKeyMaterialException(
                    "The key material is not the same key material that was previously imported into this key."
                )
            if requested_material_id is not None and requested_material_id != new_id:
                raise IncorrectKeyMaterialException("KeyMaterialId does not identify the imported key material.")
        elif st.bound_material_id is not None:
            if new_id == st.bound_material_id:
                raise IncorrectKeyMaterialException(
                    "KMS expected new key material but the key material being imported is already "
                    "associated with this key."
                )
            raise UnsupportedOperationException(
                "The local KMS double does not emulate on-demand rotation of imported key material "
                "(ImportType NEW_KEY_MATERIAL on a key that already has key material)."
            )

        # Success: the key really uses the material from now on.
        if symmetric:
            key.key_material = material  # moto's Encrypt/Decrypt use Key.key_material as the AES-256-GCM key
        else:
            key.private_key = _moto_private_key(key.key_spec, parsed)  # moto's Sign/Verify/GetPublicKey use it
        st.bound_material_id = new_id
        st.has_material = True
        st.expiration_model = expiration_model
        st.valid_to = valid_to
        if material_description is not None:
            st.description = material_description
        if key.key_state == "PendingImport":
            key.key_state = "Enabled"
            key.enabled = True
        out: dict[str, Any] = {"KeyId": key.arn}
        if symmetric:
            out["KeyMaterialId"] = new_id
        return json.dumps(out)


def _delete_imported_key_material(self: KmsResponse) -> str:
    params = _params(self)
    key_id = _required(params, "KeyId")
    requested_material_id = params.get("KeyMaterialId")
    with _LOCK:
        key = _resolve_key_id_or_arn(self, key_id)
        _require_external(key)
        _expire_due(key)
        st = _state(key)
        if requested_material_id is not None:
            if key.key_spec != _SYMMETRIC:
                raise ValidationException("KeyMaterialId is only supported for SYMMETRIC_DEFAULT keys.")
            if requested_material_id != st.bound_material_id:
                raise NotFoundException(f"Key material {requested_material_id} is not associated with {key.arn}.")
        material_id = st.bound_material_id
        _forget_material(key)
        out: dict[str, Any] = {"KeyId": key.arn}
        if key.key_spec == _SYMMETRIC and material_id is not None:
            out["KeyMaterialId"] = material_id
        return json.dumps(out)


# --------------------------------------------------------------------------- asymmetric Encrypt/Decrypt for imported RSA keys
# moto encrypts with Key.key_material (AES-GCM) even for RSA keys.  Imported RSA keys have no such
# material, so Encrypt/Decrypt on them use real RSAES-OAEP with the imported key pair, as AWS does.


def _is_external_asymmetric(key: Key | None) -> bool:
    return key is not None and key.origin == "EXTERNAL" and key.key_spec != _SYMMETRIC


def _wrap_replicate_key(orig: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    """moto ignores ReplicateKey's Tags and Description; AWS puts them on the replica."""

    def replicate_key(self: KmsResponse) -> str:
        body = orig(self)
        params = _params(self)
        meta = json.loads(body)["ReplicaKeyMetadata"]
        backend = kms_backends[self.current_account][params["ReplicaRegion"]]
        replica = backend.keys[meta["KeyId"]]
        tags = params.get("Tags") or []
        if tags:
            backend.tagger.tag_resource(replica.id, [{"TagKey": t["TagKey"], "TagValue": t.get("TagValue", "")}
                                                     for t in tags])
        if params.get("Description") is not None:
            replica.description = params["Description"]
            meta["Description"] = params["Description"]
        result = json.loads(body)
        result["ReplicaKeyMetadata"] = meta
        if tags:
            result["ReplicaTags"] = tags
        return json.dumps(result)

    return replicate_key


def _asym_setup(self: KmsResponse, key: Key, params: dict[str, Any]) -> padding.OAEP:
    _require_enabled(key)
    if key.key_usage != "ENCRYPT_DECRYPT" or key.key_spec not in _RSA_BITS:
        raise InvalidKeyUsageException(f"{key.arn} key usage is {key.key_usage} which is not valid for this operation.")
    algorithm = params.get("EncryptionAlgorithm") or "SYMMETRIC_DEFAULT"
    if algorithm not in _OAEP_HASH:
        raise InvalidKeyUsageException(
            f"Encryption algorithm {algorithm} is not valid for {key.key_spec}; use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256."
        )
    if params.get("EncryptionContext"):
        raise ValidationException("EncryptionContext is not supported with asymmetric KMS keys.")
    return _oaep(_OAEP_HASH[algorithm])


def _wrap_encrypt(orig: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def encrypt(self: KmsResponse) -> str:
        params = _params(self)
        key = _lookup(self.kms_backend, params.get("KeyId"))
        if not _is_external_asymmetric(key):
            return orig(self)
        assert key is not None
        pad = _asym_setup(self, key, params)
        plaintext = base64.b64decode(_required(params, "Plaintext"))
        k = key.private_key.private_key.key_size // 8
        h_len = _OAEP_HASH[params["EncryptionAlgorithm"]].digest_size
        if len(plaintext) > k - 2 * h_len - 2:
            raise ValidationException(f"Plaintext is too long for {key.key_spec} with {params['EncryptionAlgorithm']}.")
        ciphertext = key.private_key.private_key.public_key().encrypt(plaintext, pad)
        return json.dumps(
            {
                "CiphertextBlob": base64.b64encode(ciphertext).decode("ascii"),
                "KeyId": key.arn,
                "EncryptionAlgorithm": params["EncryptionAlgorithm"],
            }
        )

    encrypt.__name__ = "encrypt"
    return encrypt


def _wrap_decrypt(orig: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def decrypt(self: KmsResponse) -> str:
        params = _params(self)
        key = _lookup(self.kms_backend, params.get("KeyId"))
        if not _is_external_asymmetric(key):
            return orig(self)
        assert key is not None
        pad = _asym_setup(self, key, params)
        ciphertext = base64.b64decode(_required(params, "CiphertextBlob"))
        try:
            plaintext = key.private_key.private_key.decrypt(ciphertext, pad)
        except ValueError:
            raise InvalidCiphertextException("The ciphertext is invalid for this key and algorithm.") from None
        return json.dumps(
            {
                "Plaintext": base64.b64encode(plaintext).decode("ascii"),
                "KeyId": key.arn,
                "EncryptionAlgorithm": params["EncryptionAlgorithm"],
            }
        )

    decrypt.__name__ = "decrypt"
    return decrypt


# --------------------------------------------------------------------------- fixes of existing moto behaviour (KmsBackend / Key)


def _default_and_check_usage(key_spec: str, key_usage: str | None) -> str:
    # moto leaves KeyUsage unset (absent from KeyMetadata) when the request omits it.  AWS defaults to
    # ENCRYPT_DECRYPT and validates the spec/usage pair.
    usage = key_usage or "ENCRYPT_DECRYPT"
    valid = {
        "symmetric": ("ENCRYPT_DECRYPT",),
        "rsa": ("ENCRYPT_DECRYPT", "SIGN_VERIFY"),
    }.get(_key_family(key_spec))
    if valid is None:
        if key_spec.startswith("HMAC"):
            valid = ("GENERATE_VERIFY_MAC",)
        elif key_spec == "ECC_SECG_P256K1":
            valid = ("SIGN_VERIFY",)
        elif key_spec.startswith("ECC_NIST"):
            valid = ("SIGN_VERIFY", "KEY_AGREEMENT")
        else:  # SM2 and anything moto may add
            return usage
    if usage not in valid:
        raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {key_spec}.")
    return usage


def _importable(key_spec: str, key_usage: str) -> bool:
    family = _key_family(key_spec)
    if family == "symmetric":
        return key_usage == "ENCRYPT_DECRYPT"
    if family == "rsa":
        return key_usage in ("ENCRYPT_DECRYPT", "SIGN_VERIFY")
    if family == "ecc":
        return key_usage == "SIGN_VERIFY"
    return False


def _resolve_raw(backend: KmsBackend, key_id: str) -> Key:
    # moto's enable_key/disable_key/schedule_key_deletion/cancel_key_deletion/replicate_key index
    # self.keys with the request's KeyId, so a key ARN raises a bare KeyError (HTTP 500 in server mode).
    raw = backend.get_key_id(key_id) if isinstance(key_id, str) else key_id
    key = backend.keys.get(raw)
    if key is None:
        raise NotFoundException(f"Key '{key_id}' does not exist")
    return key


def _patch_backend() -> None:
    orig_create_key = KmsBackend.create_key

    def create_key(  # EXTERNAL keys start PendingImport with no material (moto: Enabled, random material)
        self: KmsBackend,
        policy: str | None,
        key_usage: str,
        key_spec: str,
        description: str,
        tags: list[dict[str, str]] | None,
        multi_region: bool = False,
        origin: str = "AWS_KMS",
    ) -> Key:
        origin = origin or "AWS_KMS"
        spec = key_spec or _SYMMETRIC
        if spec not in kms_utils.KeySpec.key_specs():  # moto raises its own ValidationException
            return orig_create_key(self, policy, key_usage, key_spec, description, tags, multi_region, origin)
        if origin not in _ORIGINS:
            raise _enum_error(origin, "origin", _ORIGINS)
        if origin in ("AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"):
            # moto ignores CustomKeyStoreId and would create an ordinary key.
            raise UnsupportedOperationException(f"Origin {origin} (custom key stores) is not supported here.")
        key_usage = _default_and_check_usage(spec, key_usage)
        if origin == "EXTERNAL" and not _importable(spec, key_usage):
            raise UnsupportedOperationException(
                f"Importing key material for KeySpec {spec} with KeyUsage {key_usage} is not supported "
                "by the local KMS double (supported: SYMMETRIC_DEFAULT, RSA_2048/3072/4096, "
                "ECC_NIST_P256/P384/P521, ECC_SECG_P256K1)."
            )
        key = orig_create_key(self, policy, key_usage, key_spec, description, tags, multi_region, origin)
        if origin == "EXTERNAL":
            with _LOCK:
                key._localkms_import = _ImportState()  # type: ignore[attr-defined]
                _forget_material(key)
        return key

    orig_enable_key = KmsBackend.enable_key
    orig_disable_key = KmsBackend.disable_key

    def enable_key(self: KmsBackend, key_id: str) -> None:  # AWS: fails in PendingImport / PendingDeletion
        key = _resolve_raw(self, key_id)
        _expire_due(key)
        _check_enable_disable(key)
        orig_enable_key(self, key.id)

    def disable_key(self: KmsBackend, key_id: str) -> None:
        key = _resolve_raw(self, key_id)
        _expire_due(key)
        _check_enable_disable(key)
        orig_disable_key(self, key.id)

    orig_schedule = KmsBackend.schedule_key_deletion

    def schedule_key_deletion(self: KmsBackend, key_id: str, pending_window_in_days: int) -> float:
        key = _resolve_raw(self, key_id)
        if key.key_state in _PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        # moto silently does nothing (and returns no DeletionDate) outside 7..30.
        if not isinstance(pending_window_in_days, int) or not 7 <= pending_window_in_days <= 30:
            raise ValidationException("PendingWindowInDays must be between 7 and 30, inclusive.")
        return orig_schedule(self, key.id, pending_window_in_days)

    orig_cancel = KmsBackend.cancel_key_deletion

    def cancel_key_deletion(self: KmsBackend, key_id: str) -> None:
        key = _resolve_raw(self, key_id)
        if key.key_state not in _PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
        orig_cancel(self, key.id)  # -> Disabled
        if key.origin == "EXTERNAL":
            _expire_due(key)
            if not _state(key).has_material:
                # Material was deleted (or expired) while pending deletion: the key cannot be Disabled-but-usable.
                key.key_state = "PendingImport"
                key.enabled = False

    orig_replicate = KmsBackend.replicate_key

    def replicate_key(self: KmsBackend, key_id: str, replica_region: str) -> Key:
        with _LOCK:
            primary = _resolve_raw(self, key_id)
            _expire_due(primary)
            if not primary.multi_region:
                raise UnsupportedOperationException(f"{primary.arn} is not a multi-Region key.")
            config = primary.multi_region_configuration
            if config["PrimaryKey"]["Arn"] != primary.arn:
                raise UnsupportedOperationException(f"{primary.arn} is not a multi-Region primary key.")
            if primary.key_state == "Disabled":
                raise DisabledException(f"{primary.arn} is disabled.")
            if primary.key_state == "PendingImport":
                raise KMSInvalidStateException(f"{primary.arn} is pending import.")
            if primary.key_state != "Enabled":
                raise KMSInvalidStateException(f"{primary.arn} is {primary.key_state}.")
            if not isinstance(replica_region, str) or not re.match(r"^([a-z]+-){2,3}\d+$", replica_region):
                raise ValidationException(f"Invalid ReplicaRegion {replica_region!r}.")
            if replica_region == self.region_name:
                raise ValidationException("ReplicaRegion must be different from the primary key's Region.")
            if primary.id in kms_backends[self.account_id][replica_region].keys:
                raise AlreadyExistsException(f"A replica of {primary.arn} already exists in {replica_region}.")

            replica = orig_replicate(self, primary.id, replica_region)

            # moto's copy() shares the multi_region_configuration dict (DescribeKey on the replica then flips the
            # primary to MultiRegionKeyType REPLICA), and the aliases/grants/rotations containers.
            replica.aliases = {}
            replica.grants = {}
            replica.rotations = []
            _sync_multi_region_configs(self.account_id, primary)
            if primary.origin == "EXTERNAL":
                # AWS: the replica has no key material and is PendingImport; the same material must be
                # imported with a token from the replica's Region.
                replica._localkms_import = _ImportState(  # type: ignore[attr-defined]
                    bound_material_id=_state(primary).bound_material_id,
                    description=_state(primary).description,
                )
                replica.key_state = "PendingImport"
                _forget_material(replica)
            return replica

    orig_encrypt = KmsBackend.encrypt

    def encrypt(self: KmsBackend, key_id: str, plaintext: bytes, encryption_context: dict[str, str]) -> Any:
        # Also reached from GenerateDataKey* and ReEncrypt (destination).
        key = _lookup(self, key_id)
        if key is not None:
            _require_enabled(key)
            if key.origin == "EXTERNAL" and key.key_spec != _SYMMETRIC:
                raise InvalidKeyUsageException(f"{key.arn} is not a symmetric encryption key.")
        return orig_encrypt(self, key_id, plaintext, encryption_context)

    orig_decrypt = KmsBackend.decrypt

    def decrypt(self: KmsBackend, ciphertext_blob: bytes, encryption_context: dict[str, str], key_id: str | None = None) -> Any:
        try:
            blob_key_id = kms_utils._deserialize_ciphertext_blob(ciphertext_blob).key_id
        except Exception:
            blob_key_id = None
        key = self.keys.get(blob_key_id) if blob_key_id else None
        if key is None and blob_key_id and blob_key_id.startswith("mrk-"):
            # moto packs the key ID into a 36-byte header field, which truncates the 40-character
            # multi-Region key IDs ("mrk-" + UUID).  moto's own decrypt then never finds the key
            # (AccessDeniedException for every multi-Region ciphertext).  Resolve the truncated ID here.
            matches = [k for k in self.keys.values() if k.id[:36] == blob_key_id]
            if len(matches) == 1:
                key = matches[0]
                _require_enabled(key)
                if key_id is not None and _lookup(self, key_id) is not key:
                    raise AccessDeniedException(
                        "The ciphertext refers to a customer master key that does not exist, "
                        "does not exist in this region, or you are not allowed to access."
                    )
                plaintext, _ = kms_utils.decrypt(
                    master_keys={blob_key_id: key},
                    ciphertext_blob=ciphertext_blob,
                    encryption_context=encryption_context,
                )
                return plaintext, key.arn
        if key is not None:
            _require_enabled(key)
        return orig_decrypt(self, ciphertext_blob, encryption_context, key_id)

    def _guard_first_arg(orig: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
            key = _lookup(self, key_id)
            if key is not None:
                _require_enabled(key)
            return orig(self, key_id, *args, **kwargs)

        guarded.__name__ = orig.__name__
        return guarded

    def _guard_key_id_kwarg(orig: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
            key = _lookup(self, kwargs.get("key_id"))
            if key is not None:
                _require_enabled(key)
            return orig(self, *args, **kwargs)

        guarded.__name__ = orig.__name__
        return guarded

    KmsBackend.create_key = create_key  # type: ignore[method-assign]
    KmsBackend.enable_key = enable_key  # type: ignore[method-assign]
    KmsBackend.disable_key = disable_key  # type: ignore[method-assign]
    KmsBackend.schedule_key_deletion = schedule_key_deletion  # type: ignore[method-assign]
    KmsBackend.cancel_key_deletion = cancel_key_deletion  # type: ignore[method-assign]
    KmsBackend.replicate_key = replicate_key  # type: ignore[method-assign]
    KmsBackend.encrypt = encrypt  # type: ignore[method-assign]
    KmsBackend.decrypt = decrypt  # type: ignore[method-assign]
    # sign(key_id, ...), verify(key_id, ...), get_public_key(key_id): moto checks no key state.
    KmsBackend.sign = _guard_first_arg(KmsBackend.sign)  # type: ignore[method-assign]
    KmsBackend.verify = _guard_first_arg(KmsBackend.verify)  # type: ignore[method-assign]
    KmsBackend.get_public_key = _guard_first_arg(KmsBackend.get_public_key)  # type: ignore[method-assign]
    # generate_mac is called with keyword arguments by KmsResponse and by verify_mac.
    KmsBackend.generate_mac = _guard_key_id_kwarg(KmsBackend.generate_mac)  # type: ignore[method-assign]

    orig_to_dict = Key.to_dict

    def to_dict(self: Key) -> dict[str, Any]:  # DescribeKey/CreateKey metadata for imported material
        _expire_due(self)
        result = orig_to_dict(self)
        if getattr(self, "origin", None) == "EXTERNAL":
            meta = result["KeyMetadata"]
            st = _state(self)
            if st.has_material:
                meta["ExpirationModel"] = st.expiration_model
                if st.valid_to is not None:
                    meta["ValidTo"] = st.valid_to
                if self.key_spec == _SYMMETRIC:
                    meta["CurrentKeyMaterialId"] = st.bound_material_id
        return result

    Key.to_dict = to_dict  # type: ignore[method-assign]


def _check_enable_disable(key: Key) -> None:
    if key.key_state == "PendingImport":
        raise KMSInvalidStateException(f"{key.arn} is pending import.")
    if key.key_state in _PENDING_DELETION:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")


def _sync_multi_region_configs(account_id: str, primary: Key) -> None:
    """Give every related key its own MultiRegionConfiguration (PRIMARY/REPLICA, full replica list)."""
    primary_cfg = primary.multi_region_configuration
    replicas = [dict(r) for r in primary_cfg["ReplicaKeys"]]
    primary.multi_region_configuration = {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": dict(primary_cfg["PrimaryKey"]),
        "ReplicaKeys": replicas,
    }
    for entry in replicas:
        related = kms_backends[account_id][entry["Region"]].keys.get(primary.id)
        if related is not None and related is not primary:
            related.multi_region_configuration = {
                "MultiRegionKeyType": "REPLICA",
                "PrimaryKey": dict(primary_cfg["PrimaryKey"]),
                "ReplicaKeys": [dict(r) for r in replicas],
            }


# --------------------------------------------------------------------------- install


def installed() -> bool:
    return _INSTALLED


def install() -> None:
    """Apply the patches to moto's KMS (idempotent, process-wide, not reversible)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        major_minor = tuple(int(p) for p in moto.__version__.split(".")[:2])
        if major_minor != (5, 2):
            raise RuntimeError(
                f"keymgmt's local KMS patches moto 5.2.x internals; installed moto is {moto.__version__}"
            )
        for name in ("get_parameters_for_import", "import_key_material", "delete_imported_key_material"):
            if name in KmsResponse.__dict__:
                raise RuntimeError(f"moto {moto.__version__} already implements KMS {name}; revisit moto_import")
        _patch_backend()
        KmsResponse.get_parameters_for_import = _get_parameters_for_import  # type: ignore[attr-defined]
        KmsResponse.import_key_material = _import_key_material  # type: ignore[attr-defined]
        KmsResponse.delete_imported_key_material = _delete_imported_key_material  # type: ignore[attr-defined]
        KmsResponse.encrypt = _wrap_encrypt(KmsResponse.encrypt)  # type: ignore[method-assign]
        KmsResponse.decrypt = _wrap_decrypt(KmsResponse.decrypt)  # type: ignore[method-assign]
        KmsResponse.replicate_key = _wrap_replicate_key(KmsResponse.replicate_key)  # type: ignore[method-assign]
        _INSTALLED = True
        _log.debug("moto KMS import extension installed (moto %s)", moto.__version__)
