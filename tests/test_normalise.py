from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from copier.casting import Kind, TargetType, map_declared_type, parse_pg_type
from copier.errors import ValueRejected
from copier.normalise import Options, convert_page, converter_for, timestamp_utc

UTC = UTC


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc, arg-type]


@pytest.mark.parametrize(("value", "expected"), [
    ("2021-03-04", utc(2021, 3, 4)),
    ("2021-03-04 05:06", utc(2021, 3, 4, 5, 6)),
    ("2021-03-04T05:06", utc(2021, 3, 4, 5, 6)),
    ("2021-03-04 05:06:07", utc(2021, 3, 4, 5, 6, 7)),
    ("2021-03-04T05:06:07.5", utc(2021, 3, 4, 5, 6, 7, 500000)),
    ("2021-03-04 05:06:07.123", utc(2021, 3, 4, 5, 6, 7, 123000)),
    ("2021-03-04 05:06:07.123456", utc(2021, 3, 4, 5, 6, 7, 123456)),
    ("2021-03-04 05:06:07Z", utc(2021, 3, 4, 5, 6, 7)),
    ("2021-03-04T05:06:07.25Z", utc(2021, 3, 4, 5, 6, 7, 250000)),
    ("2021-03-04 05:06:07+02:00", utc(2021, 3, 4, 3, 6, 7)),
    ("2021-03-04 05:06:07-05:30", utc(2021, 3, 4, 10, 36, 7)),
    (" 2021-03-04 05:06:07 ", utc(2021, 3, 4, 5, 6, 7)),
    (0, utc(1970, 1, 1)),
    (1_700_000_000, utc(2023, 11, 14, 22, 13, 20)),
    (1_700_000_000.25, utc(2023, 11, 14, 22, 13, 20, 250000)),
    (1_700_000_000_123, utc(2023, 11, 14, 22, 13, 20, 123000)),  # milliseconds
    (-86_400, utc(1969, 12, 31)),
    (2459215.5, utc(2021, 1, 1)),  # a Julian day, SQLite's REAL form
    (2440587.5, utc(1970, 1, 1)),
    (2459215.75, utc(2021, 1, 1, 6)),
])
def test_every_timestamp_form_becomes_utc(value: object, expected: datetime) -> None:
    assert timestamp_utc(value, UTC) == expected


@pytest.mark.parametrize("value", ["2024", "yesterday", "2021-13-01", "2021-02-30 00:00", "", b"\x00", 10**20,
                                   float("nan")])
def test_what_is_not_a_timestamp_is_rejected(value: object) -> None:
    with pytest.raises(ValueRejected):
        timestamp_utc(value, UTC)


def test_naive_text_is_read_in_the_source_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert timestamp_utc("2021-07-01 12:00", paris) == utc(2021, 7, 1, 10)
    assert timestamp_utc("2021-01-01 12:00", paris) == utc(2021, 1, 1, 11)
    # Aware text and Unix times ignore the source zone.
    assert timestamp_utc("2021-07-01 12:00Z", paris) == utc(2021, 7, 1, 12)
    assert timestamp_utc(0, paris) == utc(1970, 1, 1)


@pytest.mark.parametrize(("zone_name", "wall", "expected"), [
    # Written out from PostgreSQL 15: SET TIME ZONE zone; SELECT wall::timestamptz AT TIME ZONE 'UTC'.
    ("America/New_York", "2021-11-07 01:30", (2021, 11, 7, 6, 30)),  # twice: the later (EST)
    ("America/New_York", "2021-03-14 02:30", (2021, 3, 14, 7, 30)),  # never: the offset before the gap
    ("Europe/Berlin", "2021-10-31 02:30", (2021, 10, 31, 1, 30)),
    ("Europe/Berlin", "2021-03-28 02:30", (2021, 3, 28, 1, 30)),
    ("Australia/Sydney", "2021-04-04 02:30", (2021, 4, 3, 16, 30)),
    ("Australia/Sydney", "2021-10-03 02:30", (2021, 10, 2, 16, 30)),
])
def test_dst_edges_read_as_postgres_reads_them(zone_name: str, wall: str, expected: tuple[int, ...]) -> None:
    assert timestamp_utc(wall, ZoneInfo(zone_name)) == utc(*expected)
    converter = converter_for(map_declared_type("DATETIME"), Options(source_tz=zone_name))
    assert convert_page([(1, wall)], [converter], key_width=1).records == [(utc(*expected),)]


