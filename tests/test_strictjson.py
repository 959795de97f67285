"""Strict JSON at trust boundaries: one reading of every accepted text, a clear refusal otherwise."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capkit import strictjson

values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


@given(values)
def test_whatever_json_writes_is_read_back_the_same(value):
    text = json.dumps(value)
    assert strictjson.loads(text) == value
    assert strictjson.loads(text.encode()) == value
    assert strictjson.loads(f"  {text}\n") == value


@pytest.mark.parametrize("text, why", [
    ('{"a": 1, "a": 2}', "duplicate key"),
    ('{"x": {"a": 1, "a": 1}}', "duplicate key"),
    ("NaN", "NaN is not a JSON number"),
    ('[Infinity]', "Infinity is not a JSON number"),
    ('{"a": -Infinity}', "-Infinity is not a JSON number"),
    ("{} {}", "data follows the value"),
    ("", "not valid JSON"),
    ("{'a': 1}", "not valid JSON"),
    (b"\xff", "not valid JSON"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
])
def test_ambiguous_or_invalid_text_is_refused(text, why):
    with pytest.raises(strictjson.StrictJSONError, match=why):
        strictjson.loads(text)
