"""A state document that parses but has the wrong shape: one line naming the document, exit 2 (as
Vault's CLI exits for any failed request), nothing acted upon (issue 9 item 8). Engine-level on the twins, and the CLI's read/list fast path
and a write as processes on a file state."""

from __future__ import annotations


import pytest

from keymgmt_cli.engine.routing import Request
from keymgmt_cli.engine.shapes import MalformedDocument


def w(engine, path, **data):
    return engine.handle(Request("write", path, data))


@pytest.fixture
def eng(twin_engine):
    w(twin_engine, "keymgmt/kms/aws1", provider="awskms", key_collection="us-west-1")
    w(twin_engine, "keymgmt/key/k", type="aes256-gcm96")
    w(twin_engine, "keymgmt/kms/aws1/key/k", purpose="encrypt,decrypt")
    return twin_engine


@pytest.mark.parametrize("doc_id, edit", [
    ("ns/default/keys/k", lambda d: d.pop("versions")),
    ("ns/default/keys/k", lambda d: d.update(latest_version="2")),
    ("ns/default/keys/k", lambda d: d.update(deletion_allowed="yes")),
    ("ns/default/keys/k", lambda d: d["versions"].update({"1": ["not", "an", "object"]})),
    ("ns/default/dist/aws1/k", lambda d: d.update(versions=[])),
    ("ns/default/dist/aws1/k", lambda d: d.pop("alias")),
    ("ns/default/kms/aws1", lambda d: d.update(key_collection=7)),
])
@pytest.mark.parametrize("request_args", [
    ("read", "keymgmt/key/k"), ("read", "keymgmt/kms/aws1/key/k"), ("write", "keymgmt/key/k/rotate"),
    ("delete", "keymgmt/kms/aws1/key/k"),
])
def test_a_malformed_document_is_named_and_nothing_is_done(eng, world, doc_id, edit, request_args):
    doc = eng.store.get(doc_id)
    edit(doc)
    eng.store.put(doc_id, doc)
    calls = list(world.calls)
    # which requests read which document
    touched = {"ns/default/keys/k": {"keymgmt/key/k", "keymgmt/key/k/rotate"},
               "ns/default/dist/aws1/k": {"keymgmt/kms/aws1/key/k", "keymgmt/key/k/rotate"},
               "ns/default/kms/aws1": {"keymgmt/kms/aws1/key/k", "keymgmt/key/k/rotate"}}[doc_id]
    if request_args[1] in touched:
        with pytest.raises(MalformedDocument) as caught:
            eng.handle(Request(*request_args, {}))
        assert str(caught.value).startswith(f"state document {doc_id} is malformed")
        assert world.calls == calls  # nothing acted upon in AWS
        assert eng.store.get(doc_id) == doc
    else:
        eng.handle(Request(*request_args, {}))


def test_a_malformed_state_document_is_named(eng):
    doc = eng.store.get("state")
    doc["mounts"] = {"keymgmt/": "default"}
    eng.store.put("state", doc)
    eng._state_doc = None
    with pytest.raises(MalformedDocument, match="state document state is malformed"):
        eng.handle(Request("read", "keymgmt/key/k", {}))


from support.cli import km as _cli  # noqa: E402


def test_fast_path_and_write_give_one_line_exit_2(cli_environ):
    """A malformed document that is still authentic (written through the store with the master key,
    as a buggy tool or a newer keymgmt would): the shape check names it. A hand edit never gets
    this far: the store's MAC refuses it first (tests/custody)."""
    from keymgmt_cli.store import open_store

    assert _cli(cli_environ, "write", "keymgmt/key/k", "type=aes256-gcm96").returncode == 0
    store = open_store(cli_environ)
    doc = store.get("ns/default/keys/k")
    doc["versions"] = "gone"
    store.put("ns/default/keys/k", doc)
    for args in (("read", "keymgmt/key/k"), ("read", "-format=json", "keymgmt/key/k"), ("list", "keymgmt/key"),
                 ("write", "-f", "keymgmt/key/k/rotate")):
        result = _cli(cli_environ, *args)
        if args[0] == "list":
            assert result.returncode == 0 and result.stdout.split()[-1] == "k"  # listing does not open the document
            continue
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (args, result.stderr)  # as Vault: a failed request exits 2
        assert "Traceback" not in result.stderr and "gone" not in result.stderr
        assert "state document ns/default/keys/k is malformed: field versions is missing or of the wrong type" \
            in lines[0]