@pytest.mark.parametrize("text", ["2021-01-01Z", "2021-01-01+00:00", "2021-01-01+0000", "2021-01-01+00"])
def test_a_date_with_an_offset_keeps_its_offset(text: str) -> None:
    # Python's fromisoformat drops the offset of a date without a time; PostgreSQL does not.
    new_york = ZoneInfo("America/New_York")
    assert timestamp_utc(text, new_york) == utc(2021, 1, 1)
    converter = converter_for(map_declared_type("DATETIME"), Options(source_tz="America/New_York"))
    assert convert_page([(1, text)], [converter], key_width=1).records == [(utc(2021, 1, 1),)]


def test_dst_rule_nonexistent_takes_the_offset_before_the_gap() -> None:
    new_york = ZoneInfo("America/New_York")
    # 02:30 never happens on 2021-03-14: read with the offset before the gap (EST, -5).
    assert timestamp_utc("2021-03-14 02:30", new_york) == utc(2021, 3, 14, 7, 30)


def convert(declared_or_target: str | TargetType, value: object, **options: object) -> object:
    target = declared_or_target if isinstance(declared_or_target, TargetType) else map_declared_type(declared_or_target)
    return converter_for(target, Options(**options))(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("declared", "value", "expected"), [
    ("INTEGER", 5, 5),
    ("INTEGER", "12", 12),
    ("INTEGER", " 7 ", 7),
    ("INTEGER", "1e3", 1000),
    ("INTEGER", 3.0, 3),
    ("INTEGER", None, None),
    ("REAL", 1, 1.0),
    ("REAL", "2.5", 2.5),
    ("REAL", "NaN", "nan"),
    ("NUMERIC(10,2)", 0.99, Decimal("0.99")),
    ("NUMERIC(10,2)", "1.50", Decimal("1.50")),
    ("NUMERIC", 0.1, Decimal("0.1")),
    ("NUMERIC", 12, Decimal(12)),
    ("NUMERIC", "NaN", "nan"),
    ("TEXT", 12, "12"),
    ("TEXT", 1.5, "1.5"),
    ("TEXT", "héllo 𝄞", "héllo 𝄞"),
    ("TEXT", "caf\u00e9".encode(), "café"),
    ("BLOB", b"\x00\xff", b"\x00\xff"),
    ("BLOB", "abc", b"abc"),
    ("BOOLEAN", 1, True),
    ("BOOLEAN", 0, False),
    ("BOOLEAN", "Yes", True),
    ("BOOLEAN", "f", False),
    ("DATE", "2017-08-08", date(2017, 8, 8)),
    ("DATE", "2017-08-08 00:00:00", date(2017, 8, 8)),
    ("TIME", "10:11", time(10, 11)),
    ("JSON", '{"a": [1, 2]}', '{"a": [1, 2]}'),
    ("JSON", 3, "3"),
    ("UUID", "{12345678-1234-5678-1234-567812345678}", "12345678-1234-5678-1234-567812345678"),
])
def test_lossless_conversions_happen(declared: str, value: object, expected: object) -> None:
    result = convert(declared, value)
    if expected == "nan":
        assert str(result).lower() == "nan"
    else:
        assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("declared", "value", "reason"), [
    ("INTEGER", "abc", "not a number"),
    ("INTEGER", "", "not a number"),
    ("INTEGER", 3.5, "fraction"),
    ("INTEGER", float("inf"), "not finite"),
    ("INTEGER", b"1", "cannot be an integer"),
    ("REAL", 2**60 + 1, "lose digits"),
    ("NUMERIC(4,2)", 123, "out of range"),
    ("TEXT", "a\x00b", "NUL"),
    ("TEXT", b"\xff\xfe", "not valid UTF-8"),
    ("BLOB", 12, "not binary data"),
    ("BOOLEAN", 2, "boolean"),
    ("BOOLEAN", "maybe", "boolean"),
    ("DATE", "2017-08-08 10:00:00", "time of day"),
    ("JSON", "{bad", "json"),
    ("JSON", "NaN", "json"),
    ("UUID", "not-a-uuid", "uuid"),
])
def test_lossy_or_impossible_conversions_reject(declared: str, value: object, reason: str) -> None:
    with pytest.raises(ValueRejected, match=reason):
        convert(declared, value)


