"""Every corpus database migrates with equal row counts and equal values, table by table."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from copier.errors import ValueRejected
from copier.ident import quote_sqlite
from copier.normalise import Options, converter_for
from copier.pipeline import make_plan
from copier.settings import Settings

from .helpers import CORPUS, corpus_file, migrate, read_jsonl
from .pg import Target

# file -> (exit code, rows rejected): every file of the shared corpus. Non-zero cases are
# the corpus's own dirty data, each a value its declared type cannot hold:
# sqlite.db's `intege` holds 'toto' and 12.3 in an integer column, and `autoinc`
# has NULL ids (`integer auto_increment primary key` is not a rowid alias), so its
# primary key cannot be added; borked.db holds 'Hello' in an integer and 'hello' in a
# double column; mixed_data_numeric.db
# holds 'hello' in a numeric column; unix_timestamp.db holds 1.0e+100 in a datetime column;
# unsupported_view.db holds the text '2024-09-12' in an INTEGER column.
CORPUS_FILES = {
    "chinook/Chinook_Sqlite.sqlite": (0, 0),
    "chinook/Chinook_Sqlite_AutoIncrementPKs.sqlite": (0, 0),
    "duckdb/accounts_sample.db": (0, 0),
    "duckdb/boolean.db": (0, 0),
    "duckdb/borked.db": (3, 2),
    "duckdb/count.db": (0, 0),
    "duckdb/decimal.db": (0, 0),
    "duckdb/emptytype.db": (0, 0),
    "duckdb/float.db": (0, 0),
    "duckdb/fts.db": (0, 0),
    "duckdb/giant_row_id.db": (0, 0),
    "duckdb/issue44.db": (0, 0),
    "duckdb/issue47.db": (0, 0),
    "duckdb/longvarchar.db": (0, 0),
    "duckdb/mixed_data_numeric.db": (3, 1),
    "duckdb/negativepk.db": (0, 0),
    "duckdb/norowid.db": (0, 0),
    "duckdb/rtree.db": (0, 0),
    "duckdb/unix_timestamp.db": (3, 1),
    "duckdb/unsupported_view.db": (3, 1),
    "duckdb/zeropk.db": (0, 0),
    "northwind/Northwind_small.sqlite": (0, 0),
    "pgloader/Chinook_Sqlite.sqlite": (0, 0),
    "pgloader/Chinook_Sqlite_AutoIncrementPKs.sqlite": (0, 0),
    "pgloader/sqlite.db": (1, 2),
    "pgloader/storage.sqlite": (0, 0),
    "pgloader/test_pk.db": (0, 0),
    "pgloader/my db.sqlite": (0, 0),
    "pgloader/cli_with.db": (0, 0),
    "pgloader/matviews.sqlite": (0, 0),
    "pgloader/source.sqlite": (0, 0),
}


def test_the_corpus_list_names_every_corpus_file() -> None:
    databases = {p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".md" and p.parent.name != "licences"}
    assert {str(p.relative_to(CORPUS)) for p in databases} == set(CORPUS_FILES)


def expected_rows(path: Path, target: Target) -> dict[str, tuple[Counter[tuple[object, ...]], int]]:
    """Per table: the multiset of converted source rows, and how many rows cannot convert."""
    plan = asyncio.run(make_plan(path, Settings(dsn=target.dsn, schema=target.schema), None))
    connection = sqlite3.connect(path)
    expected = {}
    for table in plan.tables:
        converters = [converter_for(c.type, Options()) for c in table.columns]
        columns = ", ".join(quote_sqlite(c.source) for c in table.columns)
        rows: Counter[tuple[object, ...]] = Counter()
        bad = 0
        for row in connection.execute(f"SELECT {columns} FROM {quote_sqlite(table.name)}"):
            try:
                rows[tuple(convert(v) for convert, v in zip(converters, row))] += 1
            except ValueRejected:
                bad += 1
        expected[table.target] = (rows, bad)
    connection.close()
    return expected


@pytest.mark.parametrize("relative", sorted(CORPUS_FILES))
def test_corpus_database_arrives_whole(relative: str, tmp_path: Path, target: Target) -> None:
    source = corpus_file(relative, tmp_path)
    exit_code, rejected = CORPUS_FILES[relative]
    result = migrate(target, source, "--report", tmp_path / "report.json")
    assert result.exit_code == exit_code, result.output
    reject_lines = read_jsonl(tmp_path / f"{source.stem}.rejects.jsonl") if rejected else []
    assert len(reject_lines) == rejected
    assert all(line["reason"] and line["table"] for line in reject_lines)
    import json

    assert json.loads((tmp_path / "report.json").read_text())["verified"] is True  # counts and contents
    for table, (rows, bad) in expected_rows(source, target).items():
        columns = ", ".join(f'"{c}"' for c in _target_columns(target, table))
        actual = Counter(tuple(r) for r in target.fetch(f'SELECT {columns} FROM "{target.schema}"."{table}"'))
        assert actual == rows, table
        assert bad == sum(1 for line in reject_lines if line["table"] == table)


def _target_columns(target: Target, table: str) -> list[str]:
    return [r[0] for r in target.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum", f'"{target.schema}"."{table}"')]


def test_chinook_values_keys_and_sequences(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite_AutoIncrementPKs.sqlite", tmp_path)
    assert migrate(target, source).exit_code == 0
    invoice = target.fetch('SELECT "InvoiceDate", "Total", "BillingCity" FROM "Invoice" WHERE "InvoiceId" = 1')[0]
    assert invoice["InvoiceDate"] == datetime(2021, 1, 1, tzinfo=UTC)
    assert invoice["Total"] == Decimal("1.98")
    assert invoice["BillingCity"] == "Stuttgart"
    assert target.fetchval('SELECT "BirthDate" FROM "Employee" WHERE "EmployeeId" = 1') == datetime(
        1962, 2, 18, tzinfo=UTC)
    constraints = {r[0]: r[1] for r in target.fetch(
        "SELECT conname, contype::text FROM pg_constraint WHERE connamespace = $1::regnamespace", target.schema)}
    assert constraints["PlaylistTrack_pkey"] == "p"  # composite primary key
    assert constraints["Employee_ReportsTo_fkey"] == "f"  # self-reference
    assert constraints["InvoiceLine_InvoiceId_fkey"] == "f"
    assert sum(1 for kind in constraints.values() if kind == "f") == 11
    indexes = {r[0] for r in target.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = $1", target.schema)}
    assert "IFK_TrackAlbumId" in indexes
    # The app's next INSERT without an id gets a fresh one.
    new_id = target.fetchval('INSERT INTO "Artist" ("Name") VALUES ($1) RETURNING "ArtistId"', "New Band")
    assert new_id == 276


def test_views_postgres_accepts_are_created_the_others_listed_with_its_reason(tmp_path: Path,
                                                                             target: Target) -> None:
    import json

    source = corpus_file("pgloader/matviews.sqlite", tmp_path)
    result = migrate(target, source, "--report", tmp_path / "r.json")
    assert result.exit_code == 0
    notes = json.loads((tmp_path / "r.json").read_text())["notes"]
    assert f"view active_products created as {target.schema}.active_products" in notes
    # The view's own query against the migrated table, as SQLite answered it (written out).
    assert sorted(tuple(r) for r in target.fetch("SELECT id, name FROM cheap_products")) == \
        sorted(tuple(r) for r in target.fetch("SELECT id, name FROM products WHERE price < 10.0"))
    assert target.count("active_products") == target.fetchval("SELECT count(*) FROM products WHERE active = 1")

    other = corpus_file("duckdb/unsupported_view.db", tmp_path)
    result = migrate(target, other, "--report", tmp_path / "r2.json")
    notes = json.loads((tmp_path / "r2.json").read_text())["notes"]
    assert any(n.startswith("view ts not created: PostgreSQL refused its SQL: function unixepoch(") for n in notes)


def test_views_skip_keeps_them_out(tmp_path: Path, target: Target) -> None:
    import json

    source = corpus_file("pgloader/matviews.sqlite", tmp_path)
    result = migrate(target, source, "--views", "skip", "--report", tmp_path / "r.json")
    assert result.exit_code == 0
    notes = json.loads((tmp_path / "r.json").read_text())["notes"]
    assert "skipped active_products: view: not created (--views skip)" in notes
    assert not target.exists("active_products")
