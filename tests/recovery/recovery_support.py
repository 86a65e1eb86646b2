"""Helpers of the recovery tests (imported by their modules)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
SHARE_RE = re.compile(r"^Unseal Key (\d+): (\S+)$", re.M)


def file_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(KEYMGMT_HOME=str(home), KEYMGMT_CONFIG=str(home.parent / "absent-config.json"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def km(environ: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one CLI run in this process."""
    from keymgmt_cli.cli.main import Env, cli

    result = CliRunner().invoke(cli, list(args), obj=Env(dict(environ)), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def shares_of(stdout: str) -> list[str]:
    return [m.group(2) for m in SHARE_RE.finditer(stdout)]


def forms(secret: bytes) -> list[str]:
    """The ways a secret could leak as text: base64 (standard, URL-safe, unpadded) and hex."""
    b = base64.b64encode(secret).decode()
    return [b, b.rstrip("="), base64.urlsafe_b64encode(secret).decode().rstrip("="),
            secret.hex(), secret.hex().upper()]


def tree_text(root: Path) -> bytes:
    out = b""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out += path.read_bytes()
    return out


def assert_absent(blob: bytes | str, secrets: list[bytes], shares: list[str] = ()) -> None:
    text = blob if isinstance(blob, bytes) else blob.encode()
    for secret in secrets:
        assert secret not in text
        for form in forms(secret):
            assert form.encode() not in text, "a secret leaked"
    for share in shares:
        assert share.encode() not in text, "a share leaked"
        raw = base64.b64decode(share)
        assert raw[11:].hex().encode() not in text


def master_key_of(home: Path) -> bytes:
    return base64.b64decode((home / "master.key").read_text().strip())


def json_out(stdout: str) -> dict:
    return json.loads(stdout)


def unhex(text: str) -> bytes:
    return binascii.unhexlify(text)
