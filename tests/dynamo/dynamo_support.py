"""Helpers for the DynamoDB backend tests: moto in-process, and moto's server on 127.0.0.1."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}


def aws_test_credentials(monkeypatch) -> None:
    """Fake credentials for moto (the tests' one fake-AWS setup, plus a session token)."""
    from support.fakeaws import fake_aws

    fake_aws(monkeypatch, region=REGION)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_AWS["AWS_SESSION_TOKEN"])


class SerialClient:
    """A boto3 DynamoDB client whose requests run one at a time across every thread.

    DynamoDB applies each request atomically, so a conditional PutItem either sees the other
    thread's write or is refused. moto's in-process backend has no lock: under a loaded machine
    two threads' conditional writes can both pass their check, and a lease is then held twice.
    That is moto's gap, not the store's (the moto server in ``dynamo_server.py`` is serialised
    for the same reason), so in-process tests with threads give the store this client.
    """

    _lock = __import__("threading").Lock()

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def serial(*args, **kwargs):
            with SerialClient._lock:
                return attr(*args, **kwargs)

        return serial


def serial_dynamodb_client():
    """A :class:`SerialClient` on the in-process moto (call inside ``moto.mock_aws()``)."""
    from keymgmt_cli.store.awsclient import make_client

    return SerialClient(make_client("dynamodb", REGION, None))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """moto's server mode on 127.0.0.1 as a subprocess: DynamoDB and KMS on one port.

    ``dynamo_server.py``: moto's server app with the project's BYOK import extension, requests
    handled one at a time (see there why). A subprocess, not a thread: moto's state is
    process-global and the in-process tests reset it.
    """

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYMGMT_"))}
        env.update(FAKE_AWS, PYTHONPATH=str(REPO))
        self.port = free_port()
        server = str(Path(__file__).with_name("dynamo_server.py"))
        self.proc = subprocess.Popen([sys.executable, server, str(self.port)], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().strip()  # printed once the socket listens
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"local AWS endpoint did not start: {line!r}")
        self.endpoint = line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self, service: str):
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def machine_env(home: Path, storage: str, seal: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of one simulated machine: its own KEYMGMT_HOME, the shared table."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(FAKE_AWS)
    env["KEYMGMT_HOME"] = str(home)
    env["KEYMGMT_STORAGE"] = storage
    env["KEYMGMT_CONFIG"] = str(home / "no-config.json")
    env["PYTHONPATH"] = str(REPO)
    if seal:
        env["KEYMGMT_SEAL"] = seal
    env.update(extra)
    return env


def random_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def operator_cli():
    """keymgmt's CLI group with the operator commands, without touching the shared ``cli`` object."""
    from keymgmt_cli.cli.main import KeymgmtGroup, cli
    from keymgmt_cli.cli.operator import operator_group

    return KeymgmtGroup("keymgmt", commands={**cli.commands, "operator": operator_group})


def invoke(environ, *args):
    """(exit code, stdout, stderr) of one CLI run in this process, with ``environ`` injected."""
    from click.testing import CliRunner

    from keymgmt_cli.cli.main import Env

    result = CliRunner().invoke(operator_cli(), list(args), obj=Env(dict(environ)))
    return result.exit_code, result.stdout, result.stderr


def moto_server():
    """A module fixture's body: one moto server on 127.0.0.1 for the module, stopped afterwards
    (use as ``aws = pytest.fixture(scope="module")(moto_server)``)."""
    server = MotoServer()
    try:
        yield server
    finally:
        server.stop()
