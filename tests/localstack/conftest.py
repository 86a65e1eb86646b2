"""LocalStack's KMS on 127.0.0.1 for the localstack-marked tests (see scripts/localstack).

One LocalStack per session on a free port: ``scripts/localstack install`` (idempotent; about 30 s
the first time with a warm pip cache) and ``start``, ``stop`` at the end. Without Python 3.13 the
tests are skipped, except under CI=true where a skip would hide the gap: there they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "localstack"
REGION = "us-east-1"
KMS_NAME = "ls"
NO_PYTHON_313 = 3  # scripts/localstack's exit code when no Python 3.13 is found
INSTALL_TIMEOUT = 900
START_TIMEOUT = 120
LOOPBACK = "127.0.0.1,localhost"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_PROXY=LOOPBACK, no_proxy=LOOPBACK)
    return subprocess.run([str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{message} (CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def localstack_endpoint(request: pytest.FixtureRequest) -> Any:
    """The endpoint URL of a LocalStack KMS started for this session."""
    started = time.monotonic()
    done = _script("install", timeout=INSTALL_TIMEOUT)
    if done.returncode == NO_PYTHON_313:
        _unavailable("LocalStack's KMS needs Python 3.13 and scripts/localstack found none (tried "
                     "$LOCALSTACK_PYTHON, ~/.pyenv/versions/3.13.*/bin/python3.13, python3.13 on PATH); "
                     "install one, e.g. 'pyenv install 3.13.0', or set LOCALSTACK_PYTHON")
    if done.returncode != 0:
        pytest.fail(f"scripts/localstack install failed ({done.returncode}):\n{done.stdout}\n{done.stderr}",
                    pytrace=False)
    installed = time.monotonic()
    port = _free_port()
    done = _script("start", str(port), timeout=START_TIMEOUT)
    if done.returncode != 0:
        _script("stop", str(port), timeout=30)
        pytest.fail(f"scripts/localstack start {port} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}",
                    pytrace=False)
    endpoint = done.stdout.strip().splitlines()[-1]
    assert endpoint == f"http://127.0.0.1:{port}", done.stdout
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nLocalStack KMS at {endpoint}: install {installed - started:.1f} s, "
                                f"start {time.monotonic() - installed:.1f} s")
    # boto3 in this process talks to loopback only: never through a proxy from the environment.
    patch = pytest.MonkeyPatch()
    patch.setenv("NO_PROXY", LOOPBACK)
    patch.setenv("no_proxy", LOOPBACK)
    try:
        yield endpoint
    finally:
        patch.undo()
        stopped = _script("stop", str(port), timeout=30)
        if stopped.returncode == 0 and not request.session.testsfailed:
            # Keep the run directory (its localstack.log) only when something went wrong.
            shutil.rmtree(Path(os.environ.get("LOCALSTACK_DIR") or REPO / ".localstack") / f"run-{port}",
                          ignore_errors=True)


@pytest.fixture(scope="session")
def kms(localstack_endpoint: str) -> Any:
    """A boto3 KMS client on the LocalStack (no retries: a failed unwrap there is a 500)."""
    import boto3
    from botocore.config import Config

    return boto3.client("kms", region_name=REGION, endpoint_url=localstack_endpoint,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"mode": "standard", "max_attempts": 1}))


class KeymgmtCli:
    """The real CLI in a subprocess, on a state of its own, with a KMS provider 'ls' on LocalStack."""

    def __init__(self, home: Path, endpoint: str):
        self.home = home
        self.endpoint = endpoint
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
        env.update({
            "KEYMGMT_HOME": str(home),
            "KEYMGMT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "NO_PROXY": LOOPBACK,
            "no_proxy": LOOPBACK,
        })
        self.env = env

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "keymgmt_cli", *args], env=self.env, cwd=self.home.parent,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"keymgmt {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    def read(self, path: str) -> dict[str, Any]:
        return json.loads(self.run("read", "-format=json", path).stdout)["data"]

    def add_provider(self, name: str = KMS_NAME) -> None:
        self.run("write", f"keymgmt/kms/{name}", "provider=awskms", f"key_collection={REGION}",
                 "credentials=access_key=test", "credentials=secret_key=test",
                 f"credentials=endpoint={self.endpoint}")

    def material(self, key: str, version: int | str) -> bytes:
        """A version's key material, unsealed from the state with keymgmt's own code."""
        from keymgmt_cli.engine.core import Engine
        from keymgmt_cli.engine.sealing import unseal_material
        from keymgmt_cli.store import open_secret_box, open_store, state_home

        store = open_store(self.env)
        engine = Engine(store, open_secret_box(state_home(self.env), self.env))
        mount, _ = engine.resolve(f"keymgmt/key/{key}")
        doc = store.get(mount.doc("keys", key))
        return unseal_material(engine, mount, key, doc, int(version))


@pytest.fixture
def cli(tmp_path: Path, localstack_endpoint: str) -> KeymgmtCli:
    """A fresh keymgmt state with the KMS provider 'ls' pointing at the session's LocalStack."""
    tool = KeymgmtCli(tmp_path / "state", localstack_endpoint)
    tool.add_provider()
    return tool
