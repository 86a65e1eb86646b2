"""Reading a KMS request's JSON parameters the way AWS validates them (for the double's new actions)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from moto.kms.exceptions import NotFoundException, ValidationException
from moto.kms.models import Key
from moto.kms.responses import KmsResponse

from .errors import KMSInvalidStateException, UnsupportedOperationException
from .rules import MAX_BLOB, PENDING_DELETION


def params_of(resp: KmsResponse) -> dict[str, Any]:
    try:
        body = json.loads(resp.body or "{}")
    except (TypeError, ValueError):
        raise ValidationException("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationException("Request body must be a JSON object")
    return body


def required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        member = name[0].lower() + name[1:]
        raise ValidationException(
            f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
            "Member must not be null"
        )
    return value


def blob(params: dict[str, Any], name: str) -> bytes:
    raw = required(params, name)
    member = name[0].lower() + name[1:]
    if not isinstance(raw, str):
        raise ValidationException(f"'{member}' must be a base64-encoded blob")
    try:
        data = base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValidationException(f"'{member}' is not valid base64") from None
    if not 1 <= len(data) <= MAX_BLOB:
        raise ValidationException(
            f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
            f"Member must have length between 1 and {MAX_BLOB}"
        )
    return data


def resolve_key_id_or_arn(resp: KmsResponse, key_id: Any) -> Key:
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


def require_external(key: Key) -> None:
    if key.origin != "EXTERNAL":
        raise UnsupportedOperationException(
            f"{key.arn} origin is {key.origin} which is not valid for this operation."
        )


def require_not_pending_deletion(key: Key) -> None:
    if key.key_state in PENDING_DELETION:
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")


def parse_timestamp(value: Any, member: str) -> float:
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

