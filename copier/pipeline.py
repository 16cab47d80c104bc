"""Orchestration: check the source, plan, prepare the target, load tables in dependency
order, add foreign keys, verify. Stops cleanly on SIGINT/SIGTERM, and resumes."""

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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
from anyio.streams.memory import MemoryObjectReceiveStream

from . import ddl, source, state, target
from .catalog import Catalog
from .distribution import distribute
from .errors import CopierError, ExitCode, SourceError, StepFailed, TargetError, VerifyError
from .existing import decisions, pending, restore_pending, set_aside
from .faults import (
    describe_failure,
    describe_pg_error,
    hint_for,
    is_environmental,
    is_transient,
    retrying,
    root_cause,
    sqlstate_of,
)
from .ident import qualified, quote_ident
from .lifecycle import Lifecycles, Recorder, TableLifecycle
from .lockwatch import lock_waits_announced
from .planning import ExistingTable, ForeignKeyPlan, MigrationPlan, TablePlan, build_plan
from .progress import NullProgress, Progress, TableBar, make_progress
from .rebuild import DefinitionKind
from .rejects import RejectLog
from .resume import Need, TableState, interrupted, resume_needs
from .settings import IfExists, Settings
from .stats import RunStats, TableStats, TableStatus
from .tableload import (
    GROUP_MAX_TABLES,
    STAGING_PREFIX,
    Run,
    groupable,
    load_group,
    load_table,
    staging_name,
)
from .tasks import task_group
from .verification import EarlyDigests, TableCheck, verify_run, verify_tables

ProgressFactory = Callable[[int, bool], Progress]


async def read_source(path: Path, busy_timeout: float | None = None) -> Catalog:
    return await anyio.to_thread.run_sync(source.catalog_of, path, busy_timeout)


def plan_for(catalog: Catalog, settings: Settings, existing: Mapping[str, ExistingTable],
             reserved: Iterable[str] = ()) -> MigrationPlan:
    planned = build_plan(catalog, existing, schema=settings.schema, include=settings.tables,
                         exclude=settings.exclude, casts=dict(settings.casts), options=settings.value_options(),
                         reserved=reserved, identifiers=settings.identifiers.value, views=settings.views,
                         lane=settings.lane, generated=settings.generated.value)
    return distribute(planned, settings.distribute, settings.reference)


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
    the_plan = await _settled(connection, path, the_plan, settings)
    return replace(the_plan, set_aside=tuple(await decisions(connection, the_plan, settings)))


UNTRIED_GENERATED = ("generated columns shown as computed by PostgreSQL were not tried against it (no target): "
                     "migrate keeps each generated only if PostgreSQL accepts it and computes SQLite's values")


async def _settled(connection: asyncpg.Connection, path: Path, the_plan: MigrationPlan,
                   settings: Settings) -> MigrationPlan:
    """The plan once PostgreSQL has been asked about its translated generated columns."""
    if not any(t.create and t.generated for t in the_plan.tables):
        return the_plan
    from .generation import settle

    return await settle(connection, path, the_plan, settings.value_options(), settings.lane, settings.busy_timeout)


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
    await _restore_all(dsn, schema, state_schema, 4,
                       hint="fix what stops it and run copier clean again (the others were made again; "
                            "no staging table or progress record was removed)")
    async with target.connected(dsn) as connection:
        for name in sorted(await _staging_tables(connection, schema)):
            await connection.execute(f"DROP TABLE {qualified(schema, name)}")
            removed.append(f"staging table {schema}.{name}")
        recorded = await state.forget(connection, schema, state_schema)
        if recorded:
            removed.append(f"{recorded} progress record(s) of schema {schema} in {state_schema}.tables")
    return removed


