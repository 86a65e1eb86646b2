"""The one contract every DocumentStore passes, as a base class: a test module for a backend
subclasses ``StoreContract`` and gives it a ``store`` fixture (tests/store: FileStore and
MemoryStore; tests/dynamo: DynamoStore; tests/custody: AuthStore around each)."""

import threading
import time

import pytest

from keymgmt_cli.errors import StoreError

BAD_IDS = ["", "/", "a//b", "/a", "a/", "..", "a/../b", "a/./b", "a b", "a\\b", "a\nb",
           "ä", "x" * 241, "a/b~", ".locks/x", ".hidden", "seal", "master.key", "seal/x"]


def _hold(store, name, entered, release):
    with store.lock(name):
        entered.set()
        release.wait(10)


class StoreContract:
    """Every test takes the backend under test as the ``store`` fixture of the subclass's module."""

    def test_describes_itself(self, store):
        assert store.backend in ("file", "memory", "dynamodb")
        assert isinstance(store.location, str) and store.location

    def test_missing_document_is_none(self, store):
        assert store.get("m1/keys/nope") is None
        assert store.get("nope") is None

    def test_put_get_round_trip(self, store):
        doc = {"name": "k1", "n": 3, "f": 1.5, "ok": True, "none": None,
               "versions": {"1": {"created": "2024-01-01T00:00:00Z"}}, "list": [1, "two", [3]],
               "unicode": "žluťoučký kůň ✓"}
        store.put("m1/keys/k1", doc)
        assert store.get("m1/keys/k1") == doc

    def test_put_keeps_key_order(self, store):
        store.put("m1/keys/k1", {"b": 1, "a": 2, "c": {"z": 1, "y": 2}})
        got = store.get("m1/keys/k1")
        assert list(got) == ["b", "a", "c"] and list(got["c"]) == ["z", "y"]

    def test_put_replaces(self, store):
        store.put("m1/keys/k1", {"v": 1, "old": True})
        store.put("m1/keys/k1", {"v": 2})
        assert store.get("m1/keys/k1") == {"v": 2}

    def test_list_names_direct_documents_sorted(self, store):
        for name in ["b", "a", "c-1", "A"]:
            store.put(f"m1/keys/{name}", {"name": name})
        store.put("m1/keys/a/versions/1", {"deeper": True})  # a collection below a document
        store.put("m1/kms/aws", {})
        store.put("m1", {"mount": True})
        assert store.list("m1/keys") == ["A", "a", "b", "c-1"]
        assert store.list("m1/keys/a/versions") == ["1"]
        assert store.list("m1/kms") == ["aws"]
        assert store.list("m1") == []  # only collections inside, no documents
        assert store.list("nothing/here") == []
        assert store.list("m1/keys/b") == []  # a document is not a collection

    def test_document_and_collection_of_the_same_name_coexist(self, store):
        store.put("m1/keys/a", {"doc": "a"})
        store.put("m1/keys/a/versions/1", {"v": 1})
        store.put("m1/keys/a.json", {"doc": "a.json"})
        store.put("m1/keys/a.json/sub", {"v": "sub"})
        assert store.get("m1/keys/a") == {"doc": "a"}
        assert store.get("m1/keys/a.json") == {"doc": "a.json"}
        assert store.get("m1/keys/a.json/sub") == {"v": "sub"}
        assert store.list("m1/keys") == ["a", "a.json"]
        assert store.list("m1/keys/a.json") == ["sub"]

    def test_delete(self, store):
        store.put("m1/keys/k1", {"v": 1})
        store.put("m1/keys/k2", {"v": 2})
        assert store.delete("m1/keys/k1") is True
        assert store.get("m1/keys/k1") is None
        assert store.delete("m1/keys/k1") is False
        assert store.delete("never/was") is False
        assert store.list("m1/keys") == ["k2"]

    def test_delete_collection_is_recursive_and_precise(self, store):
        store.put("m1", {"mount": True})
        store.put("m1/keys/k1", {})
        store.put("m1/keys/k1/versions/1", {})
        store.put("m1/kms/aws", {})
        store.put("m10/keys/k1", {})  # shares a string prefix, not a path prefix
        store.delete_collection("m1")
        assert store.get("m1") == {"mount": True}  # the document named like the collection stays
        assert store.get("m1/keys/k1") is None
        assert store.get("m1/keys/k1/versions/1") is None
        assert store.list("m1/keys") == [] and store.list("m1/kms") == []
        assert store.get("m10/keys/k1") == {}
        store.delete_collection("m1")  # absent: no error
        store.delete_collection("never/was")
        store.put("m1/keys/k2", {"again": True})  # usable afterwards
        assert store.list("m1/keys") == ["k2"]

    @pytest.mark.parametrize("bad", BAD_IDS)
    def test_invalid_ids_are_refused(self, store, bad):
        with pytest.raises(ValueError):
            store.get(bad)
        with pytest.raises(ValueError):
            store.put(bad, {})
        with pytest.raises(ValueError):
            store.delete(bad)
        with pytest.raises(ValueError):
            store.list(bad)
        with pytest.raises(ValueError):
            store.delete_collection(bad)

    def test_allowed_segment_characters(self, store):
        doc_id = "m1/keys/A-z_0.9:@%+-" + "x" * 200
        store.put(doc_id, {"ok": 1})
        assert store.get(doc_id) == {"ok": 1}
        assert store.list("m1/keys") == [doc_id.rsplit("/", 1)[1]]
        store.put("m1/.dot", {"inner dot segments are fine": True})
        assert store.get("m1/.dot")

    def test_documents_are_copied_in_and_out(self, store):
        doc = {"nested": {"list": [1, 2]}, "t": (1, 2)}
        store.put("m1/keys/k1", doc)
        doc["nested"]["list"].append(3)
        doc["new"] = 1
        got = store.get("m1/keys/k1")
        assert got == {"nested": {"list": [1, 2]}, "t": [1, 2]}  # tuples come back as lists
        got["nested"]["list"].append(99)
        assert store.get("m1/keys/k1")["nested"]["list"] == [1, 2]
        assert store.get("m1/keys/k1") is not store.get("m1/keys/k1")

    @pytest.mark.parametrize("bad_doc, exc", [
        ([1, 2], TypeError), ("text", TypeError), (None, TypeError),
        ({"x": object()}, TypeError), ({"x": b"bytes"}, TypeError), ({"x": float("nan")}, ValueError),
    ])
    def test_documents_json_cannot_hold_are_refused_and_change_nothing(self, store, bad_doc, exc):
        store.put("m1/keys/k1", {"v": 1})
        with pytest.raises(exc):
            store.put("m1/keys/k1", bad_doc)
        assert store.get("m1/keys/k1") == {"v": 1}

    # -- locks -------------------------------------------------------------------------------------

    def test_lock_excludes_another_thread_and_times_out_with_a_clear_error(self, store):
        entered, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold, args=(store, "m1/keys/k1", entered, release))
        holder.start()
        try:
            assert entered.wait(5)
            started = time.monotonic()
            with pytest.raises(StoreError) as err:
                with store.lock("m1/keys/k1", timeout=0.3):
                    pytest.fail("lock taken twice")
            assert 0.25 <= time.monotonic() - started < 3
            assert str(err.value).startswith(
                "state is locked by another keymgmt process (lock m1/keys/k1); retry or check")
            with store.lock("m1/keys/other", timeout=0.3):  # other names are independent
                pass
        finally:
            release.set()
            holder.join()
        with store.lock("m1/keys/k1", timeout=1):  # free again once the holder is done
            pass

    def test_waiter_gets_the_lock_when_it_is_released(self, store):
        entered, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold, args=(store, "L", entered, release))
        holder.start()
        assert entered.wait(5)
        threading.Timer(0.2, release.set).start()
        started = time.monotonic()
        with store.lock("L", timeout=5):
            waited = time.monotonic() - started
        holder.join()
        assert 0.15 <= waited < 4

    def test_lock_is_released_by_an_exception(self, store):
        with pytest.raises(RuntimeError):
            with store.lock("L"):
                raise RuntimeError("boom")
        with store.lock("L", timeout=0.5):
            pass

    def test_lock_is_not_reentrant(self, store):
        with store.lock("L"):
            with pytest.raises(StoreError, match="locked by another keymgmt process"):
                with store.lock("L", timeout=0.1):
                    pass

    def test_lock_zero_timeout_tries_once(self, store):
        with store.lock("L", timeout=0):
            with pytest.raises(StoreError):
                with store.lock("L", timeout=0):
                    pass

    def test_lock_names_with_any_characters(self, store):
        for name in ["m1/keys/k1", "with space", "ünï/cødé", "%2F", "/", "x" * 500, "x" * 499 + "y"]:
            with store.lock(name, timeout=1):
                pass
        with store.lock("a/b"):  # distinct names never share a lock
            with store.lock("a%2Fb", timeout=0):
                with store.lock("x" * 499 + "y", timeout=0):
                    with store.lock("x" * 500, timeout=0):
                        pass

    def test_read_modify_write_under_lock_loses_no_update_between_threads(self, store):
        store.put("m1/counter", {"n": 0})

        def work():
            for _ in range(30):
                with store.lock("counter", timeout=60):
                    doc = store.get("m1/counter")
                    doc["n"] += 1
                    store.put("m1/counter", doc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.get("m1/counter") == {"n": 180}
