"""WITHOUT ROWID tables (and tables whose rowid no SQL can reach) go through the columnar
lane in ranges of their primary key (source.KeyRange): bounds taken from the data by
SQLite, compared by SQLite, so composite, integer and mixed-type keys keep every row once.
A value the lane leaves to the per-value path sends its row there by primary key, and a
reject names the row by its primary key. Expected values are written out."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from copier import source
from copier.source import KeyRange

from .helpers import invoke, migrate, read_jsonl, sqlite_db
from .pg import Target

ROWS = 3_000  # above lanes.COLUMNAR_MIN_ROWS: the plan gives these tables the columnar lane


def _report(target: Target, db: Path, tmp_path: Path, *extra: object) -> tuple[Any, dict[str, Any]]:
    """Migrate (and verify); the result and the report's tables by name."""
    report = tmp_path / "report.json"
    result = migrate(target, db, "--report", report, "--reject-file", tmp_path / "rejects.jsonl", *extra)
    tables = {t["table"]: t for t in json.loads(report.read_text())["tables"]} if report.exists() else {}
    return result, tables


def _verify(target: Target, db: Path) -> None:
    verified = invoke("verify", db, "--dsn", target.dsn, "--schema", target.schema)
    assert verified.exit_code == 0, verified.output


def _plan(db: Path) -> dict[str, dict[str, Any]]:
    return {t["source"]: t for t in json.loads(invoke("plan", db, "--json").stdout)["tables"]}


def test_composite_text_key_in_bulk_with_per_value_rows_and_a_reject_named_by_its_key(
        tmp_path: Path, target: Target) -> None:
    # Row 1234's day is no date (rejected); rows 700 and 2900 say shipped as the word 'true',
    # which the lane leaves to the per-value path (it reads the word as true).
    def row(i: int) -> tuple[object, ...]:
        day = "not a date" if i == 1234 else f"2024-02-{i % 28 + 1:02d}"
        return f"ORD-{i // 4:05d}", f"L{i % 4 + 1}", i, "true" if i in (700, 2900) else i % 2, day

    db = sqlite_db(tmp_path / "lines.db",
                   "CREATE TABLE lines (order_code TEXT, line TEXT, quantity INTEGER, shipped BOOLEAN, day DATE, "
                   "PRIMARY KEY (order_code, line)) WITHOUT ROWID",
                   rows={"lines": [row(i) for i in range(ROWS)]})
    plan = _plan(db)["lines"]
    assert (plan["lane"], plan["exact_because"]) == ("columnar", None)
    result, report = _report(target, db, tmp_path)
    assert result.exit_code == 3, result.output  # one row rejected, the rest loaded and verified
    assert report["lines"]["lane"] == "columnar"
    # 2,999 written: the two words and the bad day (rejected) went per value.
    assert (report["lines"]["rows_columnar"], report["lines"]["rows_exact"]) == (2_997, 2)
    (reject,) = read_jsonl(tmp_path / "rejects.jsonl")
    assert (reject["key"], reject["column"], reject["value"]) == (["ORD-00308", "L3"], "day", "'not a date'")
    assert target.fetch('SELECT order_code, line, quantity, shipped, day::text FROM lines '
                        "WHERE (order_code, line) IN (('ORD-00175', 'L1'), ('ORD-00725', 'L1'), ('ORD-00000', 'L1'), "
                        "('ORD-00749', 'L4')) ORDER BY 1") == [
        ("ORD-00000", "L1", 0, False, "2024-02-01"), ("ORD-00175", "L1", 700, True, "2024-02-01"),
        ("ORD-00725", "L1", 2900, True, "2024-02-17"), ("ORD-00749", "L4", 2999, True, "2024-02-04")]
    assert target.count("lines") == 2_999
    _verify(target, db)


def test_integer_key_at_both_ends_of_the_integers(tmp_path: Path, target: Target) -> None:
    """An INTEGER PRIMARY KEY of a WITHOUT ROWID table is no rowid: keyed by its values."""
    keys = [-2**63, 2**63 - 1, *range(-1_500, 1_500)]
    db = sqlite_db(tmp_path / "ints.db", "CREATE TABLE ints (id INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID",
                   rows={"ints": [(k, f"v{k}") for k in keys]})
    result, report = _report(target, db, tmp_path, "--readers", "3", "--batch-size", "500")
    assert result.exit_code == 0, result.output
    assert (report["ints"]["lane"], report["ints"]["rows_columnar"], report["ints"]["rows_exact"]) == (
        "columnar", 3_002, 0)
    assert target.fetch("SELECT id, v FROM ints WHERE id < -1499 OR id > 1498 ORDER BY id") == [
        (-2**63, "v-9223372036854775808"), (-1_500, "v-1500"), (1_499, "v1499"),
        (2**63 - 1, "v9223372036854775807")]
    assert target.count("ints") == 3_002
    _verify(target, db)


def test_ranges_of_a_mixed_key_follow_sqlites_order(tmp_path: Path) -> None:
    """SQLite orders numbers (integers and reals together), then text, then blobs; the
    bounds are its own quote() literals, so each range holds its rows and no others."""
    db = sqlite_db(tmp_path / "mixed.db", "CREATE TABLE mixed (k PRIMARY KEY, n INTEGER) WITHOUT ROWID",
                   rows={"mixed": [("b", 1), (3, 2), (b"\x00", 3), (2.5, 4), ("a", 5), (-7, 6), ("it's, ok", 7)]})
    with sqlite3.connect(db) as connection:
        (table,) = source.read_catalog(connection).tables

    async def ranges_and_rows() -> tuple[list[KeyRange], list[list[int]]]:
        async with source.borrowed(db) as connection:
            ranges = await source.key_ranges(connection, table, 2)
            held = []
            for key_range in ranges:
                sql = f"SELECT n FROM mixed WHERE {source.range_condition(table, key_range)} ORDER BY k"
                async with connection.execute(sql) as cursor:
                    held.append([n for (n,) in await cursor.fetchall()])
            return ranges, held

    ranges, held = asyncio.run(ranges_and_rows())
    assert ranges == [KeyRange(None, "2.5"), KeyRange("3", "'a'"), KeyRange("'b'", "'it''s, ok'"),
                      KeyRange("X'00'", None)]
    assert held == [[6, 4], [2, 5], [1, 7], [3]]