def reject_path(settings: Settings, source_path: Path) -> Path:
    """--reject-file, else ./<source name>.rejects.jsonl."""
    return settings.reject_file or Path.cwd() / f"{source_path.stem}.rejects.jsonl"


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
    """Prepare the target (plan, --resume, --if-exists), then load, complete and verify."""
    def failed(attempt: int, exc: BaseException) -> None:
        NullProgress(settings.quiet).note(f"copier: preparing the target: attempt {attempt + 1} of "
                                          f"{settings.retries + 1} failed ({describe_failure(exc, settings.dsn)}); "
                                          "retrying")

    try:
        # Each of its steps may be done again: a server restarting under it is waited for. Not
        # a server that cannot be reached at all (a CopierError from connecting): said at once.
        plan, resumed, record_state, settings = await retrying(
            lambda: _prepare_target(readable, path, catalog, settings, stats), settings.retries, failed,
            transient=lambda exc: not isinstance(exc, CopierError) and is_transient(exc))
    except Exception as exc:
        if isinstance(exc, CopierError) or not is_environmental(exc):
            raise
        raise StepFailed(f"preparing the target: {describe_failure(exc, settings.dsn)}",
                         hint=None if hint_for(root_cause(exc)) else "rerun once the server is back",
                         sqlstate=sqlstate_of(root_cause(exc)) or None) from exc
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
                await _step(progress, stats, settings, "verify", attempt)
        finally:
            if bar is not None:
                bar.close()

    try:
        await _load(readable, settings, plan, stats, resumed, record_state, progress, path,
                    verify_loaded if settings.verify else None)
    finally:
        progress.close()
    return stats


async def _prepare_target(
    readable: Path, original: Path, catalog: Catalog, settings: Settings, stats: RunStats,
) -> tuple[MigrationPlan, dict[str, TableState], bool, Settings]:
    """Plan against the target, apply --resume or --if-exists, and record the plan.

    Returns the plan, the earlier run's record of each table it committed (--resume),
    whether progress is recorded, and the settings (--resume continues the reject file the
    earlier run recorded)."""
    async with target.connected(settings.dsn) as connection:
        await target.ensure_schema(connection, settings.schema)
        if not settings.resume and await _set_aside_before(connection, settings):
            await _restore_before_planning(settings)
        existing = await target.existing_tables(connection, settings.schema)
        taken = await target.taken_names(connection, settings.schema)
        earlier = {s.source_table: s for s in await state.read(connection, settings.schema, settings.state_schema)}
        recorded_rejects = {s.reject_file for s in earlier.values() if s.reject_file}
        if settings.resume and settings.reject_file is None and len(recorded_rejects) == 1:
            settings = replace(settings, reject_file=Path(recorded_rejects.pop()))
        fingerprint = source.fingerprint(readable if not settings.snapshot else original, catalog)
        if settings.resume:
            # Tables an earlier run created are planned as created again, so the plan is the same.
            ours = {s.target_table for s in earlier.values() if s.created}
            plan = plan_for(catalog, settings, {n: t for n, t in existing.items() if n not in ours},
                            [name for name, owner in taken.items() if owner not in ours])
        else:
            plan = plan_for(catalog, settings, existing, taken)
        plan = await _settled(connection, readable, plan, settings)
        needs = resume_needs([t.name for t in plan.tables], earlier, resume=settings.resume, force=settings.force,
                             schema=settings.schema, source_fingerprint=fingerprint,
                             plan_fingerprint=state.plan_fingerprint(plan, settings))
        resumed = {name: earlier[name] for name, need in needs.items() if need is not Need.FRESH}
        await target.check_privileges(connection, plan)
        await target.check_citus(connection, plan)
        await _drop_staging(connection, plan)
        kept = await _prepare_existing(connection, plan, settings, resumed, earlier)
        record_state = await _record_plan(connection, plan, settings, resumed, fingerprint, original, stats)
        if record_state:  # only where the definitions can be recorded first
            plan = replace(plan, set_aside=tuple(await set_aside(connection, plan, settings, kept, resumed, stats)))
    for table in plan.tables:
        stats.tables[table.name] = TableStats(table.name, table.target, expected=table.source.row_count,
                                              lane=table.lane.name,
                                              preexisting=kept.get(table.target, 0))
    stats.notes += [*plan.notes, *(f"skipped {name}: {why}" for name, why in plan.skipped
                                    if not why.startswith("virtual table:"))]  # a problem, listed as one
    stats.notes += [f"{name}: already loaded by the interrupted run" for name in resumed]
    return plan, resumed, record_state, settings


