"""Orchestration of a migration's three phases, as pgloader's: check the source, prepare
the target (prepare.py), load the tables in dependency order (the waves here, each table
in tableload.py, its status in lifecycle.py), complete them (complete.py: foreign keys,
views), verifying meanwhile. Stops cleanly on SIGINT/SIGTERM, and resumes."""

from __future__ import annotations

import importlib
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
from anyio.streams.memory import MemoryObjectReceiveStream

from . import source, state, target
from .catalog import Catalog
from .complete import complete, step
from .errors import ExitCode, SourceError, VerifyError
from .existing import decisions
from .ident import qualified
from .lifecycle import Lifecycles, Recorder, TableLifecycle
from .lockwatch import lock_waits_announced
from .planning import MigrationPlan, TablePlan
from .prepare import plan_for, prepare, reject_path, restore_all, settled, staging_tables
from .progress import NullProgress, Progress, TableBar, make_progress
from .rebuild import DefinitionKind
from .rejects import RejectLog
from .resume import TableState
from .settings import Settings
from .stats import RunStats, TableStatus
from .tableload import (
    GROUP_MAX_TABLES,
    Run,
    groupable,
    load_group,
    load_table,
)
from .tasks import task_group
from .verification import EarlyDigests, TableCheck, verify_run, verify_tables

ProgressFactory = Callable[[int, bool], Progress]


async def read_source(path: Path, busy_timeout: float | None = None) -> Catalog:
    return await anyio.to_thread.run_sync(source.catalog_of, path, busy_timeout)


async def make_plan(path: Path, settings: Settings, connection: asyncpg.Connection | None) -> MigrationPlan:
    """The plan against what the target already holds (nothing, without a connection)."""
    catalog = await read_source(path, settings.busy_timeout)
    if connection is None:
        offline = plan_for(catalog, settings, {})
        if any(t.generated for t in offline.tables):
            offline = replace(offline, notes=(*offline.notes, UNTRIED_GENERATED))
        return offline
    tables = await target.existing_tables(connection, settings.schema)
    the_plan = plan_for(catalog, settings, tables, await target.taken_names(connection, settings.schema))
    the_plan = await settled(connection, path, the_plan, settings)
    return replace(the_plan, set_aside=tuple(await decisions(connection, the_plan, settings)))


UNTRIED_GENERATED = ("generated columns shown as computed by PostgreSQL were not tried against it (no target): "
                     "migrate keeps each generated only if PostgreSQL accepts it and computes SQLite's values")


async def plan(path: Path, settings: Settings, *, against_target: bool = True) -> MigrationPlan:
    """The plan `migrate` would follow; against what the target holds, unless told not to
    (or there is no DSN). Touches nothing."""
    if not against_target or not settings.dsn:
        return await make_plan(path, settings, None)
    async with target.connected(settings.dsn) as connection:
        return await make_plan(path, settings, connection)


async def verify(path: Path, settings: Settings) -> list[TableCheck]:
    """Compare every selected table of the source with the target (README: Verification).
    The reject file (settings.reject_file, else the default one if present) is accounted for."""
    the_plan = await plan(path, settings)
    missing = [t.name for t in the_plan.tables if t.create]
    if missing:
        raise VerifyError(f"not in the target schema {settings.schema!r}: {', '.join(missing)}",
                          hint="check --schema, or migrate first")
    rejects = settings.reject_file or await _recorded_reject_file(settings) or reject_path(settings, path)
    try:
        async with source.keep_connections():
            return await verify_tables(path, settings, the_plan, rejects if rejects.exists() else None)
    finally:
        _release_readers()


def _release_readers() -> None:
    """Close the C reader's kept SQLite connections (columnar.release_idle), if it ran."""
    columnar = sys.modules.get(f"{__package__}.columnar")
    if columnar is not None:
        columnar.release_idle()


async def _recorded_reject_file(settings: Settings) -> Path | None:
    """The reject file of the run that loaded the schema, as the state table records it:
    verify reads that one, not a stale file of another run that happens to be here."""
    async with target.connected(settings.dsn) as connection:
        recorded = await state.read(connection, settings.schema, settings.state_schema)
    files = {s.reject_file for s in recorded if s.reject_file}
    return Path(files.pop()) if len(files) == 1 else None


