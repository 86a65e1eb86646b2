"""The read/list path of the store must not import cryptography, keyring or boto3."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ["cryptography", "keyring", "boto3", "botocore"]


def _loaded_after(code, tmp_path):
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO), KEYMGMT_HOME=str(tmp_path))
    env.pop("KEYMGMT_MASTER_KEY", None)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    return json.loads(out)


def test_store_package_and_file_store_import_nothing_heavy(tmp_path):
    assert _loaded_after("import keymgmt_cli.store, keymgmt_cli.store.filestore", tmp_path) == []


def test_reading_and_listing_import_nothing_heavy(tmp_path):
    code = """
        import os
        from keymgmt_cli.store import open_store, SecretBox
        from keymgmt_cli.store.memory import MemoryStore
        from keymgmt_cli.store import masterkey
        store = open_store(dict(os.environ, KEYMGMT_MASTER_KEY="A" * 43 + "="))  # documents are MAC'd
        store.put("m1/keys/k1", {"v": 1})
        assert store.get("m1/keys/k1") == {"v": 1} and store.list("m1/keys") == ["k1"]
        with store.lock("m1"):
            pass
        box = SecretBox(lambda: 1 / 0)  # never called on this path
        assert masterkey.describe_source(store.home, {"KEYMGMT_MASTER_KEY": "x"})
    """
    assert _loaded_after(code, tmp_path) == []


def test_master_key_from_env_needs_no_keyring_and_no_cryptography(tmp_path):
    code = """
        import base64, os
        from keymgmt_cli.store.masterkey import load_master_key
        env = {"KEYMGMT_MASTER_KEY": base64.b64encode(bytes(32)).decode()}
        load_master_key(os.environ["KEYMGMT_HOME"], env, create=True)
    """
    assert _loaded_after(code, tmp_path) == []


def test_the_probe_does_see_heavy_imports(tmp_path):
    """The check above can fail: sealing does load cryptography."""
    code = """
        from keymgmt_cli.store.seal import Sealer
        Sealer(bytes(32)).seal(b"x", "a")
    """
    assert "cryptography" in _loaded_after(code, tmp_path)
