"""One table, start to finish: load it (in this process, or through worker processes into a
staging table), retry transient failures from a clean start, then add its primary key,
indexes and sequences, recording each step in the state table for --resume. Small tables
do all of that together, in groups (load_group)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_process
import asyncpg

from . import ddl, existing
from .constraints import REFUSED
from .distribution import distribute_sql, placement_of
from .errors import SourceChanged
from .faults import describe_failure, describe_pg_error, is_environmental, retrying
from .ident import MAX_IDENTIFIER_BYTES, qualified, quote_literal
from .lifecycle import Lifecycles
from .load import load_marked, load_rows, rowid_column
from .loadspec import Counted, LoadCounts, LoadSpec
from .planning import MigrationPlan, TablePlan
from .progress import Progress
from .reader import table_ranges
from .rebuild import Definition
from .rejects import RejectList, RejectLog
from .resume import Need, TableState, need_of
from .screening import Screen, take_out
from .settings import IfExists, Settings
from .source import ChangeWatch, KeyRange
from .stats import RunStats, TableStats, TableStatus
from .tasks import task_group
from .worker import load_chunk, load_chunk_here
from .writer import TableWriter, check_max_rejects

if TYPE_CHECKING:
    from .verification import EarlyDigests

STAGING_PREFIX = "_copier_load_"


def staging_name(table: str) -> str:
    """A per-table name in the target schema; fits PostgreSQL's 63 bytes."""
    name = STAGING_PREFIX + hashlib.sha1(table.encode("utf-8")).hexdigest()[:16]
    assert len(name) <= MAX_IDENTIFIER_BYTES
    return name


# Tables at least this big (and created by copier) load through worker processes.
PARALLEL_MIN_ROWS = 50_000
# Rows per worker task: small enough to spread over the workers and move the progress bar.
# Fixed, not a flag: --batch-size is rows per batch, and --workers how many chunks load at once.
PARALLEL_CHUNK_ROWS = 100_000
# Pages buffered in each worker: one being read while one is written is enough there,
# and every page held costs memory in every worker process.
WORKER_QUEUE_DEPTH = 1


@dataclass
class Run:
    """What every table of one run shares."""

    path: Path
    settings: Settings
    plan: MigrationPlan
    pool: asyncpg.Pool
    stats: RunStats
    rejects: RejectLog
    progress: Progress
    watch: ChangeWatch | None = None
    record_state: bool = True
    resumed: dict[str, TableState] = field(default_factory=dict)  # tables an earlier run committed
    # Each table's status, its record and its events: the one owner of where a table is.
    tables: Lifecycles = field(default_factory=lambda: Lifecycles(()))
    early: EarlyDigests | None = None  # verify's source digests, started with each load attempt



@dataclass(frozen=True, slots=True)
class Loaded:
    """One successful attempt: what it counted, and its rejects, for the reject file."""

    counts: LoadCounts
    chunks: int  # loaded by worker processes; 0 in this process
    rejects: RejectList


async def load_table(run: Run, table: TablePlan, stats: TableStats) -> None:
    """Load, retrying transient failures; then complete. Failures end up in `stats`: a
    table ends KEYED (rows, keys, indexes and sequences in place; done once the run's
    complete phase has run whole), LOADED (its rows are committed, what completes it is
    not: --resume adds it), FAILED (rolled back) or SKIPPED (a table it references failed).

    The one writer of a table's stats: loads return their counts, and they land here; its
    status moves through its lifecycle (run.tables)."""
    run.tables[table.name].start()
    await _load_started(run, table, stats)


