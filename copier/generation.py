"""Whether PostgreSQL computes a translated generated column as SQLite does, asked before
the load, since PostgreSQL 15 cannot make a loaded column generated afterwards.

Each generated column the plan translated (planning._plan_generated) is made in a
temporary table, in a transaction that is rolled back (nothing is left behind), and that
table is filled with the first rows of the source. The column stays generated only if
PostgreSQL accepts the expression (it must be immutable and its functions must exist) and
computes SQLite's value for every row of that sample; otherwise it is loaded as a plain
column holding SQLite's values, with a note saying why. A sample, not the whole table:
the question is asked before every load and `plan`, and must cost the same for a table of
a billion rows; the rows past the sample are compared by verify, which fails (exit 4)
where PostgreSQL computed another value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import asyncpg

from . import source
from .casting import Kind
from .faults import describe_pg_error
from .ident import quote_ident
from .lanes import Lane
from .normalise import Options, convert_page, converter_for
from .planning import ColumnPlan, MigrationPlan, TablePlan, plain_again

# Rows of each table whose computed values are compared with SQLite's before the load.
SAMPLE_ROWS = 2_000
# A new name for each temporary table: asyncpg's COPY learns the column types from a
# statement it caches by its text, which must not find an earlier table's types.
_TEMPORARY = (f"copier_generated_{n}" for n in itertools.count())


async def settle(connection: asyncpg.Connection, path: Path, plan: MigrationPlan, options: Options, lane: Lane,
                 busy_timeout: float | None = None) -> MigrationPlan:
    """The plan with each generated column PostgreSQL refuses, or computes otherwise than
    SQLite on the sample, made a plain column (with a note under the plan's notes)."""
    tables: list[TablePlan] = []
    notes: list[str] = []
    for table in plan.tables:
        if not (table.create and table.generated):
            tables.append(table)
            continue
        columns = [*table.columns, *table.generated]
        rows = await source.first_rows(path, table.source, [c.source for c in columns], SAMPLE_ROWS, busy_timeout)
        # Rows with a value that cannot convert are rejected by the load anyway: left out.
        page = convert_page([(n, *row) for n, row in enumerate(rows)],
                            [converter_for(c.type, options) for c in columns], 1)
        why: dict[str, str] = {}
        for position, column in enumerate(table.generated, len(table.columns)):
            sample = [(*record[:len(table.columns)], record[position]) for record in page.records]
            reason = await _disagreement(connection, table, column, sample)
            if reason is not None:
                why[column.source] = reason
        settled, more = plain_again(table, why, lane)
        tables.append(settled)
        notes += more
    if not notes:
        return replace(plan, tables=tuple(tables))
    return replace(plan, tables=tuple(tables), notes=(*plan.notes, *notes))


async def _disagreement(connection: asyncpg.Connection, table: TablePlan, column: ColumnPlan,
                        sample: Sequence[tuple[object, ...]]) -> str | None:
    """Why the column cannot be generated in PostgreSQL (None: it can), from a temporary
    table of the loaded columns, the generated one and SQLite's values beside it."""
    taken = {c.target for c in table.columns} | {column.target}
    expected = next(n for n in (f"copier_sqlite_{i}" for i in range(len(taken) + 1)) if n not in taken)
    definitions = [f"{quote_ident(c.target)} {c.type.sql}" for c in table.columns]
    definitions += [f"{quote_ident(column.target)} {column.type.sql} GENERATED ALWAYS AS ({column.generated}) STORED",
                    f"{quote_ident(expected)} {column.type.sql}"]
    # json has no equality operator: compared as jsonb, which ignores only spacing and key order.
    computed, wanted = (f"{quote_ident(column.target)}::jsonb", f"{quote_ident(expected)}::jsonb") \
        if column.type.kind is Kind.JSON else (quote_ident(column.target), quote_ident(expected))
    temporary = next(_TEMPORARY)
    transaction = connection.transaction()
    await transaction.start()
    try:
        try:
            await connection.execute(f"CREATE TEMPORARY TABLE pg_temp.{temporary} ({', '.join(definitions)})")
        except asyncpg.PostgresError as exc:
            return f"PostgreSQL refuses GENERATED ALWAYS AS ({column.generated}): {describe_pg_error(exc)}"
        try:
            await connection.copy_records_to_table(temporary, schema_name="pg_temp", records=sample,
                                                   columns=[*(c.target for c in table.columns), expected])
        except asyncpg.PostgresError as exc:
            return f"PostgreSQL fails to compute {column.generated} for a source row: {describe_pg_error(exc)}"
        differing = await connection.fetchrow(
            f"SELECT count(*) OVER () AS n, {quote_ident(column.target)}::text AS computed, "
            f"{quote_ident(expected)}::text AS sqlite FROM pg_temp.{temporary} "
            f"WHERE {computed} IS DISTINCT FROM {wanted} LIMIT 1")
    finally:
        await transaction.rollback()
    if differing is None:
        return None
    return (f"PostgreSQL computes other values than SQLite's {column.sqlite or column.generated} "
            f"in {differing['n']:,} of the first {len(sample):,} rows "
            f"(e.g. {_shown(differing['computed'])} where SQLite has {_shown(differing['sqlite'])})")


def _shown(value: str | None) -> str:
    if value is None:
        return "NULL"
    return repr(value if len(value) <= 40 else value[:37] + "...")
