"""The composition root: the one place that wires a store, a secret box and the AWS provider
factory into an Engine. Neither click nor boto3 is imported here (boto3 only when a KMS is called).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Env:
    """What a command needs from the outside world, injectable for tests (HTTPie's Environment)."""

    def __init__(self, environ: dict[str, str] | None = None, engine: Any = None):
        self.environ = dict(os.environ) if environ is None else environ
        self._engine = engine

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = build_engine(self.environ)
        return self._engine

    def engine_for(self, verb: str) -> Any:
        """The injected engine if any, else the lightest one that serves ``verb``."""
        return self._engine if self._engine is not None else engine_for(self.environ, verb)


def engine_for(environ: dict[str, str], verb: str) -> Any:
    """Reads and lists need neither the secret box nor AWS: an engine over the store alone."""
    if verb in ("read", "list"):
        from keymgmt_cli.engine.core import Engine
        from keymgmt_cli.store import open_store

        return Engine(open_store(environ))
    return build_engine(environ)


def provider_factory(config: Any) -> Any:
    """A KmsProvider for a provider's config (boto3 is imported only when a KMS is called)."""
    from keymgmt_cli.providers import awskms

    return awskms.connect(config)


def build_engine(environ: dict[str, str]) -> Any:
    """An Engine over the configured store, its secret box and the AWS provider factory."""
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.store import open_secret_box, open_store

    store = open_store(environ)
    return Engine(store, open_secret_box(store.home, environ, store=store), provider_factory, progress=PROGRESS)


class _LazyProgress:
    """The terminal spinner, created on the first progress message (rich only then)."""

    def __init__(self) -> None:
        self._progress: Any = None

    def __call__(self, message: str) -> None:
        if self._progress is None:
            from keymgmt_cli.cli.terminal import Progress

            self._progress = Progress()
        self._progress(message)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()


PROGRESS = _LazyProgress()