async def _load_started(run: Run, table: TablePlan, stats: TableStats) -> None:
    """load_table, once the table is loading."""
    lifecycle = run.tables[table.name]
    earlier = run.resumed.get(table.name)
    need = need_of(earlier)
    try:
        if earlier is not None and need is not Need.FRESH:  # committed by the earlier run: its counts
            stats.read = table.source.row_count
            stats.written, stats.rejected = earlier.rows_written or 0, earlier.rows_rejected or 0
            stats.resumed = True
        else:
            again = False

            def failed(attempt: int, exc: BaseException) -> None:
                nonlocal again
                again = True
                _retried(run, table.name, stats, attempt, exc)

            try:
                loaded = await retrying(lambda: _attempt(run, table, again=again), run.settings.retries, failed,
                                        run.pool)
            except ParentFailed as exc:  # nothing of it stands: as if it had waited for the parent
                await lifecycle.skipped(str(exc))
                return
            except Exception as exc:
                await lifecycle.failed(describe_failure(exc, run.settings.dsn), fault=is_environmental(exc))
                return
            _committed(run, stats, loaded)
        # Tables that reference this one may start now: they need its rows, not its
        # indexes (foreign keys are added once every table is complete).
        lifecycle.loaded()
        # Never trusting a recorded status alone: even a table the earlier run recorded
        # done gets whatever the catalog says is missing (each step checks first).
        # This attempt created it: no key or sequence yet, no need to ask (a retry asks: the
        # failed attempt may have added some).
        created = table.create and need is Need.FRESH

        def retried(attempt: int, exc: BaseException) -> None:
            nonlocal created
            created = False
            _retried(run, f"{table.name} keys", stats, attempt, exc)

        try:
            await retrying(lambda: _complete(run, table, stats, created=created), run.settings.retries, retried,
                           run.pool)
        except Exception as exc:
            if not is_environmental(exc):
                raise
            await lifecycle.keys_missing(describe_failure(exc, run.settings.dsn))
            return
        await lifecycle.keyed()
    finally:
        stats.finished = time.monotonic()


def _retried(run: Run, step: str, stats: TableStats, attempt: int, exc: BaseException) -> None:
    stats.retries += 1
    run.progress.note(f"copier: {step}: attempt {attempt + 1} of {run.settings.retries + 1} failed "
                      f"({describe_failure(exc, run.settings.dsn)}); retrying from a clean start")


async def _complete(run: Run, table: TablePlan, stats: TableStats, *, created: bool) -> None:
    async with run.pool.acquire() as connection:
        await complete_table(run, table, stats, connection, created=created)


def _committed(run: Run, stats: TableStats, loaded: Loaded) -> None:
    """A load's counts into the table's stats, and its rejects into the reject file."""
    counts = loaded.counts
    stats.read, stats.written, stats.rejected, stats.rounded = (counts.read, counts.written, counts.rejected,
                                                               counts.rounded)
    stats.columnar = counts.columnar
    stats.chunks = loaded.chunks
    # Committed: rejects reach the reject file now, outside the retries (a failed write
    # must not send a committed table back through a retry).
    run.rejects.write_list(loaded.rejects)
    loaded.rejects.close()


# Tables under this many rows that copier creates travel together (load_group): their fixed
# costs (a transaction, its commit, a statement per DDL) are most of what they cost alone.
GROUP_MAX_ROWS = 1_000
# Tables per group: enough to share the fixed costs (64 against 32: 2.68 s against 2.8 s for
# 500 tables), few enough that --jobs groups run at once. Each table holds a few locks until
# its group commits (heap, TOAST, indexes, sequence): well within PostgreSQL's default lock
# table; on a server whose table is smaller, the group fails and its tables load alone.
GROUP_MAX_TABLES = 64


def groupable(run: Run, table: TablePlan) -> bool:
    """Whether the table may load in a group: small, created by copier, not resumed."""
    return (table.create and table.name not in run.resumed and table.source.row_count < GROUP_MAX_ROWS
            and not _in_parallel(run, table) and _citus_call(run, table) is None)


async def load_group(run: Run, tables: Sequence[TablePlan]) -> None:
    """Small tables loaded and keyed in one transaction, without a savepoint per table. If
    anything fails (a row PostgreSQL refuses included), nothing of the group stands and each
    table loads again on its own, with its savepoints, bisection and retries (load_table).
    Rows the converters reject are rejected as alone. Failures end up in the tables' stats."""
    every = [run.stats.tables[t.name] for t in tables]
    for table in tables:
        run.tables[table.name].start()
    try:
        loaded, warnings = await _group_attempt(run, tables)
    except Exception as exc:
        run.progress.note(f"copier: {len(tables)} small tables loaded together failed "
                          f"({describe_failure(exc, run.settings.dsn)}); loading each on its own")
        for table, stats in zip(tables, every):
            await _load_started(run, table, stats)
        return
    for table, stats, result in zip(tables, every, loaded):
        _committed(run, stats, result)
        stats.warnings += warnings.get(table.name, [])
        lifecycle = run.tables[table.name]
        lifecycle.loaded()
        await lifecycle.keyed()  # as its group's transaction recorded it
        stats.finished = time.monotonic()


