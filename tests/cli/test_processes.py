"""Whole-process properties: secrets never on disk, read/list stay light, parallel writers lose nothing."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, SESSION_TOKEN

HEAVY = ("boto3", "botocore", "keyring", "cryptography", "click", "moto")


from support.cli import km  # noqa: E402


def _forms(secret: bytes) -> list[bytes]:
    """The secret as it could leak: plain, base64 (both alphabets), hex (both cases)."""
    forms = [secret, base64.b64encode(secret), base64.urlsafe_b64encode(secret),
             secret.hex().encode(), secret.hex().upper().encode()]
    return [f.rstrip(b"=") for f in forms]


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_secrets_never_reach_the_state_directory(cli_environ):
    master = base64.b64decode(cli_environ["KEYMGMT_MASTER_KEY"])
    r = km(cli_environ, "write", "keymgmt/kms/example-kms", "provider=awskms", "key_collection=us-west-1",
           f"credentials=access_key={ACCESS_KEY}", f"credentials=secret_key={SECRET_KEY}",
           f"credentials=session_token={SESSION_TOKEN}")
    assert r.returncode == 0, r.stderr
    for key_type in ("aes256-gcm96", "ecdsa-p256", "rsa-2048"):
        assert km(cli_environ, "write", f"keymgmt/key/{key_type}", f"type={key_type}").returncode == 0
        assert km(cli_environ, "write", "-f", f"keymgmt/key/{key_type}/rotate").returncode == 0
    home = Path(cli_environ["KEYMGMT_HOME"])
    blob = _all_bytes(home)
    assert blob, "the state was written"
    secrets = [SECRET_KEY.encode(), SESSION_TOKEN.encode(), master]
    # the key material itself, unsealed with the project's own code, must not be on disk either
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.engine.sealing import unseal_material
    from keymgmt_cli.store import open_secret_box, open_store

    store = open_store(cli_environ)
    engine = Engine(store, open_secret_box(store.home, cli_environ))
    mount, _ = engine.resolve("keymgmt/key")
    for key_type in ("aes256-gcm96", "ecdsa-p256", "rsa-2048"):
        doc = store.get(mount.doc("keys", key_type))
        for version in (1, 2):
            material = unseal_material(engine, mount, key_type, doc, version)
            secrets.append(material if key_type == "aes256-gcm96" else material[-32:])
    for secret in secrets:
        for form in _forms(secret):
            assert form not in blob
    for path in home.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    # and not in what the tool prints
    out = km(cli_environ, "read", "-format=json", "keymgmt/kms/example-kms")
    status = km(cli_environ, "status")
    for text in (out.stdout + out.stderr, status.stdout + status.stderr):
        assert SECRET_KEY not in text and SESSION_TOKEN not in text


@pytest.mark.parametrize("args", [["read", "keymgmt/key/a"], ["list", "keymgmt/key"],
                                  ["read", "-format=json", "keymgmt/kms/p"], ["list", "keymgmt/kms"],
                                  ["read", "keymgmt/key/missing"]])
def test_read_and_list_import_no_heavy_library(cli_environ, args):
    km(cli_environ, "write", "keymgmt/key/a", "type=aes256-gcm96")
    km(cli_environ, "write", "keymgmt/kms/p", "provider=awskms", "key_collection=us-west-1")
    probe = ("import runpy, sys\n"
             f"sys.argv = ['keymgmt'] + {args!r}\n"
             "try:\n    runpy.run_module('keymgmt_cli', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\n"
             f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
             "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", probe], env=cli_environ, capture_output=True, text=True)
    assert "HEAVY=\n" in result.stderr, result.stderr


def test_parallel_processes_writing_keys_lose_nothing(cli_environ):
    km(cli_environ, "write", "keymgmt/key/shared", "type=aes256-gcm96")

    def writer(n: int) -> list[int]:
        codes = []
        for i in range(4):
            codes.append(km(cli_environ, "write", f"keymgmt/key/w{n}-{i}", "type=aes256-gcm96").returncode)
        codes.append(km(cli_environ, "write", "-f", "keymgmt/key/shared/rotate").returncode)
        return codes

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(writer, range(8)))
    assert all(code == 0 for codes in results for code in codes), results
    listed = km(cli_environ, "list", "-format=json", "keymgmt/key")
    names = json.loads(listed.stdout)
    assert sorted(names) == sorted(["shared"] + [f"w{n}-{i}" for n in range(8) for i in range(4)])
    shared = json.loads(km(cli_environ, "read", "-format=json", "keymgmt/key/shared").stdout)["data"]
    assert shared["latest_version"] == 9 and sorted(shared["keys"], key=int) == [str(v) for v in range(1, 10)]
