"""audit/records.py's small helpers give what the stdlib calls they replace give (datetime, getpass,
socket, uuid are not imported on every write for them)."""

from __future__ import annotations

import getpass
import re
import socket
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from keymgmt_cli.audit import records


def test_now_is_utc_isoformat_with_z() -> None:
    for _ in range(50):
        before = datetime.now(timezone.utc)
        text = records.now()
        after = datetime.now(timezone.utc)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", text), text
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert before - timedelta(microseconds=1) <= parsed <= after + timedelta(microseconds=1)


def test_now_without_microseconds_has_no_fraction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records.time, "time_ns", lambda: 1_700_000_000 * 10**9)
    assert records.now() == datetime.fromtimestamp(1_700_000_000, timezone.utc).isoformat().replace("+00:00", "Z")
    monkeypatch.setattr(records.time, "time_ns", lambda: 1_700_000_000 * 10**9 + 1_234_567)
    assert records.now() == "2023-11-14T22:13:20.001234Z"


@pytest.mark.parametrize("env", [{"LOGNAME": "alice", "USER": "bob"}, {"USER": "bob"}, {"USERNAME": "carol"}, {}])
def test_local_user_is_getpass_getuser(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        expected = getpass.getuser()
    except Exception:  # no name for this uid
        expected = f"uid:{records.os.getuid()}"
    assert records.local_user() == expected


def test_host_is_the_hostname() -> None:
    assert records.host() == socket.gethostname()


def test_request_ids_are_random_uuid4_text() -> None:
    ids = {records.new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
