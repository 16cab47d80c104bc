"""How the columnar lane's parts were chosen: each candidate on the same 1M transactions,
median of 5, one after the other on this machine. Rerun with

    pip install ".[bench]"
    python benchmarks/parts.py /tmp/bench-data/finance-1000000.db postgresql://postgres@127.0.0.1:5432/postgres

(the file comes from `copier bench --rows 1000000`). Prints a Markdown table.

Readers: SQLite rows to columns, with the lane's own guarded query (a storage-class check per
value). Writers: the same normalised Arrow batches into a fresh PostgreSQL table.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable

import adbc_driver_postgresql.dbapi as adbc_postgres
import adbc_driver_sqlite.dbapi as adbc_sqlite
import apsw
import asyncpg
import pgpq
import pyarrow as pa
import pyarrow.compute as pc

RUNS = 5
COLUMNS = ["account_id:integer", "amount:real", "description:text", "category:text", "posted_at:text",
           "created_at:integer", "pending:integer", "raw:blob"]
GUARDED = "SELECT rowid, " + ", ".join(
    f"CASE typeof({name}) WHEN '{kind}' THEN {name} END" for name, kind in (c.split(":") for c in COLUMNS)
) + " FROM transactions"
DDL = ["DROP TABLE IF EXISTS parts_probe",
       "CREATE TABLE parts_probe (id bigint, account_id bigint, amount numeric(12,2), description text, "
       "category text, posted_at timestamptz, created_at timestamptz, pending boolean, raw bytea)"]


def median_of(measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(RUNS))


def timed(work: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started
    return run


def readers(path: str) -> dict[str, Callable[[], object]]:
    def adbc() -> int:
        with adbc_sqlite.connect(path) as connection, connection.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "8192"})
            cursor.execute(GUARDED)
            return sum(batch.num_rows for batch in cursor.fetch_record_batch())

    def stdlib() -> int:
        connection, rows = sqlite3.connect(path), 0
        cursor = connection.execute(GUARDED)
        while page := cursor.fetchmany(8192):
            pa.RecordBatch.from_arrays([pa.array(column) for column in zip(*page)], names=[str(i) for i in range(9)])
            rows += len(page)
        return rows

    def apsw_rows() -> int:
        connection, rows, page = apsw.Connection(path), 0, []
        for row in connection.execute(GUARDED):
            page.append(row)
            if len(page) == 8192:
                pa.RecordBatch.from_arrays([pa.array(c) for c in zip(*page)], names=[str(i) for i in range(9)])
                rows, page = rows + len(page), []
        return rows + len(page)

    return {"adbc-driver-sqlite `fetch_record_batch`": adbc,
            "sqlite3 `fetchmany`, then `pa.array` per column": stdlib,
            "apsw rows, then `pa.array` per column": apsw_rows}


def normalised(path: str) -> list[pa.RecordBatch]:
    with adbc_sqlite.connect(path) as connection, connection.cursor() as cursor:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "8192"})
        cursor.execute("SELECT * FROM transactions")
        batches = list(cursor.fetch_record_batch())
    names = ["id", "account_id", "amount", "description", "category", "posted_at", "created_at", "pending", "raw"]
    return [pa.RecordBatch.from_arrays([
        b.column(0), b.column(1), b.column(2).cast(pa.string()).cast(pa.decimal128(12, 2)), b.column(3), b.column(4),
        b.column(5).cast(pa.timestamp("us")).cast(pa.timestamp("us", "UTC")),
        pc.multiply(b.column(6), 1_000_000).cast(pa.timestamp("us", "UTC")), pc.not_equal(b.column(7), 0),
        b.column(8)], names=names) for b in batches]


def writers(dsn: str, batches: list[pa.RecordBatch]) -> dict[str, Callable[[], float]]:
    async def with_asyncpg() -> float:
        connection = await asyncpg.connect(dsn)
        for statement in DDL:
            await connection.execute(statement)
        started = time.perf_counter()
        encoder = pgpq.ArrowToPostgresBinaryEncoder(batches[0].schema)

        async def data():  # type: ignore[no-untyped-def]
            yield encoder.write_header()
            for batch in batches:
                yield encoder.write_batch(batch)
            yield encoder.finish()

        await connection.copy_to_table("parts_probe", source=data(), format="binary")
        elapsed = time.perf_counter() - started
        await connection.close()
        return elapsed

    def with_adbc() -> float:
        with adbc_postgres.connect(dsn) as connection:
            with connection.cursor() as cursor:
                for statement in DDL:
                    cursor.execute(statement)
            connection.commit()
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.adbc_ingest("parts_probe", pa.RecordBatchReader.from_batches(batches[0].schema, batches),
                                   mode="append")
            connection.commit()
            return time.perf_counter() - started

    def encode_only() -> float:
        started = time.perf_counter()
        encoder = pgpq.ArrowToPostgresBinaryEncoder(batches[0].schema)
        encoder.write_header()
        for batch in batches:
            encoder.write_batch(batch)
        encoder.finish()
        return time.perf_counter() - started

    def through_asyncpg() -> float:
        return asyncio.run(with_asyncpg())

    return {"pgpq encoder, bytes through asyncpg `copy_to_table(format=\"binary\")`": through_asyncpg,
            "adbc-driver-postgresql `adbc_ingest`": with_adbc,
            "(pgpq's encoding alone, no server)": encode_only}


def main(path: str, dsn: str) -> None:
    print(f"| reader (1M rows, guarded query, one thread) | median of {RUNS}, s |\n|---|---:|")
    for name, work in readers(path).items():
        print(f"| {name} | {median_of(timed(work)):.2f} |")
    batches = normalised(path)
    print(f"\n| writer (1M normalised rows into a fresh table) | median of {RUNS}, s |\n|---|---:|")
    for name, measure in writers(dsn, batches).items():
        print(f"| {name} | {median_of(measure):.2f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
