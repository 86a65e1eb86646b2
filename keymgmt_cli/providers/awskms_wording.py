"""How awskms words a failed AWS call: one ``ProviderError`` line naming the service, the operation,
the region and AWS's error code (``AWS KMS <Operation> in <region> failed: <Code>: ...``).

Four wordings, one per kind of call the provider makes: a KMS request (through
``permissions.provider_error``, which adds the IAM action it needs, shared with the twin), getting
the provider's credentials (a refused STS role call names STS), ``tag:GetResources`` and STS
GetCallerIdentity. Apart from ``awskms.py`` because each is handed to the AWS border
(``aws.session.client``, ``aws.failures.call``) as data, while the adapter's methods never word
anything themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from ..aws import failures
from ..aws.codes import THROTTLING_CODES
from ..aws.failures import Failure
from ..errors import ProviderError
from .permissions import CREDENTIALS_HINT, provider_error


def kms_wording(*, tags: bool = False, multi_region: bool = False) -> Callable[[Failure], ProviderError]:
    """How a failed KMS call reads: ``AWS KMS <Operation> in <region> failed: <Code>: ...``."""

    def word(failure: Failure) -> ProviderError:
        if failure.kind == failures.RESPONSE:
            return provider_error(failure.operation, failure.region, failure.code, failure.message,
                                  http_status=failure.http_status, tags=tags,
                                  multi_region=multi_region, retry_attempts=failure.retry_attempts)
        prefix = f"AWS KMS {failure.operation} in {failure.region} failed: {failure.code}: "
        if failure.kind == failures.NO_CREDENTIALS:
            return failure.error(prefix + "no AWS credentials found", hint=CREDENTIALS_HINT)
        if failure.kind == failures.CREDENTIALS:
            return failure.error(prefix + failure.message, hint=CREDENTIALS_HINT)
        if failure.kind in (failures.CONNECTION, failures.TLS):
            # Refused, timed out, closed, proxy: worth retrying later; a bad certificate is not.
            return failure.error(prefix + failure.message,
                                 retryable=failure.kind == failures.CONNECTION,
                                 hint="check the network and the endpoint (credentials=endpoint=...,"
                                      " AWS_KMS_ENDPOINT or AWS_ENDPOINT_URL_KMS)")
        return failure.error(prefix + failure.message)

    return word


def credentials_wording(failure: Failure) -> ProviderError:
    """How a failure to get the provider's credentials reads: a refused STS role call names STS
    (not a KMS permission); anything else reads as a failed KMS ``connect``."""
    if failure.service != "sts":
        return kms_wording()(failure)
    return failure.error(f"AWS STS {failure.operation} in {failure.region} failed: {failure.code}: "
                         f"{failure.message}",
                         retryable=failure.kind == failures.CONNECTION or failure.code in THROTTLING_CODES,
                         hint="check the provider's credentials=role_arn=... (the role's trust policy, "
                              "external_id, the source credentials or the web identity token)")


def tagging_wording(failure: Failure) -> ProviderError:
    """A refused tag:GetResources (only ever shown inside the note of the fallback)."""
    return failure.error(f"AWS Resource Groups Tagging API {failure.operation} in "
                         f"{failure.region} failed: {failure.code}: {failure.message}",
                         retryable=failure.code in THROTTLING_CODES)


def sts_wording(failure: Failure) -> ProviderError:
    """A failed GetCallerIdentity (recorded as the reason the identity is unknown, never shown alone)."""
    return failure.error(f"AWS STS {failure.operation} in {failure.region} failed: {failure.code}: "
                         f"{failure.message}", retryable=failure.kind == failures.CONNECTION)
