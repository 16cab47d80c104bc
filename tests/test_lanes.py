"""The columnar lane gives exactly what the exact lane gives: the same rows, the same values
(compared as PostgreSQL's own ::text of each), the same rejects. Each case loads one source
twice, with --lane exact and --lane columnar (auto, small tables included), into two
schemas of the same database."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import adbc_driver_sqlite
import aiosqlite
import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import copier
from copier import arrowlane, batching, columnar, source
from copier.lanes import Lane
from copier.settings import IfExists, Settings
from copier.stats import RunStats

from .helpers import invoke
from .pg import Target

# One table per declared type, each (id INTEGER PRIMARY KEY, v <type>): a row goes to the
# exact lane for its one value only, so that most rows of an example take the columnar lane.
DECLARED = {
    "t_integer": "INTEGER", "t_real": "REAL", "t_money": "NUMERIC(12,2)", "t_tiny": "NUMERIC(4,4)",
    "t_whole": "DECIMAL(6,0)", "t_text": "TEXT", "t_blob": "BLOB", "t_flag": "BOOLEAN", "t_day": "DATE",
    "t_moment": "DATETIME", "t_wall": "TIMESTAMP WITHOUT TIME ZONE",
    # numeric at each value's own scale, and past decimal128: PostgreSQL's numeric wire bytes
    "t_decimal": "DECIMAL", "t_wide": "NUMERIC(50,20)", "t_json": "JSON", "t_uuid": "UUID", "t_time": "TIME",
}
ZONES = ["UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Lord_Howe"]


@dataclass(frozen=True)
class InvalidText:
    """TEXT holding bytes that are not UTF-8 (stored with CAST(? AS TEXT))."""

    raw: bytes


def write_source(path: Path, tables: Mapping[str, Sequence[object]]) -> Path:
    connection = sqlite3.connect(path)
    for table, values in tables.items():
        connection.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, v {DECLARED[table]})')
        for key, value in enumerate(values, 1):
            if isinstance(value, InvalidText):
                connection.execute(f'INSERT INTO "{table}" VALUES (?, CAST(? AS TEXT))', (key, value.raw))
            else:
                connection.execute(f'INSERT INTO "{table}" VALUES (?, ?)', (key, value))
    connection.commit()
    connection.close()
    return path


def load(source: Path, target: Target, lane: Lane, schema: str, tmp: Path, **options: object) -> RunStats:
    chosen = Settings(dsn=target.dsn, schema=schema, lane=lane, verify=False, workers=1, quiet=True,
                      integrity_check=False, reject_file=tmp / f"{schema}.rejects.jsonl", **options)  # type: ignore[arg-type]
    return anyio.run(copier.migrate, source, chosen)


def contents(target: Target, schema: str, table: str) -> list[tuple[int, str | None]]:
    rows = target.fetch(f'SELECT id, v::text AS v FROM "{schema}"."{table}" ORDER BY id')
    return [(r["id"], r["v"]) for r in rows]


def assert_lanes_agree(source: Path, target: Target, tmp: Path, **options: object) -> RunStats:
    """Load through both lanes and compare every value; returns the columnar run's stats."""
    exact_schema, auto_schema = f"{target.schema}_exact", f"{target.schema}_auto"
    # Hypothesis runs many examples on one target: each starts from nothing.
    target.execute(f'DROP SCHEMA IF EXISTS "{exact_schema}" CASCADE; DROP SCHEMA IF EXISTS "{auto_schema}" CASCADE')
    exact = load(source, target, Lane.EXACT, exact_schema, tmp, **options)
    auto = load(source, target, Lane.COLUMNAR, auto_schema, tmp, **options)
    for name, stats in exact.tables.items():
        assert stats.columnar == 0, name
        other = auto.tables[name]
        assert (other.status, other.written, other.rejected, other.rounded) == (
            stats.status, stats.written, stats.rejected, stats.rounded), name
        if stats.status.value == "done":
            assert contents(target, auto_schema, name) == contents(target, exact_schema, name), name
    return auto


# --- values of every storage class, typical and not -------------------------------------------

_moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
_offsets = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)),
                            timezone(timedelta(hours=14))])


@st.composite
def _timestamp_text(draw: st.DrawFn) -> str:
    moment = draw(_moments)
    form = draw(st.sampled_from(["space", "T", "fraction", "millis", "offset", "Z", "date", "minutes", "compact"]))
    if form == "space":
        return moment.replace(microsecond=0).isoformat(sep=" ")
    if form == "T":
        return moment.replace(microsecond=0).isoformat()
    if form == "fraction":
        return moment.isoformat(sep=" ", timespec="microseconds")
    if form == "millis":
        return moment.isoformat(sep=" ", timespec="milliseconds")
    if form == "offset":
        return moment.replace(tzinfo=draw(_offsets)).isoformat(sep=" ", timespec="seconds")
    if form == "Z":
        return moment.replace(microsecond=0).isoformat() + "Z"
    if form == "date":
        return moment.date().isoformat()
    if form == "minutes":
        return moment.isoformat(sep=" ", timespec="minutes")
    return moment.strftime("%Y%m%d")


