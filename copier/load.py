"""Load one table's rows over one PostgreSQL connection: readers feed a bounded stream, one
streaming COPY drains it; if PostgreSQL refuses a row, that COPY is undone and the refused
rows are found set-wise (screening.py): the whole table at once where the columnar lane
loads it keyed by an INTEGER PRIMARY KEY, else page by page.

Used in-process by the pipeline and by worker processes (worker.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import anyio
import asyncpg
from anyio.streams.memory import MemoryObjectReceiveStream

from . import constraints, source
from .casting import Kind
from .faults import is_row_error
from .ident import qualified, quote_ident
from .loadspec import Counted, LoadCounts, LoadSpec
from .normalise import ConvertedPage, converter_for
from .planning import TablePlan
from .reader import read_range
from .rejects import DeferredRejects, RejectSink
from .screening import Screen
from .tasks import task_group
from .writer import TableWriter


async def load_rows(
    spec: LoadSpec, connection: asyncpg.Connection, rejects: RejectSink, advance: Callable[[int], None], *,
    undoable: bool = True, refused: bool = False,
) -> LoadCounts:
    """Load the spec's rows inside the caller's transaction: through the columnar lane when
    the plan gives it the table (lanes.choose), else (or when PostgreSQL refuses a row of
    it) the exact lane.

    Not `undoable` (the exact lane without its savepoint: two round trips less), a row
    PostgreSQL refuses fails the caller's transaction, and the caller loads the table
    again, undoably. `refused`: PostgreSQL refused these rows before (a load undone), or
    would (_bound_to_be_refused): they are screened at once (the whole table, or page by
    page), not streamed into a COPY that fails."""
    if spec.table.lane.columnar and not refused and undoable and not spec.table.create:
        refused = await _bound_to_be_refused(spec, connection)
    if spec.table.lane.columnar and not refused:
        assert all(r is not None for r in spec.ranges), "the plan gives the columnar lane keyed tables only"
        # Imported here: pyarrow costs time and memory that runs without this lane need not pay.
        from .columnar import ColumnarDeclined, load_columnar

        deferred = DeferredRejects()
        counted = Counted(advance)
        try:
            async with connection.transaction():
                counts = await load_columnar(spec, connection, deferred, counted)
        except Exception as exc:
            if not (is_row_error(exc) or isinstance(exc, ColumnarDeclined)):
                raise
            counted.take_back()  # undone: the exact lane counts its rows again
            # The same rows in one COPY of the exact lane would be refused again: page by page at once.
            refused = is_row_error(exc)
        else:
            deferred.pass_to(rejects)
            return counts
    if not undoable:
        return await _load_exact(spec, connection, rejects, advance)
    if refused and (key := staged_key(spec.table)) is not None:
        screened = await _load_screened(spec, connection, rejects, advance, key)
        if screened is not None:
            return screened
    writer = TableWriter(connection, spec.schema, spec.table, rejects, spec.on_error, spec.max_rejects)
    counts = LoadCounts()
    if not refused:
        streamed = Counted(advance)
        try:
            async with connection.transaction():  # a savepoint: a refused COPY undoes only itself
                return await _load_exact(spec, connection, rejects, streamed, writer)
        except Exception as exc:
            if not is_row_error(exc):
                raise
        streamed.take_back()
    # PostgreSQL refused a row: again, page by page, the refused rows of each page found
    # set-wise (or bisected); the bar goes back and moves on with each page.
    writer.discard_pending()
    writer.rejected = 0
    writer.screening = True

    async def page_by_page(pages: MemoryObjectReceiveStream[ConvertedPage]) -> None:
        async for page in pages:
            counts.written += await writer.write(counts.tally(page))
            advance(len(page.records) + len(page.rejections))

    await _with_readers(spec, page_by_page)
    counts.rejected = writer.rejected
    return counts


def staged_key(table: TablePlan) -> str | None:
    """rowid_column, where the columnar lane loads the table: then a whole table can be
    staged and screened at once, each refused row named by that column."""
    return rowid_column(table) if table.lane.columnar else None


def rowid_column(table: TablePlan) -> str | None:
    """The target column holding each row's rowid (its INTEGER PRIMARY KEY, an integer in the
    target too): the key its rejects are named by, in either lane."""
    alias = table.source.rowid_alias
    if alias is None:
        return None
    return next((c.target for c in table.columns
                 if c.source == alias and c.type.kind in (Kind.INT2, Kind.INT4, Kind.INT8)), None)


async def _bound_to_be_refused(spec: LoadSpec, connection: asyncpg.Connection) -> bool:
    """Whether the target, a table copier did not create, holds the source's first row
    already, by a unique key on the column holding the rowid (an append rerun): a COPY of
    the table would be refused, after streaming it whole (the server's error is read at
    its end), so the rows are screened at once."""
    key = staged_key(spec.table)
    if key is None:
        return False
    name = qualified(spec.schema, spec.table.target)
    if not await connection.fetchval(constraints.UNIQUE_COLUMN, name, key):
        return False
    async with source.borrowed(spec.path, spec.busy_timeout) as sqlite:
        bounds = await source.rowid_bounds(sqlite, spec.table.source)
    return bounds is not None and bool(await connection.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {name} WHERE {quote_ident(key)} = $1)", bounds[0]))


async def _load_screened(spec: LoadSpec, connection: asyncpg.Connection, rejects: RejectSink,
                         advance: Callable[[int], None], key: str) -> LoadCounts | None:
    """A table PostgreSQL refused rows of, at the columnar lane's speed: all its rows into a
    constraint-free temporary table (the lane's one COPY), the refused ones marked there by
    a few set queries (screening.py), the others into the target by one INSERT. None (and
    nothing written) when PostgreSQL still refuses one, or the lane declines: the caller
    then loads the table page by page."""
    from .columnar import ColumnarDeclined, load_columnar

    columns = [c.target for c in spec.table.columns]
    screen = await Screen.of(connection, spec.schema, spec.table.target, columns, row=key)
    staged = replace(spec, schema="pg_temp", table=replace(spec.table, target=screen.staging))
    deferred = DeferredRejects()
    counted = Counted(advance)
    try:
        async with connection.transaction():  # a savepoint: undone if the screen misses a row
            await screen.create_staging()
            counts = await load_columnar(staged, connection, deferred, counted)
            written = await screen.staged()
            # Of the rows written, at most those the columnar lane staged.
            counts.written, counts.columnar = written, min(counts.columnar, written)
            writer = TableWriter(connection, spec.schema, spec.table, deferred, spec.on_error, spec.max_rejects,
                                 rejected=counts.rejected)
            async for batch in screen.refused():
                writer.reject_reasons(batch)
            counts.rejected = writer.rejected
    except Exception as exc:
        if not (is_row_error(exc) or isinstance(exc, ColumnarDeclined)):
            raise
        counted.take_back()
        return None
    deferred.pass_to(rejects)
    return counts


async def load_marked(spec: LoadSpec, connection: asyncpg.Connection, rejects: RejectSink,
                      advance: Callable[[int], None], screen: Screen, into: str) -> LoadCounts:
    """--if-exists upsert into a table whose rows no loaded column names (neither a rowid
    column nor a one-column primary key): the spec's rows into the temporary table `into`,
    page by page, the rows each page holds that the table refuses whatever it holds marked
    first, set-wise (Screen.page_for_upsert), and rejected, named by their keys in the
    source. `counts.written`: the rows put into `into`."""
    writer = TableWriter(connection, spec.schema, spec.table, rejects, spec.on_error, spec.max_rejects)
    counts = LoadCounts()

    async def page_by_page(pages: MemoryObjectReceiveStream[ConvertedPage]) -> None:
        async for page in pages:
            writer.reject_unconverted(counts.tally(page))
            refused = await screen.page_for_upsert(page.records, into)
            writer.reject_reasons([(page.keys[r.index], r.column, r.reason) for r in refused])
            counts.written += len(page.records) - len(refused)
            advance(len(page.records) + len(page.rejections))

    await _with_readers(spec, page_by_page)
    counts.rejected = writer.rejected
    return counts


async def _load_exact(spec: LoadSpec, connection: asyncpg.Connection, rejects: RejectSink,
                      advance: Callable[[int], None], writer: TableWriter | None = None) -> LoadCounts:
    """The exact lane in one streaming COPY; a row PostgreSQL refuses fails it."""
    writer = writer or TableWriter(connection, spec.schema, spec.table, rejects, spec.on_error, spec.max_rejects)
    counts = LoadCounts()

    async def streamed(pages: MemoryObjectReceiveStream[ConvertedPage]) -> None:
        counts.written = await writer.stream((counts.tally(page) async for page in pages), advance)

    await _with_readers(spec, streamed)
    counts.rejected = writer.rejected
    return counts


async def _with_readers(
    spec: LoadSpec, consume: Callable[[MemoryObjectReceiveStream[ConvertedPage]], Awaitable[None]],
) -> None:
    """Run a reader per key range into a bounded stream and `consume` it."""
    converters = [converter_for(c.type, spec.options) for c in spec.table.columns]
    send, receive = anyio.create_memory_object_stream[ConvertedPage](spec.queue_depth)
    async with task_group() as group, send, receive:
        for key_range in spec.ranges:
            group.start_soon(read_range, spec.path, spec.table, key_range, converters, spec.batch_size,
                             send.clone(), spec.busy_timeout)
        send.close()
        await consume(receive)
