"""The AWS KMS error codes the local KMS double raises that moto does not define.

moto turns any JsonRESTError into ``{"__type": ..., "message": ...}`` with HTTP 400, and botocore then
raises ClientError with that ``__type`` as the Code (the same mechanism as moto/kms/exceptions.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.exceptions import ValidationException



class KmsError(JsonRESTError):
    code = 400
    kms_code = "KMSInternalException"

    def __init__(self, message: str = "") -> None:
        super().__init__(self.kms_code, message)


class KMSInvalidStateException(KmsError):
    kms_code = "KMSInvalidStateException"


class DisabledException(KmsError):
    kms_code = "DisabledException"


class UnsupportedOperationException(KmsError):
    kms_code = "UnsupportedOperationException"


class InvalidImportTokenException(KmsError):
    kms_code = "InvalidImportTokenException"


class ExpiredImportTokenException(KmsError):
    kms_code = "ExpiredImportTokenException"


class IncorrectKeyMaterialException(KmsError):
    kms_code = "IncorrectKeyMaterialException"


class InvalidCiphertextException(KmsError):
    kms_code = "InvalidCiphertextException"


class InvalidKeyUsageException(KmsError):
    kms_code = "InvalidKeyUsageException"


class LimitExceededException(KmsError):
    kms_code = "LimitExceededException"


class InvalidMarkerException(KmsError):
    kms_code = "InvalidMarkerException"


def enum_error(value: Any, member: str, allowed: Iterable[str]) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
    )