async def status(dsn: str, schema: str | None = None, state_schema: str = state.STATE_SCHEMA) -> list[TableState]:
    """The progress `migrate` recorded in the target (per table, for --resume)."""
    async with target.connected(dsn) as connection:
        return await state.read(connection, schema, state_schema)


async def clean(dsn: str, schema: str, state_schema: str = state.STATE_SCHEMA) -> list[str]:
    """Remove what copier left in the target for itself: staging tables of a run that was
    killed (and its --snapshot copy in the temp dir), and its progress records for `schema`
    (the `copier` schema once empty). The
    migrated tables are the user's and stay. Returns what was removed."""
    removed = [f"snapshot directory {path} of a run that was killed" for path in remove_stale_snapshots()]
    # The user's indexes and constraints an interrupted run set aside, made again first.
    await restore_all(dsn, schema, state_schema, 4,
                       hint="fix what stops it and run copier clean again (the others were made again; "
                            "no staging table or progress record was removed)")
    async with target.connected(dsn) as connection:
        for name in sorted(await staging_tables(connection, schema)):
            await connection.execute(f"DROP TABLE {qualified(schema, name)}")
            removed.append(f"staging table {schema}.{name}")
        recorded = await state.forget(connection, schema, state_schema)
        if recorded:
            removed.append(f"{recorded} progress record(s) of schema {schema} in {state_schema}.tables")
    return removed


async def _check_integrity(path: Path, settings: Settings) -> None:
    problems = await anyio.to_thread.run_sync(source.integrity_problems, path, settings.busy_timeout)
    if problems:
        raise SourceError(f"{path}: failed SQLite's integrity check: {problems[0]}",
                          hint="repair it (sqlite3 .recover), or --skip-integrity-check to try anyway")


async def _catalog_checked(path: Path, settings: Settings) -> Catalog:
    """The source's catalog, read while PRAGMA quick_check runs (both are SQLite's own C
    code, in threads): the check still ends before anything touches the target."""
    catalog: list[Catalog] = []
    # Each finishes whatever the other does (aiosqlite cannot be cancelled mid-connect); the
    # check's verdict comes first.
    errors: dict[str, Exception] = {}

    async def read() -> None:
        try:
            catalog.append(await read_source(path, settings.busy_timeout))
        except Exception as exc:
            errors["read"] = exc
            return
        # The columnar lane will run (the plan says so; against an empty target, which only
        # existing tables' types can change): its imports (pyarrow, 90 ms) while the check
        # ends. A failure here is the lane's to report, where it would have imported them anyway.
        with suppress(Exception):
            if any(t.lane.columnar for t in plan_for(catalog[0], settings, {}).tables):
                await anyio.to_thread.run_sync(importlib.import_module, f"{__package__}.columnar")

    async def check() -> None:
        try:
            await _check_integrity(path, settings)
        except Exception as exc:
            errors["check"] = exc

    async with anyio.create_task_group() as group:
        if settings.integrity_check and not settings.snapshot:  # a snapshot was checked before its copy
            group.start_soon(check)
        group.start_soon(read)
    if errors:
        raise errors.get("check") or errors["read"]
    return catalog[0]


# A --snapshot run's copy of the source lives in <temp dir>/copier-snapshot-<pid>-<random>.
SNAPSHOT_PREFIX = "copier-snapshot-"


