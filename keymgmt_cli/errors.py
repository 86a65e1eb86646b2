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
    """A KMS provider (AWS) refused or failed; the message names the AWS error code."""

    def __init__(self, message: str, code: str | None = None, hint: str | None = None,
                 retryable: bool = False):
        super().__init__(message, hint)
        self.code = code
        self.retryable = retryable


class NoValue(NotFound):
    """An empty list or a missing entity on read, printed bare as Vault does ("No value found at P")."""
