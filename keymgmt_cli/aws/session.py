"""Sessions and clients: one botocore session (and data loader) per process, one client factory.

Every AWS client of keymgmt is made by ``client``: standard retries, timeouts, our user agent,
a connection pool sized for concurrent reads, and the transport rule of ``transport`` checked on
the endpoint botocore will really use (ours, or one it found itself in ``AWS_ENDPOINT_URL_*`` or
the config file). Certificates are always verified (``AWS_CA_BUNDLE`` names a private CA).

A provider's credentials become a session in ``credential_session``: access keys, a profile, the
default chain, or a role assumed on top of them (or with a web identity token), resolved at once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

import botocore.credentials
import botocore.exceptions
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


def _loaded(core: Any) -> Any:
    """``core`` (a botocore session of its own) with the process's one data loader."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        core.register_component("data_loader", _LOADER)
    return core


class Session:
    """What one provider's clients share: its own credentials, or None for the default chain
    (environment, shared files, SSO/assume-role, container and instance roles), and its region.

    Not a boto3 Session: access keys and the default chain use the process's one botocore session
    (``botocore.session.Session.create_client``, which takes credentials per client), so a second
    provider costs one client, not one more session. A named ``profile_name`` or a prepared
    ``botocore_session`` (a role's refreshable credentials, ``credential_session``) needs a
    botocore session of its own, which shares the data loader. The credentials are never printed."""

    __slots__ = ("_credentials", "_core", "region_name")

    def __init__(self, aws_access_key_id: str | None = None, aws_secret_access_key: str | None = None,
                 aws_session_token: str | None = None, region_name: str | None = None,
                 profile_name: str | None = None, botocore_session: Any = None):
        self._credentials = {"aws_access_key_id": aws_access_key_id,
                             "aws_secret_access_key": aws_secret_access_key,
                             "aws_session_token": aws_session_token} if aws_access_key_id else {}
        if botocore_session is None and profile_name:
            botocore_session = botocore.session.Session(profile=profile_name)
        self._core = _loaded(botocore_session) if botocore_session is not None else None
        self.region_name = region_name

    def __repr__(self) -> str:
        source = "given" if self._credentials else "own session" if self._core is not None else "default chain"
        return f"Session(region_name={self.region_name!r}, credentials={source!r})"

    def client(self, service: str, **kwargs: Any) -> Any:
        """``create_client`` of the session with these credentials. Raises botocore's own
        exceptions (``ProfileNotFound``...): ``client()`` below translates."""
        with _LOADER_LOCK:
            core = self._core if self._core is not None else _botocore_session()
            return core.create_client(service, **kwargs, **self._credentials)

    def get_credentials(self) -> Any:
        """The credentials the clients will use (botocore's ``Credentials``, with its ``method``),
        or None; resolving the chain as the first request would. Raises botocore's exceptions."""
        if self._credentials:
            return botocore.credentials.Credentials(
                self._credentials["aws_access_key_id"], self._credentials["aws_secret_access_key"],
                self._credentials["aws_session_token"], method="explicit")
        with _LOADER_LOCK:
            core = self._core if self._core is not None else _botocore_session()
            return core.get_credentials()


    def config_variable(self, name: str) -> Any:
        """A botocore configuration variable (``ca_bundle``...) as the clients of this session see
        it: environment, then the (profile's) config file. Raises botocore's exceptions."""
        with _LOADER_LOCK:
            core = self._core if self._core is not None else _botocore_session()
            return core.get_config_variable(name)


def new_session(**kwargs: Any) -> Session:
    """A ``Session`` for one provider (``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``, ``region_name``, ``profile_name``, ``botocore_session``); see ``Session``."""
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



#: What each credential source is called when a provider reports it (botocore's ``method``
#: names, which ``read`` of a provider shows as ``credential_source``).
ASSUME_ROLE = "assume-role"
WEB_IDENTITY = "assume-role-with-web-identity"


class _Resolved(botocore.credentials.CredentialProvider):
    """A credential chain of one link: the refreshable role credentials built by
    ``credential_session``. botocore's documented extension point (a ``CredentialResolver`` of
    providers) rather than a private attribute of the session."""

    def __init__(self, method: str, credentials: Any):
        super().__init__()
        self.METHOD = method
        self._credentials = credentials

    def load(self) -> Any:
        return self._credentials


def _token_loader(path: str) -> Callable[[], str]:
    """The web identity token, re-read at each refresh (CI runners rotate the file). botocore's
    ``FileWebTokenLoader`` lets an unreadable file escape as an OSError with the path in it; this
    raises botocore's ``CredentialRetrievalError`` instead, naming neither the path's contents nor
    the token."""

    def load() -> str:
        try:
            with open(path, encoding="utf-8") as handle:
                token = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise botocore.exceptions.CredentialRetrievalError(
                provider=WEB_IDENTITY,
                error_msg=f"the web_identity_token_file cannot be read ({type(exc).__name__})") from None
        if not token:
            raise botocore.exceptions.CredentialRetrievalError(
                provider=WEB_IDENTITY, error_msg="the web_identity_token_file is empty")
        return token

    return load


