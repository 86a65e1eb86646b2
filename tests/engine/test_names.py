"""Name rules (engine/names.py): the character-set checks accept exactly what the regexes they
replaced accepted with fullmatch, so no name valid before is refused now, and none refused before
is accepted."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt_cli.engine import names
from keymgmt_cli.errors import InvalidRequest

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")
MOUNT_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

_chars = st.one_of(st.sampled_from(list("aZ09_-./ \n\t\x00éßİ٣")), st.characters())
_texts = st.one_of(st.text(_chars, max_size=12), st.text(st.sampled_from("ab_-."), min_size=60, max_size=210))


def _accepts(check, text):
    try:
        check(text)
        return True
    except InvalidRequest:
        return False


@given(_texts)
def test_check_name_accepts_what_the_name_regex_fullmatches(text):
    assert _accepts(lambda t: names.check_name("key", t), text) == bool(NAME_RE.fullmatch(text))


@given(st.lists(_texts, max_size=4).map("/".join))
def test_mount_paths_accept_what_the_segment_regex_fullmatches(path):
    stripped = path.strip("/")
    segments = stripped.split("/") if stripped else []
    want = (bool(segments) and all(MOUNT_SEGMENT_RE.fullmatch(s) and s not in (".", "..") for s in segments)
            and segments[0] not in ("sys", "auth", "cubbyhole", "identity"))
    assert _accepts(names.normalize_mount_path, path) == want


@pytest.mark.parametrize("name", ["k\n", "x" * 201, "", "é", "a b", "١"])
def test_names_the_regex_refused_are_refused(name):
    with pytest.raises(InvalidRequest):
        names.check_name("key", name)


def test_the_region_pattern_takes_aws_regions_whole():
    import re

    assert re.fullmatch(names.REGION_PATTERN, "us-gov-west-1") and not re.fullmatch(names.REGION_PATTERN, "us-west-1\n")
