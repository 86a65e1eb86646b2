"""Shared test helpers for the in-memory twins (imported by the conftests and tests)."""

from __future__ import annotations

import os

from keymgmt_cli.store import SecretBox
from keymgmt_cli.store.masterkey import MasterKey


def memory_secret_box() -> SecretBox:
    key = os.urandom(32)
    return SecretBox(lambda: MasterKey(key=key, source="test:memory"))