async def _set_aside_before(connection: asyncpg.Connection, settings: Settings) -> bool:
    """Whether an earlier run left definitions set aside in the schema. A role that may not
    read copier's state schema is not asked here: check_privileges says so in one line."""
    try:
        return bool(await pending(connection, settings.schema, settings.state_schema))
    except asyncpg.InsufficientPrivilegeError:
        return False


async def _restore_before_planning(settings: Settings) -> None:
    """A plain rerun after a killed run (not --resume, which keeps them set aside for the
    tables it loads again): the definitions that run set aside are made again first, so the
    plan sees the schema whole (an upsert needs its primary key) and decides afresh."""
    await _restore_all(settings.dsn, settings.schema, settings.state_schema, 2,
                       hint="an earlier run that was stopped set these aside: fix what stops them and run again, "
                            "or --resume it")


async def _restore_all(dsn: str, schema: str, state_schema: str, connections: int, *, hint: str) -> None:
    """Every definition recorded as set aside in `schema` made again, over a pool of its own;
    the first one PostgreSQL refuses (and how many more) raised with `hint`."""
    pool = await target.create_pool(dsn, connections)
    try:
        failures = await restore_pending(pool, schema, state_schema)
    finally:
        await pool.close()
    if failures:
        raise TargetError(f"{failures[0]}" + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""),
                          hint=hint)


async def _drop_staging(connection: asyncpg.Connection, plan: MigrationPlan) -> None:
    """Staging tables left by a run that was killed before it could drop them."""
    left = await _staging_tables(connection, plan.schema)
    for table in plan.tables:
        if staging_name(table.target) in left:
            await connection.execute(f"DROP TABLE IF EXISTS {qualified(plan.schema, staging_name(table.target))}")


async def _staging_tables(connection: asyncpg.Connection, schema: str) -> set[str]:
    rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2",
                                  schema, STAGING_PREFIX.replace("_", "\\_") + "%")
    return {name for (name,) in rows}


async def _record_plan(connection: asyncpg.Connection, plan: MigrationPlan, settings: Settings,
                       resumed: Mapping[str, TableState], fingerprint: str, original: Path,
                       stats: RunStats) -> bool:
    fresh = [t for t in plan.tables if t.name not in resumed]
    subset = MigrationPlan(plan.schema, tuple(fresh), (), (), ())
    created = {t.name: t.create for t in fresh}
    try:
        await state.ensure(connection, settings.state_schema)
        await state.record_plan(connection, subset, created, str(original), fingerprint,
                                state.plan_fingerprint(plan, settings), settings.state_schema,
                                str(reject_path(settings, original).resolve()))
    except asyncpg.InsufficientPrivilegeError:
        stats.notes.append(f"progress not recorded (no privilege to create or write schema {settings.state_schema}): "
                           "--resume unavailable (--state-schema names another)")
        return False
    return True


