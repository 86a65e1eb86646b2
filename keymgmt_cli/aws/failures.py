"""One reading of every botocore failure, and one error type for it.

``failure_of(exc, service, operation, region)`` turns any botocore exception into a
``Failure``: plain data (no botocore), which the calling service words into a ``ProviderError``
(``translate`` does both). The services word their errors differently (KMS names the IAM
action, DynamoDB the table, the seal its key), but they all read the same fields, and nothing
above this package ever sees a botocore exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions as bce

from ..errors import ProviderError

#: What a call to a botocore client may raise (ValueError: a malformed endpoint URL).
BOTO_ERRORS = (bce.BotoCoreError, bce.ClientError)
BOTO_OR_VALUE = (bce.BotoCoreError, bce.ClientError, ValueError)

# kind: what went wrong, for the wording
RESPONSE = "response"            # AWS answered with an error (code, message)
NO_CREDENTIALS = "no-credentials"
CREDENTIALS = "credentials"      # partial, unreadable or refused by their source (SSO, profile)
CONNECTION = "connection"        # refused, timed out, closed, proxy: worth retrying later
TLS = "tls"                      # the certificate check failed: not worth retrying
VALIDATION = "validation"        # botocore refused our parameters before sending
OTHER = "other"

_CREDENTIAL_ERRORS = (bce.PartialCredentialsError, bce.CredentialRetrievalError,
                      bce.ProfileNotFound, bce.TokenRetrievalError, bce.SSOError,
                      bce.UnauthorizedSSOTokenError, bce.SSOTokenLoadError,
                      bce.InvalidConfigError)


def one_line(text: Any, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Failure:
    """A failed AWS call, as plain data. ``code`` is the AWS error code, or the botocore
    exception's class name when AWS never answered; ``message`` is AWS's message (one line) or the
    exception's text; ``item`` is the old item DynamoDB returns with a failed condition."""

    service: str
    operation: str
    region: str
    kind: str
    code: str
    message: str
    http_status: int | None = None
    retry_attempts: int = 0
    item: dict[str, Any] | None = None
    #: AWS's id of the failed request (``ResponseMetadata.RequestId``), "" when AWS never answered.
    request_id: str = ""

    def error(self, text: str, *, hint: str | None = None, retryable: bool = False,
              code: str | None = None) -> ProviderError:
        """The ProviderError for this failure, worded ``text``."""
        return ProviderError(text, code=code or self.code, hint=hint, retryable=retryable,
                             service=self.service, operation=self.operation, region=self.region,
                             retry_attempts=self.retry_attempts)


def failure_of(exc: BaseException, service: str, operation: str, region: str) -> Failure:
    """What ``exc`` (raised by botocore, or ValueError for a bad endpoint) says."""
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata") or {}
        return Failure(service, operation, region, RESPONSE, str(error.get("Code") or "Unknown"),
                       one_line(error.get("Message") or ""), meta.get("HTTPStatusCode"),
                       int(meta.get("RetryAttempts") or 0), exc.response.get("Item"),
                       request_id_of(exc.response))
    if isinstance(exc, bce.NoCredentialsError):
        kind = NO_CREDENTIALS
    elif isinstance(exc, _CREDENTIAL_ERRORS):
        kind = CREDENTIALS
    elif isinstance(exc, bce.SSLError):
        kind = TLS
    elif isinstance(exc, (bce.ConnectionError, bce.HTTPClientError)):
        kind = CONNECTION
    elif isinstance(exc, bce.ParamValidationError):
        kind = VALIDATION
    else:
        kind = OTHER
    return Failure(service, operation, region, kind, type(exc).__name__, one_line(_no_header_value(str(exc))))


_HEADER_VALUE = "Invalid header value"


def _no_header_value(text: str) -> str:
    """``text`` without the value http.client quotes whole when it refuses a header ("Invalid
    header value b'...'", wrapped by botocore's HTTPClientError): the refused value is usually the
    session token (a line break in it), and the token must never be shown."""
    at = text.find(_HEADER_VALUE)
    if at < 0:
        return text
    return (text[:at + len(_HEADER_VALUE)] + " (not shown: a header holds a line break or a control "
            "character; is there one at the end of AWS_SESSION_TOKEN or the session token?)")


def request_id_of(response: Any) -> str:
    """AWS's request id of a botocore response (or of a ClientError's ``response``), "" if none.

    Kept to the id's own alphabet and length, so a response cannot put anything else in a record."""
    meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
    value = meta.get("RequestId") if isinstance(meta, dict) else None
    if not isinstance(value, str):
        return ""
    return value[:128] if all(c.isalnum() or c in "-_/+=" for c in value) else ""


def translate(exc: BaseException, service: str, operation: str, region: str,
              wording: Callable[[Failure], BaseException]) -> BaseException:
    """The one ProviderError for a botocore exception, worded by the calling service (DynamoDB's
    wording turns a failed condition into its own private control-flow exception instead)."""
    return wording(failure_of(exc, service, operation, region))


def call(method: Callable[..., dict], service: str, operation: str, region: str,
         wording: Callable[[Failure], BaseException], **params: Any) -> dict:
    """``method(**params)``; a botocore failure raises ``wording(failure)`` instead, never a
    botocore exception (``wording`` may return a private control-flow exception of the caller)."""
    try:
        return method(**params)
    except BOTO_ERRORS as exc:
        raise translate(exc, service, operation, region, wording) from None
