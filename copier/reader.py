"""Producers: each reads a key range of one table on its own SQLite connection, a page at a
time, converts it column-wise, and sends it into a bounded stream."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
from anyio.streams.memory import MemoryObjectSendStream

from . import source
from .catalog import Table
from .errors import SourceError
from .normalise import ConvertedPage, Converter, convert_page, decode_text
from .planning import TablePlan
from .settings import BUSY_TIMEOUT


@dataclass(frozen=True, slots=True)
class KeyRange:
    """Rows with first <= rowid <= last; for WITHOUT ROWID tables the whole table (None)."""

    first: int
    last: int


def split_ranges(bounds: tuple[int, int] | None, rows: int, readers: int, batch_size: int) -> list[KeyRange]:
    """Cut the rowid span into at most `readers` stripes, no more than one per page of rows.

    Integer arithmetic only: rowids span up to 2**64, where a float has lost the low bits
    (and a stripe boundary computed with one can skip rows)."""
    if bounds is None:
        return []
    low, high = bounds
    span = high - low + 1
    stripes = max(1, min(readers, -(-rows // batch_size), span))
    return [KeyRange(low + i * span // stripes, low + (i + 1) * span // stripes - 1) for i in range(stripes)]


async def _fetch(connection: aiosqlite.Connection, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
    async with connection.execute(sql, args) as cursor:
        return list(await cursor.fetchall())  # type: ignore[arg-type]


async def table_ranges(path: Path, table: Table, readers: int, batch_size: int) -> list[KeyRange | None]:
    """The key ranges the readers of one table take: rowid stripes, or the whole of a
    WITHOUT ROWID table (keyset on its primary key cannot be cut without a scan)."""
    if table.without_rowid or not source.key_columns(table):
        return [None]
    if readers == 1 or table.row_count <= batch_size:  # one range: every rowid, no need to ask
        return [KeyRange(-2**63, 2**63 - 1)]
    async with source.borrowed(path) as connection:
        bounds = await source.rowid_bounds(connection, table)
    ranges: list[KeyRange | None] = [*split_ranges(bounds, table.row_count, readers, batch_size)]
    return ranges


async def read_range(
    path: Path,
    plan: TablePlan,
    key_range: KeyRange | None,
    converters: Sequence[Converter],
    batch_size: int,
    pages: MemoryObjectSendStream[ConvertedPage],
    busy_timeout: float | None = None,
) -> None:
    table = plan.source
    async with pages:
        try:
            async with source.borrowed(path, busy_timeout) as connection:
                await _read_pages(connection, plan, key_range, converters, batch_size, pages)
        except sqlite3.Error as exc:
            error = source.source_error(path, exc, BUSY_TIMEOUT if busy_timeout is None else busy_timeout)
            raise SourceError(f"{error.message} (table {table.name})", hint=error.hint, table=table.name) from None


async def _read_pages(connection: aiosqlite.Connection, plan: TablePlan, key_range: KeyRange | None,
                      converters: Sequence[Converter], batch_size: int,
                      pages: MemoryObjectSendStream[ConvertedPage]) -> None:
    table = plan.source
    columns = [c.source for c in plan.columns]
    key_width = len(source.key_columns(table))
    if not key_width:
        await _scan(connection, source.page_sql(table, columns, first=True), converters, batch_size, pages)
        return
    sql = source.page_sql(table, columns, first=True)
    if key_range is not None:  # a rowid stripe: its start, then past each page's last rowid
        after: tuple[object, ...] = (key_range.first,)
        tail: tuple[object, ...] = (key_range.last, batch_size)
    else:  # WITHOUT ROWID: keyset on the primary key, from the start
        after, tail = (), (batch_size,)
    while True:
        try:
            rows = await _fetch(connection, sql, (*after, *tail))
        except sqlite3.OperationalError:
            # Python's sqlite3 cannot decode TEXT that is not UTF-8; read this page
            # (and the rest) keeping such values as bytes, for the converters to judge.
            connection.text_factory = decode_text
            rows = await _fetch(connection, sql, (*after, *tail))
        if not rows:
            return
        complete = len(rows) == batch_size
        after = tuple(rows[-1][:key_width])
        page = convert_page(rows, converters, key_width)
        del rows  # the raw page is not kept while the converted one waits in the queue
        await pages.send(page)
        del page
        if not complete:
            return
        sql = source.page_sql(table, columns, first=False)


async def _scan(connection: aiosqlite.Connection, sql: str, converters: Sequence[Converter], batch_size: int,
                pages: MemoryObjectSendStream[ConvertedPage]) -> None:
    """A table whose rowid no SQL can reach: one cursor, rows keyed by their position in it."""
    position = 0
    async with connection.execute(sql) as cursor:
        while rows := list(await cursor.fetchmany(batch_size)):
            numbered = [(position + n, *row) for n, row in enumerate(rows, 1)]
            position += len(rows)
            await pages.send(convert_page(numbered, converters, 1))