async def _prepare_existing(
    connection: asyncpg.Connection, plan: MigrationPlan, settings: Settings,
    resumed: Mapping[str, TableState],
    earlier: Mapping[str, TableState],
) -> dict[str, int]:
    """Apply --if-exists to target tables that already hold rows, before any data moves.

    Returns the rows kept per target table (--if-exists append), for verification."""
    loaded_into = [t for t in plan.tables if not t.create and t.name not in resumed]
    if settings.if_exists is IfExists.UPSERT:
        keyless = [t.target for t in loaded_into if not t.existing_key]
        if keyless:
            raise TargetError(f"--if-exists upsert needs a primary key on every existing target table: "
                              f"{', '.join(keyless)} has none",
                              hint="--exclude those tables, or add a primary key to them")
        return {}  # nothing is kept aside: verify compares every row (and names the rows the source lost)
    occupied: list[tuple[str, int]] = []
    for table in loaded_into:
        name = qualified(plan.schema, table.target)
        try:
            if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name})"):
                occupied.append((table.target, await connection.fetchval(ddl.count_rows(plan.schema, table.target))))
        except asyncpg.PostgresError as exc:
            raise TargetError(f"table {table.target}: {describe_pg_error(exc)}", table=table.name) from None
    if not occupied or settings.if_exists is IfExists.APPEND:
        return dict(occupied)
    if settings.if_exists is IfExists.FAIL:
        listing = ", ".join(f"{name} has {rows:,} rows" for name, rows in occupied)
        raise TargetError(f"target tables already hold rows: {listing}",
                          hint="an earlier run was interrupted here: rerun with --resume" if interrupted(earlier) else
                          "use --if-exists truncate to replace them or --if-exists append to add to them")
    # Every table the plan loads into, in one statement, so that foreign keys among them
    # do not block; a table outside the plan that references one of them would.
    names = [t.target for t in loaded_into]
    outside = await connection.fetch(ddl.REFERENCING_TABLES, plan.schema, names)
    if outside and not settings.truncate_cascade:
        child, parent = outside[0]
        raise TargetError(f"cannot truncate {parent}: table {child}, which this migration does not load, "
                          "references it" + (f" (and {len(outside) - 1} more such reference(s))" if len(outside) > 1
                                             else ""),
                          hint=f"empty {child} yourself, leave {parent} out with --exclude, or add "
                               f"--truncate-cascade to empty {child} too")
    try:
        await connection.execute(ddl.truncate(plan.schema, names, cascade=settings.truncate_cascade))
    except asyncpg.PostgresError as exc:
        raise TargetError(f"cannot truncate {', '.join(names)}: {describe_pg_error(exc)}") from None
    return {}


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
                await _complete(run)
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


async def _step(progress: Progress, stats: RunStats, settings: Settings, step: str,
                work: Callable[[], Awaitable[None]], pool: asyncpg.Pool | None = None) -> bool:
    """One step of the run after the load (foreign keys, views, verify, the progress
    record), each made so that doing it again is safe: it asks the catalog what is done.
    A transient fault of the server (a restart, a lost connection) is retried; any other
    fault of the server or the machine ends the run with its summary, naming the step
    (stats.stopped). A bug is raised. Returns whether the step completed."""
    def failed(attempt: int, exc: BaseException) -> None:
        progress.note(f"copier: {step}: attempt {attempt + 1} of {settings.retries + 1} failed "
                      f"({describe_failure(exc, settings.dsn)}); retrying")

    try:
        await retrying(work, settings.retries, failed, pool)
    except Exception as exc:
        if not is_environmental(exc):
            raise
        stats.stopped = stats.stopped or f"{step}: {describe_failure(exc, settings.dsn)}"
        return False
    return True


async def _complete(run: Run) -> None:
    """After the load (pgloader's complete-pgsql-database): foreign keys, views, then each
    keyed table done. A step that fails leaves every keyed table keyed, in memory and in
    the state table (what it left undone may concern any of them): --resume finishes them."""
    def step(name: str, work: Callable[[], Awaitable[None]]) -> Awaitable[bool]:
        return _step(run.progress, run.stats, run.settings, name, work, run.pool)

    if not await step("foreign keys", lambda: _add_foreign_keys(run)):
        return
    if run.record_state and not await step("restoring what was set aside", lambda: _restore_set_aside(run)):
        return
    if run.plan.translated and not await step("checks, partial indexes and defaults", lambda: _make_translated(run)):
        return
    if run.plan.views and not await step("views", lambda: _create_views(run)):
        return
    # A table whose foreign key waits for a table that is not complete is not done either.
    held = [fk.table for fk in run.plan.foreign_keys
            if fk.ref_table in run.tables and not run.tables[fk.ref_table].has_keys]
    await step("recording progress", lambda: run.tables.done(held))


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
            await (parent.wait_rows_in() if early else parent.wait_done())
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


