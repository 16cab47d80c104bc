"""Progress recorded in the target, so that an interrupted run can be resumed: one row per
table in copier.tables, with the fingerprints of the source and of the plan it was loaded
under. A table's 'loaded' row commits in the same transaction as its data."""

from __future__ import annotations

import hashlib
import json

import asyncpg

from .planning import MigrationPlan
from .resume import TableState
from .settings import Settings
from .stats import TableStatus

_CREATE = """
CREATE SCHEMA IF NOT EXISTS copier;
CREATE TABLE IF NOT EXISTS copier.tables (
    target_schema text NOT NULL,
    source_table text NOT NULL,
    target_table text NOT NULL,
    status text NOT NULL,
    created boolean NOT NULL,
    rows_source bigint,
    rows_written bigint,
    rows_rejected bigint,
    source_path text,
    source_fingerprint text NOT NULL,
    plan_fingerprint text NOT NULL,
    error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_schema, source_table)
)
"""

_UPSERT = """
INSERT INTO copier.tables AS t (target_schema, source_table, target_table, status, created, rows_source,
                                source_path, source_fingerprint, plan_fingerprint)
VALUES ($1, $2, $3, 'planned', $4, $5, $6, $7, $8)
ON CONFLICT (target_schema, source_table) DO UPDATE SET
    target_table = excluded.target_table, status = 'planned', created = excluded.created,
    rows_source = excluded.rows_source, rows_written = NULL, rows_rejected = NULL,
    source_path = excluded.source_path, source_fingerprint = excluded.source_fingerprint,
    plan_fingerprint = excluded.plan_fingerprint, error = NULL, updated_at = now()
"""

_SET_STATUS = """
UPDATE copier.tables SET status = $3, rows_written = coalesce($4, rows_written),
       rows_rejected = coalesce($5, rows_rejected), error = $6, updated_at = now()
WHERE target_schema = $1 AND source_table = $2
"""

_READ = """
SELECT target_schema, source_table, target_table, status, created, rows_source, rows_written, rows_rejected,
       source_path, source_fingerprint, plan_fingerprint, error, updated_at
FROM copier.tables WHERE $1::text IS NULL OR target_schema = $1 ORDER BY target_schema, source_table
"""


def plan_fingerprint(plan: MigrationPlan, settings: Settings) -> str:
    """What decides which values land where: tables, columns, types and value flags."""
    document = {
        "tables": [[t.name, t.target, t.create, [[c.source, c.target, c.type.sql] for c in t.columns]]
                   for t in plan.tables],
        "values": [settings.source_tz, settings.strip_nul, list(settings.casts), settings.on_error.value],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


async def forget(connection: asyncpg.Connection, schema: str) -> int:
    """Remove what the state table records for `schema`, and the state schema itself once
    it records nothing. Returns the rows removed."""
    if not await connection.fetchval("SELECT to_regclass('copier.tables') IS NOT NULL"):
        return 0
    removed = int((await connection.execute("DELETE FROM copier.tables WHERE target_schema = $1", schema)).split()[-1])
    if not await connection.fetchval("SELECT EXISTS (SELECT 1 FROM copier.tables)"):
        await connection.execute("DROP SCHEMA copier CASCADE")
    return removed


async def ensure(connection: asyncpg.Connection) -> None:
    await connection.execute(_CREATE)


async def read(connection: asyncpg.Connection, schema: str | None) -> list[TableState]:
    try:
        if not await connection.fetchval("SELECT to_regclass('copier.tables') IS NOT NULL"):
            return []
        return [TableState(**{**dict(row), "status": TableStatus(row["status"])})
                for row in await connection.fetch(_READ, schema)]
    except asyncpg.InsufficientPrivilegeError:
        return []  # another user's runs: this one cannot resume them anyway


async def record_plan(connection: asyncpg.Connection, plan: MigrationPlan, created: dict[str, bool],
                      source_path: str, source_fp: str, plan_fp: str) -> None:
    await connection.executemany(_UPSERT, [
        (plan.schema, t.name, t.target, created[t.name], t.source.row_count, source_path, source_fp, plan_fp)
        for t in plan.tables])


async def set_status(connection: asyncpg.Connection, schema: str, table: str, status: TableStatus, *,
                     written: int | None = None, rejected: int | None = None, error: str | None = None) -> None:
    await connection.execute(_SET_STATUS, schema, table, status.value, written, rejected, error)
