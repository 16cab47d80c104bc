"""`copier plan` says which lane loads each table (lanes.choose); the run report counts the
rows each lane wrote. On several column shapes the two agree, and the counts are the ones
written out here from how each table was filled."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from copier.stats import RunStats, TableStats, TableStatus, render_summary

from .helpers import invoke, sqlite_db
from .pg import Target

ROWS = 2_000  # above lanes.COLUMNAR_MIN_ROWS: --lane auto may give these tables the columnar lane
EPOCH_MS = 1_700_000_000_000  # 2023-11-14, in Unix milliseconds (Prisma's DATETIME)

# Per table: its DDL, its rows, and (written out) how many rows go one by one though the
# plan gives the table the columnar lane, and how many the converters reject.
SHAPES: dict[str, tuple[str, list[tuple[object, ...]], int, int]] = {
    "plain": ("CREATE TABLE plain (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, r REAL, b BOOLEAN)",
              [(i, i * 7, f"row {i}", i / 8, i % 2) for i in range(1, ROWS + 1)], 0, 0),
    # Prisma's SQLite connector stores DateTime as Unix milliseconds.
    "prisma": ('CREATE TABLE prisma (id INTEGER PRIMARY KEY, "createdAt" DATETIME NOT NULL)',
               [(i, EPOCH_MS + i * 1_000) for i in range(1, ROWS + 1)], 0, 0),
    # Three values no converter takes: rejected, the other rows all in bulk.
    "dirty": ("CREATE TABLE dirty (id INTEGER PRIMARY KEY, n INTEGER)",
              [(i, "n/a" if i % 600 == 0 else i) for i in range(1, ROWS + 1)], 0, 3),
    # ISO text, and at the end four Julian day numbers (REAL): the rule book converts both in bulk.
    "julian": ("CREATE TABLE julian (id INTEGER PRIMARY KEY, at DATETIME)",
               [(i, f"2024-01-02 03:04:{i % 60:02d}" if i <= ROWS - 4 else 2460311.5 + i % 7)
                for i in range(1, ROWS + 1)], 0, 0),
    # SQLite's NUMERIC affinity: integers and reals mixed, no declared scale.
    "bare_numeric": ("CREATE TABLE bare_numeric (id INTEGER PRIMARY KEY, amount NUMERIC)",
                     [(i, i if i % 2 else i + 0.25) for i in range(1, ROWS + 1)], 0, 0),
    "small": ("CREATE TABLE small (id INTEGER PRIMARY KEY, s TEXT)", [(i, f"s{i}") for i in range(1, 11)], 0, 0),
    # WITHOUT ROWID: read in ranges of its primary key, in bulk like the rest.
    "keyed": ("CREATE TABLE keyed (region TEXT, code TEXT, n INTEGER, PRIMARY KEY (region, code)) WITHOUT ROWID",
              [(f"r{i % 7}", f"c{i:05d}", i) for i in range(1, ROWS + 1)], 0, 0),
    # Columns named rowid, _rowid_ and oid hide the rowid from SQL: the primary key serves.
    "shadowed": ("CREATE TABLE shadowed (rowid TEXT, _rowid_ TEXT, oid TEXT, code TEXT NOT NULL PRIMARY KEY)",
                 [("a", "b", "c", f"k{i:05d}") for i in range(1, ROWS + 1)], 0, 0),
    # Nor any key at all: one scan, through the exact lane.
    "unkeyed": ("CREATE TABLE unkeyed (rowid TEXT, _rowid_ TEXT, oid TEXT, n INTEGER)",
                [("a", "b", "c", i) for i in range(1, ROWS + 1)], 0, 0),
}


@pytest.fixture(scope="module")
def outcome(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any],
                                                                                       dict[str, Any]]]:
    """The plan's tables and the report's, by source name, of one run over every shape."""
    directory = tmp_path_factory.mktemp("shapes")
    source = sqlite_db(directory / "shapes.db", *(ddl for ddl, _rows, _odd, _bad in SHAPES.values()),
                       rows={name: rows for name, (_ddl, rows, _odd, _bad) in SHAPES.items()})
    target = Target(database, f"t_{uuid.uuid4().hex[:8]}")
    plan = json.loads(invoke("plan", source, "--json").stdout)
    report = directory / "report.json"
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--quiet", "--workers", "1",
                    "--report", report, "--reject-file", directory / "rejects.jsonl")
    assert result.exit_code == 3, result.output  # rows rejected (dirty's three), the rest loaded and verified
    document = json.loads(report.read_text())
    assert document["verified"] is True
    yield {t["source"]: t for t in plan["tables"]}, {t["table"]: t for t in document["tables"]}


@pytest.mark.parametrize("name", list(SHAPES))
def test_the_report_counts_the_rows_of_the_lane_the_plan_named(
        name: str, outcome: tuple[dict[str, Any], dict[str, Any]]) -> None:
    plan, report = outcome[0][name], outcome[1][name]
    _ddl, rows, per_value, rejected = SHAPES[name]
    assert report["lane"] == plan["lane"]
    assert report["rows_rejected"] == rejected and report["rows_written"] == len(rows) - rejected
    if plan["lane"] == "columnar":
        assert plan["exact_because"] is None and {c["lane"] for c in plan["columns"]} == {"bulk"}
        assert (report["rows_columnar"], report["rows_exact"]) == (len(rows) - rejected - per_value, per_value)
    else:
        assert plan["exact_because"] and {c["lane"] for c in plan["columns"]} == {"per value"}
        assert (report["rows_columnar"], report["rows_exact"]) == (0, len(rows) - rejected)


def test_the_lanes_the_plan_names(outcome: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The decisions themselves, written out (README: The two lanes)."""
    plan = outcome[0]
    columnar = ("plain", "prisma", "dirty", "julian", "keyed", "shadowed")
    assert {name: plan[name]["lane"] for name in columnar} == dict.fromkeys(columnar, "columnar")
    assert plan["small"]["exact_because"] == "under 1,000 rows, where the exact lane costs less"
    assert plan["unkeyed"]["exact_because"] == ("no key to read ranges by (no rowid SQL can reach, no primary key "
                                                "of NOT NULL columns that SQLite keeps in its columns' order)")


def test_the_summary_names_the_rows_that_went_one_by_one() -> None:
    stats = RunStats()
    stats.tables["t"] = TableStats("t", "t", expected=10, read=10, written=10, columnar=6, lane="columnar",
                                   status=TableStatus.DONE)
    stats.tables["u"] = TableStats("u", "u", expected=5, read=5, written=5, lane="exact", status=TableStatus.DONE)
    assert "  - t: 4 of 10 rows written went through the exact lane (values the columnar lane does not convert " \
           "in bulk)" in render_summary(stats).splitlines()
    assert "u:" not in render_summary(stats)  # the plan gave u the exact lane: nothing to say
    assert stats.totals()["rows_exact"] == 9 and stats.tables["u"].as_dict()["rows_exact"] == 5