@pytest.mark.parametrize(("value", "expected"), [
    # PostgreSQL's own '1.005'::numeric(10,2) etc., written out: half away from zero.
    ("1.005", "1.01"), (1.005, "1.01"), (2.675, "2.68"), (1234.565, "1234.57"), (-0.125, "-0.13"), (0.124, "0.12"),
])
def test_numeric_rounds_to_the_declared_scale_as_postgres_does(value: object, expected: str) -> None:
    assert convert("NUMERIC(10,2)", value) == Decimal(expected)


def test_existing_schema_limits_are_enforced() -> None:
    with pytest.raises(ValueRejected, match="out of range"):
        convert(parse_pg_type("integer"), 2**31)
    assert convert(parse_pg_type("integer"), 2**31 - 1) == 2**31 - 1
    with pytest.raises(ValueRejected, match="longer than 3"):
        convert(parse_pg_type("character varying(3)"), "abcd")
    with pytest.raises(ValueRejected, match="not one of"):
        convert(parse_pg_type("mood", enum_labels=("sad", "ok")), "happy")
    assert convert(parse_pg_type("timestamp without time zone"), "2021-01-01 10:00+02:00") == datetime(
        2021, 1, 1, 8)


def test_strip_nul_removes_instead_of_rejecting() -> None:
    assert convert("TEXT", "a\x00b", strip_nul=True) == "ab"


def test_page_conversion_leaves_bad_rows_out_with_reasons() -> None:
    converters = [converter_for(map_declared_type(t), Options()) for t in ("INTEGER", "DATETIME")]
    rows = [(1, 10, "2021-01-01"), (2, "x", "2021-01-02"), (3, 30, "never")]
    page = convert_page(rows, converters, key_width=1)
    assert page.keys == [1]
    assert page.records == [(10, utc(2021, 1, 1))]
    assert [(r.key, r.column, r.value) for r in page.rejections] == [(2, 0, "x"), (3, 1, "never")]


def test_page_conversion_names_each_rows_first_bad_column_in_row_order() -> None:
    # Converted column by column (the bad values one by one): a row bad in two columns is
    # rejected for its first, a row's later values are not looked at, and the rejections
    # come in row order, not column order.
    converters = [converter_for(map_declared_type(t), Options()) for t in ("INTEGER", "DATETIME", "INTEGER")]
    rows = [(1, "x", "never", 7), (2, 20, "never", 8), (3, "y", "2021-01-03", "z"), (4, 40, "2021-01-04", 9)]
    page = convert_page(rows, converters, key_width=1)
    assert page.keys == [4]
    assert page.records == [(40, utc(2021, 1, 4), 9)]
    assert [(r.key, r.column, r.value) for r in page.rejections] == [(1, 0, "x"), (2, 1, "never"), (3, 0, "y")]


def test_page_of_ready_values_is_passed_through() -> None:
    converters = [converter_for(map_declared_type(t), Options()) for t in ("INTEGER", "TEXT")]
    page = convert_page([((1, 2), 5, "a"), ((1, 3), None, None)], converters, key_width=1)
    assert page.records == [(5, "a"), (None, None)]
    assert page.keys == [(1, 2), (1, 3)]
    assert page.rejections == []


