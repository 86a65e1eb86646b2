"""AWS Signature Version 4 for one kind of request: a JSON 1.1 ``POST /`` (KMS's protocol).

Used only by ``aws.bulkread`` (the bulk ListResourceTags of the tag search), where botocore's
``SigV4Auth.add_auth`` costs ~140 us of CPU per request and 10,000 requests share one GIL. This
signs the same canonical request botocore does (signed headers ``content-type``, ``host``,
``x-amz-date``, ``x-amz-security-token`` when the credentials carry a session token, and
``x-amz-target``; the payload's SHA-256) and keeps the derived signing key per (secret, date,
region, service), so a request costs two SHA-256 and one HMAC (~12 us). The signature must equal
botocore's for the same request, time and credentials: tests/providers/test_sigv4.py checks it
over many inputs. No botocore here (the twin-free tests import it without boto3). Never logs,
prints or keeps the secret key beyond the cached signing key of the current date.

Reference: "Create a signed AWS API request" (AWS IAM User Guide, Signature Version 4).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import datetime, timezone
from urllib.parse import urlsplit

CONTENT_TYPE = "application/x-amz-json-1.1"
ALGORITHM = "AWS4-HMAC-SHA256"


def host_header(endpoint_url: str) -> str:
    """The ``Host`` value botocore signs: the lower-case host, IPv6 in brackets, the port only
    when it is not the scheme's default, no user info."""
    parts = urlsplit(endpoint_url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _trim(value: str) -> str:
    return " ".join(value.split())


class Signer:
    """Signs JSON 1.1 POSTs to one endpoint for one (region, service). Thread-safe.

    ``sign(body, target, access_key, secret_key, token, when)`` returns the headers to send
    (``Host``, ``Content-Type``, ``X-Amz-Target``, ``X-Amz-Date``, ``X-Amz-Security-Token`` when
    ``token``, ``Authorization``). Credentials are passed per call (frozen per batch by the caller)
    so that refreshed credentials are used as soon as the caller takes them."""

    def __init__(self, endpoint_url: str, region: str, service: str):
        self.host = host_header(endpoint_url)
        path = urlsplit(endpoint_url).path or "/"
        if path != "/":  # a path in the endpoint would be another canonical URI: not ours to guess
            raise ValueError("an endpoint with a path is not signed here")
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _signing_key(self, secret_key: str, day: str) -> bytes:
        cache_key = (secret_key, day)
        key = self._keys.get(cache_key)
        if key is None:
            k = hmac.digest(("AWS4" + secret_key).encode(), day.encode(), "sha256")
            k = hmac.digest(k, self.region.encode(), "sha256")
            k = hmac.digest(k, self.service.encode(), "sha256")
            key = hmac.digest(k, b"aws4_request", "sha256")
            with self._lock:
                if len(self._keys) > 8:  # old dates and rotated secrets: keep only the current few
                    self._keys.clear()
                self._keys[cache_key] = key
        return key

    def sign(self, body: bytes, target: str, access_key: str, secret_key: str,
             token: str | None = None, when: datetime | None = None) -> dict[str, str]:
        moment = when if when is not None else datetime.now(timezone.utc)
        stamp = moment.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = [("content-type", CONTENT_TYPE), ("host", self.host), ("x-amz-date", stamp)]
        if token:
            headers.append(("x-amz-security-token", _trim(token)))
        headers.append(("x-amz-target", _trim(target)))
        signed = ";".join(name for name, _ in headers)
        canonical = "\n".join((
            "POST", "/", "",
            "".join(f"{name}:{value}\n" for name, value in headers),
            signed, hashlib.sha256(body).hexdigest()))
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(secret_key, day), to_sign.encode(), "sha256").hexdigest()
        out = {"Host": self.host, "Content-Type": CONTENT_TYPE, "X-Amz-Target": target,
               "X-Amz-Date": stamp,
               "Authorization": f"{ALGORITHM} Credential={access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}"}
        if token:
            out["X-Amz-Security-Token"] = token
        return out
