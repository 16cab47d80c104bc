"""Producers: each reads a key range of one table on its own SQLite connection, a page at a
time, converts it column-wise, and sends it into a bounded stream."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite
from anyio.streams.memory import MemoryObjectSendStream

from . import batching, source
from .catalog import Table
from .errors import SourceError
from .normalise import ConvertedPage, Converter, convert_page, decode_text
from .planning import TablePlan
from .settings import BUSY_TIMEOUT
from .source import WHOLE, KeyRange


def split_ranges(bounds: tuple[int, int] | None, readers: int) -> list[KeyRange]:
    """Cut the rowid span into `readers` stripes (fewer where it holds fewer rowids).

    Integer arithmetic only: rowids span up to 2**64, where a float has lost the low bits
    (and a stripe boundary computed with one can skip rows)."""
    if bounds is None:
        return []
    low, high = bounds
    span = high - low + 1
    stripes = max(1, min(readers, span))
    return [KeyRange(low + i * span // stripes, low + (i + 1) * span // stripes - 1) for i in range(stripes)]


async def _fetch(connection: aiosqlite.Connection, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
    async with connection.execute(sql, args) as cursor:
        return list(await cursor.fetchall())  # type: ignore[arg-type]


async def table_ranges(path: Path, table: Table, readers: int) -> list[KeyRange | None]:
    """The key ranges the readers of one table take, `readers` of them (fewer for a table
    of fewer rows): rowid stripes, or ranges of the primary key's rows; [None] for a table
    with no key to range (one scan)."""
    if not source.key_columns(table):
        return [None]
    if readers == 1 or table.row_count <= 1:  # one range: every row, no need to ask
        return [WHOLE]
    async with source.borrowed(path) as connection:
        if table.rowid_name is None:
            return [*await source.key_ranges(connection, table, -(-table.row_count // readers))]
        bounds = await source.rowid_bounds(connection, table)
    return [*split_ranges(bounds, readers)]


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
    where = "1" if key_range is None else source.range_condition(table, key_range)
    (widest,), = await _fetch(connection, batching.row_size_sql(table.name, columns, where), ())
    page_rows = batching.batch_rows(batch_size, widest if isinstance(widest, int) else None)
    if key_range is None:  # no key: one scan
        await _scan(connection, source.page_sql(table, columns, None, first=True), converters, page_rows, pages)
        return
    sql = source.page_sql(table, columns, key_range, first=True)
    after: tuple[object, ...] = ()  # past the previous page's last key
    while True:
        try:
            rows = await _fetch(connection, sql, (*after, page_rows))
        except sqlite3.OperationalError:
            # Python's sqlite3 cannot decode TEXT that is not UTF-8; read this page
            # (and the rest) keeping such values as bytes, for the converters to judge.
            connection.text_factory = decode_text
            rows = await _fetch(connection, sql, (*after, page_rows))
        if not rows:
            return
        complete = len(rows) == page_rows
        after = tuple(rows[-1][:key_width])
        page = convert_page(rows, converters, key_width)
        del rows  # the raw page is not kept while the converted one waits in the queue
        await pages.send(page)
        del page
        if not complete:
            return
        sql = source.page_sql(table, columns, key_range, first=False)


async def _scan(connection: aiosqlite.Connection, sql: str, converters: Sequence[Converter], batch_size: int,
                pages: MemoryObjectSendStream[ConvertedPage]) -> None:
    """A table whose rowid no SQL can reach: one cursor, rows keyed by their position in it."""
    position = 0
    async with connection.execute(sql) as cursor:
        while rows := list(await cursor.fetchmany(batch_size)):
            numbered = [(position + n, *row) for n, row in enumerate(rows, 1)]
            position += len(rows)
            await pages.send(convert_page(numbered, converters, 1))
