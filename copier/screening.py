"""Rows PostgreSQL refuses, found set-wise instead of one probe at a time: a refused page is
copied into a constraint-free temporary table, the rows breaking the table's rules are
marked there by a few set queries (constraints.py writes them), and the rest go into the
target by one INSERT ... SELECT. A few statements a page, whatever its bad rows, where
bisection costs a COPY or two per bad row.

The INSERT is a probe (in a savepoint): if PostgreSQL still refuses a row (a trigger, an
exclusion constraint, a type error, any rule the model leaves out), nothing of the page is
written here and the caller bisects it as before, so a result never rests on the model
being complete."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from . import constraints
from .constraints import IndexKey, Rules
from .faults import ended_if_lost, is_row_error
from .ident import MAX_IDENTIFIER_BYTES, qualified, quote_ident
from .normalise import Value
from .rebuild import Definition, DefinitionKind

# Refused rows read per round trip of the cursor (asyncpg's default, 50, costs a round trip
# per 50 rows of an append rerun, where every row is refused).
REFUSED_PREFETCH = 5_000


# For the rest of the table's transaction.
WHOLE_TABLE_WORK_MEM = ("SELECT set_config('work_mem', '65536kB', true) FROM pg_settings "
                        "WHERE name = 'work_mem' AND setting::bigint < 65536")


@dataclass(frozen=True, slots=True)
class Refused:
    index: int  # the row's place in its page
    column: str | None  # the column PostgreSQL would name (a NULL in a NOT NULL column)
    reason: str


@dataclass(frozen=True, slots=True)
class Screened:
    written: int
    refused: list[Refused]


class Screen:
    """One table's screening over one connection: its rules, read from the catalog once, and
    its staging table. `row`: the staging column that orders and names the rows (ROW, each
    row's place in its page; or a loaded column holding the row's key, for a whole table)."""

    def __init__(self, connection: asyncpg.Connection, rules: Rules, loaded: Sequence[str],
                 row: str = constraints.ROW) -> None:
        self.connection, self.rules, self.loaded, self.row = connection, rules, list(loaded), row
        self.staging = ("_copier_screen_" + hashlib.sha1(f"{rules.schema}.{rules.table}".encode()).hexdigest()[:16])
        assert len(self.staging) <= MAX_IDENTIFIER_BYTES

    @classmethod
    async def of(cls, connection: asyncpg.Connection, schema: str, table: str, loaded: Sequence[str],
                 row: str = constraints.ROW) -> Screen:
        name = qualified(schema, table)
        not_null = [r[0] for r in await connection.fetch(constraints.NOT_NULL_COLUMNS, name)]
        found = [dict(r) for r in await connection.fetch(constraints.CONSTRAINTS, name)]
        indexes = [dict(r) for r in await connection.fetch(constraints.UNIQUE_INDEXES, name)]
        return cls(connection, constraints.rules_of(schema, table, loaded, not_null, found, indexes), loaded, row)

    async def create_staging(self) -> None:
        """The staging table, empty (created, or emptied, in the caller's transaction)."""
        await self.connection.execute(constraints.create_staging(self.rules.schema, self.rules.table, self.staging,
                                                                 self.loaded, self.row))

    async def _stage_page(self, records: Sequence[tuple[Value, ...]]) -> None:
        await self.create_staging()
        async with ended_if_lost(self.connection):
            await self.connection.copy_records_to_table(
                self.staging, records=[(i, *r) for i, r in enumerate(records)],
                columns=[constraints.ROW, *self.loaded], schema_name="pg_temp")

    async def page(self, records: Sequence[tuple[Value, ...]]) -> Screened | None:
        """Write the rows of `records` the table accepts; the others come back with their
        reasons. None: PostgreSQL refused what the model let through (or refused a value
        in the staging table itself): nothing was written, bisect the page."""
        connection = self.connection
        await connection.execute("SAVEPOINT copier_screen")
        try:
            await self._stage_page(records)
            written = await self._settle()
        except Exception as exc:
            if not is_row_error(exc):
                raise  # the table's transaction is lost anyway
            if connection.is_in_transaction() and not connection.is_closed():
                await connection.execute("ROLLBACK TO SAVEPOINT copier_screen; RELEASE SAVEPOINT copier_screen")
            return None
        # Released, not rolled back: its lock on its transaction id goes with the release.
        await connection.execute("RELEASE SAVEPOINT copier_screen")
        refused = [Refused(row[0], row[2], row[1])
                   for row in await connection.fetch(constraints.refused_rows(self.staging))]
        return Screened(written, refused)

    async def staged(self) -> int:
        """The rows the caller put in the staging table (create_staging; a whole table, its
        keys in `row`): those the table accepts go into it; returns how many. Raises the
        row error PostgreSQL refused them with, in the caller's savepoint, when the model
        let through a row PostgreSQL refuses (nothing is written then)."""
        # A whole table: statistics, or the planner takes the staged rows for a few and probes
        # the target's index once a row (an append rerun: a million probes, not one hash join);
        # and room for that hash (of the target's keys: 55 MB at 1M rows) in memory, not in
        # 8 batches on disk at the default 4 MB (a setting the user made higher stays).
        await self.connection.execute(f"ANALYZE pg_temp.{quote_ident(self.staging)};\n{WHOLE_TABLE_WORK_MEM}")
        return await self._settle()

    async def refused(self) -> AsyncIterator[list[tuple[object, str | None, str]]]:
        """(key, column, reason) of each row refused, in their order, a batch at a time (a
        cursor: a whole table's may be many); inside the caller's transaction."""
        async for batch in _batches(self.connection, constraints.refused_rows(self.staging, self.row)):
            yield [(key, column, reason) for key, reason, column in batch]

    async def mark_for_upsert(self) -> None:
        """Mark the rows the caller staged (create_staging) that the table refuses whatever
        it holds (NOT NULL, checks, foreign keys), for an upsert: its ON CONFLICT settles
        their primary key, so unique keys are left to it."""
        await self.connection.execute(f"ANALYZE pg_temp.{quote_ident(self.staging)};\n{WHOLE_TABLE_WORK_MEM}")
        await self._mark(uniques=False)

    async def any_refused(self) -> bool:
        """Whether a row staged is marked refused (mark_for_upsert)."""
        return bool(await self.connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM pg_temp.{quote_ident(self.staging)} "
                                                   f"WHERE {constraints.REFUSED} IS NOT NULL)"))

    async def page_for_upsert(self, records: Sequence[tuple[Value, ...]], into: str) -> list[Refused]:
        """For an upsert whose rows no loaded column names: the rows of `records` the table
        refuses whatever it holds (as mark_for_upsert), with their reasons; the others are
        appended, in their order, to the temporary table `into` (the loaded columns), which
        the caller upserts from."""
        await self._stage_page(records)
        await self._mark(uniques=False)
        await self.connection.execute(constraints.insert_standing(self.rules, self.staging, self.loaded,
                                                                  into=f"pg_temp.{quote_ident(into)}"))
        return [Refused(row[0], row[2], row[1])
                for row in await self.connection.fetch(constraints.refused_rows(self.staging))]

    async def _settle(self) -> int:
        """Mark the staged rows the rules refuse, then insert the others into the target."""
        await self._mark()
        status = await self.connection.execute(constraints.insert_standing(self.rules, self.staging, self.loaded,
                                                                           self.row))
        return int(status.split()[-1])  # INSERT 0 <rows>

    async def _mark(self, *, uniques: bool = True) -> None:
        rules, staging, execute = self.rules, self.staging, self.connection.execute
        each_row = constraints.screen_each_row(rules, staging)
        if each_row:
            await execute(each_row)
        for unique in rules.uniques if uniques else ():
            await execute(constraints.screen_unique(rules, unique, staging, self.row))
        for key in rules.foreign_keys:
            if key.self_reference:
                for _round in range(constraints.SELF_REFERENCE_ROUNDS):
                    marked = await execute(constraints.screen_self_reference(rules, key, staging))
                    if marked.endswith(" 0"):  # UPDATE 0: no row's parent went this round
                        break


