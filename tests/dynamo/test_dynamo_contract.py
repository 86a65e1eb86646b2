"""The store contract test of tests/store, unchanged, against DynamoStore on moto's in-process DynamoDB."""

from __future__ import annotations

import pytest

from dynamo_support import REGION, aws_test_credentials, serial_dynamodb_client
from support.store_contract import StoreContract

moto = pytest.importorskip("moto")

pytestmark = pytest.mark.emulator


@pytest.fixture
def store(monkeypatch, tmp_path):
    from keymgmt_cli.store.dynamostore import DynamoStore

    aws_test_credentials(monkeypatch)
    with moto.mock_aws():
        s = DynamoStore("keymgmt-contract", REGION, home=tmp_path / "home", client=serial_dynamodb_client())
        s.ensure_table()
        yield s


class TestDynamoStore(StoreContract):
    """Every contract test, with the DynamoDB ``store`` fixture above."""