async def _group_attempt(run: Run, tables: Sequence[TablePlan]) -> tuple[list[Loaded], dict[str, list[str]]]:
    """The group's tables loaded and keyed in one transaction: what each load counted, and
    the keys PostgreSQL refused, per table."""
    schema = run.plan.schema
    version = run.watch.version() if run.watch else None
    results: list[Loaded] = []
    async with run.pool.acquire() as connection, connection.transaction():
        await connection.execute(";\n".join(ddl.create_table(schema, t) for t in tables))
        for table in tables:
            rejects = RejectList()
            bar = run.progress.table(table.name, table.source.row_count)
            try:
                ranges = await table_ranges(run.path, table.source, 1)
                # A row PostgreSQL refuses undoes the group: each table loads again alone, undoably.
                counts = await load_rows(_spec(run, table, ranges), connection, rejects, bar.advance, undoable=False)
            finally:
                bar.close()
            results.append(Loaded(counts, 0, rejects))
        # One look for the group (a change undoes it: each table then loads, and is named, alone).
        _check_unchanged(run, tables[0], version)
        warnings = await _add_keys_together(run, tables, connection)
        # Every identity's sequence past its table's keys, in one statement (values inlined).
        sequences = [ddl.set_sequence(schema, table.target, column.target,
                                      quote_literal(qualified(schema, column.sequence)), str(int(table.sequence_floor)))
                     for table in tables for column in table.columns if column.identity and column.sequence]
        if sequences:
            await connection.execute(";\n".join(sequences))
        await run.tables.record_in(connection, [t.name for t in tables], TableStatus.KEYED, {
            t.name: (loaded.counts.written, loaded.counts.rejected) for t, loaded in zip(tables, results)})
    return results, warnings


async def _add_keys_together(run: Run, tables: Sequence[TablePlan],
                             connection: asyncpg.Connection) -> dict[str, list[str]]:
    """Every primary key and index of the group in one statement; if PostgreSQL refuses one
    (duplicate keys SQLite let in), each in its own savepoint, the refused ones named as
    warnings of their table, as complete_table does."""
    statements = {table.name: _key_statements(run, table, primary_key=True) for table in tables}
    every = [sql for listed in statements.values() for _what, sql in listed]
    if not every:
        return {}
    try:
        async with connection.transaction():
            await connection.execute(";\n".join(every))
        return {}
    except asyncpg.PostgresError:
        pass
    return {name: await _execute_each(connection, listed, savepoints=True) for name, listed in statements.items()}


async def _execute_each(connection: asyncpg.Connection, statements: Sequence[tuple[str, str]], *,
                        savepoints: bool = False, advance: Callable[[int], None] = lambda _n: None) -> list[str]:
    """Run each (what, SQL) statement; the ones PostgreSQL refuses (for the data's sake:
    duplicate keys SQLite let in) come back as warnings. A fault of the server (disk full,
    a lost connection, a lock or statement timeout) is raised: the step is not done, and
    --resume does it. With `savepoints` (inside a transaction), a refused one undoes only itself."""
    warnings = []
    for what, sql in statements:
        try:
            if savepoints:
                async with connection.transaction():
                    await connection.execute(sql)
            else:
                await connection.execute(sql)
        except asyncpg.PostgresError as exc:
            if is_environmental(exc):
                raise
            warnings.append(f"{what} not added: {describe_pg_error(exc)}")
        advance(1)
    return warnings


