"""Near-miss field names are refused (issue 16 item 10): on every path with fields, a one-typo
variant of each field (a transposition, a dropped letter, a doubled letter) is refused before the
handler runs, naming the field meant; a name near nothing keeps Vault's warning."""

from __future__ import annotations

import pytest

from keymgmt_cli.engine.fields import edit_distance, near_miss
from keymgmt_cli.engine.paths import ROUTES
from keymgmt_cli.engine.routing import Request
from keymgmt_cli.errors import InvalidRequest


def typos(name: str) -> list[str]:
    """A transposition, a dropped letter and a doubled letter of ``name``."""
    i = next(i for i in range(len(name) - 1) if name[i] != name[i + 1])
    return [name[:i] + name[i + 1] + name[i] + name[i + 2:], name[:-1], name + name[-1]]


CASES = [(route.pattern, operation, field)
         for route in ROUTES for operation, op in route.operations.items() for field in op.fields]


def concrete(pattern: str) -> str:
    return "keymgmt/" + pattern.replace("(?P<name>[^/]+)", "aws1").replace("(?P<key_name>[^/]+)", "k")


def test_every_path_with_fields_is_covered():
    patterns = {pattern for pattern, _, _ in CASES}
    assert {"key/(?P<name>[^/]+)", "kms/(?P<name>[^/]+)", "kms/(?P<name>[^/]+)/key/(?P<key_name>[^/]+)"} <= patterns
    assert len(CASES) >= 12


@pytest.mark.parametrize("pattern,operation,field", CASES)
def test_a_near_miss_is_refused_and_changes_nothing(engine, pattern, operation, field):
    known = set(next(r for r in ROUTES if r.pattern == pattern).operations[operation].fields)
    for typo in typos(field):
        if typo in known:
            continue
        with pytest.raises(InvalidRequest) as caught:
            engine.handle(Request(operation, concrete(pattern), {typo: "1"}))
        assert str(caught.value) == f"unknown field {typo!r}: did you mean \"{field}\"?"
        assert engine.store._docs == {}  # nothing created, not even the state


def test_a_far_unknown_field_keeps_vaults_warning(engine):
    response = engine.handle(Request("write", "keymgmt/key/k", {"type": "aes256-gcm96", "colour": "red"}))
    assert response.warnings == ["Endpoint ignored these unrecognized parameters: [colour]"]


def test_the_issue_example(engine):
    with pytest.raises(InvalidRequest, match='did you mean "type"'):
        engine.handle(Request("write", "keymgmt/key/k", {"tpye": "aes256-gcm96"}))
    assert engine.store._docs == {}


@pytest.mark.parametrize("a,b,distance", [
    ("tpye", "type", 1), ("type", "type", 0), ("typ", "type", 1), ("tyype", "type", 1),
    ("purpsoe", "purpose", 1), ("ca", "abc", 3), ("", "abc", 3), ("kitten", "sitting", 3),
])
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance == edit_distance(b, a)


def test_near_miss_rules():
    assert near_miss("TPYE", ["type"]) == "type"  # case and - / _ do not count
    assert near_miss("deletion-allowed", ["deletion_allowed"]) == "deletion_allowed"
    assert near_miss("min_enabled_verison", ["min_enabled_version"]) == "min_enabled_version"
    assert near_miss("tyep2", ["type"]) is None  # two edits on a short name: not a near miss
    assert near_miss("ab", ["ac", "ad"]) is None  # equally near two names: no guess
    assert near_miss("colour", ["type", "purpose"]) is None
