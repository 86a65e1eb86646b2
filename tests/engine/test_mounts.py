"""mounts.py: the Mount record (its document ids and lock names) and the timestamp shape."""

from __future__ import annotations

import re
from datetime import datetime

from keymgmt_cli.engine.mounts import Mount, now_rfc3339


def test_documents_and_locks_are_named_by_the_uuid_not_the_path():
    mount = Mount("team/a/", "u1")
    assert mount.doc() == "ns/u1"
    assert mount.doc("keys", "k") == "ns/u1/keys/k"
    assert mount.doc("dist", "aws1", "k") == "ns/u1/dist/aws1/k"
    assert mount.lock("key", "k") == "u1.key.k"
    assert Mount("other/", "u1").doc("keys", "k") == mount.doc("keys", "k")  # a renamed mount keeps its data


def test_equality_is_path_and_uuid():
    assert Mount("a/", "u", "keymgmt", "one") == Mount("a/", "u", "other", "two")
    assert Mount("a/", "u") != Mount("a/", "v") and Mount("a/", "u") != Mount("b/", "u")
    assert Mount("a/", "u") != ("a/", "u")
    assert repr(Mount("a/", "u")) == "Mount('a/', 'u')"
    assert (Mount("a/", "u").type, Mount("a/", "u").description) == ("keymgmt", "")


def test_now_is_gos_rfc3339():
    stamp = now_rfc3339()
    # Go's RFC3339Nano: trailing zeros dropped, "Z" for UTC
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d)", stamp)
    assert datetime.fromisoformat(stamp).utcoffset() is not None
