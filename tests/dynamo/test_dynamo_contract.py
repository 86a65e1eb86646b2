"""The store contract test of tests/store, unchanged, against DynamoStore on moto's in-process DynamoDB."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
import test_store_contract as contract  # noqa: E402

from dynamo_support import REGION, aws_test_credentials  # noqa: E402

moto = pytest.importorskip("moto")

pytestmark = pytest.mark.emulator


@pytest.fixture
def store(monkeypatch, tmp_path):
    from keymgmt_cli.store.dynamostore import DynamoStore

    aws_test_credentials(monkeypatch)
    with moto.mock_aws():
        s = DynamoStore("keymgmt-contract", REGION, home=tmp_path / "home")
        s.ensure_table()
        yield s


# Every contract test, collected here with the DynamoDB ``store`` fixture above.
for _name, _test in vars(contract).items():
    if _name.startswith("test_") and callable(_test):
        globals()[_name] = _test
