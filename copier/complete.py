"""Complete the target once every table is loaded (pgloader's complete-pgsql-database):
foreign keys, the user's definitions set aside for the load, translated checks, partial
indexes and defaults, views; then every keyed table done. Each step is one place that
ends a fault of it honestly (step): retried if transient, else the run stops there with
its summary, every table left keyed, in memory and in the state table, for --resume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from . import ddl
from .existing import restore_pending
from .faults import describe_failure, describe_pg_error, is_environmental, retrying
from .ident import qualified, quote_ident
from .planning import ForeignKeyPlan
from .progress import Progress
from .settings import Settings
from .stats import RunStats, TableStatus
from .tableload import Run
from .tasks import task_group


async def step(progress: Progress, stats: RunStats, settings: Settings, name: str,
               work: Callable[[], Awaitable[None]], pool: asyncpg.Pool | None = None) -> bool:
    """One step of the run after the load (foreign keys, views, verify, the progress
    record), each made so that doing it again is safe: it asks the catalog what is done.
    A transient fault of the server (a restart, a lost connection) is retried; any other
    fault of the server or the machine ends the run with its summary, naming the step
    (stats.stopped). A bug is raised. Returns whether the step completed."""
    def failed(attempt: int, exc: BaseException) -> None:
        progress.note(f"copier: {name}: attempt {attempt + 1} of {settings.retries + 1} failed "
                      f"({describe_failure(exc, settings.dsn)}); retrying")

    try:
        await retrying(work, settings.retries, failed, pool)
    except Exception as exc:
        if not is_environmental(exc):
            raise
        stats.stopped = stats.stopped or f"{name}: {describe_failure(exc, settings.dsn)}"
        return False
    return True


async def complete(run: Run) -> None:
    """After the load (pgloader's complete-pgsql-database): foreign keys, views, then each
    keyed table done. A step that fails leaves every keyed table keyed, in memory and in
    the state table (what it left undone may concern any of them): --resume finishes them."""
    def one(name: str, work: Callable[[], Awaitable[None]]) -> Awaitable[bool]:
        return step(run.progress, run.stats, run.settings, name, work, run.pool)

    if not await one("foreign keys", lambda: _add_foreign_keys(run)):
        return
    if run.record_state and not await one("restoring what was set aside", lambda: _restore_set_aside(run)):
        return
    if run.plan.translated and not await one("checks, partial indexes and defaults", lambda: _make_translated(run)):
        return
    if run.plan.views and not await one("views", lambda: _create_views(run)):
        return
    # A table whose foreign key waits for a table that is not complete is not done either.
    held = [fk.table for fk in run.plan.foreign_keys
            if fk.ref_table in run.tables and not run.tables[fk.ref_table].has_keys]
    await one("recording progress", lambda: run.tables.done(held))


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


__all__ = ["complete", "step"]
