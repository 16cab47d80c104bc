"""Progress recorded in the target, so that an interrupted run can be resumed: one row per
table in copier.tables (or --state-schema's), with the fingerprints of the source and of the plan it was loaded
under. A table's 'loaded' row commits in the same transaction as its data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import asyncpg

from .ident import qualified, quote_ident
from .planning import MigrationPlan
from .resume import TableState
from .settings import Settings
from .stats import TableStatus

# Where progress is recorded (--state-schema): a schema of its own, "copier" by default.
STATE_SCHEMA = "copier"

_CREATE = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
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
);
-- The reject file the run wrote (absolute path), for --resume and copier verify; added
-- after the first release, hence also ALTER for a state table an earlier copier made.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS reject_file text
"""

_UPSERT = """
INSERT INTO {table} AS t (target_schema, source_table, target_table, status, created, rows_source,
                                source_path, source_fingerprint, plan_fingerprint, reject_file)
VALUES ($1, $2, $3, 'planned', $4, $5, $6, $7, $8, $9)
ON CONFLICT (target_schema, source_table) DO UPDATE SET
    target_table = excluded.target_table, status = 'planned', created = excluded.created,
    rows_source = excluded.rows_source, rows_written = NULL, rows_rejected = NULL,
    source_path = excluded.source_path, source_fingerprint = excluded.source_fingerprint,
    plan_fingerprint = excluded.plan_fingerprint, error = NULL, updated_at = now(),
    reject_file = excluded.reject_file
"""

_SET_STATUS = """
UPDATE {table} SET status = $3, rows_written = coalesce($4, rows_written),
       rows_rejected = coalesce($5, rows_rejected), error = $6, updated_at = now()
WHERE target_schema = $1 AND source_table = $2
"""

_READ = """
SELECT target_schema, source_table, target_table, status, created, rows_source, rows_written, rows_rejected,
       source_path, source_fingerprint, plan_fingerprint, error, updated_at, {reject_file}
FROM {table} WHERE $1::text IS NULL OR target_schema = $1 ORDER BY target_schema, source_table
"""


def plan_fingerprint(plan: MigrationPlan, settings: Settings) -> str:
    """What decides which values land where: tables, columns, types and value flags."""
    document = {
        "tables": [[t.name, t.target, t.create, [[c.source, c.target, c.type.sql] for c in t.columns]
                    + [[c.source, c.target, c.type.sql, "generated"] for c in t.generated]]
                   for t in plan.tables],
        "values": [settings.source_tz, settings.strip_nul, list(settings.casts), settings.on_error.value],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def _sql(template: str, state_schema: str, reject_file: str = "reject_file") -> str:
    return template.format(schema=quote_ident(state_schema), table=qualified(state_schema, "tables"),
                           reject_file=reject_file)


async def _exists(connection: asyncpg.Connection, state_schema: str) -> bool:
    return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified(state_schema, "tables")))


async def forget(connection: asyncpg.Connection, schema: str, state_schema: str = STATE_SCHEMA) -> int:
    """Remove what the state table records for `schema`, and the state schema itself once
    it records nothing. Returns the rows removed."""
    if not await _exists(connection, state_schema):
        return 0
    table = qualified(state_schema, "tables")
    removed = int((await connection.execute(f"DELETE FROM {table} WHERE target_schema = $1", schema)).split()[-1])
    # Not while it records a user's index or constraint set aside and not made again (existing.py).
    set_aside = qualified(state_schema, "definitions")
    holds_set_aside = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", set_aside) and \
        await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {set_aside})")
    if not holds_set_aside and not await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
        await connection.execute(f"DROP SCHEMA {quote_ident(state_schema)} CASCADE")
    return removed


async def ensure(connection: asyncpg.Connection, state_schema: str = STATE_SCHEMA) -> None:
    await connection.execute(_sql(_CREATE, state_schema))


async def read(connection: asyncpg.Connection, schema: str | None,
               state_schema: str = STATE_SCHEMA) -> list[TableState]:
    try:
        if not await _exists(connection, state_schema):
            return []
        # A state table an earlier copier made has no reject_file column until a migrate adds it.
        has_reject_file = await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'reject_file' "
            "AND NOT attisdropped)", qualified(state_schema, "tables"))
        sql = _sql(_READ, state_schema, "reject_file" if has_reject_file else "NULL::text AS reject_file")
        return [TableState(**{**dict(row), "status": TableStatus(row["status"])})
                for row in await connection.fetch(sql, schema)]
    except asyncpg.InsufficientPrivilegeError:
        return []  # another user's runs: this one cannot resume them anyway


async def record_plan(connection: asyncpg.Connection, plan: MigrationPlan, created: dict[str, bool],
                      source_path: str, source_fp: str, plan_fp: str, state_schema: str = STATE_SCHEMA,
                      reject_file: str | None = None) -> None:
    await connection.executemany(_sql(_UPSERT, state_schema), [
        (plan.schema, t.name, t.target, created[t.name], t.source.row_count, source_path, source_fp, plan_fp,
         reject_file) for t in plan.tables])


async def set_status(connection: asyncpg.Connection, schema: str, table: str, status: TableStatus, *,
                     written: int | None = None, rejected: int | None = None, error: str | None = None,
                     state_schema: str = STATE_SCHEMA) -> None:
    await connection.execute(_sql(_SET_STATUS, state_schema), schema, table, status.value, written, rejected, error)


async def set_statuses(connection: asyncpg.Connection, schema: str,
                       tables: Sequence[tuple[str, TableStatus, int | None, int | None]],
                       state_schema: str = STATE_SCHEMA) -> None:
    """set_status for many tables at once: (table, status, written, rejected) each."""
    await connection.executemany(_sql(_SET_STATUS, state_schema), [
        (schema, table, status.value, written, rejected, None) for table, status, written, rejected in tables])