def remove_stale_snapshots() -> list[Path]:
    """Snapshot directories left by runs that were killed (their process is gone): removed
    by the next --snapshot run and by `copier clean`. Returns what was removed."""
    removed = []
    for directory in Path(tempfile.gettempdir()).glob(f"{SNAPSHOT_PREFIX}*"):
        pid = directory.name[len(SNAPSHOT_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


@asynccontextmanager
async def _readable_source(path: Path, settings: Settings, stats: RunStats) -> AsyncIterator[Path]:
    """The file to read: checked, and with --snapshot a consistent copy made first."""
    source.check_file(path)
    if not settings.snapshot:
        yield path
        return
    if settings.integrity_check:
        await _check_integrity(path, settings)
    remove_stale_snapshots()
    with tempfile.TemporaryDirectory(prefix=f"{SNAPSHOT_PREFIX}{os.getpid()}-") as directory:
        copy = Path(directory) / path.name
        started = time.monotonic()
        await anyio.to_thread.run_sync(source.snapshot, path, copy, settings.busy_timeout)
        stats.notes.append(f"migrated from a snapshot of {path} taken in {time.monotonic() - started:.1f} s "
                           "(SQLite online backup)")
        yield copy


async def migrate(path: Path, settings: Settings, progress_factory: ProgressFactory | None = None) -> RunStats:
    """Move every selected table of the SQLite file at `path` into PostgreSQL."""
    stats = RunStats()
    try:
        async with _readable_source(path, settings, stats) as readable, source.keep_connections():
            return await _migrate(path, readable, settings, stats, progress_factory)
    finally:
        _release_readers()


async def _migrate(path: Path, readable: Path, settings: Settings, stats: RunStats,
                   progress_factory: ProgressFactory | None) -> RunStats:
    """migrate, reading `readable` (the file, or its snapshot)."""
    catalog = await _catalog_checked(readable, settings)
    # A virtual table whose module this SQLite cannot load holds rows nobody can read.
    stats.warnings += [f"{s.name}: {s.reason}" for s in catalog.skipped if s.kind == "virtual table"]
    if not catalog.tables:
        # A mistyped path makes SQLite read a fresh empty file: moving nothing must not look like success.
        if not settings.allow_empty:
            empty = (await anyio.Path(path).stat()).st_size == 0
            raise SourceError(f"{path} has no tables to migrate" + (" (an empty, 0-byte file)" if empty else ""),
                              hint="check the path; --allow-empty if an empty source is expected")
        stats.notes.append(f"{path} has no tables to migrate")
        stats.finished = time.monotonic()
        return stats
    # Lock waits are said even with --quiet (a run that waits must say why): through the
    # progress once it exists (after the plan), before it plainly.
    notes: list[Callable[[str], None]] = [NullProgress(quiet=False).note]
    async with lock_waits_announced(settings.dsn, lambda line: notes[-1](line)):
        return await _prepare_and_load(path, readable, catalog, settings, stats, progress_factory, notes)


async def _prepare_and_load(path: Path, readable: Path, catalog: Catalog, settings: Settings, stats: RunStats,
                            progress_factory: ProgressFactory | None, notes: list[Callable[[str], None]]) -> RunStats:
    """The three phases, as pgloader's: prepare the target (plan, --resume, --if-exists:
    prepare.py), then load the tables (here and tableload.py), then complete them
    (complete.py), verifying each table as soon as it is keyed."""
    prepared = await prepare(readable, path, catalog, settings, stats)
    plan, resumed, record_state, settings = prepared.plan, prepared.resumed, prepared.record_state, prepared.settings
    factory = progress_factory or (lambda total, quiet: make_progress(total, quiet=quiet))
    progress = factory(sum(t.source.row_count for t in plan.tables), settings.quiet)
    if not settings.quiet:
        notes.append(progress.note)

    async def verify_loaded(loaded: MemoryObjectReceiveStream[TablePlan], load_ended: anyio.Event,
                            early: EarlyDigests) -> None:
        # Against what was read (with --snapshot, the copy), each table once it is loaded.
        # Its bar starts when the load ends, with the tables checked by then.
        checked = 0
        bar: TableBar | None = None

        def advance(tables: int) -> None:
            nonlocal checked
            checked += tables
            if bar is not None:
                bar.advance(tables)

        async def show_bar() -> None:
            nonlocal bar
            await load_ended.wait()
            # Keyed by the end of the load: those are the tables sent to verify.
            bar = progress.phase("verify", sum(t.status is TableStatus.KEYED for t in stats.tables.values()))
            bar.advance(checked)

        # A fault of the server while verifying (a restart): every table received so far is
        # checked again over new connections (which were done is not known), then the rest.
        received: list[TablePlan] = []
        counted = 0  # tables the bar shows: a table checked again is not counted twice

        def advance_once(tables: int) -> None:
            nonlocal counted
            counted += tables
            if counted > checked:
                advance(counted - checked)

        async def attempt() -> None:
            nonlocal counted
            counted = 0
            send, receive = anyio.create_memory_object_stream[TablePlan](math.inf)

            async def forward() -> None:
                with send:
                    for table in received:
                        send.send_nowait(table)
                    async for table in loaded:
                        received.append(table)
                        send.send_nowait(table)

            async with task_group() as group, receive:
                group.start_soon(forward)
                await verify_run(readable, settings, plan.schema, stats, reject_path(settings, path), receive,
                                 advance_once, early)

        try:
            async with task_group() as group, loaded:
                group.start_soon(show_bar)  # ends once the load has: verify_run cannot end before it
                await step(progress, stats, settings, "verify", attempt)
        finally:
            if bar is not None:
                bar.close()

    try:
        await _load(readable, settings, plan, stats, resumed, record_state, progress, path,
                    verify_loaded if settings.verify else None)
    finally:
        progress.close()
    return stats


Verify = Callable[[MemoryObjectReceiveStream[TablePlan], anyio.Event, EarlyDigests], Coroutine[Any, Any, None]]


async def _load(readable: Path, settings: Settings, plan: MigrationPlan, stats: RunStats,
                resumed: dict[str, TableState], record_state: bool,
                progress: Progress, original: Path, verify: Verify | None = None) -> None:
    """Load the tables, then add the foreign keys and views. `verify` checks each table as
    soon as it is loaded, meanwhile: from then on its rows no longer change (constraints
    only read them)."""
    rejects = RejectLog(reject_path(settings, original), append=settings.resume)
    stats.reject_file = str(rejects.path)
    pool = await target.create_pool(settings.dsn, settings.jobs)
    watch = source.ChangeWatch(readable)
    loaded, to_verify = anyio.create_memory_object_stream[TablePlan](math.inf)
    if verify is None:
        loaded.close()
        to_verify.close()
    load_ended = anyio.Event()
    recorder = Recorder(pool, plan.schema, settings.state_schema, settings.retries, settings.dsn) \
        if record_state else None
    lifecycles = Lifecycles((TableLifecycle(t, stats.tables[t.name], recorder, loaded if verify is not None else None,
                                            resumed.get(t.name)) for t in plan.tables), recorder)
    run = Run(readable, settings, plan, pool, stats, rejects, progress, watch, record_state, resumed, lifecycles)
    try:
        async with task_group() as group:
            if threading.current_thread() is threading.main_thread():
                group.start_soon(_stop_on_signal, run, group.cancel_scope)
            async with task_group() as work:
                if verify is not None:
                    # Big tables' source digests, while they load (see EarlyDigests).
                    run.early = EarlyDigests(readable, settings, work, watch.version)
                    work.start_soon(verify, to_verify, load_ended, run.early)
                started = time.monotonic()
                with loaded:
                    await _load_tables(run)
                stats.phases["load"] = time.monotonic() - started
                load_ended.set()
                started = time.monotonic()
                await complete(run)
                stats.phases["foreign keys"] = time.monotonic() - started
            if verify is not None:
                # What verify added after the load: tables were verified during it.
                stats.phases["verify"] = time.monotonic() - started
            group.cancel_scope.cancel()  # done: stop listening for signals
    finally:
        if stats.interrupted:
            run.tables.interrupt()
        rejects.close()
        watch.close()
        with anyio.CancelScope(shield=True):
            if stats.interrupted:
                pool.terminate()
                if record_state:
                    await _record_interrupted(settings, run.tables)
            else:
                await pool.close()
        stats.finished = time.monotonic()


# Seconds an interrupted run gives itself to record which tables it rolled back.
_RECORD_INTERRUPTED_SECONDS = 3.0


async def _record_interrupted(settings: Settings, tables: Lifecycles) -> None:
    """The tables rolled back by a signal (or kept from starting), recorded as such (copier
    status), over a new connection once the pool's are gone (their transactions held the
    records' rows). If the server does not answer in time, the records stay as they were:
    --resume loads a table that is not done again either way."""
    if not tables.lagging():
        return
    with anyio.move_on_after(_RECORD_INTERRUPTED_SECONDS), suppress(Exception):
        async with target.connected(settings.dsn) as connection:
            await tables.record_lagging(connection)


async def _stop_on_signal(run: Run, scope: anyio.CancelScope) -> None:
    """SIGINT/SIGTERM: cancel every table (their transactions roll back) and return."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for received in signals:
            run.stats.interrupted = signal.Signals(received).name
            scope.cancel()
            return


async def _load_tables(run: Run) -> None:
    # Each table waits only for tables of earlier waves, and every table sets its event
    # when it finishes whatever happened: so every wait below ends.
    waves = {t.name: t.wave for t in run.plan.tables}
    for table in run.plan.tables:
        if any(waves.get(parent, table.wave) >= table.wave for parent in table.depends_on):
            raise AssertionError(f"plan bug: {table.name} waits for a table of its own or a later wave")
    limiter = anyio.CapacityLimiter(run.settings.jobs)
    async with task_group() as group:
        for unit in _units(run):
            group.start_soon(_load_when_ready, run, unit, limiter)


def _units(run: Run) -> list[list[TablePlan]]:
    """What loads at once: a table, or a group of small tables of one wave (load_group),
    cut so that --jobs groups share the wave's small tables."""
    units: list[list[TablePlan]] = []
    small: dict[int, list[TablePlan]] = {}
    for table in run.plan.tables:
        if groupable(run, table):
            small.setdefault(table.wave, []).append(table)
        else:
            units.append([table])
    for tables in small.values():
        size = min(GROUP_MAX_TABLES, -(-len(tables) // run.settings.jobs))
        units += [tables[start:start + size] for start in range(0, len(tables), size)]
    return units


async def _load_when_ready(run: Run, unit: list[TablePlan], limiter: anyio.CapacityLimiter) -> None:
    """Load the unit once the tables it references allow. Each table's lifecycle wakes the
    tables waiting for it whichever way it ends; a failure that escapes ends the run (the
    task group cancels every wait)."""
    ready = []
    for table in unit:
        # A table whose keys and foreign keys are set aside starts once its parents' rows
        # are in, while their keys are being made (its own foreign keys wait for those).
        early = _starts_early(run, table)
        for name in table.depends_on:
            parent = run.tables[name]
            await (parent.wait_rows_in() if early else parent.wait_loaded())
            if parent.status not in (TableStatus.PLANNED, TableStatus.LOADING) and not parent.committed:
                await run.tables[table.name].skipped(f"not loaded: table {name} it references failed")
                break
        else:
            ready.append(table)
    async with limiter:
        if len(ready) > 1:
            await load_group(run, ready)
        elif ready:
            await load_table(run, ready[0], run.stats.tables[ready[0].name])
    for table in unit:
        run.tables[table.name].check_settled()


def _starts_early(run: Run, table: TablePlan) -> bool:
    """Whether the existing table may start loading while the tables it references are
    still making their keys again: its indexes and constraints are set aside (its rows need
    no other table's, its foreign keys wait for them: existing.load_then_restore), and no
    other table's foreign key references it (another table's load transaction would then
    lock it, while it waits for that one: a wait nobody sees as a deadlock)."""
    return any(d.table == table.target and d.definitions
               and all(k.table == table.target for k in d.definitions if k.kind is DefinitionKind.FOREIGN_KEY)
               for d in run.plan.set_aside)


def exit_code(stats: RunStats) -> int:
    if stats.interrupted:
        return ExitCode.INTERRUPTED
    if stats.verified is False:
        return ExitCode.VERIFY
    if stats.warnings or stats.stopped or any(t.status is not TableStatus.DONE or t.warnings
                             for t in stats.tables.values()):
        return ExitCode.FAILED
    if any(t.rejected for t in stats.tables.values()):
        return ExitCode.REJECTED
    return ExitCode.OK


__all__ = ["migrate", "plan", "verify", "status", "make_plan", "exit_code"]
