"""AWS tables, declared once: request quotas and the error codes we act on. No boto3 here."""

from __future__ import annotations

# AWS KMS default request quotas, requests per second per account per region (reference 3.1).
REQUEST_QUOTAS: dict[str, float] = {
    "GetParametersForImport": 1,
    "CreateKey": 5,
    "CreateAlias": 5,
    "UpdateAlias": 5,
    "DeleteAlias": 15,
    "EnableKey": 5,
    "DisableKey": 5,
    "ImportKeyMaterial": 15,
    "DeleteImportedKeyMaterial": 15,
    "RotateKeyOnDemand": 5,
    "ScheduleKeyDeletion": 15,
    "CancelKeyDeletion": 5,
    "ReplicateKey": 5,
    "TagResource": 10,
    "ListAliases": 500,
    "DescribeKey": 2000,
    "ListResourceTags": 2000,
    "GetPublicKey": 1000,
    "ListKeys": 500,
}

# Error codes worth retrying later (the call itself was fine).
THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
})
TRANSIENT_CODES = THROTTLING_CODES | frozenset({
    "KMSInternalException", "DependencyTimeoutException", "InternalFailure", "ServiceUnavailable",
    "InternalError", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})
# DynamoDB's own words for "too fast".
DYNAMODB_THROTTLING_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "Throttling", "LimitExceededException",
})

ACCESS_CODES = frozenset({"AccessDeniedException", "AccessDenied"})

# Codes that mean "the credentials themselves are the problem", not a permission.
CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId",
    "ExpiredTokenException", "ExpiredToken", "IncompleteSignature", "SignatureDoesNotMatch",
    "MissingAuthenticationToken", "AuthFailure",
})


def is_retryable(code: str, http_status: int | None = None) -> bool:
    return code in TRANSIENT_CODES or (http_status is not None and http_status >= 500)