async def take_out(connection: asyncpg.Connection, schema: str, table: str, definition: Definition,
                   loaded: Sequence[str], row: str,
                   reject: Callable[[list[tuple[object, None, str]]], None]) -> int | None:
    """Rows loaded with `definition` set aside, then refused by it, deleted from the table,
    each one's (key in column `row`, None, reason) to `reject`, a batch at a time; returns
    how many. A foreign key or a check is in the catalog again, NOT VALID: the rows it
    refuses go (a foreign key's orphans: constraints.take_orphans). A primary key or unique
    constraint or index, not made yet (on plain columns or expressions, partial, NULLS NOT
    DISTINCT: as PostgreSQL builds it, _index_key): of equal keys the first stands, a row
    there before the load before any of it. Rows there before the load are never deleted.
    None when the definition is not modelled (a MATCH FULL key, a unique index with a
    non-default operator class...): nothing is deleted. In the caller's transaction: the
    rows go only if the definition then stands (its VALIDATE or its build checks them all
    again)."""
    kind, into = definition.kind, "_copier_orphans"
    rules = Rules(schema, table)
    if kind in (DefinitionKind.FOREIGN_KEY, DefinitionKind.CHECK):
        rules = (await Screen.of(connection, schema, table, loaded, row)).rules
    if kind is DefinitionKind.FOREIGN_KEY:
        key = next((k for k in rules.foreign_keys if k.name == definition.name), None)
        sql = None if key is None else constraints.take_orphans(rules, key, row, into)
    elif kind is DefinitionKind.CHECK:
        check = next((c for c in rules.checks if c.name == definition.name), None)
        sql = None if check is None else constraints.take_failing(rules, check, row, into)
    else:
        columns = definition.unique_columns
        if columns is None:  # an expression, a predicate, NULLS NOT DISTINCT: as PostgreSQL builds it
            index_key = await _index_key(connection, schema, table, definition)
        else:
            index_key = IndexKey.of_columns(definition.name, columns) if set(columns) <= set(loaded) else None
        sql = None if index_key is None else constraints.take_duplicates(rules, index_key, row, into)
    if sql is None:
        return None
    # A whole table's keys hashed (as Screen.staged) and no JIT for a query costed high.
    await connection.execute(f"SET LOCAL jit = off;\n{WHOLE_TABLE_WORK_MEM};\n{constraints.create_orphans(into)}")
    status = await connection.execute(sql)
    async for batch in _batches(connection, constraints.orphans_taken(into)):
        reject([(name, None, reason) for name, reason in batch])
    return int(status.split()[-1])  # INSERT 0 <rows>


