"""Never half-done, for ``keymgmt verify -fix`` (issue 16 item 2): a fault at every AWS call
position of a repair, up to its last write.

The drift, made with boto3 behind keymgmt's back in a 2-version aes256-gcm96 distribution: version
1's material deleted, version 2 disabled and its ``keymgmt:version`` tag removed, the alias
repointed to version 1. A clean ``verify -fix`` re-imports, enables, re-tags and repoints; its call
log (reads included: every decision is made from a fresh read) gives the positions. At each one,
in a fresh local KMS and state: ``kill-before``, ``kill-after`` (AWS executed it, keymgmt never
heard), and one of error/throttle/drop (every request fails from there until keymgmt gives up:
exit 2, one error line). Then ``verify -fix`` again must exit 0, and the end state must equal the
clean run's, with no orphan (``fault_harness.end_state``) and ``verify`` in sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from fault_harness import KMS, REGION, cli_environ, end_state, fresh_kms, km, ok, provider_args, read_json
from keymgmt_cli.audit.calls import MUTATING
from keymgmt_cli.cli.main import Env, cli
from test_fault_positions import FAILS, Conductor

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

KEY = "fx"
FIX = ["verify", "-fix", f"keymgmt/kms/{KMS}/key/{KEY}"]
EXPECTED_WRITES = ["GetParametersForImport", "ImportKeyMaterial", "EnableKey", "TagResource", "UpdateAlias"]


@pytest.fixture(scope="module")
def conductor() -> Conductor:
    return Conductor()


@pytest.fixture(scope="module")
def kms(conductor: Conductor) -> Any:
    with fresh_kms(observer=conductor) as server:
        yield server


def _setup(home: Path, endpoint: str) -> dict[str, str]:
    environ = cli_environ(home)
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, list(args), obj=Env(environ))
        assert result.exit_code == 0, (args, result.output, result.exception)

    run(*provider_args(endpoint))
    run("write", f"keymgmt/key/{KEY}", "type=aes256-gcm96")
    run("write", "-f", f"keymgmt/key/{KEY}/rotate")
    run("write", f"keymgmt/kms/{KMS}/key/{KEY}", "purpose=encrypt,decrypt", "wrapping_key_spec=RSA_2048")
    dist = read_json(environ, f"keymgmt/kms/{KMS}/key/{KEY}")
    v1, v2 = dist["versions"]["1"], dist["versions"]["2"]
    client = boto3.client("kms", region_name=REGION, endpoint_url=endpoint, aws_access_key_id="hand",
                          aws_secret_access_key="hand")
    client.delete_imported_key_material(KeyId=v1)
    client.disable_key(KeyId=v2)
    client.untag_resource(KeyId=v2, TagKeys=["keymgmt:version"])
    client.update_alias(AliasName=f"alias/hashicorp/{dist['name']}", TargetKeyId=v1)
    return environ


@pytest.fixture(scope="module")
def clean(kms: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    kms.reset()
    environ = _setup(tmp_path_factory.mktemp("clean-fix"), kms.endpoint_url)
    kms.observer.reset()
    ok(km(environ, *FIX))
    log = kms.observer.ops()
    shape = end_state(kms.endpoint_url, environ, KEY)
    ok(km(environ, "verify"))
    return log, shape


def test_clean_fix_makes_the_expected_writes(clean: Any) -> None:
    log, _shape = clean
    assert [op for op in log if op in MUTATING or op == "GetParametersForImport"] == EXPECTED_WRITES


# The clean log (test_clean_fix_makes_the_expected_writes checks its writes; the reads around them
# are the decisions): v1 DescribeKey GetParametersForImport ImportKeyMaterial ListResourceTags,
# v2 DescribeKey EnableKey ListResourceTags TagResource, then ListAliases UpdateAlias (index 9);
# what follows is the final verify, which changes nothing.
_LAST_WRITE = 9


def _cases() -> list[Any]:
    cases = []
    for index in range(_LAST_WRITE + 1):
        for mode in (FAILS[index % len(FAILS)], "kill-before", "kill-after"):
            cases.append(pytest.param(index, mode, id=f"{index + 1}-{mode}"))
    return cases


@pytest.mark.parametrize(("index", "mode"), _cases())
def test_fault_during_fix(kms: Any, conductor: Conductor, clean: Any, tmp_path: Path, index: int, mode: str) -> None:
    log, shape = clean
    assert log[_LAST_WRITE] == "UpdateAlias", log
    op = log[index]
    n = log[: index + 1].count(op)
    kms.reset()
    environ = _setup(tmp_path / "state", kms.endpoint_url)
    returncode, out, err = conductor.run(kms, mode, op, n, list(FIX), environ)
    assert "Traceback" not in err, err
    if mode in FAILS:
        assert returncode == 2, (returncode, out, err)
        assert "Error" in err or "NOT FIXED" in out, (out, err)
    else:
        assert returncode == -9, (returncode, out, err)
    rerun = km(environ, *FIX)
    assert rerun.returncode == 0, (rerun.returncode, rerun.stdout, rerun.stderr)
    assert end_state(kms.endpoint_url, environ, KEY) == shape
    ok(km(environ, "verify"))
