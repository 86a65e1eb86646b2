"""The route table (``paths.ROUTES``) and ``routing.match``: every route serves its paths and
nothing else, handlers take exactly the route's parameters, and unknown paths and verbs fail the
same way everywhere."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

from keymgmt_cli.engine.fields import Field
from keymgmt_cli.engine.paths import ROUTES
from keymgmt_cli.engine.routing import OPERATIONS, Request, Route, Operation, match
from keymgmt_cli.errors import InvalidRequest, UnsupportedOperation, UnsupportedPath

# One concrete path per route: the table must have exactly these rows.
SAMPLES = {
    "key": ("key", {}),
    "key/(?P<name>[^/]+)": ("key/k1", {"name": "k1"}),
    "key/(?P<name>[^/]+)/rotate": ("key/k1/rotate", {"name": "k1"}),
    "key/(?P<name>[^/]+)/kms": ("key/k1/kms", {"name": "k1"}),
    "kms": ("kms", {}),
    "kms/(?P<name>[^/]+)": ("kms/aws1", {"name": "aws1"}),
    "kms/(?P<name>[^/]+)/key": ("kms/aws1/key", {"name": "aws1"}),
    "kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)": ("kms/aws1/key/k1", {"name": "aws1", "key_name": "k1"}),
    "kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)/renew":
        ("kms/aws1/key/k1/renew", {"name": "aws1", "key_name": "k1"}),
    "kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)/suspend":
        ("kms/aws1/key/k1/suspend", {"name": "aws1", "key_name": "k1"}),
    "kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)/resume":
        ("kms/aws1/key/k1/resume", {"name": "aws1", "key_name": "k1"}),
    "kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)/replicate":
        ("kms/aws1/key/k1/replicate", {"name": "aws1", "key_name": "k1"}),
}


def test_the_table_has_the_documented_rows():
    assert [route.pattern for route in ROUTES] == list(SAMPLES)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.pattern)
def test_every_route_matches_its_path_for_each_of_its_operations(route):
    path, params = SAMPLES[route.pattern]
    for operation, op in route.operations.items():
        found, found_op, found_params = match(ROUTES, path, operation, "keymgmt/")
        assert found is route and found_op is op
        assert found_params == params


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.pattern)
def test_handlers_take_exactly_the_route_parameters(route):
    groups = sorted(re.compile(route.pattern).groupindex)
    for operation, op in route.operations.items():
        assert operation in OPERATIONS
        handler = op.handler
        assert callable(handler)
        names = list(inspect.signature(handler).parameters)
        assert names[:3] == ["engine", "mount", "values"], (route.pattern, operation)
        assert sorted(names[3:]) == groups, (route.pattern, operation)
        assert all(isinstance(f, Field) and f.name == name for name, f in op.fields.items())


def test_operations_with_a_schema_are_the_writes_and_the_removal():
    with_fields = {(route.pattern, operation) for route in ROUTES for operation, op in route.operations.items()
                   if op.fields}
    assert with_fields == {("key/(?P<name>[^/]+)", "write"), ("kms/(?P<name>[^/]+)", "write"),
                           ("kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)", "write"),
                           ("kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)", "delete"),
                           ("kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)/renew", "write")}


@pytest.mark.parametrize("path", [
    "key/k1\n",            # a name segment would swallow the newline; names match fully
    "key/k1/rotate\n",     # "$" would match before a final newline; the table anchors with \Z
    "kms/aws1/key/k1\n",
    "kms/aws1/key\n",
    "key/k1/extra",         # one segment too many
    "key/k1/rotate/now",
    "kms/aws1/key/k1/replicate/x",
    "key/k1/",              # an empty last segment
    "key//rotate",          # an empty name
    "kms//key",
    "keys",                 # a near name
    "xkey/k1",
    "KEY/k1",               # paths are case-sensitive, as Vault's
    "",
    "sys/mounts",
])
def test_near_misses_are_unsupported_paths(path):
    with pytest.raises(UnsupportedPath) as caught:
        match(ROUTES, path, "read", "team/")
    assert str(caught.value) == f"unsupported path: team/{path}"
    assert caught.value.hint == "run 'keymgmt path-help team/' to see the paths of this mount"


@pytest.mark.parametrize("path,operation,allowed", [
    ("key", "read", "list"),
    ("key/k1", "list", "write, read, delete"),
    ("key/k1/rotate", "read", "write, delete"),
    ("kms/aws1/key/k1/replicate", "delete", "write"),
    ("kms/aws1/key", "write", "list"),
])
def test_a_verb_the_path_lacks_names_the_ones_it_has(path, operation, allowed):
    with pytest.raises(UnsupportedOperation) as caught:
        match(ROUTES, path, operation, "keymgmt/")
    assert str(caught.value) == \
        f"unsupported operation: {operation} on keymgmt/{path} (this path supports: {allowed})"


def test_first_matching_row_wins_and_its_groups_become_parameters():
    routes = [Route("a/(?P<x>[^/]+)", "first", {"read": Operation((lambda: sys, "getrecursionlimit"), "one")}),
              Route("a/(?P<y>.+)", "second", {"read": Operation((lambda: sys, "getdefaultencoding"), "two")})]
    route, op, params = match(routes, "a/b", "read", "m/")
    assert (route.synopsis, params) == ("first", {"x": "b"})
    route, _, params = match(routes, "a/b/c", "read", "m/")
    assert (route.synopsis, params) == ("second", {"y": "b/c"})
    assert op.fields == {}


def test_request_and_response_defaults_are_not_shared():
    one, two = Request("read", "keymgmt/key"), Request("read", "keymgmt/key")
    one.data["x"] = "1"
    assert two.data == {}
    from keymgmt_cli.engine.routing import Response

    a, b = Response(), Response()
    a.warnings.append("w")
    assert b.warnings == [] and a.data is None


def test_the_engine_refuses_an_unknown_operation_before_touching_the_store(engine):
    with pytest.raises(InvalidRequest, match="unknown operation 'patch'"):
        engine.handle(Request("patch", "keymgmt/key/k1", {"type": "aes256-gcm96"}))
    assert engine.store.list("ns/default/keys") == [] and engine.store.get("state") is None


def test_a_write_to_a_path_ending_in_a_newline_after_a_fixed_segment_changes_nothing(engine):
    with pytest.raises(UnsupportedPath, match=r"unsupported path: keymgmt/key/k1/rotate\n"):
        engine.handle(Request("write", "keymgmt/key/k1/rotate\n", {}))
    assert engine.store.get("state") is None


def test_a_write_to_a_key_name_ending_in_a_newline_changes_nothing(engine):
    # today: the key "k1\n" is created (state and ns/default/keys/k1\n written); its alias would
    # be alias/hashicorp/k1\n-<ts>, which AWS refuses only at distribution time
    with pytest.raises((UnsupportedPath, InvalidRequest)):
        engine.handle(Request("write", "keymgmt/key/k1\n", {"type": "aes256-gcm96"}))
    assert engine.store.get("state") is None


def test_loading_the_route_table_imports_no_handler():
    code = ("import sys; import keymgmt_cli.engine.paths as p; "
            "from keymgmt_cli.engine.routing import match; "
            "match(p.ROUTES, 'key/k', 'read', 'keymgmt/'); "
            "print(sorted(m for m in sys.modules if m.startswith('keymgmt_cli.engine.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out)
    assert "keymgmt_cli.engine.paths" in loaded
    for handler_module in ("keys", "kmsproviders", "distribution", "reconcile", "schemas", "fields"):
        assert f"keymgmt_cli.engine.{handler_module}" not in loaded


# -- segment matching (no re on the read path) agrees with the regex of every row ------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from keymgmt_cli.engine.routing import segments_of  # noqa: E402

_PIECES = st.sampled_from(["key", "kms", "rotate", "renew", "suspend", "resume", "replicate", "k1", "aws1",
                           "", "Key", "key ", "keys", "\n", "k\n", "é", "\udc80", "*", ".", "..", "a/b"])
_PATHS = st.one_of(st.lists(_PIECES, max_size=7).map("/".join), st.text(max_size=30))


@given(_PATHS)
def test_every_row_is_matched_without_its_regex_and_as_its_regex_matches(path):
    for route in ROUTES:
        assert segments_of(route.pattern) is not None, route.pattern  # the read path compiles no regex
        found = route.regex().match(path)
        assert route.match(path) == (found.groupdict() if found else None), (route.pattern, path)


@pytest.mark.parametrize("pattern", ["a/(?P<y>.+)", "a/(?P<x>[^/]+)/(?P<x>[^/]+)", "a|b", "a/[bc]", "a.b",
                                     "(?P<x>[^/]+)x", "", "a//b", "a/(?P<1x>[^/]+)"])
def test_other_patterns_are_left_to_their_regex(pattern):
    assert segments_of(pattern) is None


@given(_PATHS)
def test_a_pattern_left_to_its_regex_still_matches_as_the_regex_does(path):
    route = Route("key/(?P<y>.+)", "any tail", {})
    found = route.regex().match(path)
    assert route.match(path) == (found.groupdict() if found else None)


def test_matching_a_path_of_the_table_imports_no_re():
    code = ("import sys; import keymgmt_cli.engine.paths as p; "
            "from keymgmt_cli.engine.routing import match; "
            "match(p.ROUTES, 'kms/a/key/k/renew', 'write', 'keymgmt/'); print('re' in sys.modules)")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])}).stdout
    assert out.strip() == "False"
