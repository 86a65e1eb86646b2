"""One base error, subclasses by meaning. The CLI maps them to exit codes in one place.

Messages are shown to users as one line: never put secret values into them.
"""


class KeymgmtError(Exception):
    """Base of every error the tool reports to a user."""

    hint: str | None = None

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class UsageError(KeymgmtError):
    """Found before the engine is called: arity, flags, unparsable DATA (exit 1)."""


class StoreError(KeymgmtError):
    """The local state or the master key cannot be used (exit 1: a local problem)."""


class EngineError(KeymgmtError):
    """Anything the engine refuses (exit 2)."""


class InvalidRequest(EngineError):
    """A field value is malformed or not allowed."""


class NotFound(EngineError):
    """The entity named by the path does not exist."""


class UnsupportedPath(EngineError):
    """No route matches the path."""


class UnsupportedOperation(EngineError):
    """The path exists but not for this verb."""


class PreconditionFailed(EngineError):
    """The request is valid but the current state forbids it."""


class ProviderError(EngineError):
    """An AWS service (KMS, DynamoDB) or its in-memory twin refused or failed.

    The message is one line naming the service's operation and the AWS error code. The fields are
    what callers decide on: ``code`` (the AWS error code, or the botocore exception's class name),
    ``retryable`` (worth running again later), ``hint`` (for a refused permission, the IAM action
    to allow), ``service``/``operation``/``region`` (where it failed, None when not an AWS call),
    ``retry_attempts`` (how often botocore re-sent the request: a lost response makes a re-sent
    request look refused).
    """

    def __init__(self, message: str, code: str | None = None, hint: str | None = None,
                 retryable: bool = False, *, service: str | None = None,
                 operation: str | None = None, region: str | None = None,
                 retry_attempts: int = 0):
        super().__init__(message, hint)
        self.code = code
        self.retryable = retryable
        self.service = service
        self.operation = operation
        self.region = region
        self.retry_attempts = retry_attempts


class NoValue(NotFound):
    """An empty list or a missing entity on read, printed bare as Vault does ("No value found at P")."""