def _spec(run: Run, table: TablePlan, ranges: Sequence[KeyRange | None]) -> LoadSpec:
    settings = run.settings
    return LoadSpec(run.path, run.plan.schema, table, tuple(ranges), settings.value_options(), settings.batch_size,
                    settings.queue_depth, settings.on_error, settings.busy_timeout, settings.max_rejects)


def _in_parallel(run: Run, table: TablePlan) -> bool:
    """Worker processes pay off for big tables copier creates (they load into a staging
    table; a table that already exists is loaded in one transaction instead)."""
    return (table.create and bool(table.source.range_key) and run.settings.workers > 1
            and table.source.row_count >= PARALLEL_MIN_ROWS)


def _readers(run: Run, table: TablePlan) -> int:
    """Readers feeding the one COPY of a table loaded in this process: --readers; for a big
    table that exists, in the columnar lane (one transaction: its rows commit with its
    indexes, so no worker chunks), as many as --workers, the streams a table copier creates
    gets. There one reader is what limits the COPY (the 1M-row finance table: 3.6 s of CPU
    reading and normalising, PostgreSQL's side of the COPY 1.4 s); the exact lane's readers
    convert in Python and would only share its lock."""
    big = table.source.row_count >= PARALLEL_MIN_ROWS and not table.create and table.lane.columnar
    return max(run.settings.readers, run.settings.workers if big else 1)


async def _attempt(run: Run, table: TablePlan, *, again: bool = False) -> Loaded:
    """One try at the table's rows, all or nothing. Its rejects reach the reject file only
    once the rows are committed, so a retried table does not list them twice. `again`: a
    retry, after an attempt whose outcome the lost connection may have hidden."""
    rejects = RejectList()
    bar = run.progress.table(table.name, table.source.row_count)
    advance = Counted(bar.advance)  # taken back if the attempt fails: a retry counts its rows again
    version = run.watch.version() if run.watch else None
    if run.early is not None:
        run.early.start(table, version)
    try:
        async with run.pool.acquire() as connection:
            if _in_parallel(run, table):
                await run.tables[table.name].record_in(connection, TableStatus.LOADING)
                counts, chunks = await _load_parallel(run, table, connection, rejects, advance, version, again)
                return Loaded(counts, chunks, rejects)
            ranges = await table_ranges(run.path, table.source, _readers(run, table))
            async with connection.transaction():
                # Seen as loading once committed, with the rows: a rolled-back attempt leaves
                # the table's state as it was, which --resume reads as "load it".
                await run.tables[table.name].record_in(connection, TableStatus.LOADING)
                if table.create:
                    if again:
                        # The attempt before may have committed after all: its COMMIT's answer is
                        # what the lost connection took. This run created the table: start clean.
                        await connection.execute(f"DROP TABLE IF EXISTS {qualified(run.plan.schema, table.target)}")
                    await connection.execute(ddl.create_table(run.plan.schema, table))
                    await _distribute(run, table, table.target, connection)
                if run.settings.if_exists is IfExists.UPSERT and not table.create:
                    counts = await _upsert(run, table, connection, ranges, rejects, advance)
                elif run.record_state and not table.create:  # its indexes may be set aside: made again here
                    counted = LoadCounts()

                    async def load(refused: bool) -> LoadCounts:
                        nonlocal counted
                        rejects.clear()  # a load undone is loaded again, rejects and all
                        advance.take_back()
                        counted = await load_rows(_spec(run, table, ranges), connection, rejects, advance,
                                                  refused=refused)
                        return counted

                    async def refused_rows(definition: Definition) -> bool:
                        return await _take_out(run, table, connection, definition, counted, rejects)

                    counts = await existing.load_then_restore(
                        connection, run.plan.schema, table.target, run.settings.state_schema, load,
                        run.progress.note, loaded=lambda: _rows_in(run, table),
                        parents=lambda: _parents_done(run, table), refused_rows=refused_rows,
                        orphans_likely=lambda key: _parent_refused_rows(run, table, key))
                else:
                    counts = await load_rows(_spec(run, table, ranges), connection, rejects, advance)
                _check_unchanged(run, table, version)
                await run.tables[table.name].record_in(connection, TableStatus.LOADED, written=counts.written,
                                                       rejected=counts.rejected)
            return Loaded(counts, 0, rejects)
    except BaseException:
        advance.take_back()
        raise
    finally:
        bar.close()


