"""The non-copier methods `copier bench` measures, each run in its own process so that
wall time and memory are its own: `python -m copier.bench.methods ceiling|duckdb ...`.

- ceiling: PostgreSQL's own binary COPY FROM of the same rows (exported once with
  COPY TO in binary format) into empty tables without keys: the physical limit.
- duckdb: DuckDB's sqlite and postgres extensions, CREATE TABLE pg.t AS SELECT * FROM lite.t
  (no keys, no constraints, DuckDB's own typing).
- duckdb+keys: the same, then the primary keys, indexes and foreign keys copier builds
  (its own DDL, run in order over one connection): the work copier does, but DuckDB's typing.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import asyncpg


async def ceiling(dsn: str, spec: dict[str, Any]) -> None:
    """spec: {"schema": ..., "tables": [{"name", "ddl", "file"}]}."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{spec["schema"]}"')
        for table in spec["tables"]:
            async with connection.transaction():
                await connection.execute(table["ddl"])
                await connection.copy_to_table(table["name"], source=table["file"], format="binary",
                                               schema_name=spec["schema"])
    finally:
        await connection.close()


def extension_path(package: str, name: str) -> str:
    """The .duckdb_extension file a duckdb-extension-* wheel ships, for an offline LOAD."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise SystemExit(f"{package} is not installed")
    for candidate in Path(list(found.submodule_search_locations)[0]).rglob(f"{name}.duckdb_extension"):
        return str(candidate)
    raise SystemExit(f"no {name}.duckdb_extension in {package}")


def duckdb_copy(sqlite_path: str, dsn: str) -> None:
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"LOAD '{extension_path('duckdb_extension_sqlite_scanner', 'sqlite_scanner')}'")
    connection.execute(f"LOAD '{extension_path('duckdb_extension_postgres_scanner', 'postgres_scanner')}'")
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    connection.execute(f"ATTACH {literal(sqlite_path)} AS lite (TYPE sqlite, READ_ONLY)")
    connection.execute(f"ATTACH {literal(dsn)} AS pg (TYPE postgres)")
    # SQLite's own tables (sqlite_sequence, which AUTOINCREMENT makes, sqlite_stat1) are not
    # data: copier leaves them out too.
    tables = [r[0] for r in connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lite' "
        "AND NOT starts_with(table_name, 'sqlite_')").fetchall()]
    for table in tables:
        quoted = '"' + table.replace('"', '""') + '"'
        connection.execute(f"CREATE TABLE pg.public.{quoted} AS SELECT * FROM lite.{quoted}")
    connection.close()


async def add_keys(dsn: str, statements: list[str]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def main(argv: list[str]) -> None:
    method, *args = argv
    if method == "ceiling":
        anyio.run(ceiling, args[0], json.loads(Path(args[1]).read_text()))
    elif method == "duckdb":
        duckdb_copy(args[0], args[1])
    elif method == "duckdb+keys":
        duckdb_copy(args[0], args[1])
        anyio.run(add_keys, args[1], json.loads(Path(args[2]).read_text()))
    else:
        raise SystemExit(f"unknown method {method}")


if __name__ == "__main__":
    main(sys.argv[1:])
