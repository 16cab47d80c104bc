"""The columnar lane's I/O. A C reader (adbc-driver-sqlite) turns a key range of the
SQLite table (rowids, or a primary key's values: source.KeyRange) into Arrow batches
through arrowlane's guarded query; arrowlane normalises them; pgpq encodes them as
PostgreSQL binary COPY, which asyncpg streams. Python touches batches, never values.
The rows arrowlane flags are read again by key and go through the exact lane: its
converters, rejects and bisection.

Each key range is read and normalised in a thread of its own, encoding in another (the C
and Rust code release the GIL), so the next batches are prepared while PostgreSQL ingests
the last one; one COPY streams the batches of every range of the load, and its flagged
rows follow. Memory holds a batch or two per range and the flagged keys, at most
EXACT_KEYS_LIMIT of them (then the COPY ends, the flagged rows are written, and a new COPY
goes on with the batches still to come), whatever the table."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import adbc_driver_manager
import adbc_driver_sqlite
import anyio
import anyio.to_thread
import asyncpg
import pgpq
import pyarrow as pa
from anyio.streams.memory import MemoryObjectSendStream

from . import arrowlane, batching, source
from .casting import Kind
from .errors import CopierError
from .faults import ended_if_lost
from .loadspec import LoadCounts, LoadSpec
from .normalise import ConvertedPage, Converter, convert_page, converter_for
from .planning import TablePlan
from .rejects import RejectSink
from .source import KeyRange
from .tasks import task_group
from .writer import TableWriter

# Flagged keys held while a range's COPY streams; once this many wait, the COPY ends there,
# they go through the exact lane, and a new COPY takes the rest of the range.
EXACT_KEYS_LIMIT = 100_000


class ColumnarDeclined(CopierError):
    """The columnar lane could not read or convert the range (a locked or damaged file, a
    value the driver refuses, a bug of the lane): the exact lane loads it instead, and
    reports what it finds."""


class _Reader:
    """One open SQLite database of the C reader: ADBC's low-level objects. The DB-API
    wrapper (adbc_driver_manager.dbapi) is not used: importing it imports pyarrow.dataset,
    and with it Parquet, S3 and Substrait: 11 MB of resident memory and 50 ms nobody needs."""

    def __init__(self, uri: str) -> None:
        self.database = adbc_driver_sqlite.connect(uri)
        try:
            self.connection = adbc_driver_manager.AdbcConnection(self.database)
        except BaseException:
            self.database.close()
            raise

    def close(self) -> None:
        try:
            self.connection.close()
        finally:
            self.database.close()


# Open SQLite connections of the C reader, kept for the next query of the run: opening one
# parses the file's whole schema (1.3 ms for 500 tables), once per table and per check
# otherwise. release_idle() closes them at the end of a run.
_IDLE: dict[tuple[str, float], list[_Reader]] = {}
_IDLE_LOCK = threading.Lock()
_IDLE_PER_FILE = 4


def release_idle() -> None:
    """Close the kept connections (the end of a migrate or verify)."""
    with _IDLE_LOCK:
        connections = [c for kept in _IDLE.values() for c in kept]
        _IDLE.clear()
    for connection in connections:
        try:
            connection.close()
        except Exception:  # closing is best effort; the file is open read-only
            pass


class ArrowQuery:
    """A query on the SQLite file (read-only) whose rows arrive as Arrow batches; blocking,
    used from a thread. The query's first row is a witness of its column types (see
    arrowlane.guarded_sql), dropped here. Any failure is a ColumnarDeclined."""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.reader: pa.RecordBatchReader | None = None
        self.first = True
        self.healthy = False
        self.key = (source.read_only_uri(path), busy_timeout)
        with _IDLE_LOCK:
            kept = _IDLE.get(self.key)
            connection = kept.pop() if kept else None
        fresh = connection is None
        try:
            self.connection = connection or _Reader(self.key[0])
        except Exception as exc:
            raise ColumnarDeclined(f"{type(exc).__name__}: {exc}") from None
        try:
            self.statement = adbc_driver_manager.AdbcStatement(self.connection.connection)
        except Exception as exc:
            source.close_later(self._close_connection)
            raise ColumnarDeclined(f"{type(exc).__name__}: {exc}") from None
        if fresh:
            try:
                self.rows(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            except ColumnarDeclined:
                self.close()  # not kept: rows() found it unhealthy
                raise
        self.healthy = True

    def _execute(self, sql: str) -> pa.RecordBatchReader:
        if self.reader is not None:  # one result at a time on a statement
            self.reader.close()
        self.statement.set_sql_query(sql)
        handle, _rows = self.statement.execute_query()
        self.reader = pa.RecordBatchReader._import_from_c(handle.address)
        return self.reader

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        """A small result as Python rows."""
        try:
            result = self._execute(sql).read_all()
            return list(zip(*(column.to_pylist() for column in result.columns), strict=True))
        except Exception as exc:
            self.healthy = False
            raise ColumnarDeclined(f"{type(exc).__name__}: {exc}") from None

    def start(self, sql: str, batch_rows: int) -> None:
        try:
            self.statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            self._execute(sql)
            self.first = True
        except Exception as exc:
            self.healthy = False
            raise ColumnarDeclined(f"{type(exc).__name__}: {exc}") from None

    def batch_rows(self, table: str, columns: Sequence[str], where: str, batch_size: int) -> int:
        """Rows per batch for the range `where` holds: `batch_size`, fewer where its first
        rows are wide (batching.batch_rows)."""
        (widest,), = self.rows(batching.row_size_sql(table, columns, where))
        return batching.batch_rows(batch_size, widest if isinstance(widest, int) else None)

    def next(self) -> pa.RecordBatch | None:
        """The next batch, or None at the end."""
        assert self.reader is not None
        try:
            batch = self.reader.read_next_batch()
            if self.first:
                batch, self.first = arrowlane.drop_witness(batch), False
            return batch
        except StopIteration:
            return None
        except Exception as exc:
            self.healthy = False
            raise ColumnarDeclined(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """Close the query; its connection is kept for the next one if all went well."""
        for closeable in (self.reader, self.statement):
            try:
                if closeable is not None:
                    closeable.close()
            except Exception:  # closing is best effort; the file is open read-only
                self.healthy = False
        with _IDLE_LOCK:
            kept = _IDLE.setdefault(self.key, [])
            keep = self.healthy and len(kept) < _IDLE_PER_FILE
            if keep:
                kept.append(self.connection)
        if not keep:
            source.close_later(self._close_connection)  # not while the run reads (source._Kept)

    def _close_connection(self) -> None:
        try:
            self.connection.close()
        except Exception:  # closing is best effort; the file is open read-only
            pass


def copy_parts(batch: pa.RecordBatch) -> tuple[bytes, ...]:
    """A whole binary COPY of the batch: header, rows, trailer."""
    encoder = pgpq.ArrowToPostgresBinaryEncoder(batch.schema)
    return encoder.write_header(), encoder.write_batch(batch), encoder.finish()


def encoder_for(routes: Sequence[arrowlane.Route], batch: pa.Schema) -> pgpq.ArrowToPostgresBinaryEncoder:
    """pgpq's encoder for the lane's batches: each Arrow type as its PostgreSQL binary form,
    and text as jsonb's (a version byte, then the text) where the target is jsonb."""
    from pgpq import encoders
    from pgpq import schema as pg_types

    chosen = {field.name: (encoders.StringEncoderBuilder.new_with_output(field, pg_types.Jsonb())
                           if route.kind is Kind.JSONB else pgpq.ArrowToPostgresBinaryEncoder.infer_encoder(field))
              for route, field in zip(routes, batch)}
    return pgpq.ArrowToPostgresBinaryEncoder.new_with_encoders(batch, chosen)


