"""Never lose a key, against LocalStack's KMS (issue 10): escrow, wipe the key, recover, then
distribute and rotate; a snapshot restored into a fresh state verifies in sync and rotates; after
a rekey the state rotates under the new key and the old one is refused. The real CLI in
subprocesses (``KeymgmtCli``), KMS on 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import KMS_NAME, KeymgmtCli

pytestmark = pytest.mark.localstack
SHARE_RE = re.compile(r"^Unseal Key \d+: (\S+)$", re.M)


def _recover(cli: KeymgmtCli, shares: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keymgmt_cli", "operator", "recover"], env=cli.env,
                          input="\n".join(shares) + "\n", cwd=cli.home.parent, capture_output=True,
                          text=True, timeout=120)


def _alias_target(kms, alias: str) -> str | None:
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page["Aliases"]:
            if entry["AliasName"] == alias:
                return entry.get("TargetKeyId")
    return None


def _distribution(cli: KeymgmtCli, key: str = "k") -> dict:
    return cli.read(f"keymgmt/kms/{KMS_NAME}/key/{key}")


def _assert_rotated_in_kms(cli: KeymgmtCli, kms, version: int) -> str:
    dist = _distribution(cli)
    key_id = dist["versions"][str(version)]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["Origin"] == "EXTERNAL"
    assert _alias_target(kms, dist["name"] if dist["name"].startswith("alias/") else
                         f"alias/hashicorp/{dist['name']}") == key_id
    return key_id


def _key_file_cli(tmp_path, endpoint: str, name: str = "state") -> KeymgmtCli:
    """A state whose master key lives in master.key (no keyring, no variable): it can be lost."""
    cli = KeymgmtCli(tmp_path / name, endpoint)
    cli.env.pop("KEYMGMT_MASTER_KEY")
    cli.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    cli.add_provider()
    return cli


def test_escrow_wipe_recover_then_distribute_and_rotate(tmp_path, localstack_endpoint, kms):
    cli = _key_file_cli(tmp_path, localstack_endpoint)
    cli.run("write", "keymgmt/key/k", "type=aes256-gcm96")
    cli.run("write", f"keymgmt/kms/{KMS_NAME}/key/k", "purpose=encrypt,decrypt")
    shares = SHARE_RE.findall(cli.run("operator", "escrow", "-key-shares=5", "-key-threshold=3").stdout)
    assert len(shares) == 5
    (cli.home / "master.key").unlink()  # the key is lost
    lost = cli.run("write", "-f", "keymgmt/key/k/rotate", check=False)
    assert lost.returncode == 2 and "no master key" in lost.stderr
    assert "none available" in cli.run("status").stdout
    too_few = _recover(cli, shares[:2])
    assert too_few.returncode == 2 and "needs 3" in too_few.stderr and not (cli.home / "master.key").exists()
    done = _recover(cli, [shares[4], shares[0], shares[2]])
    assert done.returncode == 0 and "is recovered" in done.stdout, done.stderr
    for share in shares:
        assert share not in done.stdout + done.stderr
    cli.run("write", "keymgmt/key/k2", "type=aes256-gcm96")
    cli.run("write", f"keymgmt/kms/{KMS_NAME}/key/k2", "purpose=encrypt,decrypt")  # distribute
    cli.run("write", "-f", "keymgmt/key/k/rotate")
    _assert_rotated_in_kms(cli, kms, 2)
    assert cli.run("verify").returncode == 0


def test_snapshot_restore_into_a_fresh_state_verifies_and_rotates(tmp_path, cli, kms):
    cli.run("write", "keymgmt/key/k", "type=aes256-gcm96")
    cli.run("write", f"keymgmt/kms/{KMS_NAME}/key/k", "purpose=encrypt,decrypt")
    cli.run("write", "-f", "keymgmt/key/k/rotate")
    file = tmp_path / "s.snap"
    cli.run("operator", "snapshot", "save", str(file))
    copy = KeymgmtCli(tmp_path / "copy", cli.endpoint)
    copy.env["KEYMGMT_MASTER_KEY"] = cli.env["KEYMGMT_MASTER_KEY"]
    out = copy.run("operator", "snapshot", "restore", f"-retire-source=file://{cli.home}", str(file)).stdout
    assert "Success! Restored" in out and "Retired" in out
    checked = copy.run("verify")
    assert checked.stdout.endswith("in sync\n") and "WARNING" not in checked.stderr, checked.stderr
    copy.run("write", "-f", "keymgmt/key/k/rotate")
    key_id = _assert_rotated_in_kms(copy, kms, 3)
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    instance = json.loads((copy.home / "meta" / "instance.json").read_text())["instance_id"]
    assert tags["keymgmt:instance"] == instance
    checked = copy.run("verify")
    assert checked.returncode == 0 and "WARNING" not in checked.stderr, checked.stderr
    refused = cli.run("write", "-f", "keymgmt/key/k/rotate", check=False)
    assert refused.returncode == 2 and "is retired" in refused.stderr


def test_two_live_copies_on_localstack_warn_naming_both_instances(tmp_path, cli, kms):
    cli.run("write", "keymgmt/key/k", "type=aes256-gcm96")
    cli.run("write", f"keymgmt/kms/{KMS_NAME}/key/k", "purpose=encrypt,decrypt")
    file = tmp_path / "s.snap"
    cli.run("operator", "snapshot", "save", str(file))
    copy = KeymgmtCli(tmp_path / "copy", cli.endpoint)
    copy.env["KEYMGMT_MASTER_KEY"] = cli.env["KEYMGMT_MASTER_KEY"]
    copy.run("operator", "snapshot", "restore", str(file))
    copy.run("write", "-f", "keymgmt/key/k/rotate")
    checked = cli.run("verify", check=False)
    assert checked.returncode == 2
    mine = json.loads((cli.home / "meta" / "instance.json").read_text())["instance_id"]
    theirs = json.loads((copy.home / "meta" / "instance.json").read_text())["instance_id"]
    warnings = [line for line in checked.stderr.splitlines() if line.startswith("WARNING! ")]
    assert warnings and all(mine in line and theirs in line for line in warnings), checked.stderr


def test_rekey_then_rotate_and_the_old_key_is_refused(tmp_path, cli, kms):
    cli.run("write", "keymgmt/key/k", "type=aes256-gcm96")
    cli.run("write", f"keymgmt/kms/{KMS_NAME}/key/k", "purpose=encrypt,decrypt")
    old = cli.env["KEYMGMT_MASTER_KEY"]
    out = json.loads(cli.run("operator", "rekey", "-format=json").stdout)
    new = out["master_key_b64"]  # KEYMGMT_MASTER_KEY cannot be written back: printed once
    assert new != old and out["resealed"] >= 2
    refused = cli.run("write", "-f", "keymgmt/key/k/rotate", check=False)
    assert refused.returncode == 2 and "does not match" in refused.stderr
    cli.env["KEYMGMT_MASTER_KEY"] = new
    cli.run("write", "-f", "keymgmt/key/k/rotate")
    _assert_rotated_in_kms(cli, kms, 2)
    assert cli.run("verify").returncode == 0