# Any text SQLite can hold as UTF-8 (lone surrogates cannot be encoded).
_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_odd_text = st.sampled_from([
    "", " 1 ", "yes", "t", "NaN", "-inf", "1e3", "0001-01-01", "9999-12-31", "2021-02-30", "2021-02-30 00:00:00",
    "0000-01-01 00:00:00", "2021-03-04 24:00:00", "2021-03-04 23:59:60", "2021-03-04 10:00:00.1234567",
    "2021-03-14 02:30:00", "2021-11-07 01:30:00", "2021-10-31 02:30:00", "2021-03-28 02:30:00",
    "9999-12-31 23:30:00", "0001-01-01 00:00:00", "a\x00b", "12.50", "-0",
])
_edge_integers = st.sampled_from([
    -2**63, 2**63 - 1, -2**63 + 1, 2**53, 2**53 + 1, -2**53 - 1, 2**31, -2**31 - 1, 0, 1, -1, 2,
    253402300799, 253402300800, -62135596800, -62135596801, 1700000000, 1700000000123,
])
_edge_floats = st.sampled_from([2.675, 1234.565, 0.1, 0.30000000000000004, 1e16, 1e-7, -0.0, 0.5, 12.0, 99.995,
                                2459215.5, math.inf, -math.inf, 1.5e300, 0.125, 1727078780.5])
_any_value = st.one_of(
    st.none(), st.integers(-2**63, 2**63 - 1), _edge_integers, st.floats(allow_nan=False), _edge_floats,
    _texts, _odd_text, _timestamp_text(),
    st.dates(min_value=date(1, 1, 1)).map(date.isoformat), st.binary(max_size=12),
    st.binary(min_size=1, max_size=6).map(InvalidText),
)


def _typical(table: str) -> st.SearchStrategy[object]:
    """What a column of this type mostly holds: the columnar lane's share of an example."""
    declared = DECLARED[table]
    if declared in ("INTEGER",):
        return st.integers(-2**63, 2**63 - 1)
    if declared == "REAL":
        return st.floats(allow_nan=False)
    if declared.startswith(("NUMERIC", "DECIMAL")):
        return st.one_of(st.integers(-10**6, 10**6).map(lambda n: n / 100), st.integers(-999_999, 999_999),
                         st.floats(allow_nan=False), st.integers(-2**63, 2**63 - 1))
    if declared == "JSON":
        documents = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                 allow_infinity=False) | _texts,
                                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
                                 max_leaves=6)
        return st.one_of(documents.map(json.dumps), documents.map(lambda d: json.dumps(d, indent=1)),
                         st.sampled_from(["NaN", "[1,]", "{'a': 1}", " 1 ", "1e400", '"\\u0000"', "01", "\ufeff1"]))
    if declared == "UUID":
        return st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: u.hex),
                         st.uuids().map(lambda u: u.bytes), st.uuids().map(lambda u: f"{{{u}}}"))
    if declared == "TIME":
        return st.one_of(st.times().map(time.isoformat), st.times().map(lambda t: t.isoformat(timespec="minutes")),
                         st.times().map(lambda t: t.isoformat(timespec="milliseconds")))
    if declared == "TEXT":
        return _texts
    if declared == "BLOB":
        return st.binary(max_size=12)
    if declared == "BOOLEAN":
        return st.sampled_from([0, 1])
    if declared == "DATE":
        return st.dates(min_value=date(1, 1, 1)).map(date.isoformat)
    return st.one_of(_timestamp_text(), st.integers(-62135596800, 253402300799))


