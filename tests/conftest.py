"""Shared fixtures: an engine on in-memory twins, and a CLI environment on a temporary state."""

from __future__ import annotations

import base64
import os

import pytest

from keymgmt_cli.engine.core import Engine
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box  # noqa: F401  (re-exported for tests)

# Distinctive secret values: tests assert they never appear in output or on disk.
SECRET_KEY = "bCiYmNroLxLmPNQ47VIvjlm8mQu5oktZcQdq195w"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKENvalue0123456789"
ACCESS_KEY = "ASIADJO3WTX6WPLJM42V"


@pytest.fixture(scope="session", autouse=True)
def _private_pacing_dir(tmp_path_factory):
    """AWS pacing schedules are shared by every keymgmt process of the user; tests (and the CLI
    processes they start) get their own, so parallel test runs never wait on each other."""
    os.environ["KEYMGMT_PACING_DIR"] = str(tmp_path_factory.mktemp("pacing"))


@pytest.fixture
def engine() -> Engine:
    """An engine on the in-memory store, with no KMS provider (tests that distribute add one)."""
    return Engine(MemoryStore(), memory_secret_box(), None, clock=lambda: 1700000000.0)


@pytest.fixture
def cli_environ(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env["KEYMGMT_HOME"] = str(tmp_path / "state")
    env["KEYMGMT_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    return env
