"""What each AWS KMS call needs, and how a refused call is worded.

Shared by ``awskms.py`` (real AWS) and ``memory.py`` (its twin), so that an error from either
reads the same: ``AWS KMS <Operation> in <region> failed: <ErrorCode>: <message> (needs kms:X)``.
No boto3 here: this module is imported by the twin too. The error-code tables it reads are
declared once, in ``keymgmt_cli/aws/codes.py``.

Permissions: Vault's documented minimum (reference 1.5) plus what AWS itself requires
(``kms:TagResource`` for ``Tags``, ``kms:CreateKey`` in the replica region for ``ReplicateKey``).
"""

from __future__ import annotations

from ..aws.codes import ACCESS_CODES, CREDENTIAL_CODES, THROTTLING_CODES, is_retryable
from ..errors import ProviderError

# Operation → the IAM actions the call itself needs (always).
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "CreateKey": ("kms:CreateKey",),
    "GetParametersForImport": ("kms:GetParametersForImport",),
    "ImportKeyMaterial": ("kms:ImportKeyMaterial",),
    "DeleteImportedKeyMaterial": ("kms:DeleteImportedKeyMaterial",),
    "RotateKeyOnDemand": ("kms:RotateKeyOnDemand",),
    "DescribeKey": ("kms:DescribeKey",),
    "EnableKey": ("kms:EnableKey",),
    "DisableKey": ("kms:DisableKey",),
    "ScheduleKeyDeletion": ("kms:ScheduleKeyDeletion",),
    "CancelKeyDeletion": ("kms:CancelKeyDeletion",),
    "CreateAlias": ("kms:CreateAlias",),
    "UpdateAlias": ("kms:UpdateAlias",),
    "DeleteAlias": ("kms:DeleteAlias",),
    "ListAliases": ("kms:ListAliases",),
    "ReplicateKey": ("kms:ReplicateKey", "kms:CreateKey"),
    "GetPublicKey": ("kms:GetPublicKey",),
    "ListResourceTags": ("kms:ListResourceTags",),
    "ListKeys": ("kms:ListKeys",),
    "TagResource": ("kms:TagResource",),
    "GetResources": ("tag:GetResources",),
}

# Where an action has to be allowed besides the caller's IAM policy (for the hint).
_WHERE: dict[str, str] = {
    "CreateAlias": "on the alias (IAM policy) and on the key (key policy)",
    "UpdateAlias": "on the alias, the current key and the new key",
    "DeleteAlias": "on the alias and on the key",
    "ReplicateKey": "kms:ReplicateKey on the primary key, kms:CreateKey in the replica region",
}

# Everything this tool may call, for documentation and `kms read`-style hints.
REQUIRED_PERMISSIONS: tuple[str, ...] = (
    "kms:CreateKey", "kms:GetParametersForImport", "kms:ImportKeyMaterial", "kms:EnableKey",
    "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CreateAlias", "kms:UpdateAlias",
    "kms:DeleteAlias", "kms:ListAliases", "kms:TagResource",
)
MULTI_REGION_PERMISSIONS: tuple[str, ...] = ("kms:ReplicateKey", "kms:DescribeKey")
OPTIONAL_PERMISSIONS: tuple[str, ...] = ("kms:DescribeKey", "kms:ListResourceTags", "kms:GetPublicKey",
                                         "kms:ListKeys", "tag:GetResources")

CREDENTIALS_HINT = (
    "give the provider credentials (credentials=access_key=... credentials=secret_key=..."
    " [credentials=session_token=...], credentials=profile=NAME or credentials=role_arn=ARN)"
    " or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or"
    " AWS_PROFILE, or run where an IAM role (EC2 instance or ECS task) is available"
)


def permissions_for(operation: str, *, tags: bool = False, multi_region: bool = False) -> tuple[str, ...]:
    """The IAM actions ``operation`` needs; ``tags``: the call passes Tags (needs kms:TagResource);
    ``multi_region``: CreateKey(MultiRegion=True), the first of which in an account also needs
    iam:CreateServiceLinkedRole."""
    needed = list(PERMISSIONS.get(operation, (f"kms:{operation}",)))
    if tags and "kms:TagResource" not in needed:
        needed.append("kms:TagResource")
    if multi_region and operation == "CreateKey":
        needed.append("iam:CreateServiceLinkedRole")
    return tuple(needed)


def provider_error(operation: str, region: str, code: str, message: str, *,
                   http_status: int | None = None, tags: bool = False,
                   multi_region: bool = False, retry_attempts: int = 0) -> ProviderError:
    """The one-line ProviderError for an AWS error response ``code``/``message`` to ``operation``.

    ``message`` must come from AWS (it never holds secrets); nothing secret is added here."""
    message = " ".join((message or "").split()) or "(no message)"
    text = f"AWS KMS {operation} in {region} failed: {code}: {message}"
    hint = None
    if code in ACCESS_CODES:
        needed = permissions_for(operation, tags=tags, multi_region=multi_region)
        text += f" (needs {' and '.join(needed)})"
        where = _WHERE.get(operation)
        hint = (f"allow {', '.join(needed)} for the provider's AWS principal"
                + (f" ({where})" if where else "")
                + "; the key policy must allow it too")
    elif code in CREDENTIAL_CODES:
        hint = "the AWS credentials were rejected: " + CREDENTIALS_HINT
    elif code in THROTTLING_CODES:
        hint = ("AWS KMS request quota exceeded even after retries; wait and run the command again,"
                " or ask AWS for a higher quota")
    return ProviderError(text, code=code, hint=hint, retryable=is_retryable(code, http_status),
                         service="kms", operation=operation, region=region,
                         retry_attempts=retry_attempts)
