"""Secrets: after a full lifecycle with distinctive secret values, none of them (plain, base64 or
hex) is in stdout, stderr, the state directory (at any step), or the debug output.

Secrets: the provider's secret_key and session_token, the master key, and every version's key
material (AES keys, and the PKCS#8 DER of EC and RSA keys), unsealed with the project's own code.
Every command runs as its own process with ``KEYMGMT_DEBUG=1`` against the local KMS on 127.0.0.1,
and one distribution fails halfway (an injected KMS error) so the error paths print too.
"""

from __future__ import annotations

import base64
import secrets as pysecrets
import threading
from pathlib import Path
from typing import Any

import pytest

from fault_harness import KMS, REPLICA_REGION, cli_environ, fresh_kms, km, provider_args
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.engine.sealing import unseal_material
from keymgmt_cli.store import open_secret_box, open_store

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


class FailImports:
    """Observer callback: while armed, every ImportKeyMaterial gets HTTP 500 KMSInternalException."""

    def __init__(self) -> None:
        self.armed = threading.Event()

    def __call__(self, op: str, n: int, phase: str) -> str | None:
        if self.armed.is_set() and op == "ImportKeyMaterial" and phase == "before":
            return "error"
        return None


@pytest.fixture(scope="module")
def failer() -> FailImports:
    return FailImports()


@pytest.fixture(scope="module")
def kms(failer: FailImports) -> Any:
    with fresh_kms(observer=failer) as server:
        yield server


def _forms(secret: bytes) -> list[bytes]:
    """As it could leak: plain, base64 (standard and URL alphabets, unpadded), hex (both cases)."""
    forms = [secret, base64.b64encode(secret), base64.urlsafe_b64encode(secret), secret.hex().encode(),
             secret.hex().upper().encode()]
    return [f.rstrip(b"=") for f in forms]


def _tree(root: Path) -> bytes:
    return b"".join(p.name.encode() + b"\0" + p.read_bytes()
                    for p in sorted(root.rglob("*")) if p.is_file())


def test_no_secret_in_output_state_or_debug_output(kms: Any, failer: FailImports, tmp_path: Path) -> None:
    secret_key = "SK" + pysecrets.token_hex(19)  # distinctive: found nowhere by chance
    session_token = "ST" + pysecrets.token_urlsafe(48)
    environ = cli_environ(tmp_path / "state", KEYMGMT_DEBUG="1")
    home = Path(environ["KEYMGMT_HOME"])
    transcript: list[bytes] = []
    snapshots: list[bytes] = []

    def step(*args: str, expect: int | None = 0) -> Any:
        result = km(environ, *args)
        transcript.append(result.stdout.encode() + b"\n" + result.stderr.encode())  # (args hold secrets)
        snapshots.append(_tree(home))
        if expect is not None:
            assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
        return result

    wrap = "wrapping_key_spec=RSA_2048"
    step(*provider_args(kms.endpoint_url, secret=secret_key, session_token=session_token))
    for fmt in ("table", "json", "yaml"):
        step("read", f"-format={fmt}", f"keymgmt/kms/{KMS}")
    step("write", "keymgmt/key/aes", "type=aes256-gcm96", f"replica_regions={REPLICA_REGION}")
    step("write", "keymgmt/key/ec", "type=ecdsa-p256")
    step("write", "keymgmt/key/rsa", "type=rsa-2048")
    step("write", f"keymgmt/kms/{KMS}/key/aes", "purpose=encrypt,decrypt", wrap)
    failer.armed.set()  # a distribution that fails halfway: the error path prints, with KEYMGMT_DEBUG=1
    step("write", f"keymgmt/kms/{KMS}/key/ec", "purpose=sign,verify", wrap, expect=2)
    failer.armed.clear()
    step("status")
    step("write", f"keymgmt/kms/{KMS}/key/ec", "purpose=sign,verify", wrap)
    step("write", f"keymgmt/kms/{KMS}/key/rsa", "purpose=sign,verify", wrap)
    for name in ("aes", "ec", "rsa"):
        step("write", "-f", f"keymgmt/key/{name}/rotate")
    step("write", "-f", f"keymgmt/kms/{KMS}/key/aes/replicate")
    step("write", "keymgmt/key/aes", "min_enabled_version=2")
    for name in ("aes", "ec", "rsa"):
        step("read", "-format=json", f"keymgmt/key/{name}")
        step("read", "-format=yaml", f"keymgmt/kms/{KMS}/key/{name}")
    step("list", f"keymgmt/kms/{KMS}/key")
    step("status", "-format=json")
    verify = step("verify", expect=None)
    # 0 in sync; against a local KMS that drops ReplicateKey's tags, 2 with the replicas' tags as the
    # only drift (test_fault_positions.py::test_replicas_carry_their_tags)
    assert verify.returncode == (0 if kms.replica_tags else 2), (verify.stdout, verify.stderr)
    drift = [line for line in verify.stdout.splitlines() if line.startswith("DRIFT")]
    assert all(f"  {REPLICA_REGION}  " in line and ": tag keymgmt:" in line for line in drift), drift
    step("write", "keymgmt/kms/bad", "provider=awskms", "key_collection=us-west-1",
         "credentials=access_key=AKIAX", f"credentials=secret_key={secret_key} x", expect=2)

    # the material of every version, before the keys are deleted
    store = open_store(environ)
    engine = Engine(store, open_secret_box(store.home, environ))
    mount, _ = engine.resolve("keymgmt/key")
    materials: list[bytes] = []
    for name in ("aes", "ec", "rsa"):
        doc = store.get(mount.doc("keys", name))
        for version in doc["versions"]:
            material = unseal_material(engine, mount, name, doc, int(version))
            materials.append(material)
            if name != "aes":
                materials.append(material[-32:])  # the tail of the DER: private key bytes
    assert len(materials) == 2 + 4 + 4

    for name in ("aes", "ec", "rsa"):
        step("delete", f"keymgmt/kms/{KMS}/key/{name}", "pending_window_days=7")
        step("write", f"keymgmt/key/{name}", "deletion_allowed=true")
        step("delete", f"keymgmt/key/{name}")
    step("delete", f"keymgmt/kms/{KMS}")
    step("status")

    everything = b"\n".join(transcript) + b"\n".join(snapshots)
    assert b"Success! Data written to: keymgmt/kms/kms1" in everything and len(snapshots) == len(transcript)
    secrets = {"secret_key": secret_key.encode(), "session_token": session_token.encode(),
               "master key": base64.b64decode(environ["KEYMGMT_MASTER_KEY"])}
    secrets.update({f"material #{i}": m for i, m in enumerate(materials)})
    for what, secret in secrets.items():
        for form in _forms(secret):
            assert form not in everything, f"the {what} appears in the output or the state ({form[:12]!r}...)"


def test_verify_after_a_clean_distribution_is_in_sync(kms: Any, tmp_path: Path) -> None:
    environ = cli_environ(tmp_path / "state")
    for args in (provider_args(kms.endpoint_url), ["write", "keymgmt/key/v", "type=aes256-gcm96"],
                 ["write", f"keymgmt/kms/{KMS}/key/v", "purpose=encrypt,decrypt", "wrapping_key_spec=RSA_2048"]):
        assert km(environ, *args).returncode == 0, args
    result = km(environ, "verify")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "in sync" in result.stdout