async def _take_out(run: Run, table: TablePlan, connection: asyncpg.Connection, definition: Definition,
                    counts: LoadCounts, rejects: RejectList) -> bool:
    """The loaded rows `definition` (set aside) refuses, rejected (named by the column holding
    their rowid) and deleted, counted in `counts`; False (nothing done) where no column names
    them, or screening.take_out does not model the definition."""
    column = rowid_column(table)
    if column is None:
        # The rows' order in the heap is not the load's (a COPY fills free space PostgreSQL's
        # free space map knows of, out of order): nothing here tells which of equal keys came first.
        run.progress.note(f"copier: {table.name}: no column holds its rows' rowids (no INTEGER PRIMARY KEY): "
                          f"the rows {definition.kind} {definition.name} refuses are found by loading it again")
        return False
    writer = TableWriter(connection, run.plan.schema, table, rejects, run.settings.on_error, run.settings.max_rejects,
                         rejected=counts.rejected)
    removed = await take_out(connection, run.plan.schema, table.target, definition,
                             [c.target for c in table.columns], column, writer.reject_reasons)
    if removed is None:
        return False
    counts.written -= removed
    counts.rejected += removed
    return True


async def _upsert(run: Run, table: TablePlan, connection: asyncpg.Connection, ranges: Sequence[KeyRange | None],
                  rejects: RejectList, advance: Callable[[int], None]) -> LoadCounts:
    """--if-exists upsert: the rows COPY into a temporary table, then one INSERT ... ON
    CONFLICT (primary key) DO UPDATE, so a rerun converges instead of rejecting duplicates.
    The rows the table refuses whatever it holds (NULL where it may not be, a failed check,
    a missing parent) are marked there first, set-wise, and rejected, named by the column
    holding their rowid or the one-column primary key (screening.Screen.mark_for_upsert);
    a table with neither: staged and marked so, and if a row is refused, staged again page
    by page, each page's refused rows rejected named by their keys in the source
    (load.load_marked), the others upserted from there."""
    columns = [c.target for c in table.columns]
    key = rowid_column(table) or (table.existing_key[0] if len(table.existing_key) == 1 else None)
    if key is None or key not in columns:
        return await _upsert_unnamed(run, table, connection, ranges, rejects, advance)
    screen = await Screen.of(connection, run.plan.schema, table.target, columns, row=key)
    await screen.create_staging()
    staging = replace(table, target=screen.staging)
    counts = await load_rows(replace(_spec(run, staging, ranges), schema="pg_temp"), connection, rejects, advance)
    await screen.mark_for_upsert()
    writer = TableWriter(connection, run.plan.schema, table, rejects, run.settings.on_error, run.settings.max_rejects,
                         rejected=counts.rejected)
    async for batch in screen.refused():
        writer.reject_reasons(batch)
    counts.rejected = writer.rejected
    status = await connection.execute(ddl.upsert_from_staging(run.plan.schema, table, screen.staging, REFUSED))
    counts.written = int(status.split()[-1])  # INSERT 0 <rows inserted or updated>
    return counts


class _RowsRefused(Exception):
    """Rows the table refuses were staged by _upsert_unnamed: undone, staged again by page."""