def test_kinds_all_have_converters() -> None:
    # Each kind's converter takes a text it should accept (an enum's label, a time, ...).
    accepted = {Kind.BOOL: "t", Kind.INT2: "7", Kind.INT4: "7", Kind.INT8: "7", Kind.FLOAT4: "0.5",
                Kind.FLOAT8: "0.5", Kind.NUMERIC: "0.5", Kind.TEXT: "a", Kind.BYTEA: "a", Kind.DATE: "2021-03-04",
                Kind.TIME: "10:20", Kind.TIMESTAMPTZ: "2021-03-04 10:20", Kind.TIMESTAMP: "2021-03-04 10:20",
                Kind.JSON: "[1]", Kind.JSONB: "[1]", Kind.UUID: "12345678-1234-5678-1234-567812345678",
                Kind.ENUM: "a"}
    assert set(accepted) == set(Kind)
    for kind, text in accepted.items():
        assert converter_for(TargetType("x", kind, labels=("a",)), Options())(text) is not None, kind


# --- the column-at-once fast paths agree with the value-by-value converters ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
_common = {
    "DATETIME": st.one_of(
        _moments.map(lambda d: d.isoformat(sep=" ")),
        _moments.map(lambda d: d.isoformat()),
        _moments.map(lambda d: d.replace(tzinfo=UTC).isoformat()),
        _moments.map(lambda d: d.strftime("%Y-%m-%d %H:%M")),
        st.integers(min_value=-2_000_000_000, max_value=4_000_000_000),
    ),
    "DATE": _moments.map(lambda d: d.date().isoformat()),
    "NUMERIC(12,2)": st.one_of(st.integers(-10**9, 10**9).map(lambda c: c / 100), st.integers(-10**9, 10**9),
                               st.floats(-1e12, 1e12)),
    "NUMERIC": st.one_of(st.floats(allow_nan=False), st.integers()),
    "BOOLEAN": st.sampled_from([0, 1]),
    "VARCHAR": st.text(max_size=8),
}


_TARGETS = [(d, map_declared_type(d)) for d in sorted(_common) if d != "VARCHAR"] + [
    ("VARCHAR", parse_pg_type("character varying(6)")),
    ("DATETIME", parse_pg_type("timestamp without time zone")),
]


@pytest.mark.parametrize(("declared", "target"), _TARGETS, ids=[f"{d}->{t.sql}" for d, t in _TARGETS])
@pytest.mark.parametrize("zone_name", ["UTC", "America/New_York"])
def test_fast_path_equals_value_by_value(declared: str, target: TargetType, zone_name: str) -> None:
    converter = converter_for(target, Options(source_tz=zone_name))

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.one_of(st.none(), _common[declared]), min_size=1, max_size=40))
    def check(values: list[object]) -> None:
        page = convert_page([(i, v) for i, v in enumerate(values)], [converter], key_width=1)
        for key, value in enumerate(values):
            try:
                expected = converter(value)
            except ValueRejected:
                assert key in [r.key for r in page.rejections]
                continue
            got = page.records[page.keys.index(key)][0]
            assert got == expected and type(got) is type(expected), (value, got, expected)

    check()


def test_float4_takes_what_rounds_into_its_range_and_rejects_the_rest() -> None:
    real = converter_for(TargetType("real", Kind.FLOAT4), Options())
    assert real(0.5) == 0.5
    assert real(3.4028234663852886e38) == 3.4028234663852886e38  # float4's largest
    with pytest.raises(ValueRejected, match="out of range for float4"):
        real(1e300)
    with pytest.raises(ValueRejected, match="out of range for float4"):
        real(3.5e38)


def test_a_json_document_nested_past_the_recursion_limit_is_rejected_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    convert = converter_for(parse_pg_type("jsonb"), Options())
    with pytest.raises(ValueRejected, match="nested too deeply to check"):
        convert(deep)
    assert convert("[[1]]") == "[[1]]"
