"""Prepare the target (pgloader's prepare-pgsql-database): plan against what it holds,
apply --resume or --if-exists, clear what a killed run left, set aside an existing
table's definitions, and record the plan. Every step may be done again: prepare()
retries a server that restarts under it, and ends any other fault of the server in one
StepFailed that names this phase."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg

from . import ddl, source, state, target
from .catalog import Catalog
from .distribution import distribute
from .errors import CopierError, StepFailed, TargetError
from .existing import pending, restore_pending, set_aside
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
from .ident import qualified
from .planning import ExistingTable, MigrationPlan, build_plan
from .progress import NullProgress
from .resume import Need, TableState, interrupted, resume_needs
from .settings import IfExists, Settings
from .stats import RunStats, TableStats
from .tableload import STAGING_PREFIX, staging_name


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the load starts from."""

    plan: MigrationPlan
    resumed: dict[str, TableState]  # the earlier run's record of each table it committed (--resume)
    record_state: bool  # whether progress is recorded (a role may lack the privilege)
    settings: Settings  # --resume continues the reject file the earlier run recorded


async def prepare(readable: Path, original: Path, catalog: Catalog, settings: Settings, stats: RunStats) -> Prepared:
    """The target prepared, or the phase ended: a server that restarts is waited for and
    the phase done again (each of its steps may be); a server that cannot be reached at all
    (a CopierError from connecting) is said at once; any other fault of the server or
    machine is a StepFailed naming this phase."""
    def failed(attempt: int, exc: BaseException) -> None:
        NullProgress(settings.quiet).note(f"copier: preparing the target: attempt {attempt + 1} of "
                                          f"{settings.retries + 1} failed ({describe_failure(exc, settings.dsn)}); "
                                          "retrying")

    try:
        return await retrying(lambda: prepare_target(readable, original, catalog, settings, stats), settings.retries,
                              failed, transient=lambda exc: not isinstance(exc, CopierError) and is_transient(exc))
    except Exception as exc:
        if isinstance(exc, CopierError) or not is_environmental(exc):
            raise
        raise StepFailed(f"preparing the target: {describe_failure(exc, settings.dsn)}",
                         hint=None if hint_for(root_cause(exc)) else "rerun once the server is back",
                         sqlstate=sqlstate_of(root_cause(exc)) or None) from exc


def plan_for(catalog: Catalog, settings: Settings, existing: Mapping[str, ExistingTable],
             reserved: Iterable[str] = ()) -> MigrationPlan:
    planned = build_plan(catalog, existing, schema=settings.schema, include=settings.tables,
                         exclude=settings.exclude, casts=dict(settings.casts), options=settings.value_options(),
                         reserved=reserved, identifiers=settings.identifiers.value, views=settings.views,
                         lane=settings.lane, generated=settings.generated.value)
    return distribute(planned, settings.distribute, settings.reference)


async def settled(connection: asyncpg.Connection, path: Path, the_plan: MigrationPlan,
                   settings: Settings) -> MigrationPlan:
    """The plan once PostgreSQL has been asked about its translated generated columns."""
    if not any(t.create and t.generated for t in the_plan.tables):
        return the_plan
    from .generation import settle

    return await settle(connection, path, the_plan, settings.value_options(), settings.lane, settings.busy_timeout)


def reject_path(settings: Settings, source_path: Path) -> Path:
    """--reject-file, else ./<source name>.rejects.jsonl."""
    return settings.reject_file or Path.cwd() / f"{source_path.stem}.rejects.jsonl"


async def prepare_target(
    readable: Path, original: Path, catalog: Catalog, settings: Settings, stats: RunStats,
) -> Prepared:
    """Plan against the target, apply --resume or --if-exists, and record the plan."""
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
        plan = await settled(connection, readable, plan, settings)
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
    return Prepared(plan, resumed, record_state, settings)


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
    await restore_all(settings.dsn, settings.schema, settings.state_schema, 2,
                       hint="an earlier run that was stopped set these aside: fix what stops them and run again, "
                            "or --resume it")


async def restore_all(dsn: str, schema: str, state_schema: str, connections: int, *, hint: str) -> None:
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
    left = await staging_tables(connection, plan.schema)
    for table in plan.tables:
        if staging_name(table.target) in left:
            await connection.execute(f"DROP TABLE IF EXISTS {qualified(plan.schema, staging_name(table.target))}")


async def staging_tables(connection: asyncpg.Connection, schema: str) -> set[str]:
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


__all__ = ["Prepared", "plan_for", "prepare", "reject_path", "restore_all", "settled", "staging_tables"]