async def _add_foreign_keys(run: Run) -> None:
    if not run.plan.foreign_keys:
        return
    bar = run.progress.phase("foreign keys", len(run.plan.foreign_keys))
    # The warnings of an attempt that fails go with it: the retry finds them again.
    kept = {name: len(t.warnings) for name, t in run.stats.tables.items()}
    try:
        await _add_each_foreign_key(run, bar.advance)
    except BaseException:
        for name, table in run.stats.tables.items():
            del table.warnings[kept[name]:]
        raise
    finally:
        bar.close()


async def _add_each_foreign_key(run: Run, advance: Callable[[int], None]) -> None:
    """Each foreign key added NOT VALID (no check of the rows: a moment's lock on both
    tables), then validated, the keys of different tables at once: a validation locks its
    own table against writes only, and the referenced one against nothing this run does
    (the 1M finance file's three: 0.31 -> 0.25 s, median of 3). A key an interrupted run left
    unvalidated is validated now. The refused ones are dropped last, one at a time (a drop
    locks the referenced table too, which another table's validation may hold)."""
    schema = run.plan.schema
    to_validate: dict[str, list[ForeignKeyPlan]] = {}
    async with run.pool.acquire() as connection:
        for fk in run.plan.foreign_keys:
            if await _in_place_not_valid(run, connection, fk):
                to_validate.setdefault(fk.table, []).append(fk)
            else:
                advance(1)

    refused: list[tuple[ForeignKeyPlan, asyncpg.PostgresError]] = []

    async def validate(keys: list[ForeignKeyPlan]) -> None:
        async with run.pool.acquire() as connection:
            for fk in keys:
                try:
                    await connection.execute(ddl.validate_constraint(schema, fk.target, fk.name))
                except asyncpg.PostgresError as exc:
                    if is_environmental(exc):
                        raise  # not refused: the step is retried, or ends the run
                    refused.append((fk, exc))
                advance(1)

    async with task_group() as group:
        for keys in to_validate.values():
            group.start_soon(validate, keys)
    if refused:
        async with run.pool.acquire() as connection:
            for fk, error in refused:
                await _refuse_foreign_key(run, connection, fk, error)


async def _in_place_not_valid(run: Run, connection: asyncpg.Connection, fk: ForeignKeyPlan) -> bool:
    """Whether the foreign key now stands NOT VALID, to be validated: added here, or left so
    by an interrupted run. False where there is nothing to validate: its table was not
    loaded, the table it references was not (a warning), the run this one resumes
    validated it, or PostgreSQL refused it (a warning)."""
    schema = run.plan.schema
    child = run.stats.tables.get(fk.table)
    parent = run.stats.tables.get(fk.ref_table)
    if child is None or child.status is not TableStatus.KEYED:
        return False
    if parent is not None and parent.status is not TableStatus.KEYED:
        child.warnings.append(f"foreign key {fk.name} not added: {fk.ref_table} was not " +
                              ("completed" if parent.status is TableStatus.LOADED else "loaded"))
        return False
    validated = await connection.fetchval(ddl.CONSTRAINT_VALIDATED, qualified(schema, fk.target), fk.name)
    if validated is not None:
        return not validated
    try:
        await connection.execute(ddl.add_foreign_key(schema, fk, not_valid=True))
    except asyncpg.PostgresError as exc:
        if is_environmental(exc):
            raise
        child.warnings.append(f"foreign key {fk.name} not added: {describe_pg_error(exc)}")
        return False
    return True


