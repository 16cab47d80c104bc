"""Load one table's rows over one PostgreSQL connection: readers feed a bounded stream, one
streaming COPY drains it; if PostgreSQL refuses a row, that COPY is undone and the rows
are loaded again page by page, each refused page bisected to its bad rows.

Used in-process by the pipeline and by worker processes (worker.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg
from anyio.streams.memory import MemoryObjectReceiveStream

from .faults import is_row_error
from .normalise import ConvertedPage, Options, converter_for
from .planning import TablePlan
from .reader import KeyRange, read_range
from .rejects import RejectSink
from .settings import OnError
from .stats import TableStats
from .writer import TableWriter


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """Everything a load of some key ranges of one table needs, picklable for workers."""

    path: Path
    schema: str
    table: TablePlan  # table.target: where the rows go (the table, or its staging table)
    ranges: tuple[KeyRange | None, ...]
    options: Options
    batch_size: int
    queue_depth: int
    on_error: OnError
    busy_timeout: float


async def load_rows(
    spec: LoadSpec, connection: asyncpg.Connection, stats: TableStats, rejects: RejectSink,
    advance: Callable[[int], None],
) -> None:
    """Load the spec's rows inside the caller's transaction."""
    writer = TableWriter(connection, spec.schema, spec.table, stats, rejects, spec.on_error)
    try:
        async with connection.transaction():  # a savepoint: a refused COPY undoes only itself
            await _with_readers(spec, stats, lambda pages: writer.stream(pages, advance))
        return
    except Exception as exc:
        if not is_row_error(exc):
            raise
    stats.read = stats.written = stats.rounded = 0
    writer.discard_pending()

    async def page_by_page(pages: MemoryObjectReceiveStream[ConvertedPage]) -> None:
        async for page in pages:
            await writer.write(page)

    await _with_readers(spec, stats, page_by_page)


async def _with_readers(
    spec: LoadSpec, stats: TableStats,
    consume: Callable[[MemoryObjectReceiveStream[ConvertedPage]], Awaitable[None]],
) -> None:
    """Run a reader per key range into a bounded stream and `consume` it."""
    converters = [converter_for(c.type, spec.options) for c in spec.table.columns]
    send, receive = anyio.create_memory_object_stream[ConvertedPage](spec.queue_depth)
    try:
        async with anyio.create_task_group() as group, send, receive:
            for key_range in spec.ranges:
                group.start_soon(read_range, spec.path, spec.table, key_range, converters, spec.batch_size,
                                 send.clone(), stats, spec.busy_timeout)
            send.close()
            await consume(receive)
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that started it: task groups wrap it with the cancellations it caused."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_error(exc)
        if not isinstance(exc, anyio.get_cancelled_exc_class()):
            return exc
    return group.exceptions[0]
