"""Loading into a schema that already exists (made by `copier plan --sql`, as an ORM's
migration would make it) against loading into an empty database: issue 21's target is
at most 1.1x. Runs alternate (fresh, existing, [before], fresh, ...) so that a machine
whose speed drifts moves both; only the `copier migrate --no-verify` process is timed,
not the schema's reset.

    python benchmarks/existing_schema.py --rows 300000 --runs 5 [--before DIR]

--before DIR: also time the existing-schema run with the copier package in DIR (e.g. a
`git archive` of the commit before the set-aside path), for today's-path figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from copier.bench.data import generate

SCHEMA = "bench"


async def _execute(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _copier(source: Path, dsn: str, *extra: str, path: str | None = None) -> float:
    env = {**os.environ, **({"PYTHONPATH": path} if path else {})}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", dsn, "--schema", SCHEMA,
                           "--no-verify", "--quiet", *extra], env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"copier failed ({done.returncode}): {done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--before", type=Path, help="a checkout of copier whose existing-schema path to time too")
    args = parser.parse_args()
    database = f"copier_bench_existing_{os.getpid()}"
    dsn = args.server.rsplit("/", 1)[0] + "/" + database
    asyncio.run(_execute(args.server, f'CREATE DATABASE "{database}"'))
    try:
        with tempfile.TemporaryDirectory() as directory:
            source = Path(directory) / "finance.db"
            generate(source, args.rows)
            ddl = subprocess.run([sys.executable, "-m", "copier", "plan", str(source), "--sql", "--schema", SCHEMA],
                                 capture_output=True, text=True, check=True).stdout
            reset = f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; DROP SCHEMA IF EXISTS copier CASCADE"
            times: dict[str, list[float]] = {"fresh": [], "existing": [], "existing, before": []}
            for _run in range(args.runs):
                asyncio.run(_execute(dsn, reset))
                times["fresh"].append(_copier(source, dsn))
                asyncio.run(_execute(dsn, f"{reset}; {ddl}"))
                times["existing"].append(_copier(source, dsn))
                if args.before:
                    asyncio.run(_execute(dsn, f"{reset}; {ddl}"))
                    times["existing, before"].append(_copier(source, dsn, path=str(args.before)))
    finally:
        asyncio.run(_execute(args.server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    fresh = statistics.median(times["fresh"])
    print(f"{args.rows:,} transactions (finance shape), median of {args.runs}, copier migrate --no-verify")
    print("| into | wall s (median) | min–max | × empty database |")
    print("|---|---:|---:|---:|")
    for name, seconds in times.items():
        if seconds:
            print(f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f}–{max(seconds):.2f} | "
                  f"{statistics.median(seconds) / fresh:.2f} |")


if __name__ == "__main__":
    main()
