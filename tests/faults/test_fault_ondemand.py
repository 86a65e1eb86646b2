"""Never half-done, for rotation_mode=on-demand (issue 13 item 5): a fault at every AWS call position
of an on-demand distribution, rotation, renew, suspend and resume against the local KMS, then the
same command again; the end must equal a clean run's: one KMS key for every version, its current
key material the latest version's (DescribeKey CurrentKeyMaterialId), every version's material
associated with it (ListKeyRotations) and none left pending, the alias on it, nothing unfinished,
zero orphans. Also: ciphertexts made under every earlier version decrypt after the rotations.

``rotate-mr`` rotates a multi-Region key with one replica: NEW_KEY_MATERIAL into the primary,
EXISTING_KEY_MATERIAL into the replica, then RotateKeyOnDemand; its end state also holds the
replica to the same current material. The faults and the conductor are test_fault_positions'
(see its docstring for the modes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fault_harness import (KMS, REGION, REPLICA_REGION, aws_aliases, aws_keys, cli_environ, fresh_kms, km, kms_client, ok,
                           provider_args, read_json, unfinished)
from keymgmt_cli.cli.main import Env, cli
from test_fault_positions import FAILS, KILLS, Conductor

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

KEY = "od"
WRAP = "wrapping_key_spec=RSA_2048"
DIST = f"keymgmt/kms/{KMS}/key/{KEY}"
COMMANDS: dict[str, list[str]] = {
    "distribute": ["write", DIST, "purpose=encrypt,decrypt", "rotation_mode=on-demand", WRAP],
    "rotate": ["write", "-f", f"keymgmt/key/{KEY}/rotate"],
    "rotate-mr": ["write", "-f", f"keymgmt/key/{KEY}/rotate"],
    "renew": ["write", f"{DIST}/renew", "valid_to=60d"],
    "suspend": ["write", "-f", f"{DIST}/suspend"],
    "resume": ["write", "-f", f"{DIST}/resume"],
}
_IMPORT = ["GetParametersForImport", "ImportKeyMaterial"]
EXPECTED_LOGS: dict[str, list[str]] = {
    "distribute": ["CreateKey", *_IMPORT, *_IMPORT, "RotateKeyOnDemand", "CreateAlias"],
    "rotate": [*_IMPORT, "RotateKeyOnDemand"],  # no CreateKey, no UpdateAlias: the ARN never changes
    "rotate-mr": [*_IMPORT, *_IMPORT, "RotateKeyOnDemand"],  # the primary, the replica, then the rotation
    "renew": [*_IMPORT, *_IMPORT],  # every version's material, EXISTING_KEY_MATERIAL, into the one key
    "suspend": ["DeleteImportedKeyMaterial", "DeleteImportedKeyMaterial"],  # each material by its id
    "resume": [*_IMPORT, *_IMPORT],
}


@pytest.fixture(scope="module")
def conductor() -> Conductor:
    return Conductor()


@pytest.fixture(scope="module")
def kms(conductor: Conductor) -> Any:
    with fresh_kms(observer=conductor) as server:
        yield server


def _setup(command: str, home: Path, endpoint: str) -> dict[str, str]:
    """A 2-version aes256-gcm96 key, distributed on-demand except for distribute."""
    environ = cli_environ(home)
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, list(args), obj=Env(environ))
        assert result.exit_code == 0, (args, result.output, result.exception)

    run(*provider_args(endpoint))
    extra = [f"replica_regions={REPLICA_REGION}"] if command == "rotate-mr" else []
    run("write", f"keymgmt/key/{KEY}", "type=aes256-gcm96", *extra)
    run("write", "-f", f"keymgmt/key/{KEY}/rotate")
    if command == "renew":
        run(*COMMANDS["distribute"], "valid_to=30d")
    elif command != "distribute":
        run(*COMMANDS["distribute"])
    if command == "resume":
        run(*COMMANDS["suspend"])
    if command == "rotate-mr":
        run("write", "-f", f"{DIST}/replicate")
    return environ


def end_state(endpoint: str, environ: dict[str, str]) -> dict[str, Any]:
    """The invariants of an on-demand distribution, asserted; the comparable shape, returned."""
    dist = read_json(environ, DIST)
    assert dist is not None and dist["rotation_mode"] == "on-demand"
    key_ids = set(dist["versions"].values())
    assert len(key_ids) == 1, dist["versions"]
    (key_id,) = key_ids
    keys = [k for k in aws_keys(endpoint, (REGION,)) if k["tags"].get("keymgmt:key_name") == KEY
            or k["state"] == "PendingImport"]
    live = [k for k in keys if k["state"] not in ("PendingDeletion", "PendingReplicaDeletion")]
    assert [k["id"] for k in live] == [key_id], f"orphans or a missing key: {keys}"
    assert live[0]["tags"]["keymgmt:version"] == "1"
    client = kms_client(endpoint, REGION)
    md = client.describe_key(KeyId=key_id)["KeyMetadata"]
    latest = str(max(int(v) for v in dist["versions"]))
    suspended = bool(dist.get("suspended"))
    if not suspended:
        assert md["KeyState"] == "Enabled" and md["CurrentKeyMaterialId"] == dist["key_material_ids"][latest], md
    rotations = client.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert sorted(r["KeyMaterialId"] for r in rotations) == sorted(dist["key_material_ids"].values()), rotations
    assert not [r for r in rotations if r["KeyMaterialState"].startswith("PENDING")], rotations
    assert sorted(aws_aliases(endpoint, (REGION,))[REGION].values()) == [key_id]
    assert unfinished(environ) == [], unfinished(environ)
    replicas = []
    for region in dist.get("replica_regions", []):
        replica = kms_client(endpoint, region).describe_key(KeyId=key_id)["KeyMetadata"]
        assert replica["KeyState"] == "Enabled", replica
        assert replica["CurrentKeyMaterialId"] == dist["key_material_ids"][latest], replica
        extra = [k for k in aws_keys(endpoint, (region,)) if k["state"] not in ("PendingDeletion",)]
        assert [k["id"] for k in extra] == [key_id], extra  # one replica, no orphans
        replicas.append(region)
    return {"replicas": replicas, "versions": sorted(dist["versions"]), "state": md["KeyState"], "suspended": suspended,
            "imported": sorted(r["ImportState"] for r in rotations),
            "material_expiry": sorted(dist.get("material_expiry", {}))}


@pytest.fixture(scope="module")
def clean(kms: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[str, tuple[list[str], dict[str, Any]]] = {}

    def get(command: str) -> tuple[list[str], dict[str, Any]]:
        if command not in cache:
            kms.reset()
            environ = _setup(command, tmp_path_factory.mktemp(f"clean-od-{command}"), kms.endpoint_url)
            kms.observer.reset()
            ok(km(environ, *COMMANDS[command]))
            cache[command] = (kms.observer.ops(), end_state(kms.endpoint_url, environ))
        return cache[command]

    return get


def test_clean_call_logs(clean: Any) -> None:
    for command, expected in EXPECTED_LOGS.items():
        assert clean(command)[0] == expected, command


def test_old_ciphertexts_decrypt_after_on_demand_rotations_under_the_same_arn(kms: Any, tmp_path: Path) -> None:
    kms.reset()
    environ = _setup("rotate", tmp_path / "state", kms.endpoint_url)
    dist = read_json(environ, DIST)
    client = kms_client(kms.endpoint_url, REGION)
    alias = "alias/hashicorp/" + dist["name"]
    blobs = [client.encrypt(KeyId=alias, Plaintext=b"under version 2")["CiphertextBlob"]]
    ok(km(environ, *COMMANDS["rotate"]))
    blobs.append(client.encrypt(KeyId=alias, Plaintext=b"under version 3")["CiphertextBlob"])
    after = read_json(environ, DIST)
    assert set(after["versions"].values()) == set(dist["versions"].values())  # the same ARN
    assert [client.decrypt(CiphertextBlob=b)["Plaintext"] for b in blobs] == [b"under version 2",
                                                                             b"under version 3"]
    ok(km(environ, "verify"))
    # a type AWS cannot rotate on demand is refused with one line, exit 2, nothing recorded
    ok(km(environ, "write", "keymgmt/key/rsa", "type=rsa-2048"))
    refused = km(environ, "write", f"keymgmt/kms/{KMS}/key/rsa", "purpose=sign,verify", "rotation_mode=on-demand")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("Error") and "needs an aes256-gcm96 key" in refused.stderr
    assert read_json(environ, f"keymgmt/kms/{KMS}/key/rsa") is None


def _cases() -> list[Any]:
    cases = []
    seen: dict[str, int] = {}
    for command, log in EXPECTED_LOGS.items():
        for index, op in enumerate(log):
            occurrence = seen[op] = seen.get(op, -1) + 1
            kind = FAILS[(occurrence + len(op)) % len(FAILS)]
            for mode in (kind, *KILLS, "lost-response"):
                cases.append(pytest.param(command, index, mode, id=f"{command}-{index + 1}-{op}-{mode}"))
    return cases


@pytest.mark.parametrize(("command", "index", "mode"), _cases())
def test_fault_at_position(kms: Any, conductor: Conductor, clean: Any, tmp_path: Path,
                           command: str, index: int, mode: str) -> None:
    log, shape = clean(command)
    op = log[index]
    n = log[: index + 1].count(op)
    kms.reset()
    environ = _setup(command, tmp_path / "state", kms.endpoint_url)
    returncode, out, err = conductor.run(kms, mode, op, n, list(COMMANDS[command]), environ)
    assert "Traceback" not in err, err
    if mode in FAILS:
        assert returncode == 2, (returncode, out, err)
    elif mode.startswith("kill"):
        assert returncode == -9, (returncode, out, err)
    else:
        assert returncode in (0, 2), (returncode, out, err)
    if returncode != 0:
        rerun = km(environ, *COMMANDS[command])
        assert rerun.returncode == 0, (rerun.returncode, rerun.stdout, rerun.stderr)
        assert "Traceback" not in rerun.stderr
    assert end_state(kms.endpoint_url, environ) == shape
    print(json.dumps({"first_exit": returncode}))
