"""Load one table's rows over one PostgreSQL connection: readers feed a bounded stream, one
streaming COPY drains it; if PostgreSQL refuses a row, that COPY is undone and the rows
are loaded again page by page, the refused rows of each page found set-wise (screening.py).

Used in-process by the pipeline and by worker processes (worker.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import asyncpg
from anyio.streams.memory import MemoryObjectReceiveStream

from .faults import is_row_error
from .loadspec import Counted, LoadCounts, LoadSpec
from .normalise import ConvertedPage, converter_for
from .reader import read_range
from .rejects import DeferredRejects, RejectSink
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
    again, undoably. `refused`: PostgreSQL refused these rows before (a load undone): they go
    page by page at once."""
    if spec.table.lane.columnar and not refused:
        assert all(r is not None for r in spec.ranges), "the plan gives the columnar lane rowid tables only"
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