class BatchSource:
    """Arrow batches of one key range, normalised and split between the lanes; blocking,
    used from a thread."""

    def __init__(self, spec: LoadSpec, key_range: KeyRange) -> None:
        columns = spec.table.columns
        table = spec.table.source
        assert spec.table.lane.columnar and source.key_columns(table), "the plan gives this lane keyed tables only"
        where = source.range_condition(table, key_range)
        self.source_tz = spec.options.source_tz
        self.query = ArrowQuery(spec.path, spec.busy_timeout)
        try:
            self.routes = arrowlane.routes_for(spec.table, columns)
            further = arrowlane.further_sql(spec.table, self.routes, where)
            if further is not None and not self.query.rows(further):
                self.routes = arrowlane.lean(self.routes)
            self.query.start(arrowlane.guarded_sql(spec.table, self.routes, source.key_sql(table), where),
                             self.query.batch_rows(table.name, [c.source for c in columns], where,
                                                   spec.batch_size))
        except BaseException:
            self.query.close()
            raise

    def next(self) -> arrowlane.Split | None:
        """The next batch, or None after the range's last."""
        batch = self.query.next()
        if batch is None:
            return None
        try:
            return arrowlane.split_batch(batch, self.routes, self.source_tz)
        except Exception as exc:  # a bug of the lane: the exact lane loads the range instead
            raise ColumnarDeclined(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self.query.close()


class CopyEncoder:
    """Columnar rows as one binary COPY after another: a header before a COPY's first rows,
    the trailer at its end (with the rows the encoder held back, if any)."""

    def __init__(self, routes: Sequence[arrowlane.Route]) -> None:
        self.routes = routes
        self.schema = arrowlane.batch_schema(routes)
        self.encoder: pgpq.ArrowToPostgresBinaryEncoder | None = None

    def _started(self, parts: list[bytes]) -> pgpq.ArrowToPostgresBinaryEncoder:
        if self.encoder is None:
            self.encoder = encoder_for(self.routes, self.schema)
            parts.append(bytes(self.encoder.write_header()))
        return self.encoder

    def rows(self, batch: pa.RecordBatch) -> list[bytes]:
        parts: list[bytes] = []
        parts.append(bytes(self._started(parts).write_batch(batch)))
        return parts

    def end(self) -> list[bytes]:
        """The current COPY's last bytes (a whole empty one if it had no rows)."""
        parts: list[bytes] = []
        parts.append(bytes(self._started(parts).finish()))
        self.encoder = None
        return parts


async def load_columnar(spec: LoadSpec, connection: asyncpg.Connection, rejects: RejectSink,
                        advance: Callable[[int], None]) -> LoadCounts:
    """Load the spec's key ranges through the columnar lane, inside the caller's transaction:
    a reader per range (each in a thread of its own, on its own SQLite connection), all
    feeding one COPY at a time. Several ranges of a table loaded in one transaction (one
    that exists: its rows commit with its indexes) are read at once, as several worker
    chunks are for a table copier creates: one reader is what limits a single COPY (reading
    SQLite is most of the lane's work, PostgreSQL's share of the COPY about a third of it)."""
    assert all(r is not None for r in spec.ranges), "the caller checked: the lane reads key ranges"
    writer = TableWriter(connection, spec.schema, spec.table, rejects, spec.on_error, spec.max_rejects)
    converters = [converter_for(c.type, spec.options) for c in spec.table.columns]
    counts = LoadCounts()
    sources: list[BatchSource] = []
    try:
        for key_range in spec.ranges:
            assert key_range is not None
            sources.append(await anyio.to_thread.run_sync(BatchSource, spec, key_range))
        await _load_sources(spec, sources, connection, writer, converters, counts, advance)
    finally:
        with anyio.CancelScope(shield=True):
            for batches in sources:
                await anyio.to_thread.run_sync(batches.close)
    counts.rejected = writer.rejected
    return counts


async def _load_sources(spec: LoadSpec, sources: Sequence[BatchSource], connection: asyncpg.Connection,
                        writer: TableWriter, converters: list[Converter], counts: LoadCounts,
                        advance: Callable[[int], None]) -> None:
    """A COPY streams the columnar rows of every range as they are read, while the next
    batches are read; the flagged rows follow through the exact lane. Their keys wait
    meanwhile: once EXACT_KEYS_LIMIT of them do, that COPY ends, they are written, and a
    new COPY goes on with the batches still to come."""
    columns = [c.target for c in spec.table.columns]
    exact = ExactRows(spec.path, spec.table, converters, spec.busy_timeout)
    encoder = CopyEncoder(arrowlane.routes_for(spec.table, spec.table.columns))
    # A batch or so per reader waits for the COPY: memory holds a few batches whatever the table.
    send, receive = anyio.create_memory_object_stream[arrowlane.Split](len(sources))
    exact_keys: list[int | str] = []
    finished = False

    async def produce(batches: BatchSource, out: MemoryObjectSendStream[arrowlane.Split]) -> None:
        async with out:
            while (split := await anyio.to_thread.run_sync(batches.next)) is not None:
                await out.send(split)

    async def stream() -> AsyncIterator[bytes]:
        nonlocal finished
        async for split in receive:
            rows = 0 if split.columnar is None else split.columnar.num_rows
            exact_keys.extend(split.exact_keys)
            counts.written += rows
            counts.columnar += rows
            counts.read += rows + len(split.exact_keys)
            advance(rows + len(split.exact_keys))
            if rows:
                for part in await anyio.to_thread.run_sync(encoder.rows, split.columnar):
                    if part:
                        yield part
            if len(exact_keys) >= EXACT_KEYS_LIMIT:
                break
        else:
            finished = True  # every reader is done (or one failed: its error ends the load)
        for part in encoder.end():
            yield part

    async with task_group() as group, receive:
        async with send:
            for batches in sources:
                group.start_soon(produce, batches, send.clone())
        while not finished:
            async with ended_if_lost(connection):
                await connection.copy_to_table(spec.table.target, source=stream(), columns=columns,
                                               schema_name=spec.schema, format="binary")
            # Read again by key, converted and written --batch-size rows at a time.
            for start in range(0, len(exact_keys), spec.batch_size):
                page = await exact.read(exact_keys[start:start + spec.batch_size])
                counts.rounded += page.rounded
                counts.written += await writer.write(page)
            exact_keys.clear()


async def chunks(parts: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class ExactRows:
    """The flagged rows of a range, read again by key for the exact lane's converters."""

    def __init__(self, path: Path, plan: TablePlan, converters: list[Converter],
                 busy_timeout: float) -> None:
        self.path, self.plan, self.converters, self.busy_timeout = path, plan, converters, busy_timeout

    async def read(self, keys: list[int | str]) -> ConvertedPage:
        table = self.plan.source
        rows = await source.rows_by_key(self.path, table, [c.source for c in self.plan.columns], keys,
                                        self.busy_timeout)
        if len(rows) != len(keys):  # each key names one row: the file changed, or a key read back wrong
            raise ColumnarDeclined(f"{len(keys)} flagged rows looked up by key, {len(rows)} found")
        return convert_page(rows, self.converters, len(source.key_columns(table)))


__all__ = ["ArrowQuery", "ColumnarDeclined", "chunks", "copy_parts", "load_columnar", "release_idle"]
