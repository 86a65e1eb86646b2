"""`keymgmt due`: exit codes for cron and CI, the JSON that names each item, its deadline and fix,
and `-apply` (issue 13), through the CLI on the in-memory twins with one injected clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from keymgmt_cli.app import Env
from keymgmt_cli.cli.main import cli
from keymgmt_cli.engine.core import Engine
from keymgmt_cli.providers.memory import MemoryKms, MemoryKmsWorld
from keymgmt_cli.store.memory import MemoryStore

from twins import memory_secret_box

T0 = 1800000000


@pytest.fixture
def setup(cli_environ):
    world = MemoryKmsWorld(now=datetime.fromtimestamp(T0, timezone.utc))
    now = [float(T0)]
    engine = Engine(MemoryStore(), memory_secret_box(), lambda cfg: MemoryKms(cfg.region, world),
                    clock=lambda: now[0])

    def run(*args):
        return CliRunner().invoke(cli, list(args), obj=Env(dict(cli_environ), engine=engine),
                                  catch_exceptions=False)

    def advance(days):
        now[0] += days * 86400
        world.advance(days=days)

    assert run("write", "keymgmt/kms/aws1", "provider=awskms", "key_collection=us-west-1").exit_code == 0
    assert run("write", "keymgmt/key/k", "type=aes256-gcm96", "auto_rotate_period=60d").exit_code == 0
    assert run("write", "keymgmt/kms/aws1/key/k", "purpose=encrypt,decrypt", "valid_to=45d").exit_code == 0
    return run, advance


def test_nothing_due_exits_0(setup):
    run, _ = setup
    result = run("due")
    assert result.exit_code == 0 and result.output.strip() == "nothing is due"
    result = run("due", "-format=json")
    assert result.exit_code == 0 and json.loads(result.output)["data"] == {"items": [], "due": False}


def test_expiring_material_and_rotation_due_exit_2_with_deadlines_and_fixes(setup):
    run, advance = setup
    advance(35)  # expiry at day 45 and rotation at day 60 both fall within 30 days
    result = run("due", "-format=json", "-within=30d")
    assert result.exit_code == 2
    items = json.loads(result.output)["data"]["items"]
    assert [(i["kind"], i["path"]) for i in items] == [("expiring", "keymgmt/kms/aws1/key/k"),
                                                        ("rotation", "keymgmt/key/k")]
    expiry = datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=45)
    assert items[0]["deadline"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert items[0]["fix"] == "keymgmt write keymgmt/kms/aws1/key/k/renew valid_to=45d"
    assert items[1]["fix"] == "keymgmt write -f keymgmt/key/k/rotate" and items[1]["overdue"] is False
    assert run("due", "-within=5d").exit_code == 0  # nothing within five days
    table = run("due").output
    assert "EXPIRING" in table and "fix: keymgmt write keymgmt/kms/aws1/key/k/renew valid_to=45d" in table


def test_due_apply_renews_and_rotates_then_nothing_is_due(setup):
    run, advance = setup
    advance(61)  # material expired at day 45; rotation overdue since day 60
    result = run("due", "-apply", "-format=json", "-within=30d")
    assert result.exit_code == 0, result.output
    outcomes = {i["kind"]: i["outcome"] for i in json.loads(result.output)["data"]["items"]}
    assert outcomes == {"expired": "renewed", "rotation": "rotated"}
    assert run("due", "-within=30d").exit_code == 0
    data = json.loads(run("read", "-format=json", "keymgmt/key/k").output)["data"]
    assert data["latest_version"] == 2


def test_bad_within_is_a_usage_error(setup):
    run, _ = setup
    result = run("due", "-within=soon")
    assert result.exit_code == 1 and "-within" in result.output