# A primary key, unique constraint or unique index as `definition` makes it, on an empty
# temporary table of the same columns (rolled back at once): PostgreSQL parses it and prints
# its key columns as its messages do (pg_get_indexdef, pretty). None: not a unique key whose
# rows compare as plain equality (a non-default operator class, a nondeterministic collation).
_SHAPE = "_copier_shape"
_SHAPE_INDEX = re.compile(r'CREATE UNIQUE INDEX (?:"(?:[^"]|"")*"|[^\s"]+) ON '
                          r'(?:"(?:[^"]|"")*"|[^\s".]+)\.(?:"(?:[^"]|"")*"|[^\s".]+) (?P<rest>USING .*)', re.DOTALL)
_SHAPE_KEY = f"""
SELECT ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) FROM generate_series(1, i.indnkeyatts) k ORDER BY k)
         AS expressions,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k ORDER BY k)
         AS labels,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       NOT coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_distinct,
       i.indisunique AND NOT EXISTS (
         SELECT 1 FROM unnest(i.indclass::oid[]) AS o(opclass) JOIN pg_opclass oc ON oc.oid = o.opclass
         WHERE NOT oc.opcdefault) AND NOT EXISTS (
         SELECT 1 FROM unnest(i.indcollation::oid[]) AS l(coll) JOIN pg_collation co ON co.oid = l.coll
         WHERE NOT co.collisdeterministic) AS plain
FROM pg_index i WHERE i.indrelid = 'pg_temp.{_SHAPE}'::regclass
"""


async def _index_key(connection: asyncpg.Connection, schema: str, table: str,
                     definition: Definition) -> IndexKey | None:
    if definition.kind is DefinitionKind.INDEX:
        found = _SHAPE_INDEX.fullmatch(definition.body)
        if found is None:  # not a unique index, or one on ONLY a partitioned table
            return None
        make = f"CREATE UNIQUE INDEX ON pg_temp.{_SHAPE} {found['rest']}"
    else:
        make = f"ALTER TABLE pg_temp.{_SHAPE} ADD {definition.body}"
    await connection.execute("SAVEPOINT copier_shape")
    try:
        await connection.execute(f"CREATE TEMPORARY TABLE {_SHAPE} (LIKE {qualified(schema, table)}); {make}")
        row = await connection.fetchrow(_SHAPE_KEY)
    except asyncpg.PostgresError:
        row = None  # PostgreSQL did not take it so: not modelled
    await connection.execute("ROLLBACK TO SAVEPOINT copier_shape; RELEASE SAVEPOINT copier_shape")
    if row is None or not row["plain"]:
        return None
    return IndexKey(definition.name, tuple(row["expressions"]), ", ".join(row["labels"]), row["predicate"],
                    row["nulls_distinct"])


async def _batches(connection: asyncpg.Connection, query: str) -> AsyncIterator[list[asyncpg.Record]]:
    """The rows of `query`, REFUSED_PREFETCH at a time, through a cursor (in the caller's
    transaction): memory holds a batch, however many rows."""
    cursor = await connection.cursor(query)
    while batch := await cursor.fetch(REFUSED_PREFETCH):
        yield batch


__all__ = ["Refused", "Screen", "Screened", "take_out"]
