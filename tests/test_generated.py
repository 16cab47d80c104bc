"""SQLite's generated columns become PostgreSQL's (GENERATED ALWAYS AS (...) STORED) where
PostgreSQL accepts the translated expression and computes SQLite's values; the others stay
plain columns holding SQLite's values, with the reason. Run as a user would: the CLI in a
subprocess against the real server; expected values written out."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from copier.catalog import Catalog
from copier.planning import build_plan
from copier.source import catalog_of

from .helpers import sqlite_db
from .pg import Target

ORDERS = ("CREATE TABLE orders (id INTEGER PRIMARY KEY, name TEXT, price REAL, qty INTEGER, "
          "total REAL GENERATED ALWAYS AS (price * qty) STORED, upper_name TEXT AS (upper(name)))")
ORDER_ROWS = [(1, "pen", 2.5, 4), (2, "Ink", 1.25, 3), (3, None, None, 2)]

# Each of these is verified by hand: sqlite3 `SELECT round(2.5)` is 3.0 and PostgreSQL's
# `SELECT round(2.5::float8)` is 2 (it rounds half to even); SQLite stores 7 and 2 in NUMERIC
# columns as integers, so 7 / 2 is 3, where PostgreSQL's numeric 7 / 2 is 3.5000000000000000;
# PostgreSQL has no typeof(); to_char has no directive for strftime's %s.
ODD = ("CREATE TABLE odd (id INTEGER PRIMARY KEY, price REAL, a NUMERIC, b NUMERIC, "
       "kind TEXT AS (typeof(price)), rounded REAL AS (round(price)), ratio NUMERIC AS (a / b), "
       "stamp TEXT AS (strftime('%s', '2020-01-01')), doubled REAL AS (price * 2))")
ODD_ROWS = [(1, 2.5, 7, 2), (2, 1.0, 9, 3)]


def _copier(command: str, source: Path, target: Target, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "copier", command, str(source), "--dsn", target.dsn,
                           "--schema", target.schema, *extra], capture_output=True, text=True, timeout=300,
                          cwd=source.parent)


def _migrate(source: Path, target: Target, *extra: str) -> dict[str, Any]:
    done = _copier("migrate", source, target, "--json", *extra)
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == report["exit_code"], done.stderr
    return report


def _generated(target: Target, table: str) -> dict[str, str]:
    """The generated columns of a target table, as PostgreSQL's catalog has them."""
    rows = target.fetch("SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
                        "JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                        "WHERE a.attrelid = $1::regclass AND a.attgenerated = 's'", f'"{target.schema}"."{table}"')
    return {name: expression for name, expression in rows}


def test_generated_columns_are_computed_by_postgresql(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "shop.db", ORDERS, rows={"orders": []})
    with sqlite3.connect(source) as connection:
        connection.executemany("INSERT INTO orders (id, name, price, qty) VALUES (?, ?, ?, ?)", ORDER_ROWS)
    report = _migrate(source, target)
    assert (report["exit_code"], report["verified"]) == (0, True)
    assert _generated(target, "orders") == {"total": "(price * (qty)::double precision)", "upper_name": "upper(name)"}
    assert [tuple(r) for r in target.fetch("SELECT * FROM orders ORDER BY id")] == [
        (1, "pen", 2.5, 4, 10.0, "PEN"), (2, "Ink", 1.25, 3, 3.75, "INK"), (3, None, None, 2, None, None)]
    # Generated from now on: the app's next row is computed by PostgreSQL.
    target.execute("INSERT INTO orders (id, name, price, qty) VALUES (4, 'cup', 2.0, 5)")
    assert tuple(target.fetch("SELECT total, upper_name FROM orders WHERE id = 4")[0]) == (10.0, "CUP")
    target.execute("DELETE FROM orders WHERE id = 4")
    # A rerun loads into the table copier made, whose columns are now generated: left out again.
    again = _migrate(source, target, "--if-exists", "truncate")
    assert (again["exit_code"], again["verified"]) == (0, True)
    assert any("orders.total: column total is generated in the target table" in n for n in again["notes"])
    assert target.count("orders") == 3


@pytest.mark.parametrize("lane", ["columnar", "exact"])
def test_generated_columns_in_parallel_chunks_of_either_lane(tmp_path: Path, target: Target, lane: str) -> None:
    """Past 100,000 rows a created table loads in key chunks (columnar: threads; exact:
    worker processes) into a staging table: the generated columns stay out of every COPY."""
    rows = 200_001
    source = sqlite_db(tmp_path / "big.db", ORDERS)
    with sqlite3.connect(source) as connection:
        connection.executemany("INSERT INTO orders (name, price, qty) VALUES (?, ?, ?)",
                               ((f"item{i}", i * 0.25, i % 7) for i in range(rows)))
    report = _migrate(source, target, "--lane", lane)
    assert (report["exit_code"], report["verified"]) == (0, True)
    table = report["tables"][0]
    assert (table["lane"], table["rows_written"]) == (lane, rows)
    assert table["worker_chunks"] >= 2
    assert set(_generated(target, "orders")) == {"total", "upper_name"}
    # Products of quarters and small integers are exact in a double, and so is their sum.
    assert target.fetchval("SELECT sum(total) FROM orders") == sum(i * 0.25 * (i % 7) for i in range(rows))
    assert target.fetchval("SELECT upper_name FROM orders WHERE id = 12346") == "ITEM12345"


def test_what_postgresql_refuses_or_computes_otherwise_stays_plain(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "odd.db", ODD, rows={"odd": []})
    with sqlite3.connect(source) as connection:
        connection.executemany("INSERT INTO odd (id, price, a, b) VALUES (?, ?, ?, ?)", ODD_ROWS)
    report = _migrate(source, target)
    assert (report["exit_code"], report["verified"]) == (0, True)
    assert _generated(target, "odd") == {"doubled": "(price * (2)::double precision)"}
    assert [tuple(r) for r in target.fetch("SELECT id, kind, rounded, ratio, stamp, doubled FROM odd ORDER BY id")] \
        == [(1, "real", 3.0, 3, "1577836800", 5.0), (2, "real", 1.0, 3, "1577836800", 2.0)]
    notes = [n for n in report["notes"] if "generated column" in n]
    plain = "generated column (VIRTUAL in SQLite) copied as a plain column holding SQLite's values: "
    assert notes == [
        f"odd.stamp: {plain}its expression (STRFTIME('%s', '2020-01-01')) cannot be translated: "
        "strftime's %s has no to_char equivalent",
        f"odd.kind: {plain}PostgreSQL refuses GENERATED ALWAYS AS (TYPEOF(\"price\")): "
        "function typeof(double precision) does not exist",
        f"odd.rounded: {plain}PostgreSQL computes other values than SQLite's ROUND(price) in 1 of the first 2 rows "
        "(e.g. '2' where SQLite has '3')",
        f"odd.ratio: {plain}PostgreSQL computes other values than SQLite's a / b in 1 of the first 2 rows "
        "(e.g. '3.5000000000000000' where SQLite has '3')",
    ]
    # Tried in a transaction that was rolled back: nothing of it is left.
    assert target.fetchval("SELECT count(*) FROM pg_class WHERE relname LIKE 'copier\\_generated\\_%'") == 0


def test_generated_plain_keeps_every_one_plain(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "shop.db", ORDERS, rows={"orders": []})
    with sqlite3.connect(source) as connection:
        connection.executemany("INSERT INTO orders (id, name, price, qty) VALUES (?, ?, ?, ?)", ORDER_ROWS)
    report = _migrate(source, target, "--generated", "plain")
    assert (report["exit_code"], report["verified"]) == (0, True)
    assert _generated(target, "orders") == {}
    assert [tuple(r) for r in target.fetch("SELECT total, upper_name FROM orders ORDER BY id")] == [
        (10.0, "PEN"), (3.75, "INK"), (None, None)]
    assert [n for n in report["notes"] if "generated" in n] == [
        "orders.total: generated column (STORED in SQLite) copied as a plain column holding SQLite's values: "
        "--generated plain",
        "orders.upper_name: generated column (VIRTUAL in SQLite) copied as a plain column holding SQLite's values: "
        "--generated plain"]


def test_plan_shows_each_translation_or_why_not(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "odd.db", ODD, ORDERS)
    with sqlite3.connect(source) as connection:
        connection.executemany("INSERT INTO odd (id, price, a, b) VALUES (?, ?, ?, ?)", ODD_ROWS)
    done = _copier("plan", source, target, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    columns = {(t["source"], c["source"]): c for t in document["tables"] for c in t["columns"]}
    assert (columns["orders", "total"]["generated"], columns["orders", "total"]["lane"]) == (
        '"price" * "qty"', "computed by PostgreSQL")
    assert columns["orders", "total"]["sqlite_generated"] == "price * qty"
    assert columns["odd", "rounded"]["generated"] is None and columns["odd", "rounded"]["lane"] != \
        "computed by PostgreSQL"
    assert any(n.startswith("odd.rounded: generated column") for n in document["notes"])
    sql = _copier("plan", source, target, "--sql").stdout
    assert '"total" double precision GENERATED ALWAYS AS ("price" * "qty") STORED' in sql
    assert '"rounded" double precision,' in sql
    text = _copier("plan", source, target).stdout
    assert 'upper_name text generated always as (UPPER("name")) stored, computed by PostgreSQL' in text
    assert "odd.kind: generated column (VIRTUAL in SQLite) copied as a plain column" in text
    assert not target.exists("orders") and not target.exists("odd")  # plan touches nothing
    # Without a target nothing is tried: said so.
    offline = subprocess.run([sys.executable, "-m", "copier", "plan", str(source), "--json"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert any("were not tried against it (no target)" in n for n in json.loads(offline.stdout)["notes"])


def test_verify_fails_where_the_target_computes_other_values(tmp_path: Path, target: Target) -> None:
    """A target made beforehand with another expression (price + qty): the load leaves the
    column to PostgreSQL, and verify compares its values with SQLite's (exit 4)."""
    source = sqlite_db(tmp_path / "shop.db", ORDERS, rows={"orders": []})
    with sqlite3.connect(source) as connection:
        connection.executemany("INSERT INTO orders (id, name, price, qty) VALUES (?, ?, ?, ?)", ORDER_ROWS)
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute("CREATE TABLE orders (id bigint PRIMARY KEY, name text, price float8, qty bigint, "
                   "total float8 GENERATED ALWAYS AS (price + qty) STORED, "
                   "upper_name text GENERATED ALWAYS AS (upper(name)) STORED)")
    report = _migrate(source, target)
    assert (report["exit_code"], report["verified"]) == (4, False)
    assert report["warnings"] == ["verify: orders: source 3 rows, target 3, rejected 0, "
                                  "CONTENT DIFFERS at key(s) 1, 2: MISMATCH"]
    done = _copier("verify", source, target)
    assert done.returncode == 4
    assert "orders: source 3 rows, target 3, rejected 0, CONTENT DIFFERS at key(s) 1, 2: MISMATCH" in done.stdout
    # The right expression: the same load verifies.
    target.execute("DROP TABLE orders")
    target.execute("CREATE TABLE orders (id bigint PRIMARY KEY, name text, price float8, qty bigint, "
                   "total float8 GENERATED ALWAYS AS (price * qty) STORED, "
                   "upper_name text GENERATED ALWAYS AS (upper(name)) STORED)")
    assert (_migrate(source, target)["exit_code"], _copier("verify", source, target).returncode) == (0, 0)


def _catalog(tmp_path: Path, *statements: str) -> Catalog:
    return catalog_of(sqlite_db(tmp_path / "c.db", *statements))


def test_plan_names_and_what_cannot_be_generated(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "CREATE TABLE Items (Price REAL, Qty INTEGER, Total REAL AS (Price * Qty), "
                                 "Twice REAL AS (Total * 2) STORED)")
    plan = build_plan(catalog, {}, identifiers="lower")
    (table,) = plan.tables
    assert [(c.target, c.generated) for c in table.generated] == [("total", '"price" * "qty"')]
    assert [c.target for c in table.columns] == ["price", "qty", "twice"]
    assert [c.target for c in table.all_columns] == ["price", "qty", "total", "twice"]
    assert plan.notes[-1] == ("Items.Twice: generated column (STORED in SQLite) copied as a plain column holding "
                              "SQLite's values: it reads generated column(s) Total, which PostgreSQL's generated "
                              "columns cannot")


def test_resume_makes_the_generated_columns_again(tmp_path: Path, target: Target) -> None:
    """A run killed while loading the table: --resume creates it again, generated, and loads it."""
    source = sqlite_db(tmp_path / "shop.db", ORDERS, "CREATE TABLE other (id INTEGER PRIMARY KEY)",
                       rows={"other": [(1,)]})
    with sqlite3.connect(source) as connection:
        connection.executemany("INSERT INTO orders (id, name, price, qty) VALUES (?, ?, ?, ?)", ORDER_ROWS)
    assert _migrate(source, target)["exit_code"] == 0
    # As if the run had been killed while loading orders.
    target.execute("DROP TABLE orders")
    target.execute("UPDATE copier.tables SET status = 'loading' WHERE target_schema = $1 AND source_table = 'orders'",
                   target.schema)
    report = _migrate(source, target, "--resume")
    assert (report["exit_code"], report["verified"]) == (0, True)
    assert "other: already loaded by the interrupted run" in report["notes"]
    assert _generated(target, "orders") == {"total": "(price * (qty)::double precision)", "upper_name": "upper(name)"}
    assert [tuple(r) for r in target.fetch("SELECT total, upper_name FROM orders ORDER BY id")] == [
        (10.0, "PEN"), (3.75, "INK"), (None, None)]
