"""Orchestration: plan, prepare the target, load tables in dependency order through bounded
streams, then add keys, indexes, foreign keys and sequences, and verify."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import anyio.to_process
import asyncpg

from . import ddl, source, target
from .catalog import Catalog
from .errors import CopierError, LoadError, TargetError
from .ident import qualified
from .load import LoadSpec, first_error, load_rows
from .normalise import Options
from .plan import MigrationPlan, TablePlan, build_plan
from .progress import Progress, make_progress
from .reader import KeyRange, table_ranges
from .rejects import RejectLog
from .settings import IfExists, Settings, redact_text
from .stats import RunStats, Status, TableStats
from .worker import load_chunk, staging_name, tune_gc
from .writer import describe_pg_error

ProgressFactory = Callable[[int, bool], Progress]

# Tables at least this big (and created by copier) load through worker processes.
PARALLEL_MIN_ROWS = 50_000
# Rows per worker task: small enough to spread over the workers and move the progress bar.
PARALLEL_CHUNK_ROWS = 100_000


def _options(settings: Settings) -> Options:
    return Options(source_tz=settings.source_tz, strip_nul=settings.strip_nul)


async def read_source(path: Path) -> Catalog:
    connection = await source.connect(path)
    try:
        return await source.read_catalog(connection)
    finally:
        await connection.close()


async def make_plan(path: Path, settings: Settings, connection: asyncpg.Connection | None) -> MigrationPlan:
    """The plan against what the target already holds (nothing, without a connection)."""
    catalog = await read_source(path)
    existing = await target.existing_tables(connection, settings.schema) if connection else {}
    return build_plan(catalog, existing, schema=settings.schema, include=settings.tables,
                      exclude=settings.exclude, casts=dict(settings.casts), options=_options(settings))


def default_reject_path(path: Path) -> Path:
    return Path.cwd() / f"{path.stem}.rejects.jsonl"


@dataclass
class _Run:
    path: Path
    settings: Settings
    plan: MigrationPlan
    pool: asyncpg.Pool
    stats: RunStats
    rejects: RejectLog
    progress: Progress
    done: dict[str, anyio.Event] = field(default_factory=dict)


async def migrate(path: Path, settings: Settings, progress_factory: ProgressFactory | None = None) -> RunStats:
    """Move every selected table of the SQLite file at `path` into PostgreSQL."""
    source.check_file(path)
    tune_gc()
    connection = await target.connect(settings.dsn)
    try:
        await target.ensure_schema(connection, settings.schema)
        plan = await make_plan(path, settings, connection)
        await target.check_privileges(connection, plan)
        kept = await _prepare_existing(connection, plan, settings)
    finally:
        await connection.close()
    stats = RunStats()
    for table in plan.tables:
        stats.tables[table.name] = TableStats(table.name, table.target, expected=table.source.row_count,
                                              preexisting=kept.get(table.target, 0))
    stats.notes += [*plan.notes, *(f"skipped {name}: {why}" for name, why in plan.skipped)]
    rejects = RejectLog(settings.reject_file or default_reject_path(path))
    factory = progress_factory or (lambda total, quiet: make_progress(total, quiet=quiet))
    progress = factory(sum(t.source.row_count for t in plan.tables), settings.quiet)
    pool = await target.create_pool(settings.dsn, settings.jobs)
    run = _Run(path, settings, plan, pool, stats, rejects, progress)
    try:
        limiter = anyio.CapacityLimiter(settings.jobs)
        run.done = {t.name: anyio.Event() for t in plan.tables}
        async with anyio.create_task_group() as group:
            for table in plan.tables:
                group.start_soon(_load_when_ready, run, table, limiter)
        await _add_foreign_keys(run)
    finally:
        progress.close()
        rejects.close()
        await pool.close()
        stats.finished = time.monotonic()
    if settings.verify:
        from .verify import verify_run  # verify imports pipeline's helpers: import late

        await verify_run(path, settings, plan, stats, rejects.path)
    return stats


async def _prepare_existing(
    connection: asyncpg.Connection, plan: MigrationPlan, settings: Settings
) -> dict[str, int]:
    """Apply --if-exists to target tables that already hold rows, before any data moves.

    Returns the rows kept per target table (--if-exists append), for verification."""
    occupied: list[tuple[str, int]] = []
    for table in plan.tables:
        if table.create:
            continue
        name = qualified(plan.schema, table.target)
        if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name})"):
            occupied.append((table.target, await connection.fetchval(ddl.count_rows(plan.schema, table.target))))
    if not occupied or settings.if_exists is IfExists.APPEND:
        return dict(occupied)
    if settings.if_exists is IfExists.FAIL:
        listing = ", ".join(f"{name} has {rows:,} rows" for name, rows in occupied)
        raise TargetError(f"target tables already hold rows: {listing}",
                          hint="use --if-exists truncate to replace them or --if-exists append to add to them")
    try:
        # One statement, so tables that reference each other can be emptied together.
        await connection.execute(ddl.truncate(plan.schema, [name for name, _rows in occupied]))
    except asyncpg.PostgresError as exc:
        raise TargetError(f"cannot truncate {', '.join(n for n, _ in occupied)}: {describe_pg_error(exc)}") from None
    return {}


async def _load_when_ready(run: _Run, table: TablePlan, limiter: anyio.CapacityLimiter) -> None:
    stats = run.stats.tables[table.name]
    try:
        for parent in table.depends_on:
            await run.done[parent].wait()
            if run.stats.tables[parent].status is not Status.DONE:
                stats.status = Status.SKIPPED
                stats.error = f"not loaded: table {parent} it references failed"
                return
        async with limiter:
            await _load_table(run, table, stats)
    finally:
        run.done[table.name].set()


def _spec(run: _Run, table: TablePlan, ranges: Sequence[KeyRange | None]) -> LoadSpec:
    settings = run.settings
    return LoadSpec(run.path, run.plan.schema, table, tuple(ranges), _options(settings), settings.batch_size,
                    settings.queue_depth, settings.on_error)


def _in_parallel(run: _Run, table: TablePlan) -> bool:
    """Worker processes pay off for big tables copier creates (they load into a staging
    table; a table that already exists is loaded in one transaction instead)."""
    return (table.create and not table.source.without_rowid and run.settings.workers > 1
            and table.source.row_count >= PARALLEL_MIN_ROWS)


async def _load_table(run: _Run, table: TablePlan, stats: TableStats) -> None:
    stats.status, stats.started = Status.LOADING, time.monotonic()
    bar = run.progress.table(table.name, table.source.row_count)
    try:
        async with run.pool.acquire() as connection:
            try:
                if _in_parallel(run, table):
                    await _load_parallel(run, table, stats, connection, bar.advance)
                else:
                    ranges = await table_ranges(run.path, table.source, run.settings.readers,
                                                run.settings.batch_size)
                    async with connection.transaction():
                        if table.create:
                            await connection.execute(ddl.create_table(run.plan.schema, table))
                        await load_rows(_spec(run, table, ranges), connection, stats, run.rejects, bar.advance)
            except CopierError as exc:
                _fail(stats, str(exc))
                return
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                _fail(stats, redact_text(describe_pg_error(exc), run.settings.dsn))
                return
            except Exception as exc:  # a bug must not take the other tables down with it
                _fail(stats, redact_text(f"internal error: {type(exc).__name__}: {exc}", run.settings.dsn))
                return
            stats.status = Status.DONE
            await _complete_table(run, table, stats, connection)
    finally:
        stats.finished = time.monotonic()
        bar.close()


async def _load_parallel(
    run: _Run, table: TablePlan, stats: TableStats, connection: asyncpg.Connection,
    advance: Callable[[int], None],
) -> None:
    """Worker processes load rowid chunks into a staging table, renamed into place at the end."""
    schema = run.plan.schema
    staging = replace(table, target=staging_name(table.target))
    await connection.execute(f"DROP TABLE IF EXISTS {qualified(schema, staging.target)}")
    await connection.execute(ddl.create_table(schema, staging))
    try:
        chunks = math.ceil(table.source.row_count / max(run.settings.batch_size, PARALLEL_CHUNK_ROWS))
        ranges = await table_ranges(run.path, table.source, max(chunks, run.settings.workers),
                                    run.settings.batch_size)
        limiter = anyio.CapacityLimiter(run.settings.workers)

        async def load(key_range: KeyRange | None) -> None:
            result = await anyio.to_process.run_sync(
                load_chunk, _spec(run, staging, [key_range]), run.settings.dsn, cancellable=True, limiter=limiter)
            for record in result.rejects:
                run.rejects.write(record)
            stats.read += result.read
            stats.written += result.written
            stats.rejected += len(result.rejects)
            advance(result.read)

        try:
            async with anyio.create_task_group() as group:
                for key_range in ranges:
                    group.start_soon(load, key_range)
        except BaseExceptionGroup as group_error:
            raise first_error(group_error) from None
        async with connection.transaction():
            await connection.execute(ddl.rename_table(schema, staging.target, table.target))
            for column, sequence in await connection.fetch(ddl.OWNED_SEQUENCES, qualified(schema, table.target)):
                await connection.execute(ddl.rename_sequence(sequence, f"{table.target}_{column}_seq"))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await connection.execute(f"DROP TABLE IF EXISTS {qualified(schema, staging.target)}")
        raise


def _fail(stats: TableStats, message: str) -> None:
    stats.status = Status.FAILED
    stats.error = f"{message} (table rolled back)"
    stats.written = 0


async def _complete_table(run: _Run, table: TablePlan, stats: TableStats, connection: asyncpg.Connection) -> None:
    """Primary key, indexes and sequences, once the data is committed. A failure here
    leaves the data in place and is reported as a warning."""
    schema = run.plan.schema
    statements = []
    if table.create and table.primary_key:
        statements.append(("primary key", ddl.add_primary_key(schema, table)))
    statements += [(f"index {i.name}", ddl.create_index(schema, table, i)) for i in table.indexes]
    for what, sql in statements:
        try:
            await connection.execute(sql)
        except asyncpg.PostgresError as exc:
            stats.warnings.append(f"{what} not added: {describe_pg_error(exc)}")
    name = qualified(schema, table.target)
    for column, sequence in await connection.fetch(ddl.OWNED_SEQUENCES, name):
        try:
            await connection.execute(ddl.set_sequence(schema, table.target, column), sequence, table.sequence_floor)
        except asyncpg.PostgresError as exc:
            stats.warnings.append(f"sequence {sequence} not set: {describe_pg_error(exc)}")


async def _add_foreign_keys(run: _Run) -> None:
    schema = run.plan.schema
    async with run.pool.acquire() as connection:
        for fk in run.plan.foreign_keys:
            child = run.stats.tables.get(fk.table)
            parent = run.stats.tables.get(fk.ref_table)
            if child is None or child.status is not Status.DONE:
                continue
            if parent is not None and parent.status is not Status.DONE:
                child.warnings.append(f"foreign key {fk.name} not added: {fk.ref_table} was not loaded")
                continue
            try:
                await connection.execute(ddl.add_foreign_key(schema, fk))
            except asyncpg.ForeignKeyViolationError:
                orphans = await connection.fetchval(ddl.count_orphans(schema, fk))
                child.warnings.append(
                    f"foreign key {fk.name} not added: {orphans} row(s) reference missing {fk.ref_table} rows "
                    "(SQLite did not enforce it)")
            except asyncpg.PostgresError as exc:
                child.warnings.append(f"foreign key {fk.name} not added: {describe_pg_error(exc)}")


def exit_code(stats: RunStats) -> int:
    from .errors import ExitCode

    if stats.verified is False:
        return ExitCode.VERIFY
    if any(t.status in (Status.FAILED, Status.SKIPPED) or t.warnings for t in stats.tables.values()):
        return ExitCode.FAILED
    if any(t.rejected for t in stats.tables.values()):
        return ExitCode.REJECTED
    return ExitCode.OK


__all__ = ["migrate", "make_plan", "exit_code", "LoadError"]
