"""`keymgmt demo`: a full key lifecycle against the embedded local KMS on 127.0.0.1.

Each step runs the real CLI in its own process, as an operator would, against a throwaway state
directory and master key; nothing touches the user's own state or any AWS account. The local KMS
is moto's server with our strict import double: it really unwraps the imported material.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any

import click

SECRET_FIELDS = ("secret_key", "session_token")


class DemoFailed(Exception):
    pass


def _shown(args: list[str]) -> str:
    out = []
    for arg in args:
        for field in SECRET_FIELDS:
            if arg.startswith(f"credentials={field}="):
                arg = f"credentials={field}=****"
        out.append(shlex.quote(arg))
    return "keymgmt " + " ".join(out)


def run_demo(keep: bool = False, echo: Any = click.echo) -> int:
    from keymgmt_cli.localkms import server

    home = tempfile.mkdtemp(prefix="keymgmt-demo-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(KEYMGMT_HOME=home, KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
               KEYMGMT_FORMAT="table")
    started = time.monotonic()
    with server.start() as kms:
        echo(f"# local KMS (moto + BYOK import double) listening on {kms.endpoint_url}")
        echo(f"# throwaway state in {home}")

        def step(*args: str, expect: int = 0) -> str:
            echo(f"\n$ {_shown(list(args))}")
            proc = subprocess.run([sys.executable, "-m", "keymgmt_cli", *args], env=env,
                                  capture_output=True, text=True, timeout=300)
            for line in (proc.stdout + proc.stderr).rstrip("\n").splitlines():
                echo(f"  {line}")
            if proc.returncode != expect:
                raise DemoFailed(f"step exited {proc.returncode}, expected {expect}: {_shown(list(args))}")
            return proc.stdout

        step("write", "keymgmt/kms/example-kms", "provider=awskms", "key_collection=us-west-1",
             "credentials=access_key=AKIADEMODEMODEMODEMO", "credentials=secret_key=demo-secret-not-real",
             f"credentials=endpoint={kms.endpoint_url}")
        step("read", "keymgmt/kms/example-kms")
        step("write", "keymgmt/key/example-key", "type=aes256-gcm96")
        step("write", "keymgmt/kms/example-kms/key/example-key", "purpose=encrypt,decrypt", "protection=hsm")
        step("read", "keymgmt/kms/example-kms/key/example-key")
        step("write", "-f", "keymgmt/key/example-key/rotate")
        step("read", "-field=latest_version", "keymgmt/key/example-key")
        step("read", "-format=json", "keymgmt/kms/example-kms/key/example-key")
        step("write", "keymgmt/key/example-key", "min_enabled_version=2")
        step("list", "keymgmt/key/example-key/kms")
        step("verify")  # the state and the local KMS agree: exit 0
        # An asymmetric key: KMS derives the public key from the imported private key, so
        # GetPublicKey equal to our local public key proves the material in KMS is ours.
        step("write", "keymgmt/key/signing-key", "type=ecdsa-p256")
        step("write", "keymgmt/kms/example-kms/key/signing-key", "purpose=sign,verify")
        _prove_public_key(step, kms.endpoint_url, echo)
        step("delete", "keymgmt/kms/example-kms/key/example-key", "pending_window_days=7")
        step("delete", "keymgmt/kms/example-kms/key/signing-key")
        step("write", "keymgmt/key/example-key", "deletion_allowed=true")
        step("delete", "keymgmt/key/example-key")
        step("delete", "keymgmt/kms/example-kms")
        step("list", "keymgmt/kms", expect=2)
        step("status")
    elapsed = time.monotonic() - started
    echo(f"\n# lifecycle complete in {elapsed:.1f} s: provider, keys, distribute, read versions, rotate, "
         "min_enabled_version, remove, delete")
    if not keep:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    return 0


def _prove_public_key(step: Any, endpoint: str, echo: Any) -> None:
    import json

    from keymgmt_cli.providers import awskms
    from keymgmt_cli.providers.base import ProviderConfig
    from cryptography.hazmat.primitives import serialization

    local_pem = step("read", "-format=json", "-field=keys", "keymgmt/key/signing-key")  # JSON, as Vault
    local_pem = json.loads(local_pem)["1"]["public_key"]
    key_id = json.loads(step("read", "-format=json", "keymgmt/kms/example-kms/key/signing-key"))["data"]["versions"]["1"]
    provider = awskms.connect(ProviderConfig(region="us-west-1", access_key="AKIADEMODEMODEMODEMO",
                                             secret_key="demo-secret-not-real", endpoint=endpoint))
    in_kms = provider.get_public_key(key_id)
    local = serialization.load_pem_public_key(local_pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if in_kms != local:
        raise DemoFailed("the public key in KMS differs from the local one")
    echo(f"\n# GetPublicKey({key_id}) equals the local public key: the imported private key is ours")
