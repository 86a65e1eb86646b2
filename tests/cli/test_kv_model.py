"""The DATA grammar against a small model of go-secure-stdlib's kv-builder (kv-builder/builder.go),
written from its source: Builder.add and Builder.addReader, with mapstructure.WeakDecode's lifting
of a repeated key into a list. Hypothesis draws argument lists (literals, empty arguments, \\@,
k=-, -, @file, k=@file) and compares parse_data with the model, errors included.

Deliberate differences, modelled as refusals: a JSON ``null`` from - or @file (Go would reset the
whole map), input over 4 MiB, and input that is not UTF-8.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from keymgmt_cli.cli.kv import parse_data
from keymgmt_cli.errors import UsageError

FAIL = object()


def model(args: list[str], stdin: str | None, files: dict[str, str]) -> object:
    """builder.go, line by line; FAIL where Add returns an error."""
    result: dict = {}
    used = False

    def read_file(path: str) -> str | None:
        return files.get(path)

    def add_reader(text: str) -> bool:
        # json.NewDecoder(r).UseNumber().Decode(&b.result): the first value, into the existing map
        try:
            value, _ = json.JSONDecoder(parse_int=str, parse_float=str).raw_decode(text.lstrip(" \t\r\n"))
        except ValueError:
            return False
        if not isinstance(value, dict):
            return False  # "cannot unmarshal ... into map" (and null: a deliberate refusal)
        result.update(value)
        return True

    for raw in args:
        if raw == "":
            continue
        parts = raw.split("=", 1)
        if len(parts) == 1:
            if raw == "-":
                if stdin is None or used:
                    return FAIL
                used = True
                if not add_reader(stdin):
                    return FAIL
                continue
            if raw[0] == "@":
                text = read_file(raw[1:])
                if text is None or not add_reader(text):
                    return FAIL
                continue
            return FAIL  # "format must be key=value"
        key, value = parts
        if value:
            if value[0] == "@":
                text = read_file(value[1:])
                if text is None:
                    return FAIL
                value = text
            elif len(value) >= 2 and value[0] == "\\" and value[1] == "@":
                value = value[1:]
            elif value == "-":
                if stdin is None or used:
                    return FAIL
                used = True
                value = stdin
        if key in result:
            existing = result[key]
            # mapstructure.WeakDecode(existing, &[]interface{}): a slice is copied, nil is an
            # empty slice, anything else is lifted into a one-element slice
            lifted = list(existing) if isinstance(existing, list) else [] if existing is None else [existing]
            result[key] = lifted + [value]
        else:
            result[key] = value
    return result


text = st.text(alphabet=st.sampled_from("ab=@\\-, {}\"\n:1"), max_size=8)
json_doc = st.one_of(
    st.dictionaries(st.sampled_from(["a", "b", "type", ""]),
                    st.one_of(st.text(max_size=4), st.integers(-5, 5), st.booleans(), st.none(),
                              st.lists(st.text(max_size=2), max_size=2)), max_size=3).map(json.dumps),
    st.sampled_from(["[1]", "null", "{bad", "  {\"a\": 1} trailing", "\"s\"", "{}"]))


@st.composite
def case(draw):
    names = ["f1", "f2"]
    file_texts = {name: draw(st.one_of(json_doc, text)) for name in names}
    keys = st.sampled_from(["a", "b", "type", "", "a=b"])
    item = st.one_of(
        st.builds(lambda k, v: f"{k}={v}", keys, text),
        st.just(""), st.just("-"), st.builds(lambda k: f"{k}=-", keys),
        st.builds(lambda k, v: f"{k}=\\@{v}", keys, text),
        st.builds(lambda n: f"@{n}", st.sampled_from(names + ["missing"])),
        st.builds(lambda k, n: f"{k}=@{n}", keys, st.sampled_from(names + ["missing"])),
        text)
    args = draw(st.lists(item, max_size=6))
    stdin = draw(st.one_of(st.none(), json_doc, text))
    return args, stdin, file_texts


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "200")), deadline=None,
          derandomize=bool(os.environ.get("CI")))
@given(case())
def test_parse_data_is_kv_builder(tmp_path_factory, drawn):
    args, stdin, file_texts = drawn
    root = Path(tmp_path_factory.getbasetemp()) / "kvmodel"
    root.mkdir(exist_ok=True)
    for name, content in file_texts.items():
        (root / name).write_text(content)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        expected = model(args, stdin, file_texts)
        try:
            got = parse_data(args, io.BytesIO(stdin.encode()) if stdin is not None else None)
        except UsageError as error:
            assert expected is FAIL, (args, stdin, str(error))
            assert "\n" not in str(error)
            return
    finally:
        os.chdir(cwd)
    assert expected is not FAIL, (args, stdin, got)
    assert json.loads(json.dumps(got)) == expected, (args, stdin)


def test_the_model_disagrees_with_a_wrong_grammar():
    """The comparison can fail: stripping stdin's newline (the old behaviour) is caught."""
    assert model(["a=-"], "v\n", {}) == {"a": "v\n"} != {"a": "v"}
    assert model(["x=1", "-"], '{"x": "2"}', {}) == {"x": "2"}
    assert model(["-", "x=1"], '{"x": "2"}', {}) == {"x": ["2", "1"]}