async def _upsert_unnamed(run: Run, table: TablePlan, connection: asyncpg.Connection,
                          ranges: Sequence[KeyRange | None], rejects: RejectList,
                          advance: Callable[[int], None]) -> LoadCounts:
    """_upsert where no loaded column names the rows: the whole table staged and marked; if
    none is refused (the usual case), upserted from there; else that is undone and the rows
    staged again page by page, whose keys name the rows each page refuses."""
    schema, columns = run.plan.schema, [c.target for c in table.columns]
    screen = await Screen.of(connection, schema, table.target, columns)
    counted = Counted(advance)
    try:
        async with connection.transaction():  # a savepoint
            await screen.create_staging()
            staging = replace(_spec(run, replace(table, target=screen.staging), ranges), schema="pg_temp")
            counts = await load_rows(staging, connection, rejects, counted)
            await screen.mark_for_upsert()
            if await screen.any_refused():
                raise _RowsRefused
            status = await connection.execute(ddl.upsert_from_staging(schema, table, screen.staging, REFUSED))
            counts.written = int(status.split()[-1])  # INSERT 0 <rows inserted or updated>
            return counts
    except _RowsRefused:
        counted.take_back()
        rejects.clear()  # the rows are read again, their rejects too
    await connection.execute(ddl.create_upsert_staging(schema, table))
    counts = await load_marked(_spec(run, table, ranges), connection, rejects, advance, screen, ddl.UPSERT_STAGING)
    status = await connection.execute(ddl.upsert_from_staging(schema, table))
    counts.written = int(status.split()[-1])  # INSERT 0 <rows inserted or updated>
    return counts


class ParentFailed(Exception):
    """A table started while a table it references was still being made, which then failed:
    its load is undone, and it is skipped as it would have been had it waited."""


def _rows_in(run: Run, table: TablePlan) -> None:
    if table.name in run.tables:
        run.tables[table.name].rows_in()


async def _parents_done(run: Run, table: TablePlan) -> None:
    """Wait until every table `table` references is committed (its keys made again), and
    raise ParentFailed if one did not load."""
    for parent in table.depends_on:
        if parent in run.tables:
            await run.tables[parent].wait_loaded()
            if not run.tables[parent].committed:
                raise ParentFailed(f"not loaded: table {parent} it references failed")


def _parent_refused_rows(run: Run, table: TablePlan, key: Definition) -> bool:
    """Whether foreign key `key` of `table` references a table that refused rows of this run
    (known once it is committed: _parents_done): rows of `table` are then likely its orphans."""
    return any(run.tables[p].stats.rejected and key.refers_to(run.plan.schema, run.tables[p].table.target)
               for p in table.depends_on if p in run.tables)


def _check_unchanged(run: Run, table: TablePlan, version: int | None) -> None:
    if run.watch is not None and run.watch.version() != version:
        raise SourceChanged(
            f"table {table.name}: the SQLite file was written to while it was read",
            hint="stop the application writing to it, or use --snapshot to migrate from a consistent copy",
            table=table.name)