async def _refuse_foreign_key(run: Run, connection: asyncpg.Connection, fk: ForeignKeyPlan,
                              error: asyncpg.PostgresError) -> None:
    """A foreign key PostgreSQL would not validate: dropped, and why said as the table's warning."""
    schema, child = run.plan.schema, run.stats.tables[fk.table]
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        orphans = await connection.fetchval(ddl.count_orphans(schema, fk))
        why = f"{orphans} row(s) reference missing {fk.ref_table} rows (SQLite did not enforce it)"
    else:
        why = describe_pg_error(error)
    try:
        await connection.execute(ddl.drop_constraint(schema, fk.target, fk.name))
    except asyncpg.PostgresError as drop_error:
        if is_environmental(drop_error):
            raise
        why += f"; it is left NOT VALID, as dropping it failed: {describe_pg_error(drop_error)}"
    child.warnings.append(f"foreign key {fk.name} not added: {why}")


async def _restore_set_aside(run: Run) -> None:
    """The user's foreign keys set aside for the load, and whatever else of theirs a failed
    table (or an earlier run) left set aside, made again; each one refused is a warning of
    its table, naming it with the SQL that failed, and stays recorded for --resume."""
    by_target = {t.target: run.stats.tables[t.name] for t in run.plan.tables}
    for failed in await restore_pending(run.pool, run.plan.schema, run.settings.state_schema):
        table = by_target.get(failed.definition.table) if failed.definition.schema == run.plan.schema else None
        (table.warnings if table is not None else run.stats.warnings).append(str(failed))


async def _make_translated(run: Run) -> None:
    """Each translated CHECK, partial index and default of a table loaded whole, if
    PostgreSQL accepts it; the others are noted with PostgreSQL's reason (a function SQLite
    has and PostgreSQL lacks, a comparison of types SQLite mixes freely)."""
    notes: list[str] = []  # into the run's once all are done: a retry makes them all again
    tables = {t.name: t for t in run.plan.tables}
    async with run.pool.acquire() as connection:
        for item in run.plan.translated:
            stats = run.stats.tables.get(item.table)
            if stats is None or stats.status is not TableStatus.KEYED:
                continue
            try:
                async with connection.transaction():
                    for statement in ddl.make_translated(run.plan.schema, tables[item.table], item):
                        await connection.execute(statement)
            except asyncpg.PostgresError as exc:
                if is_environmental(exc):
                    raise
                notes.append(f"{item.table}: {item.kind} {item.name} ({item.sqlite}) not made: PostgreSQL refused "
                             f"its translation ({item.sql}): {describe_pg_error(exc)}")
    run.stats.notes += notes


async def _create_views(run: Run) -> None:
    """Each view whose SQL PostgreSQL accepts as it is; the others are listed with
    PostgreSQL's reason. Views over views: passes until one creates nothing new."""
    notes: list[str] = []  # into the run's once every view is done: a retry creates them all again
    waiting = list(run.plan.views)
    reasons: dict[str, str] = {}
    async with run.pool.acquire() as connection:
        while waiting:
            created = []
            for view in waiting:
                try:
                    async with connection.transaction():
                        await connection.execute(f"SET LOCAL search_path TO {quote_ident(run.plan.schema)}")
                        await connection.execute(ddl.create_view(run.plan.schema, view))
                    created.append(view)
                    notes.append(f"view {view.name} created as {run.plan.schema}.{view.target}")
                except asyncpg.PostgresError as exc:
                    if is_environmental(exc):
                        raise
                    reasons[view.name] = describe_pg_error(exc)
            if not created:
                break
            waiting = [v for v in waiting if v not in created]
    notes += [f"view {v.name} not created: PostgreSQL refused its SQL: {reasons[v.name]}" for v in waiting]
    run.stats.notes += notes


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
