"""Sessions and clients: one botocore session (and data loader) per process, one client factory.

Every AWS client of keymgmt is made by ``client``: standard retries, timeouts, our user agent,
a connection pool sized for concurrent reads, and the transport rule of ``transport`` checked on
the endpoint botocore will really use (ours, or one it found itself in ``AWS_ENDPOINT_URL_*`` or
the config file). Certificates are always verified (``AWS_CA_BUNDLE`` names a private CA).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

import botocore.loaders
import botocore.session
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
_SESSIONS: dict[str, Any] = {}  # fingerprint of the AWS environment -> its botocore session


def _environment_fingerprint() -> str:
    """A digest of what a botocore session reads from the environment when it is made or first
    asked (``AWS_*``: profile, config and credentials files, endpoints, CA bundle, default
    credentials; ``HOME``: where ``~/.aws`` is). A digest, so no second copy of a secret stays."""
    seen = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_") or k == "HOME")
    return hashlib.sha256(repr(seen).encode("utf-8", "surrogatepass")).hexdigest()


def _botocore_session() -> Any:
    """The process's botocore session for the current AWS environment, made on first use.

    A botocore session costs ~15-20 ms of CPU to make (it registers ~130 built-in event handlers,
    each inspected with ``inspect.signature``) and resolves the config file and the default
    credential chain once; a client made from an existing session costs ~5 ms. One session per
    provider (boto3's ``Session`` each) paid the whole cost per provider, under the GIL, before
    each region's chain could start. Sessions are not thread-safe: callers hold ``_LOADER_LOCK``.
    A changed environment (tests, or a caller that sets ``AWS_PROFILE``) gets a session of its own."""
    global _LOADER
    fingerprint = _environment_fingerprint()
    session = _SESSIONS.get(fingerprint)
    if session is None:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        session = botocore.session.Session()
        session.register_component("data_loader", _LOADER)  # the models are parsed once per process
        _SESSIONS[fingerprint] = session
    return session


class Session:
    """What one provider's clients share: its own credentials, or None for the default chain
    (environment, shared files, SSO/assume-role, container and instance roles), and its region.

    Not a boto3 Session: the clients are made by the process's one botocore session
    (``botocore.session.Session.create_client``, which takes credentials per client), so a second
    provider costs one client, not one more session. The credentials are never printed."""

    __slots__ = ("_credentials", "region_name")

    def __init__(self, aws_access_key_id: str | None = None, aws_secret_access_key: str | None = None,
                 aws_session_token: str | None = None, region_name: str | None = None):
        self._credentials = {"aws_access_key_id": aws_access_key_id,
                             "aws_secret_access_key": aws_secret_access_key,
                             "aws_session_token": aws_session_token} if aws_access_key_id else {}
        self.region_name = region_name

    def __repr__(self) -> str:
        return f"Session(region_name={self.region_name!r}, credentials={'given' if self._credentials else 'default chain'})"

    def client(self, service: str, **kwargs: Any) -> Any:
        """``botocore.session.Session.create_client`` of the shared session with these credentials.
        Raises botocore's own exceptions (``ProfileNotFound``...): ``client()`` below translates."""
        with _LOADER_LOCK:
            return _botocore_session().create_client(service, **kwargs, **self._credentials)


def new_session(**kwargs: Any) -> Session:
    """A ``Session`` for one provider (``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``, ``region_name``); see ``Session``."""
    return Session(**kwargs)


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

