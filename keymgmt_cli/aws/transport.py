"""Which endpoints keymgmt talks to: plain http only to a loopback address, https elsewhere.

The wrapping public key arrives over this channel: over plain http a man in the middle could
hand us his own and receive the key material. Certificates are always checked (botocore's
default; ``AWS_CA_BUNDLE`` or ``ca_bundle`` in the AWS config file names a private CA). No boto3.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..errors import ProviderError

# Not ip6-localhost / ip6-loopback: only some distributions' /etc/hosts name them, and where they
# are missing the resolver asks DNS, whose answer a man in the middle can give.
_LOOPBACK_NAMES = {"localhost"}


def _as_botocore_reads(endpoint: str) -> str:
    """``endpoint`` up to its first backslash: urllib3 (botocore's HTTP) ends the host there,
    urlsplit does not ("http://evil.example\\@127.0.0.1" is evil.example to urllib3)."""
    return endpoint.split("\\", 1)[0]


def host_of(endpoint: str) -> str:
    text = endpoint if "://" in endpoint else f"http://{endpoint}"
    try:
        return (urlsplit(_as_botocore_reads(text)).hostname or "").lower()
    except ValueError:
        return ""


def is_loopback(endpoint: str | None) -> bool:
    if not endpoint:
        return False
    host = host_of(endpoint)
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown(endpoint: str) -> str:
    """scheme://host[:port] of an endpoint, without user info, path or query (never a secret)."""
    try:
        parts = urlsplit(_as_botocore_reads(endpoint))
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else "(not a URL)"


LABELS = {"kms": "AWS KMS", "dynamodb": "DynamoDB",
          "resourcegroupstaggingapi": "AWS Resource Groups Tagging API"}


def check_endpoint(endpoint: str | None, service: str, region: str) -> None:
    """ProviderError (one line) for a plain-http endpoint to a host that is not loopback.

    Other schemes are left to botocore, which refuses anything but http(s)."""
    if not endpoint:
        return
    try:
        scheme = urlsplit(endpoint).scheme.lower()
    except ValueError:
        return
    if scheme == "http" and not is_loopback(endpoint):
        raise ProviderError(
            f"{LABELS.get(service, service)} endpoint {shown(endpoint)} is refused: plain http "
            "is allowed only to a loopback address (127.0.0.1, ::1, localhost)",
            code="InsecureEndpoint", service=service, operation="connect", region=region,
            hint="use an https endpoint (for a private CA set AWS_CA_BUNDLE)")
