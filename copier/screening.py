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
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from . import constraints
from .constraints import Rules
from .faults import ended_if_lost, is_row_error
from .ident import MAX_IDENTIFIER_BYTES, qualified
from .normalise import Value


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
    """One table's screening over one connection: its rules, read from the catalog once."""

    def __init__(self, connection: asyncpg.Connection, rules: Rules, loaded: Sequence[str]) -> None:
        self.connection, self.rules, self.loaded = connection, rules, list(loaded)
        self.staging = ("_copier_screen_" + hashlib.sha1(f"{rules.schema}.{rules.table}".encode()).hexdigest()[:16])
        assert len(self.staging) <= MAX_IDENTIFIER_BYTES

    @classmethod
    async def of(cls, connection: asyncpg.Connection, schema: str, table: str, loaded: Sequence[str]) -> Screen:
        name = qualified(schema, table)
        not_null = [r[0] for r in await connection.fetch(constraints.NOT_NULL_COLUMNS, name)]
        found = [dict(r) for r in await connection.fetch(constraints.CONSTRAINTS, name)]
        indexes = [dict(r) for r in await connection.fetch(constraints.UNIQUE_INDEXES, name)]
        return cls(connection, constraints.rules_of(schema, table, loaded, not_null, found, indexes), loaded)

    async def page(self, records: Sequence[tuple[Value, ...]]) -> Screened | None:
        """Write the rows of `records` the table accepts; the others come back with their
        reasons. None: PostgreSQL refused what the model let through (or refused a value
        in the staging table itself): nothing was written, bisect the page."""
        connection = self.connection
        await connection.execute("SAVEPOINT copier_screen")
        try:
            await connection.execute(constraints.create_staging(self.rules.schema, self.rules.table, self.staging,
                                                                self.loaded))
            async with ended_if_lost(connection):
                await connection.copy_records_to_table(
                    self.staging, records=[(i, *r) for i, r in enumerate(records)],
                    columns=[constraints.ROW, *self.loaded], schema_name="pg_temp")
            await self._mark_refused()
            status = await connection.execute(constraints.insert_standing(self.rules, self.staging, self.loaded))
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
        return Screened(int(status.split()[-1]), refused)  # INSERT 0 <rows>

    async def _mark_refused(self) -> None:
        rules, staging = self.rules, self.staging
        each_row = constraints.screen_each_row(rules, staging)
        if each_row:
            await self.connection.execute(each_row)
        for unique in rules.uniques:
            await self.connection.execute(constraints.screen_unique(rules, unique, staging))
        for key in rules.foreign_keys:
            if key.self_reference:
                for _round in range(constraints.SELF_REFERENCE_ROUNDS):
                    marked = await self.connection.execute(constraints.screen_self_reference(rules, key, staging))
                    if marked.endswith(" 0"):  # UPDATE 0: no row's parent went this round
                        break


__all__ = ["Refused", "Screen", "Screened"]
