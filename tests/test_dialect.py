"""SQLite's SQL dialect into PostgreSQL's by sqlglot: views with [bracket] quoting, names
through --identifiers, and what cannot be translated skipped with the reason."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from copier.dialect import Untranslatable, translate_select

from .helpers import corpus_file, sqlite_db
from .pg import Target


def _migrate(source: Path, target: Target, *extra: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn,
                           "--schema", target.schema, "--json", *extra], capture_output=True, text=True, timeout=180,
                          cwd=source.parent)
    report: dict[str, object] = json.loads(done.stdout)
    assert done.returncode == report["exit_code"]
    return report


@pytest.mark.parametrize("identifiers", ["keep", "lower"])
def test_northwinds_bracket_quoted_view_is_created(tmp_path: Path, target: Target, identifiers: str) -> None:
    source = corpus_file("northwind/Northwind_small.sqlite", tmp_path)
    report = _migrate(source, target, "--identifiers", identifiers)
    assert report["exit_code"] == 0
    view = "ProductDetails_V" if identifiers == "keep" else "productdetails_v"
    assert f"view ProductDetails_V created as {target.schema}.{view}" in report["notes"]  # type: ignore[operator]
    # What SQLite answers for the same view (written out from SQLite, not from copier).
    with sqlite3.connect(source) as connection:
        expected = connection.execute("SELECT Id, CategoryDescription, SupplierName FROM ProductDetails_V "
                                      "ORDER BY Id LIMIT 3").fetchall()
    columns = ('"Id", "CategoryDescription", "SupplierName"' if identifiers == "keep"
               else "id, categorydescription, suppliername")
    rows = target.fetch(f'SELECT {columns} FROM "{target.schema}"."{view}" ORDER BY 1 LIMIT 3')
    assert [tuple(r) for r in rows] == expected
    assert target.fetchval(f'SELECT count(*) FROM "{target.schema}"."{view}"') == 77


def test_a_view_sqlglot_cannot_translate_is_skipped_with_the_reason(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "v.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, d TEXT)",
                       "CREATE VIEW epoch AS SELECT id, strftime('%s', d) AS s FROM t",
                       "CREATE VIEW [Year] AS SELECT [id], strftime('%Y', [d]) AS y FROM [t]",
                       rows={"t": [(1, "2024-09-12 10:00:00")]})
    report = _migrate(source, target)
    assert report["exit_code"] == 0
    assert "skipped epoch: view: its SQL cannot be translated to PostgreSQL's: strftime's %s has no to_char " \
           "equivalent" in report["notes"]  # type: ignore[operator]
    assert target.fetch(f'SELECT id, y FROM "{target.schema}"."Year"') == [(1, "2024")]


def test_names_take_the_created_names_and_aliases_keep_one_spelling() -> None:
    sql = "select T.Id, x.Name as Label from [Track] t join `Album` X on x.AlbumId = T.AlbumId order by label"
    names = {"track": "track", "album": "album", "id": "id", "name": "name", "albumid": "album_id"}
    assert translate_select(sql, names, str.lower) == (
        'SELECT "t"."id", "x"."name" AS "label" FROM "track" AS "t" JOIN "album" AS "x" '
        'ON "x"."album_id" = "t"."album_id" ORDER BY "label" NULLS FIRST')  # SQLite sorts NULLs first
    with pytest.raises(Untranslatable):
        translate_select("select from where (", {}, str)


# CHECK constraints, partial indexes and expression defaults (issue 22, item 6). Expected
# PostgreSQL text is what PostgreSQL itself prints back (pg_get_constraintdef, pg_get_indexdef,
# pg_get_expr), written out here.

_SHOP = (
    "CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL CHECK (qty >= 0), "
    "[Name] TEXT CHECK (length([Name]) <= 5), kind TEXT DEFAULT (lower('AB' || 'C')), "
    "token TEXT DEFAULT (lower(hex(randomblob(16)))), stamp TEXT DEFAULT (strftime('%Y', 'now')), "
    "t TEXT CHECK (typeof(t) = 'text'), CONSTRAINT positive_id CHECK (`id` > 0))",
    "CREATE UNIQUE INDEX items_name_live ON items ([Name]) WHERE qty > 0",
    "CREATE INDEX items_with_x ON items (qty) WHERE instr([Name], 'x') > 0",
    "CREATE INDEX items_typed ON items (qty) WHERE typeof(t) = 'text'",
)


def test_checks_are_read_from_the_create_table_statement() -> None:
    from copier.dialect import sqlite_text, table_checks

    checks = table_checks(_SHOP[0])
    assert [(c.name, c.column, sqlite_text(c.expression)) for c in checks] == [
        (None, "qty", "qty >= 0"), (None, "Name", 'LENGTH("Name") <= 5'), (None, "t", "TYPEOF(t) = 'text'"),
        ("positive_id", None, '"id" > 0')]


def test_a_default_reading_now_is_refused_not_fixed_at_creation() -> None:
    from copier.dialect import translate_expression

    with pytest.raises(Untranslatable, match="'now' would be fixed"):
        translate_expression("(strftime('%Y', 'now'))", {}, str)
    assert translate_expression("(lower('AB' || [x]))", {"x": "X"}, str) == "(LOWER('AB' || \"X\"))"


def test_checks_partial_indexes_and_defaults_are_made_in_postgresql(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "shop.db", *_SHOP,
                       rows={"items": [(1, 1, "a", None, None, None, "x"), (2, 0, "a", None, None, None, "y"),
                                       (3, 2, "bx", None, None, None, "z")]})
    report = _migrate(source, target)
    assert report["exit_code"] == 0
    oid = f'"{target.schema}".items'
    checks = {r["conname"]: r["def"] for r in target.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass "
        "AND contype = 'c'", oid)}
    assert checks == {"items_qty_check": "CHECK ((qty >= 0))", "items_Name_check": 'CHECK ((length("Name") <= 5))',
                      "positive_id": "CHECK ((id > 0))"}
    indexes = {r["relname"]: r["def"] for r in target.fetch(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i JOIN pg_class c "
        "ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass AND i.indpred IS NOT NULL", oid)}
    schema = target.schema
    assert indexes == {
        "items_name_live": f'CREATE UNIQUE INDEX items_name_live ON {schema}.items USING btree ("Name") '
                           "WHERE (qty > 0)",
        "items_with_x": f"CREATE INDEX items_with_x ON {schema}.items USING btree (qty) "
                        "WHERE (POSITION(('x'::text) IN (\"Name\")) > 0)"}
    defaults = {r["attname"]: r["def"] for r in target.fetch(
        "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS def FROM pg_attrdef d JOIN pg_attribute a "
        "ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = $1::regclass AND NOT a.attidentity <> ''",
        oid)}
    assert defaults == {"kind": "lower(('AB'::text || 'C'::text))"}
    notes = "\n".join(report["notes"])  # type: ignore[arg-type]
    # What PostgreSQL refused, and the 'now' default, each named with the reason.
    assert "items: check items_t_check (TYPEOF(t) = 'text') not made: PostgreSQL refused its translation " \
           "(TYPEOF(\"t\") = 'text'): function typeof(text) does not exist" in notes
    assert "items: partial index items_typed" in notes and "function typeof(text) does not exist" in notes
    assert "default token (lower(hex(randomblob(16)))) not made" in notes
    assert "items.stamp: default strftime('%Y', 'now') dropped: 'now' would be fixed" in notes
    # The constraints are live: PostgreSQL refuses what SQLite refused.
    with pytest.raises(Exception, match="items_qty_check"):
        target.execute(f'INSERT INTO "{schema}".items (id, qty) VALUES (9, -1)')
    with pytest.raises(Exception, match="items_name_live"):
        target.execute(f'INSERT INTO "{schema}".items (id, qty, "Name") VALUES (9, 5, \'a\')')
    assert target.fetchval(f'INSERT INTO "{schema}".items (id, qty) VALUES (9, 0) RETURNING kind') == "abc"

