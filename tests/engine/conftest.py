"""Engine tests on in-memory twins: a KMS world and an engine wired to it."""

from __future__ import annotations

import pytest

from keymgmt_cli.engine.core import Engine
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box

TS = 1700000000  # the engine's clock: aliases are alias/hashicorp/<key>-1700000000


@pytest.fixture
def world():
    return MemoryKmsWorld()


@pytest.fixture
def twin_engine(world):
    return Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                  clock=lambda: float(TS))


@pytest.fixture
def aws1_engine(twin_engine):
    """The twin engine with one KMS provider, ``aws1`` in us-west-1 (the state exists)."""
    from keymgmt_cli.engine.routing import Request

    twin_engine.handle(Request("write", "keymgmt/kms/aws1", {"provider": "awskms", "key_collection": "us-west-1"}))
    return twin_engine
