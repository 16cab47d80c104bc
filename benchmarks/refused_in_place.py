"""Rows a set-aside table's definitions refuse (issue 24): a table of --rows rows, --bad of
them sharing a UNIQUE column's value with the row before and --bad failing a CHECK, loaded
into an existing schema (its constraints set aside, made again after the load), against the
same table without bad rows. Runs alternate (clean, bad, [before]) so that a machine whose
speed drifts moves all; only the `copier migrate --no-verify` process is timed, not the
schema's reset. Each bad run says whether the table was loaded again.

    python benchmarks/refused_in_place.py --dsn URL --rows 200000 --bad 2000 --runs 3 \
        [--append 40000] [--lane exact] [--before DIR] [--key expression | --key no-rowid]

--append N: the table holds N rows first (ids past --rows, 100 of them holding a code a
loaded row has too) and the load is an --if-exists append; else --if-exists truncate.
--key expression: the codes are unique by a unique index on lower(code), not a UNIQUE
constraint; --key no-rowid: the SQLite table has no INTEGER PRIMARY KEY (its id a plain
column), so no target column holds the rowid.
--before DIR: also time the bad run with the copier package in DIR (e.g. a `git archive`
of the commit before), for its figures.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import asyncpg

SCHEMA = "bench_refused"


def source(path: Path, rows: int, bad: int, key: str = "plain") -> Path:
    """item(id, code, qty, note): every rows // bad-th row takes the code of the row before,
    and as many others a negative qty."""
    connection = sqlite3.connect(path)
    id_type = "INTEGER" if key == "no-rowid" else "INTEGER PRIMARY KEY"
    connection.execute(f"CREATE TABLE item (id {id_type}, code TEXT, qty INTEGER, note TEXT)")
    step = rows // bad if bad else rows + 1
    connection.executemany("INSERT INTO item VALUES (?, ?, ?, ?)", (
        (i, f"c{i - 1}" if bad and i % step == 0 else f"c{i}", -1 if bad and i % step == step // 2 else 1 + i % 50,
         f"note {i}") for i in range(1, rows + 1)))
    connection.commit()
    connection.close()
    return path


async def reset(dsn: str, rows: int, append: int, key: str) -> None:
    connection = await asyncpg.connect(dsn)
    unique = (f"; CREATE UNIQUE INDEX item_code ON {SCHEMA}.item (lower(code))" if key == "expression"
              else f"; ALTER TABLE {SCHEMA}.item ADD UNIQUE (code)")
    try:
        await connection.execute(
            f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}; "
            f"CREATE TABLE {SCHEMA}.item (id integer PRIMARY KEY, code text NOT NULL, "
            f"qty integer CHECK (qty > 0), note text){unique}; CREATE INDEX item_note ON {SCHEMA}.item (note); "
            f"INSERT INTO {SCHEMA}.item SELECT i, 'old ' || i, 1, 'old' FROM generate_series({rows + 1}, "
            f"{rows + append}) i; UPDATE {SCHEMA}.item SET code = 'c' || (id - {rows}) WHERE id <= {rows + 100}")
        # A killed run's definitions, recorded for tables dropped since, would be made again first.
        if await connection.fetchval("SELECT to_regclass('copier.definitions') IS NOT NULL"):
            await connection.execute("DELETE FROM copier.definitions WHERE target_schema = $1", SCHEMA)
    finally:
        await connection.close()


def timed(dsn: str, db: Path, args: argparse.Namespace, code: str | None) -> tuple[float, str]:
    anyio.run(reset, dsn, args.rows, args.append, args.key)
    env = {**os.environ, **({"PYTHONPATH": code} if code else {})}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(db), "--dsn", dsn, "--schema", SCHEMA,
                           "--if-exists", "append" if args.append else "truncate", "--no-verify", "--lane", args.lane,
                           "--reject-file", str(db.with_suffix(".rejects.jsonl"))],
                          capture_output=True, text=True, env=env, timeout=3600)
    took = time.monotonic() - started
    assert done.returncode in (0, 3), done.stderr
    return took, "loaded again" if "loading it again" in done.stderr else "in place"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default=os.environ.get("COPIER_DSN"), required=not os.environ.get("COPIER_DSN"))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--bad", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--append", type=int, default=0)
    parser.add_argument("--lane", default="auto")
    parser.add_argument("--before")
    parser.add_argument("--key", choices=["plain", "expression", "no-rowid"], default="plain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clean = source(Path(folder) / "clean.db", args.rows, 0, args.key)
        bad = source(Path(folder) / "bad.db", args.rows, args.bad, args.key)
        times: dict[str, list[float]] = {}
        for run in range(args.runs):
            for name, db, code in [("clean", clean, None), ("bad", bad, None)] + (
                    [("bad, before", bad, args.before)] if args.before else []):
                took, how = timed(args.dsn, db, args, code)
                times.setdefault(name, []).append(took)
                print(f"run {run + 1}, {name}: {took:.2f} s" + ("" if name == "clean" else f" ({how})"), flush=True)
        fresh = statistics.median(times["clean"])
        for name, taken in times.items():
            print(f"{name}: median {statistics.median(taken):.2f} s, {statistics.median(taken) / fresh:.2f}x clean")


if __name__ == "__main__":
    main()