async def _load_parallel(
    run: Run, table: TablePlan, connection: asyncpg.Connection, rejects: RejectList,
    advance: Callable[[int], None], version: int | None, again: bool = False,
) -> tuple[LoadCounts, int]:
    """Worker processes load rowid chunks into a staging table, renamed into place at the
    end. Returns the counts of all chunks, and how many chunks there were."""
    schema = run.plan.schema
    staging = replace(table, target=staging_name(table.target))
    await connection.execute(f"DROP TABLE IF EXISTS {qualified(schema, staging.target)}")
    if again:  # the attempt before may have renamed its own into place (see _attempt); its sequence too
        await connection.execute(f"DROP TABLE IF EXISTS {qualified(schema, table.target)}")
    await connection.execute(ddl.create_table(schema, staging))
    try:
        await _distribute(run, table, staging.target, connection)
        chunks = -(-table.source.row_count // PARALLEL_CHUNK_ROWS)
        ranges = await table_ranges(run.path, table.source, max(chunks, run.settings.workers))
        limiter = anyio.CapacityLimiter(run.settings.workers)
        counts = LoadCounts()
        here = table.lane.columnar  # see worker.py: threads, not processes

        async def load(key_range: KeyRange | None) -> None:
            spec = replace(_spec(run, staging, [key_range]), queue_depth=WORKER_QUEUE_DEPTH)
            if here:
                async with limiter:
                    result = await load_chunk_here(spec, run.settings.dsn, advance, rejects)
            else:
                result = await anyio.to_process.run_sync(load_chunk, spec, run.settings.dsn, cancellable=True,
                                                         limiter=limiter)
                advance(result.counts.read)
            rejects.extend(result.rejects)
            counts.add(result.counts)

        async with task_group() as group:
            for key_range in ranges:
                group.start_soon(load, key_range)
        check_max_rejects(table.name, counts.rejected, run.settings.max_rejects)  # over all chunks
        _check_unchanged(run, table, version)
        async with connection.transaction():
            # The identity's sequence already has its final name (the plan's), not the staging table's.
            await connection.execute(ddl.rename_table(schema, staging.target, table.target))
            await _rename_not_nulls(connection, schema, staging.target, table.target)
            await run.tables[table.name].record_in(connection, TableStatus.LOADED, written=counts.written,
                                                   rejected=counts.rejected)
        return counts, len(ranges)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await connection.execute(f"DROP TABLE IF EXISTS {qualified(schema, staging.target)}")
        raise


async def _rename_not_nulls(connection: asyncpg.Connection, schema: str, staging: str, final: str) -> None:
    """On PostgreSQL 18, the NOT NULL constraints named after the staging table take the
    names a table created under its final name has (nothing to do on older servers)."""
    constraints = [(r["conname"], r["attname"]) for r in
                   await connection.fetch(ddl.NOT_NULL_NAMES, qualified(schema, final))]
    if not constraints:
        return
    taken = {r["conname"] for r in await connection.fetch(ddl.NAMES_TAKEN, schema)}
    for old, new in ddl.not_null_renames(staging, final, constraints, taken):
        await connection.execute(ddl.rename_constraint(schema, final, old, new))


def _citus_call(run: Run, table: TablePlan, target: str | None = None) -> str | None:
    """The Citus call that distributes the table once created (into `target`: it or its
    staging table), or None: not into Citus, or kept local."""
    placement = placement_of(run.plan, table.name)
    return distribute_sql(run.plan.schema, target or table.target, placement) if placement else None


async def _distribute(run: Run, table: TablePlan, target: str, connection: asyncpg.Connection) -> None:
    """Into Citus: the created table distributed (or made a reference table) before its
    rows, by its own statement (README: Into a Citus cluster)."""
    call = _citus_call(run, table, target)
    if call is not None:
        await connection.execute(call)


def _key_statements(run: Run, table: TablePlan, *, primary_key: bool) -> list[tuple[str, str]]:
    """(what, SQL) of the table's indexes, and of its primary key if asked."""
    schema = run.plan.schema
    statements = []
    if table.create and table.primary_key and primary_key:
        statements.append(("primary key", ddl.add_primary_key(schema, table)))
    return statements + [(f"index {i.name}", ddl.create_index(schema, table, i)) for i in table.indexes]


async def complete_table(run: Run, table: TablePlan, stats: TableStats, connection: asyncpg.Connection, *,
                         created: bool = False) -> None:
    """Primary key, indexes and sequences, once the data is committed; each only if missing,
    so a resumed run can finish what an interrupted one started. One PostgreSQL refuses
    leaves the data in place and is reported as a warning; a fault of the server is raised
    (the data stays, and --resume adds what is missing)."""
    schema = run.plan.schema
    name = qualified(schema, table.target)
    has_key = not created and table.create and bool(table.primary_key) and await connection.fetchval(
        ddl.HAS_PRIMARY_KEY, name)
    statements = _key_statements(run, table, primary_key=created or not has_key)
    warnings = []  # into the stats only once every step has run: a retried attempt finds them again
    if statements:
        bar = run.progress.phase(f"{table.name} keys", len(statements))
        try:
            warnings += await _execute_each(connection, statements, advance=bar.advance)
        finally:
            bar.close()
    owned = ([(c.target, qualified(schema, c.sequence)) for c in table.columns if c.identity and c.sequence]
             if created else await connection.fetch(ddl.OWNED_SEQUENCES, name))
    for column, sequence in owned:
        try:
            await connection.execute(ddl.set_sequence(schema, table.target, column), sequence, table.sequence_floor)
        except asyncpg.PostgresError as exc:
            if is_environmental(exc):
                raise
            warnings.append(f"sequence {sequence} not set: {describe_pg_error(exc)}")
    stats.warnings += warnings


__all__ = ["Run", "complete_table", "groupable", "load_group", "load_table", "staging_name"]
