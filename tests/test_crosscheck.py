"""The text forms verify ships the source in: column at a time equals value by value."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from copier.crosscheck import text_form, text_forms

raw_values = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=8),
                       st.binary(max_size=8))


@given(st.one_of(st.lists(raw_values, min_size=1, max_size=30),
                 st.lists(st.one_of(st.none(), st.integers()), min_size=1, max_size=30),
                 st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=1, max_size=30)),
       st.booleans())
def test_column_at_a_time_equals_value_by_value(column: list[object], binary: bool) -> None:
    pairs = [text_form(value, binary=binary) for value in column]
    assert text_forms(column, binary=binary) == ([c for c, _v in pairs], [v for _c, v in pairs])


def test_text_forms_written_out() -> None:
    assert text_form(12) == ("i", "12")
    assert text_form(0.1) == ("r", "0.1")
    assert text_form("a\x00b") == ("t", "ab")
    assert text_form("a\x00b", binary=True) == ("b", "610062")
    assert text_form(b"\x00\xff") == ("b", "00ff")
    assert text_form(None) == (None, None)