_examples = st.fixed_dictionaries({
    table: st.lists(st.one_of(st.none(), _typical(table), _typical(table), _any_value), min_size=1, max_size=12)
    for table in DECLARED
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(tables=_examples, zone=st.sampled_from(ZONES))
def test_both_lanes_give_the_same_values(tables: dict[str, list[object]], zone: str, target: Target,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("lanes")
    # Batches of 3 rows: several batches per table, types changing between them.
    assert_lanes_agree(write_source(tmp / "s.db", tables), target, tmp, source_tz=zone, batch_size=3)


# --- each guard, on purpose -------------------------------------------------------------------


def test_typical_values_take_the_columnar_lane(tmp_path: Path, target: Target) -> None:
    tables: dict[str, list[object]] = {
        "t_integer": [1, -2**63, 2**63 - 1, None], "t_real": [1.5, -0.0, math.inf, -math.inf, None],
        "t_money": [12.5, -3, 0.01, 99999.99, None], "t_text": ["ann", "", "ü€😀", None],
        "t_blob": [b"\x00\xff", b"", None], "t_flag": [0, 1, None], "t_day": ["2021-03-04", "0001-01-01", "9999-12-31"],
        "t_moment": ["2021-03-04 05:06:07", "2021-03-04T05:06:07.123456", "0001-01-01 00:00:00", None],
        "t_wall": ["2021-03-04 05:06:07.5", "9999-12-31 23:59:59.999999"],
    }
    stats = assert_lanes_agree(write_source(tmp_path / "s.db", tables), target, tmp_path)
    for name, values in tables.items():
        assert stats.tables[name].columnar == len(values), name


@pytest.mark.parametrize(("table", "typical", "odd", "in_columnar"), [
    # 8 rows in batches of 2: the odd value's row goes the exact way, the other 7 (a NULL among
    # them) the columnar way. A storage class changing mid-column:
    ("t_integer", 7, "seven", 7),
    ("t_integer", 7, 7.5, 7),
    ("t_text", "x", 12, 8),  # TEXT affinity stores 12 as '12': no odd value
    ("t_text", "x", b"\x00binary", 7),
    ("t_blob", b"\x01", "text", 7),
    ("t_real", 1.25, 3, 8),  # REAL affinity stores 3 as 3.0: no odd value at all
    ("t_flag", 1, 2, 7),
    ("t_flag", 0, "yes", 7),
    ("t_money", 1.25, 2.675, 7),  # needs rounding: counted by the exact lane
    ("t_money", 1.25, 1e16, 7),  # out of range: rejected
    ("t_money", 1.25, 2**60, 7),
    ("t_text", "x", "a\x00b", 7),  # NUL: rejected (or stripped with --strip-nul)
    ("t_text", "x", InvalidText(b"\xff\xfe"), 6),  # not UTF-8: its batch goes the exact way
    ("t_day", "2021-03-04", "2021-02-30", 6),  # not a date: its batch goes the exact way
    ("t_day", "2021-03-04", "20210304", 7),
    # Every form of a timestamp column, each converted in bulk:
    ("t_moment", "2021-03-04 05:06:07", 1700000000, 8),
    ("t_moment", "2021-03-04 05:06:07", "2021-03-05", 8),  # a date alone: its midnight, either way
    ("t_moment", "2021-03-04 05:06:07", "2021-03-05 06:07", 8),  # no seconds
    ("t_moment", 1700000000, "2021-03-04 05:06:07", 8),
    ("t_moment", "2021-03-04 05:06:07", 1700000000123, 8),  # epoch milliseconds
    ("t_moment", "2021-03-04 05:06:07", 2459215.5, 8),  # a Julian day
    ("t_moment", 1700000000123, 1727078780.5, 8),  # Unix seconds as a REAL
    ("t_moment", "2021-03-04 05:06:07", "2021-03-04 05:06:07.621430+00:00", 8),
    ("t_moment", "2021-03-04 05:06:07", "2021-03-04T05:06+05:30", 8),
    ("t_moment", "2021-03-04 05:06:07", "2021-03-04 05:06:07+0530", 7),  # an offset without its colon
    ("t_moment", "2021-03-04 05:06:07", 1.5e300, 7),
    ("t_day", "2021-03-04", 86400, 8),  # a midnight in Unix seconds
    ("t_day", "2021-03-04", 86401, 7),  # not a midnight: rejected
    ("t_moment", "2021-03-04 05:06:07", "2021-03-04 05:06:07.1234567", 7),
    ("t_moment", "2021-03-04 05:06:07", "2021-03-04 24:00:00", 7),
    ("t_moment", "2021-03-04 05:06:07", "0000-01-01 00:00:00", 7),
    ("t_moment", "2021-03-04 05:06:07+02:00", "2021-03-04 05:06:07Z", 8),  # both aware forms are one form
    ("t_moment", "2021-03-04 05:06:07+02:00", "2021-03-04 05:06:07", 8),
    ("t_moment", -62135596800, -62135596801, 8),  # past the seconds: milliseconds
    ("t_moment", 253402300799, 253402300800, 8),
    ("t_moment", 253402300799, 253402300799001, 7),  # neither: rejected
    ("t_integer", 2**63 - 1, -2**63, 8),
    # numeric at each value's own scale, as the wire bytes of PostgreSQL's numeric:
    ("t_decimal", 12.5, 12, 8),  # 12 keeps scale 0, 12.5 scale 1
    ("t_decimal", 12.5, 12.0, 8),  # NUMERIC affinity stores 12.0 as 12
    ("t_decimal", 0.1, 0.30000000000000004, 8),  # 17 digits, read from Arrow's shortest text
    ("t_decimal", 0.1, 1.5e17, 8),
    ("t_decimal", 0.1, 1e19, 7),  # past int64 (NUMERIC affinity keeps it a REAL): the exact lane's
    ("t_decimal", 12.5, 2**63 - 1, 8),
    ("t_decimal", 12.5, -2**63, 7),
    ("t_decimal", 12.5, 1e-7, 8),
    ("t_decimal", 12.5, "abc", 7),
    ("t_wide", 12.5, 1e-15, 8),
    ("t_wide", 12.5, 1e-16, 8),
    ("t_wide", 12.5, 1e-21, 7),  # more places than 20: rounded, and counted, by the exact lane
    ("t_wide", 12.5, 1e30, 7),  # out of range: rejected
    ("t_wide", 12.5, 2**63 - 1, 8),
    ("t_json", '{"a": [1, 2.5]}', "[1,]", 7),  # not JSON: rejected
    ("t_json", '{"a": 1}', "NaN", 7),
    ("t_json", '{"a": 1}', 5, 7),  # a number: its text, the exact way
    ("t_json", '{"a": 1}', '"\\u0000"', 7),  # JSON to Python, not to PostgreSQL's jsonb: rejected by it
    ("t_json", '{"a": 1}', '["\\ud800"]', 7),  # a lone surrogate, likewise
    ("t_json", '{"a": 1}', "[" * 300 + "]" * 300, 8),  # many brackets: json.loads reads it in the lane
    ("t_json", '{"a": 1}', "[" + ",".join(["[1.5]"] * 300) + "]", 8),
    ("t_json", '{"a": 1}', "[" * 300 + "]" * 299, 7),  # ... and refuses it
    ("t_uuid", "12345678-1234-5678-1234-567812345678", bytes(range(16)), 8),
    ("t_uuid", "12345678-1234-5678-1234-567812345678", "1234567812345678123456781234567A", 8),
    ("t_uuid", "12345678-1234-5678-1234-567812345678", "{12345678-1234-5678-1234-567812345678}", 7),
    ("t_uuid", "12345678-1234-5678-1234-567812345678", "not a uuid", 7),
    ("t_time", "05:06:07", "05:06", 8),
    ("t_time", "05:06:07", "23:59:59.999999", 8),
    ("t_time", "05:06:07", "24:00", 7),
])
def test_each_guard(table: str, typical: object, odd: object, in_columnar: int, tmp_path: Path,
                    target: Target) -> None:
    values = [typical, typical, None, odd, typical, typical, typical, typical]
    stats = assert_lanes_agree(write_source(tmp_path / "s.db", {table: values}), target, tmp_path, batch_size=2)
    assert stats.tables[table].columnar == in_columnar


def test_an_all_null_first_batch(tmp_path: Path, target: Target) -> None:
    tables: dict[str, Sequence[object]] = {
        "t_text": [None] * 9 + ["late", "text"], "t_integer": [None] * 9 + [5, 6],
        "t_moment": [None] * 9 + ["2021-03-04 05:06:07", "2021-03-05 05:06:07"],
        "t_blob": [None] * 9 + [b"\x01", b"\x02"], "t_money": [None] * 9 + [1.5, 2.25],
    }
    stats = assert_lanes_agree(write_source(tmp_path / "s.db", tables), target, tmp_path, batch_size=4)
    for name in tables:
        assert stats.tables[name].columnar == 11, name


@pytest.mark.parametrize("zone", ZONES)
def test_wall_times_around_daylight_saving(zone: str, tmp_path: Path, target: Target) -> None:
    start = datetime(2021, 1, 1, tzinfo=UTC)
    hours = [(start + timedelta(minutes=30 * n)).strftime("%Y-%m-%d %H:%M:%S") for n in range(0, 17520, 7)]
    edges = ["2021-03-14 02:30:00", "2021-11-07 01:30:00", "2021-03-28 02:30:00", "2021-10-31 02:30:00",
             "2021-04-04 01:45:00", "2021-10-03 02:15:00", "1883-11-18 12:00:00", "2040-07-01 12:00:00"]
    tables = {"t_moment": hours + edges, "t_wall": hours + edges}
    assert_lanes_agree(write_source(tmp_path / "s.db", tables), target, tmp_path, source_tz=zone, batch_size=2)


def test_strip_nul_and_rounding_counts(tmp_path: Path, target: Target) -> None:
    tables: dict[str, list[object]] = {"t_text": ["a\x00b", "plain"], "t_money": [2.675, 1.5, 0.125]}
    stats = assert_lanes_agree(write_source(tmp_path / "s.db", tables), target, tmp_path, strip_nul=True)
    assert stats.tables["t_money"].rounded == 2
    assert stats.tables["t_text"].written == 2


def test_existing_narrow_columns(tmp_path: Path, target: Target) -> None:
    """Into tables that already exist: integer and smallint ranges, varchar(n) lengths."""
    source = tmp_path / "s.db"
    connection = sqlite3.connect(source)
    connection.execute("CREATE TABLE narrow (id INTEGER PRIMARY KEY, i INTEGER, s INTEGER, name TEXT)")
    connection.executemany("INSERT INTO narrow VALUES (?, ?, ?, ?)", [
        (1, 2**31 - 1, 2**15 - 1, "abcde"), (2, 2**31, 5, "ab"), (3, 5, -2**15 - 1, "ab"), (4, 1, 1, "abcdef"),
        (5, -2**31, -2**15, None)])
    connection.commit()
    connection.close()
    for lane in ("exact", "auto"):
        schema = f"{target.schema}_{lane}"
        target.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".narrow '
                       "(id bigint PRIMARY KEY, i integer, s smallint, name varchar(5))")
    exact = load(source, target, Lane.EXACT, f"{target.schema}_exact", tmp_path, if_exists=IfExists.APPEND)
    auto = load(source, target, Lane.COLUMNAR, f"{target.schema}_auto", tmp_path, if_exists=IfExists.APPEND)
    assert exact.tables["narrow"].rejected == auto.tables["narrow"].rejected == 3
    assert auto.tables["narrow"].columnar == 2
    query = 'SELECT id, i, s, name FROM "{}".narrow ORDER BY id'
    assert target.fetch(query.format(f"{target.schema}_exact")) == target.fetch(query.format(f"{target.schema}_auto"))


def test_existing_tables_of_every_other_kind(tmp_path: Path, target: Target) -> None:
    """Types only an existing table has (real, json, an enum, smallint): both lanes alike, the
    usual values columnar."""
    source = tmp_path / "s.db"
    connection = sqlite3.connect(source)
    connection.execute("CREATE TABLE other (id INTEGER PRIMARY KEY, f REAL, j TEXT, e TEXT, n NUMERIC)")
    rows: list[tuple[object, ...]] = [(key, key / 7, json.dumps({"k": key}), ("red", "green")[key % 2], key / 4)
                                      for key in range(1, 41)]
    rows += [(41, 1e300, "[1,", "blue", 1e30), (42, 3.4028235677973366e38, '"\\u0000"', "red", 1.005),
             (43, -0.0, " 7 ", "green", "x"), (44, None, None, None, None)]
    connection.executemany("INSERT INTO other VALUES (?, ?, ?, ?, ?)", rows)
    connection.commit()
    connection.close()
    for lane in ("exact", "auto"):
        schema = f"{target.schema}_{lane}"
        target.execute(f"""CREATE SCHEMA "{schema}"; CREATE TYPE "{schema}".colour AS ENUM ('red', 'green');
                           CREATE TABLE "{schema}".other (id bigint PRIMARY KEY, f real, j json, e "{schema}".colour,
                                                          n numeric(40, 2))""")
    exact = load(source, target, Lane.EXACT, f"{target.schema}_exact", tmp_path, if_exists=IfExists.APPEND)
    auto = load(source, target, Lane.COLUMNAR, f"{target.schema}_auto", tmp_path, if_exists=IfExists.APPEND)
    assert exact.tables["other"].rejected == auto.tables["other"].rejected
    # Rows 1-40 and the NULLs of 44 columnar; 41 (float4 overflow, not JSON, no such label, out of
    # range), 42 (1.005 needs rounding) and 43 ('x' is no number) the exact way.
    assert auto.tables["other"].columnar == 41
    query = 'SELECT id, f::text, j::text, e::text, n::text FROM "{}".other ORDER BY id'
    assert target.fetch(query.format(f"{target.schema}_exact")) == target.fetch(query.format(f"{target.schema}_auto"))


def test_many_flagged_rows_end_the_copy_not_the_range(tmp_path: Path, target: Target,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Flagged rowids wait while the range's COPY streams; once EXACT_KEYS_LIMIT of them do,
    that COPY ends, they go the exact way, and a new COPY takes the rest of the range: the
    columnar rows stay columnar however many rows are flagged, and the result is the same."""
    monkeypatch.setattr(columnar, "EXACT_KEYS_LIMIT", 2)
    tables: dict[str, list[object]] = {"t_integer": [1, "a", 2, "b", 3, "c", 4, 5, 6, 7]}
    stats = assert_lanes_agree(write_source(tmp_path / "s.db", tables), target, tmp_path, batch_size=2)
    assert stats.tables["t_integer"].columnar == 7
    assert stats.tables["t_integer"].written == 7
    assert stats.tables["t_integer"].rejected == 3


def test_batches_are_cut_by_bytes_for_wide_rows(tmp_path: Path, target: Target,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows of 4 KB at 8,192 a batch held 600 MB in the lane and in verify: a batch is cut at
    about batching.BATCH_BYTES, from the widest rows at the start of its range."""
    read: list[tuple[int, int]] = []  # (rows, bytes) of each batch the C reader gives
    next_batch = columnar.ArrowQuery.next

    def measured(query: columnar.ArrowQuery) -> Any:
        batch = next_batch(query)
        if batch is not None:
            read.append((batch.num_rows, batch.nbytes))
        return batch

    monkeypatch.setattr(columnar.ArrowQuery, "next", measured)
    wide = ["x" * 4000 + str(n) for n in range(3000)]
    source = write_source(tmp_path / "s.db", {"t_text": wide, "t_integer": list(range(3000))})
    stats = load(source, target, Lane.COLUMNAR, target.schema, tmp_path)
    assert stats.tables["t_text"].columnar == 3000
    assert len([rows for rows, _ in read if rows > 1]) > 2  # the wide table came in several batches
    assert max(size for _, size in read) <= 1.5 * batching.BATCH_BYTES
    assert (3000, ) in [(rows,) for rows, _ in read]  # narrow rows: one batch for the whole table
    read.clear()
    checks = anyio.run(copier.verify, source, Settings(dsn=target.dsn, schema=target.schema, quiet=True))
    assert sorted(c.table for c in checks if c.ok and c.content_equal) == ["t_integer", "t_text"]
    assert read and max(size for _, size in read) <= 1.5 * batching.BATCH_BYTES


def test_more_nullable_columns_than_bits_in_an_integer(tmp_path: Path, target: Target) -> None:
    """Which values are NULL travels as bits, 63 columns an integer: with 70 nullable columns,
    a NULL and a value left out (text in an INTEGER column) past the 63rd are told apart, in
    the load and in verify."""
    columns = [f"c{i}" for i in range(70)]
    path = tmp_path / "wide.db"
    connection = sqlite3.connect(path)
    connection.execute(f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {', '.join(f'{c} INTEGER' for c in columns)})")
    rows: list[tuple[object, ...]] = [(key, *(key * 100 + i for i in range(70))) for key in range(1, 3001)]
    rows[10] = (11, *[None] * 65, "not a number", *[None] * 4)  # c65 left out, the others NULL
    rows[20] = (21, *range(66), None, 1, 2, 3)  # c66 NULL
    connection.executemany(f"INSERT INTO wide VALUES ({', '.join('?' * 71)})", rows)
    connection.commit()
    connection.close()
    exact = load(path, target, Lane.EXACT, f"{target.schema}_exact", tmp_path)
    columnar = load(path, target, Lane.COLUMNAR, f"{target.schema}_columnar", tmp_path)
    assert (columnar.tables["wide"].columnar, columnar.tables["wide"].rejected) == (2999, 1)
    assert exact.tables["wide"].rejected == 1
    listed = ", ".join(columns)
    assert (target.fetch(f'SELECT id, {listed} FROM "{target.schema}_columnar".wide ORDER BY id')
            == target.fetch(f'SELECT id, {listed} FROM "{target.schema}_exact".wide ORDER BY id'))
    assert target.fetch(f'SELECT c65, c66, c67 FROM "{target.schema}_columnar".wide WHERE id = 21')[0] == (65, None, 1)
    checks = anyio.run(copier.verify, path, Settings(dsn=target.dsn, schema=f"{target.schema}_columnar", quiet=True,
                                                     reject_file=tmp_path / f"{target.schema}_columnar.rejects.jsonl"))
    assert [(c.ok, c.content_equal, c.rejected) for c in checks] == [(True, True, 1)]


def _started_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every query the C reader starts, as it starts them."""
    started: list[str] = []
    start = columnar.ArrowQuery.start

    def recorded(query: columnar.ArrowQuery, sql: str, batch_rows: int) -> None:
        started.append(sql)
        start(query, sql, batch_rows)

    monkeypatch.setattr(columnar.ArrowQuery, "start", recorded)
    return started


def test_a_range_of_one_storage_class_is_read_once_a_column(tmp_path: Path, target: Target,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A date column holding text only (bare NUMERIC reals only, UUID text only) is read in
    that class alone, not also as integers and reals; one integer in the range reads it in
    every class again, each converted in bulk (test_each_guard has a case of each)."""
    started = _started_queries(monkeypatch)
    tables: dict[str, list[object]] = {"t_moment": ["2021-03-04 05:06:07", None, "2021-03-05T06:07:08.5"],
                                       "t_decimal": [12.5, None, 0.25],
                                       "t_uuid": ["12345678-1234-5678-1234-567812345678", None]}
    stats = assert_lanes_agree(write_source(tmp_path / "s.db", tables), target, tmp_path)
    assert [stats.tables[name].columnar for name in tables] == [3, 3, 2]
    assert len(started) == 3
    assert not [sql for sql in started if "WHEN 'integer'" in sql or "WHEN 'blob'" in sql]
    started.clear()
    tables["t_moment"].append(1700000000)
    stats = assert_lanes_agree(write_source(tmp_path / "s2.db", {"t_moment": tables["t_moment"]}), target, tmp_path)
    assert stats.tables["t_moment"].columnar == 4
    assert len(started) == 1 and "WHEN 'integer'" in started[0] and "WHEN 'real'" in started[0]


def test_a_lean_read_leaves_a_value_of_another_class_to_the_per_value_path(
        tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """Were a value of a class the lean read does not read there (the file changed after the
    range was looked at), its row goes the per-value way, and lands as it always does: an
    integer as Unix seconds, a real as a Julian day, a blob rejected, an integer in a bare
    NUMERIC at scale 0, a UUID's 16 bytes."""
    monkeypatch.setattr(arrowlane, "further_sql", lambda *_args: "SELECT 1 WHERE 0")  # "none there"
    started = _started_queries(monkeypatch)
    tables: dict[str, list[object]] = {
        "t_moment": ["2021-03-04 05:06:07", 1700000000, 2459215.5, b"\x01", None, "2021-03-05 06:07:08"],
        "t_decimal": [12.5, 12, None, 0.25],
        "t_uuid": ["12345678-1234-5678-1234-567812345678", bytes(range(16))],
    }
    stats = assert_lanes_agree(write_source(tmp_path / "s.db", tables), target, tmp_path, batch_size=2)
    assert not [sql for sql in started if "WHEN 'integer'" in sql or "WHEN 'blob'" in sql]  # lean reads
    assert [(stats.tables[n].columnar, stats.tables[n].written, stats.tables[n].rejected) for n in tables] == [
        (3, 5, 1), (3, 4, 0), (1, 2, 0)]
    schema = f"{target.schema}_auto"
    moments = target.fetch(f"SELECT id, to_char(v AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS v "
                           f'FROM "{schema}".t_moment ORDER BY id')
    assert [(r["id"], r["v"]) for r in moments] == [
        (1, "2021-03-04 05:06:07.000000"), (2, "2023-11-14 22:13:20.000000"), (3, "2021-01-01 00:00:00.000000"),
        (5, None), (6, "2021-03-05 06:07:08.000000")]
    assert contents(target, schema, "t_decimal") == [(1, "12.5"), (2, "12"), (3, None), (4, "0.25")]
    assert contents(target, schema, "t_uuid") == [(1, "12345678-1234-5678-1234-567812345678"),
                                                  (2, "00010203-0405-0607-0809-0a0b0c0d0e0f")]


def test_batch_rows_follow_the_widest_row() -> None:
    assert batching.batch_rows(8_192, None) == 8_192
    assert batching.batch_rows(8_192, 100) == 8_192
    assert batching.batch_rows(8_192, 4096) == batching.BATCH_BYTES // 4096 == 512
    assert batching.batch_rows(300, 4096) == 300  # --batch-size below the byte cap
    assert batching.batch_rows(8_192, 100 * 2**20) == 1


def test_reader_connections_are_reused_and_closed_at_the_end(tmp_path: Path, target: Target,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The C reader's SQLite connections are kept from one table to the next (opening one
    parses the whole schema) and closed when the run ends."""
    opened: list[str] = []
    connect = adbc_driver_sqlite.connect

    def counting(uri: str) -> Any:
        opened.append(uri)
        return connect(uri)

    monkeypatch.setattr(adbc_driver_sqlite, "connect", counting)
    tables: dict[str, list[object]] = {"t_integer": [1, 2, 3], "t_real": [1.5, 2.5, 3.5], "t_text": ["a", "b", "c"],
                                       "t_flag": [0, 1, 1]}
    source = write_source(tmp_path / "s.db", tables)
    stats = load(source, target, Lane.COLUMNAR, target.schema, tmp_path)
    assert all(stats.tables[name].columnar == 3 for name in tables)
    assert 1 <= len(opened) < len(tables)  # one table at a time (workers=1): one connection, reused
    assert columnar._IDLE == {}


def test_source_connections_are_reused_and_closed_at_the_end(tmp_path: Path, target: Target,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact lane's (and verify's) SQLite connections too: kept from one table to the
    next while a run lasts, closed when it ends."""
    opened: list[object] = []
    connect = aiosqlite.connect

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(args[0])
        return connect(*args, **kwargs)

    monkeypatch.setattr(aiosqlite, "connect", counting)
    tables: dict[str, list[object]] = {name: [None, None] for name in DECLARED}
    stats = anyio.run(copier.migrate, write_source(tmp_path / "s.db", tables),
                      Settings(dsn=target.dsn, schema=target.schema, jobs=2, quiet=True,
                               reject_file=tmp_path / "r.jsonl"))
    assert stats.verified and all(t.written == 2 and t.columnar == 0 for t in stats.tables.values())
    # The catalog's, then at most two kept (two tables at a time), for 11 tables loaded and verified.
    assert 2 <= len(opened) <= 4, opened
    assert source._kept is None


def test_plan_names_each_table_lane(tmp_path: Path) -> None:
    source = tmp_path / "s.db"
    connection = sqlite3.connect(source)
    connection.execute("CREATE TABLE fast (id INTEGER PRIMARY KEY, at DATETIME, price NUMERIC(10,2))")
    connection.execute("CREATE TABLE priced (id INTEGER PRIMARY KEY, price DECIMAL)")
    connection.execute("CREATE TABLE keyed (code TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID")
    connection.executemany("INSERT INTO fast (at) VALUES (?)", [("2024-01-01 10:00",)] * 1_000)
    connection.executemany("INSERT INTO keyed VALUES (?, ?)", [(f"k{i}", i) for i in range(1_000)])
    connection.commit()
    connection.close()

    def lanes(*flags: str) -> list[str]:
        shown = invoke("plan", source, *flags)
        assert shown.exit_code == 0, shown.output
        return [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("lane:")]

    # Tables in name order: fast, keyed, priced.
    # A WITHOUT ROWID table reads in ranges of its primary key, in bulk.
    assert lanes() == ["lane: columnar", "lane: columnar",
                       "lane: exact (under 1,000 rows, where the exact lane costs less)"]
    assert lanes("--lane", "exact") == ["lane: exact (--lane exact)"] * 3
    document = json.loads(invoke("plan", source, "--json").stdout)
    assert [(t["source"], t["lane"]) for t in document["tables"]] == [
        ("fast", "columnar"), ("keyed", "columnar"), ("priced", "exact")]
    connection = sqlite3.connect(source)
    connection.execute("DELETE FROM fast WHERE id > 999")
    connection.commit()
    connection.close()
    assert lanes()[0] == "lane: exact (under 1,000 rows, where the exact lane costs less)"
    assert lanes("--lane", "columnar")[0] == "lane: columnar"


def _modules_of_a_fresh_run(source: Path, target: Target, tmp_path: Path, settings: str = "") -> list[str]:
    """Migrate (verify included) in a fresh interpreter: whether it verified, then whether
    each of pyarrow and pyarrow.dataset was imported."""
    import subprocess
    import sys

    script = ("import sys, anyio, copier\n"
              "from pathlib import Path\n"
              "from copier.settings import Settings\nfrom copier.lanes import Lane\n"
              f"stats = anyio.run(copier.migrate, Path({str(source)!r}), Settings(dsn={target.dsn!r}, "
              f"schema={target.schema!r}, quiet=True, reject_file=Path({str(tmp_path / 'r.jsonl')!r}){settings}))\n"
              "print(stats.verified, 'pyarrow' in sys.modules, 'pyarrow.dataset' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_run_of_small_tables_does_not_import_pyarrow(tmp_path: Path, target: Target) -> None:
    """pyarrow (80 ms to import, and its memory) only where a batch is at hand: a run of
    small tables, verify included, never needs it."""
    source = write_source(tmp_path / "s.db", {name: [1, 2] for name in ("t_integer", "t_text", "t_moment")})
    assert _modules_of_a_fresh_run(source, target, tmp_path) == ["True", "False", "False"]


def test_the_columnar_lane_does_not_import_pyarrow_dataset(tmp_path: Path, target: Target) -> None:
    """The C reader is driven through ADBC's low-level API: its DB-API wrapper imports
    pyarrow.dataset, which loads Parquet, S3 and Substrait (20 MB resident) for nothing."""
    source = write_source(tmp_path / "s.db", {name: [1, 2] for name in ("t_integer", "t_text", "t_moment")})
    assert _modules_of_a_fresh_run(source, target, tmp_path, ", lane=Lane.COLUMNAR") == ["True", "True", "False"]
