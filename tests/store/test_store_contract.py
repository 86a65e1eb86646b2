"""The store contract (tests/support/store_contract.py) on FileStore and its in-memory twin MemoryStore."""

import pytest

from keymgmt_cli.store.filestore import FileStore
from keymgmt_cli.store.memory import MemoryStore
from support.store_contract import StoreContract


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    if request.param == "file":
        return FileStore(tmp_path / "home")
    return MemoryStore()


class TestFileAndMemoryStores(StoreContract):
    pass
