"""Load one table's rows over one PostgreSQL connection: readers feed a bounded stream, one
streaming COPY drains it; if PostgreSQL refuses a row, that COPY is undone and the rows
are loaded again page by page, each refused page bisected to its bad rows.

Used in-process by the pipeline and by worker processes (worker.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from .faults import is_row_error
from .normalise import ConvertedPage, Options, converter_for
from .planning import TablePlan
from .reader import KeyRange, read_range
from .rejects import DeferredRejects, RejectSink
from .settings import Lane, OnError
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
    max_rejects: int | None = None
    lane: Lane = Lane.AUTO


@dataclass(slots=True)
class LoadCounts:
    """What one load did: counted here, from the pages and the writer, and handed to the
    table's owner (tableload), which alone updates the table's stats."""

    read: int = 0
    written: int = 0
    rejected: int = 0
    rounded: int = 0
    columnar: int = 0  # of `written`, the rows the columnar lane wrote

    def tally(self, page: ConvertedPage) -> ConvertedPage:
        """Count a page the readers made, on its way to the writer."""
        self.read += len(page.records) + len(page.rejections)
        self.rounded += page.rounded
        return page

    def add(self, other: LoadCounts) -> None:
        self.read += other.read
        self.written += other.written
        self.rejected += other.rejected
        self.rounded += other.rounded
        self.columnar += other.columnar


async def load_rows(
    spec: LoadSpec, connection: asyncpg.Connection, rejects: RejectSink, advance: Callable[[int], None], *,
    undoable: bool = True,
) -> LoadCounts:
    """Load the spec's rows inside the caller's transaction: through the columnar lane when
    it can take the table, else (or when PostgreSQL refuses a row of it) the exact lane.

    Not `undoable` (the exact lane without its savepoint: two round trips less), a row
    PostgreSQL refuses fails the caller's transaction, and the caller loads the table
    again, undoably."""
    if all(r is not None for r in spec.ranges) and columnar_takes(spec.table, spec.lane):
        # Imported here: pyarrow costs time and memory that runs without this lane need not pay.
        from .columnar import ColumnarDeclined, load_columnar

        deferred = DeferredRejects()
        try:
            async with connection.transaction():
                counts = await load_columnar(spec, connection, deferred, advance)
        except Exception as exc:
            if not (is_row_error(exc) or isinstance(exc, ColumnarDeclined)):
                raise
        else:
            deferred.pass_to(rejects)
            return counts
    if not undoable:
        return await _load_exact(spec, connection, rejects, advance)
    writer = TableWriter(connection, spec.schema, spec.table, rejects, spec.on_error, spec.max_rejects)
    counts = LoadCounts()
    try:
        async with connection.transaction():  # a savepoint: a refused COPY undoes only itself
            return await _load_exact(spec, connection, rejects, advance, writer)
    except Exception as exc:
        if not is_row_error(exc):
            raise
    # PostgreSQL refused a row: again, page by page, each refused page bisected.
    writer.discard_pending()
    writer.rejected = 0

    async def page_by_page(pages: MemoryObjectReceiveStream[ConvertedPage]) -> None:
        async for page in pages:
            counts.written += await writer.write(counts.tally(page))

    await _with_readers(spec, page_by_page)
    counts.rejected = writer.rejected
    return counts


# Below this many rows (the catalog's count), --lane auto leaves a table to the exact lane:
# the columnar lane's fixed cost per table (a census, a guarded query, an encoder: ~3 ms)
# is more than the exact lane spends on so few rows (benchmarks/README.md: small tables).
COLUMNAR_MIN_ROWS = 1_000


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


def columnar_takes(table: TablePlan, lane: Lane) -> bool:
    """Whether the columnar lane loads this table's rowid ranges."""
    if lane is Lane.EXACT or _too_small(table, lane):
        return False  # without asking arrowlane: a run of small tables need not import pyarrow
    return exact_because(table, lane) is None


def _too_small(table: TablePlan, lane: Lane) -> bool:
    return lane is Lane.AUTO and table.source.row_count < COLUMNAR_MIN_ROWS


def exact_because(table: TablePlan, lane: Lane) -> str | None:
    """Why the exact lane loads this table (None: the columnar lane does)."""
    if lane is Lane.EXACT:
        return "--lane exact"
    from .arrowlane import exact_only_reason  # pyarrow, only once a run may need it

    reason = exact_only_reason(table)
    if reason is None and _too_small(table, lane):
        return f"under {COLUMNAR_MIN_ROWS:,} rows, where the exact lane costs less"
    return reason


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


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """anyio's task group, raising the error that started a failure rather than the group
    (with the cancellations it caused) around it."""
    try:
        async with anyio.create_task_group() as group:
            yield group
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
