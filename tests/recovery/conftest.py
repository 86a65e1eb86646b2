"""Fixtures of the recovery tests: a CLI run in this process against a state with no OS keyring."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from recovery_support import file_env  # noqa: F401


@pytest.fixture(autouse=True)
def _no_os_keyring(monkeypatch):
    """The machine's keyring is never touched: tests that want one install their own."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def env(home) -> dict[str, str]:
    return file_env(home)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def random_key() -> str:
    return b64(os.urandom(32))
