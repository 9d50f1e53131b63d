"""jsontext: orjson's speed, with the standard library's results wherever the two differ."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rintik_lite import jsontext

# Every JSON value Python's json reads back equal: finite floats, any integer (beyond
# 64 bits too), any text (lone surrogates too), nested.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
@example(-(2**63) - 1)  # 19 digits: orjson alone reads -9.223372036854776e+18
@example(-(10**19) + 1)
@example(-(2**63))
@example(2**64 - 1)
@example(2**64)
def test_reads_what_json_reads(value: object) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        raw = text.encode("utf-8", "surrogatepass")
        expected = json.loads(text)
        for read in (jsontext.loads(text), jsontext.loads(raw)):
            assert read == expected
            assert repr(read) == repr(expected)  # an int stays an int, not an equal float


@given(values)
def test_writes_what_reads_back_equal_and_sorted(value: object) -> None:
    text = jsontext.dumps(value)
    assert json.loads(text) == value
    assert jsontext.loads(text) == value
    # sorted keys, compact: equal values give equal text
    assert json.loads(text) == json.loads(json.dumps(value, sort_keys=True))
    if isinstance(value, dict):
        assert list(json.loads(text)) == sorted(value)


def test_long_integers_keep_every_digit() -> None:
    # orjson alone reads this as a float: 123456789012345678901234 -> 1.2345678901234568e+23
    text = '{"size": 123456789012345678901234, "n": -98765432109876543210}'
    doc = jsontext.loads(text)
    assert doc == {"size": 123456789012345678901234, "n": -98765432109876543210}
    assert isinstance(doc["size"], int)
    assert jsontext.dumps(doc) == '{"n":-98765432109876543210,"size":123456789012345678901234}'


@pytest.mark.parametrize("text", ["[NaN]", '{"a": Infinity}', "-Infinity"])
def test_nan_and_infinity_are_not_json(text: str) -> None:
    with pytest.raises(ValueError, match="is not a JSON value"):
        jsontext.loads(text)


@pytest.mark.parametrize("text", ["{", "", "[1,]", "{'a': 1}", '{"a": 1} x'])
def test_malformed_text_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        jsontext.loads(text)


def test_invalid_utf8_raises_unicode_error() -> None:
    with pytest.raises(UnicodeDecodeError):
        jsontext.loads(b'{"a": "\xff"}')


def test_text_beyond_ascii_and_lone_surrogates_round_trip() -> None:
    value = {"name": "vm-é-日本\u2028", "odd": "\ud800x"}
    text = jsontext.dumps(value)
    assert jsontext.loads(text) == value
    assert "\\ud800" in text  # escaped by the fallback, so every database can store it
    assert jsontext.dumps({"b": 1.5, "a": math.pi}) == json.dumps(
        {"b": 1.5, "a": math.pi}, sort_keys=True, separators=(",", ":")
    )