def test_ranges_of_a_composite_key_hold_so_many_rows_each(tmp_path: Path) -> None:
    """Ranges of `rows` rows, cut one after the other along the key (source.range_cut_sql):
    the last holds the rest, and a table of a whole number of ranges ends with a full one."""
    keys = [(f"o{i // 2}", f"L{i % 2 + 1}") for i in range(10)]
    db = sqlite_db(tmp_path / "lines.db", "CREATE TABLE lines (o TEXT, l TEXT, PRIMARY KEY (o, l)) WITHOUT ROWID",
                   rows={"lines": [(o, line) for o, line in reversed(keys)]})
    with sqlite3.connect(db) as connection:
        (table,) = source.read_catalog(connection).tables

    async def ranges(rows: int) -> list[KeyRange]:
        async with source.borrowed(db) as connection:
            return await source.key_ranges(connection, table, rows)

    assert asyncio.run(ranges(3)) == [
        KeyRange(None, "'o1','L1'"), KeyRange("'o1','L2'", "'o2','L2'"), KeyRange("'o3','L1'", "'o4','L1'"),
        KeyRange("'o4','L2'", None)]
    assert asyncio.run(ranges(5)) == [KeyRange(None, "'o2','L1'"), KeyRange("'o2','L2'", None)]
    assert asyncio.run(ranges(10)) == [KeyRange(None, None)]


def test_mixed_type_key_in_chunks_through_worker_threads(tmp_path: Path, target: Target) -> None:
    """60,000 rows, keys of three storage classes: two worker chunks, cut by the key. The
    key column (no declared type) becomes text: its text keys go in bulk, its integers and
    reals per value, each row looked up again by its key of its own storage class."""
    rows: list[tuple[object, ...]] = []
    for i in range(20_000):
        rows += [(i, "int"), (i + 0.5, "real"), (f"t{i:05d}", "text")]
    db = sqlite_db(tmp_path / "mixed.db", "CREATE TABLE mixed (k PRIMARY KEY, kind TEXT) WITHOUT ROWID",
                   rows={"mixed": rows})
    result, report = _report(target, db, tmp_path, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert (report["mixed"]["lane"], report["mixed"]["rows_columnar"], report["mixed"]["rows_exact"],
            report["mixed"]["worker_chunks"]) == ("columnar", 20_000, 40_000, 2)
    assert target.fetch("SELECT kind, count(*) FROM mixed GROUP BY kind ORDER BY kind") == [
        ("int", 20_000), ("real", 20_000), ("text", 20_000)]
    assert target.fetch("SELECT k, kind FROM mixed WHERE k IN ('19999', '19999.5', 't19999', '0', '0.5')"
                        " ORDER BY k") == [("0", "int"), ("0.5", "real"), ("19999", "int"), ("19999.5", "real"),
                                           ("t19999", "text")]
    _verify(target, db)


def test_a_hidden_rowid_reads_by_the_primary_key(tmp_path: Path, target: Target) -> None:
    """Columns named rowid, _rowid_ and oid hide the rowid; a NOT NULL primary key serves."""
    db = sqlite_db(tmp_path / "hidden.db",
                   "CREATE TABLE hidden (rowid TEXT, _rowid_ TEXT, oid TEXT, code TEXT NOT NULL PRIMARY KEY, "
                   "n INTEGER)",
                   rows={"hidden": [("r", "_r", "o", f"c{i:04d}", "x" if i == 99 else i) for i in range(ROWS)]})
    result, report = _report(target, db, tmp_path, "--readers", "2", "--batch-size", "1000")
    assert result.exit_code == 3, result.output
    assert (report["hidden"]["lane"], report["hidden"]["rows_columnar"], report["hidden"]["rows_rejected"]) == (
        "columnar", 2_999, 1)
    (reject,) = read_jsonl(tmp_path / "rejects.jsonl")
    assert (reject["key"], reject["column"]) == ("c0099", "n")
    assert target.count("hidden") == 2_999
    _verify(target, db)


def test_a_key_collated_unlike_its_column_is_read_in_one_scan(tmp_path: Path, target: Target) -> None:
    """A NOCASE column whose key compares BINARY holds 'A' and 'a': ranges compared the
    column's way would lose one. No range key, then: the exact lane reads one scan."""
    db = sqlite_db(tmp_path / "cased.db",
                   "CREATE TABLE cased (k TEXT COLLATE NOCASE, n INTEGER, PRIMARY KEY (k COLLATE BINARY)) "
                   "WITHOUT ROWID",
                   rows={"cased": [(f"{c}{i:04d}", i) for i in range(ROWS // 2) for c in ("A", "a")]})
    assert _plan(db)["cased"]["lane"] == "exact"
    result, report = _report(target, db, tmp_path)
    assert result.exit_code == 0, result.output
    assert report["cased"]["rows_written"] == ROWS
    assert target.fetch("SELECT k, n FROM cased WHERE n = 7 ORDER BY k COLLATE \"C\"") == [("A0007", 7), ("a0007", 7)]
