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
