"""boto3 sessions and clients: one botocore data loader per process, one client factory.

Every AWS client of keymgmt is made by ``client``: standard retries, timeouts, our user agent,
a connection pool sized for concurrent reads, and the transport rule of ``transport`` checked on
the endpoint botocore will really use (ours, or one it found itself in ``AWS_ENDPOINT_URL_*`` or
the config file). Certificates are always verified (``AWS_CA_BUNDLE`` names a private CA).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
import botocore.loaders
from botocore.config import Config

from ..errors import ProviderError
from .failures import BOTO_OR_VALUE, Failure, translate
from .transport import check_endpoint

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_RETRY_MODE = "standard"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
#: Concurrent requests one client may have in flight (botocore's default is 10).
MAX_POOL_CONNECTIONS = 64

_LOADER_LOCK = threading.Lock()
_LOADER: Any = None


def new_session(**kwargs: Any) -> Any:
    """A boto3 Session sharing one botocore data loader with every other in this process.

    Each provider needs its own session (its own credentials), but a fresh session re-reads and
    parses botocore's service models, ~100 ms of CPU; rotating in 4 providers at once paid it 4
    times under the GIL. The loader only caches those JSON models, so sharing it is safe.
    Raises botocore's own exceptions (``ProfileNotFound``...): callers translate them."""
    global _LOADER
    session = boto3.session.Session(**kwargs)
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        session._session.register_component("data_loader", _LOADER)
    return session


def client(session: Any, service: str, region: str, endpoint: str | None, *,
           wording: Callable[[Failure], ProviderError],
           max_attempts: int = DEFAULT_MAX_ATTEMPTS, retry_mode: str = DEFAULT_RETRY_MODE,
           connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
           max_pool_connections: int = MAX_POOL_CONNECTIONS) -> Any:
    """A botocore client of ``service`` in ``region``; ``wording`` words a failure to make it
    (operation ``connect``). ProviderError for a plain-http endpoint that is not loopback."""
    check_endpoint(endpoint, service, region)
    try:
        made = session.client(
            service, region_name=region, endpoint_url=endpoint or None,
            config=Config(region_name=region,
                          retries={"mode": retry_mode, "max_attempts": max_attempts},
                          connect_timeout=connect_timeout, read_timeout=read_timeout,
                          max_pool_connections=max_pool_connections,
                          user_agent_extra="keymgmt"))
    except BOTO_OR_VALUE as exc:
        raise translate(exc, service, "connect", region, wording) from None
    check_endpoint(made.meta.endpoint_url, service, region)
    return made


def default_client(service: str, region: str, endpoint: str | None, *,
                   wording: Callable[[Failure], ProviderError], **options: Any) -> Any:
    """A client with boto3's default credential chain (the store's DynamoDB table, the seal)."""
    try:
        session = new_session()
    except BOTO_OR_VALUE as exc:
        raise translate(exc, service, "connect", region, wording) from None
    return client(session, service, region, endpoint, wording=wording, **options)



def access_key_id(session: Any) -> str:
    """The access key id of ``session``'s credentials (resolving its credential chain, as the first
    request would), "" when there are none or they cannot be resolved. Only ever compared, as a
    keyed digest, to notice that a provider's credentials changed: never printed or stored."""
    try:
        credentials = session.get_credentials()
        return str(getattr(credentials, "access_key", "") or "") if credentials is not None else ""
    except Exception:  # botocore's, or a credential provider's own (SSO, process): no fingerprint then
        return ""