def credential_session(region: str, *, access_key: str | None = None, secret_key: str | None = None,
                       session_token: str | None = None, profile: str | None = None,
                       role_arn: str | None = None, external_id: str | None = None,
                       session_name: str | None = None, duration: int | None = None,
                       web_identity_token_file: str | None = None,
                       wording: Callable[[Failure], ProviderError]) -> tuple[Any, str]:
    """A boto3 Session holding a provider's credentials, resolved now, and the name of the source
    that gave them (botocore's ``method``: ``explicit``, ``env``, ``shared-credentials-file``,
    ``assume-role``...).

    Sources: access keys; a named ``profile`` of the shared files (anything botocore supports in
    one: keys, ``role_arn``/``source_profile``, SSO, ``credential_process``); boto3's default chain;
    and on top of any of these ``role_arn`` (STS AssumeRole with ``external_id``, ``session_name``,
    ``duration``), or ``role_arn`` with ``web_identity_token_file`` (AssumeRoleWithWebIdentity,
    unsigned, no source credentials). Role credentials are botocore's own
    ``DeferredRefreshableCredentials`` over its ``AssumeRole*CredentialFetcher``: refreshed before
    they expire exactly as boto3 refreshes a profile's role.

    Resolved now, so that a command that cannot get credentials fails before it records anything
    (no phantom ``distributing`` record): static and profile credentials without any network call;
    for a role, the AssumeRole call itself is made here, because a role that cannot be assumed is
    as fatal as missing keys and STS changes nothing in the account. Every failure is one
    ProviderError through ``wording`` (operation ``connect``, or ``AssumeRole``/
    ``AssumeRoleWithWebIdentity`` for a refused role), never a botocore exception."""
    operation = "connect"
    try:
        if access_key and secret_key:
            source = new_session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                 aws_session_token=session_token or None, region_name=region)
        elif profile:
            source = new_session(profile_name=profile, region_name=region)
        else:
            source = new_session(region_name=region)
        if not role_arn:
            credentials = source.get_credentials()
            if credentials is None:
                raise botocore.exceptions.NoCredentialsError()
            credentials.get_frozen_credentials()  # a credential_process or SSO profile runs now
            return source, str(getattr(credentials, "method", None) or "explicit")
        extra: dict[str, Any] = {}
        if session_name:
            extra["RoleSessionName"] = session_name
        if duration:
            extra["DurationSeconds"] = int(duration)

        def sts_client(service: str, **kwargs: Any) -> Any:
            # our timeouts and user agent; retries as botocore's (AWS_MAX_ATTEMPTS/AWS_RETRY_MODE)
            config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                            user_agent_extra="keymgmt")
            kwargs["config"] = config.merge(kwargs["config"]) if kwargs.get("config") else config
            made = source.client(service, region_name=region, **kwargs)
            check_endpoint(made.meta.endpoint_url, service, region)  # plain http only to loopback
            return made

        if web_identity_token_file:
            method = WEB_IDENTITY
            operation = "AssumeRoleWithWebIdentity"
            fetcher: Any = botocore.credentials.AssumeRoleWithWebIdentityCredentialFetcher(
                sts_client, _token_loader(web_identity_token_file), role_arn, extra_args=extra)
        else:
            if external_id:
                extra["ExternalId"] = external_id
            source_credentials = source.get_credentials()
            if source_credentials is None:
                raise botocore.exceptions.NoCredentialsError()
            method = ASSUME_ROLE
            operation = "AssumeRole"
            fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
                sts_client, source_credentials, role_arn, extra_args=extra)
        credentials = botocore.credentials.DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method=method)
        core = botocore.session.Session(profile=profile or None)  # the profile's KMS settings too
        core.register_component("credential_provider",
                                botocore.credentials.CredentialResolver([_Resolved(method, credentials)]))
        session = new_session(botocore_session=core, region_name=region)
        credentials.get_frozen_credentials()  # AssumeRole now: refused before anything is recorded
        return session, method
    except BOTO_OR_VALUE as exc:
        raise translate(exc, "sts" if operation != "connect" else "kms", operation, region,
                        wording) from None


def access_key_id(session: Any) -> str:
    """The access key id of ``session``'s credentials (resolving its credential chain, as the first
    request would), "" when there are none or they cannot be resolved. Only ever compared, as a
    keyed digest, to notice that a provider's credentials changed: never printed or stored."""
    try:
        credentials = session.get_credentials()
        return str(getattr(credentials, "access_key", "") or "") if credentials is not None else ""
    except Exception:  # botocore's, or a credential provider's own (SSO, process): no fingerprint then
        return ""
