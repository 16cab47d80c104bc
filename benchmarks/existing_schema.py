"""Loading into a schema that already exists (made by `copier plan --sql`, as an ORM's
migration would make it) against loading into an empty database: issue 21's target is
at most 1.1x. Runs alternate (fresh, existing, [before], fresh, ...) so that a machine
whose speed drifts moves both; only the `copier migrate --no-verify` process is timed,
not the schema's reset.

    python benchmarks/existing_schema.py --rows 300000 --runs 5 [--before DIR] [--django]

--before DIR: also time the existing-schema run with the copier package in DIR (e.g. a
`git archive` of the commit before the set-aside path), for today's-path figures.
--django: the source is the Django test project's (tests/projects/djangoshop) SQLite file
with its orders grown to --rows (copies of the rows Django wrote, so in Django's storage
forms), and the existing schema is the one its `manage.py migrate` makes on PostgreSQL
(then loaded with --if-exists truncate: the migration writes rows of its own).
--alembic: the same with the SQLAlchemy/Alembic test project (tests/projects/alembicshop):
its products grown to --rows, the schema made by its `alembic upgrade head` on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from copier.bench.data import generate

SCHEMA = "bench"
DJANGO = Path(__file__).resolve().parents[1] / "tests" / "projects" / "djangoshop"
ALEMBIC = Path(__file__).resolve().parents[1] / "tests" / "projects" / "alembicshop"


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


def _django_source(directory: Path, rows: int) -> tuple[Path, Path]:
    """The project's SQLite file after its app-data step, orders grown to `rows`."""
    project = Path(shutil.copytree(DJANGO, directory / "djangoshop"))
    source = directory / "shop.db"
    subprocess.run([sys.executable, str(project / "run.py"), "app-data"], check=True, cwd=project,
                   env={**os.environ, "SHOP_SQLITE": str(source)})
    with sqlite3.connect(source) as connection:
        connection.execute(
            "INSERT INTO shop_order (customer_id, total, placed, note) "
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "SELECT o.customer_id, o.total, o.placed, o.note FROM n JOIN shop_order o ON o.id = 1 + n.i % 100",
            (rows - 100,))
    return source, project


def _alembic_source(directory: Path, rows: int) -> tuple[Path, Path]:
    """The Alembic project's SQLite file after its app-data step, products grown to `rows`."""
    project = Path(shutil.copytree(ALEMBIC, directory / "alembicshop"))
    source = directory / "shop.db"
    subprocess.run([sys.executable, str(project / "run.py"), "app-data"], check=True, cwd=project,
                   env={**os.environ, "SHOP_SQLITE": str(source)})
    with sqlite3.connect(source) as connection:
        connection.execute(
            "INSERT INTO product (category_id, name, price, created, active) "
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "SELECT p.category_id, p.name, p.price, p.created, p.active FROM n JOIN product p ON p.id = 1 + n.i % 50",
            (rows - 50,))
    return source, project


def _alembic_schema(project: Path, dsn: str) -> None:
    subprocess.run([sys.executable, str(project / "run.py"), "upgrade"], check=True, cwd=project,
                   env={**os.environ, "SHOP_DB": "postgres", "SHOP_PG_DSN": dsn, "SHOP_PG_SCHEMA": SCHEMA})


def _django_schema(project: Path, dsn: str) -> None:
    subprocess.run([sys.executable, str(project / "run.py"), "migrate"], check=True, cwd=project,
                   env={**os.environ, "SHOP_DB": "postgres", "SHOP_PG_DSN": dsn, "SHOP_PG_SCHEMA": SCHEMA})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--before", type=Path, help="a checkout of copier whose existing-schema path to time too")
    parser.add_argument("--django", action="store_true", help="the Django project's data and migrate-made schema")
    parser.add_argument("--alembic", action="store_true", help="the Alembic project's data and upgrade-made schema")
    args = parser.parse_args()
    database = f"copier_bench_existing_{os.getpid()}"
    dsn = args.server.rsplit("/", 1)[0] + "/" + database
    asyncio.run(_execute(args.server, f'CREATE DATABASE "{database}"'))
    try:
        with tempfile.TemporaryDirectory() as directory:
            reset = f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; DROP SCHEMA IF EXISTS copier CASCADE"
            if args.django:
                source, project = _django_source(Path(directory), args.rows)

                def existing_schema() -> None:
                    asyncio.run(_execute(dsn, f"{reset}; CREATE SCHEMA {SCHEMA}"))
                    _django_schema(project, dsn)
                into = ("--if-exists", "truncate")
            elif args.alembic:
                source, project = _alembic_source(Path(directory), args.rows)

                def existing_schema() -> None:
                    asyncio.run(_execute(dsn, f"{reset}; CREATE SCHEMA {SCHEMA}"))
                    _alembic_schema(project, dsn)
                into = ("--if-exists", "truncate", "--exclude", "alembic_version")
            else:
                source = Path(directory) / "finance.db"
                generate(source, args.rows)
                ddl = subprocess.run([sys.executable, "-m", "copier", "plan", str(source), "--sql", "--schema",
                                      SCHEMA], capture_output=True, text=True, check=True).stdout

                def existing_schema() -> None:
                    asyncio.run(_execute(dsn, f"{reset}; {ddl}"))
                into = ()
            times: dict[str, list[float]] = {"fresh": [], "existing": [], "existing, before": []}
            for _run in range(args.runs):
                asyncio.run(_execute(dsn, reset))
                times["fresh"].append(_copier(source, dsn))
                existing_schema()
                times["existing"].append(_copier(source, dsn, *into))
                if args.before:
                    existing_schema()
                    times["existing, before"].append(_copier(source, dsn, *into, path=str(args.before)))
    finally:
        asyncio.run(_execute(args.server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    fresh = statistics.median(times["fresh"])
    what = ("Django shop orders" if args.django else "Alembic shop products" if args.alembic
            else "transactions (finance shape)")
    print(f"{args.rows:,} {what}, median of {args.runs}, copier migrate --no-verify")
    print("| into | wall s (median) | min–max | × empty database |")
    print("|---|---:|---:|---:|")
    for name, seconds in times.items():
        if seconds:
            print(f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f}–{max(seconds):.2f} | "
                  f"{statistics.median(seconds) / fresh:.2f} |")


if __name__ == "__main__":
    main()
