"""The one fake-AWS environment of the tests: no user configuration, no instance metadata, fake
credentials in the environment, so nothing a test does can reach (or be steered to) real AWS."""

from __future__ import annotations

import os

FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"


def fake_aws(monkeypatch, *, access_key: str = FAKE_ACCESS_KEY, secret_key: str = FAKE_SECRET_KEY,
             region: str | None = None) -> None:
    """Clear every AWS_* variable (and KEYMGMT_AWS_PACING), then set fake credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "KEYMGMT_AWS_PACING":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    if region:
        monkeypatch.setenv("AWS_DEFAULT_REGION", region)
