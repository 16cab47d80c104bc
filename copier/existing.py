"""Tables that already exist (an ORM-made schema): their indexes and constraints are read
from the catalog, recorded in the state schema and dropped in one transaction before the
load, and made again after it with the same names (rebuild.py decides; this is the I/O).

A definition stays recorded until the statement that makes it again has committed (in the
same transaction as its removal from the record), so a run killed anywhere leaves it either
in the schema or in the record, and --resume (or copier clean) makes it again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import anyio
import asyncpg

from .errors import TargetError
from .faults import describe_pg_error, is_row_error, is_transient
from .ident import qualified
from .planning import MigrationPlan
from .rebuild import CHECKED_LATER, Definition, DefinitionKind, SetAside, TableFacts, decide, dropped, restore_order
from .settings import Settings
from .stats import RunStats
from .target import citus_tables, connected

_T = TypeVar("_T")

_CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    target_schema text NOT NULL,  -- the schema of the migration that set it aside
    def_schema text NOT NULL,
    def_table text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    body text NOT NULL,
    valid boolean NOT NULL,
    error text,  -- why the last attempt to make it again failed
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (def_schema, def_table, name, kind)
)
"""

_RECORD = """
INSERT INTO {table} (target_schema, def_schema, def_table, name, kind, body, valid)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (def_schema, def_table, name, kind) DO UPDATE SET body = excluded.body, valid = excluded.valid,
    error = NULL, recorded_at = now()
"""

_PENDING = """
SELECT def_schema, def_table, name, kind, body, valid, error FROM {table}
WHERE ($1::text IS NULL OR target_schema = $1) AND ($2::text IS NULL OR (def_table = $2 AND def_schema = $1))
ORDER BY def_schema, def_table, name
"""

_FORGET = "DELETE FROM {table} WHERE def_schema = $1 AND def_table = $2 AND name = $3 AND kind = $4"
_FAILED = "UPDATE {table} SET error = $5 WHERE def_schema = $1 AND def_table = $2 AND name = $3 AND kind = $4"

# Catalog names come back schema-qualified when the search path holds only pg_catalog.
_QUALIFIED_NAMES = "SET LOCAL search_path TO pg_catalog"

# What else depends on an index or a constraint: foreign keys are set aside with it, anything
# else (a view grouping by a primary key, say) would be dropped with it or stop the drop.
_DEPENDENTS = """(SELECT string_agg(pg_describe_object(d.classid, d.objid, d.objsubid), ', ') FROM pg_depend d
        WHERE d.refclassid = '{catalog}'::regclass AND d.refobjid = {oid} AND d.deptype = 'n'
          AND NOT (d.classid = 'pg_constraint'::regclass
                   AND d.objid IN (SELECT oid FROM pg_constraint WHERE contype = 'f')))"""

# Constraints on the tables ($1 schema, $2 names) and foreign keys referencing them.
_CONSTRAINTS = """
SELECT c.conname, c.contype::text AS contype, n.nspname, t.relname, pg_get_constraintdef(c.oid), c.convalidated,
       rn.nspname AS ref_schema, r.relname AS ref_table, c.conislocal, c.conparentid <> 0 AS inherited_fk,
       t.relkind = 'p' OR t.relispartition AS partitioned,
       obj_description(c.oid, 'pg_constraint') IS NOT NULL AS commented,
       {dependents_c} AS dependents
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_class r ON r.oid = c.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.contype IN ('p', 'u', 'c', 'f', 'x')
  AND ((n.nspname = $1 AND t.relname = ANY($2::text[]))
       OR (c.contype = 'f' AND rn.nspname = $1 AND r.relname = ANY($2::text[])))
ORDER BY c.conname
""".replace("{dependents_c}", _DEPENDENTS.format(catalog="pg_constraint", oid="c.oid"))

# Every index of the tables: the ones behind no constraint are set aside as indexes; all of
# them may stand in the way (a replica identity, CLUSTER, a tablespace, a comment, a dependent
# other than a foreign key).
_INDEXES = """
SELECT i.relname, t.relname AS table_name, pg_get_indexdef(i.oid),
       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid AND c.contype IN ('p', 'u', 'x'))
         AS of_constraint,
       x.indisreplident, x.indisclustered, i.reltablespace <> 0 AS own_tablespace,
       obj_description(i.oid, 'pg_class') IS NOT NULL AS commented,
       {dependents_i} AS dependents
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND t.relname = ANY($2::text[])
ORDER BY i.relname
""".replace("{dependents_i}", _DEPENDENTS.format(catalog="pg_class", oid="i.oid"))

# What else stands in the way, per table: partitioning, inheritance.
_TABLES = """
SELECT t.relname, t.relkind = 'p' AS partitioned, t.relispartition,
       EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = t.oid OR h.inhparent = t.oid) AS inherits
FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND t.relname = ANY($2::text[])
"""

# Other sessions holding a lock that writes (or more) on a table: an application still at work.
_WRITERS = """
SELECT DISTINCT n.nspname, t.relname, l.pid FROM pg_locks l
JOIN pg_class t ON t.oid = l.relation JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE l.pid <> pg_backend_pid() AND l.granted AND l.locktype = 'relation'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.mode NOT IN ('AccessShareLock', 'RowShareLock')
  AND (n.nspname, t.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""

_KINDS = {"p": DefinitionKind.PRIMARY_KEY, "u": DefinitionKind.UNIQUE, "c": DefinitionKind.CHECK,
          "f": DefinitionKind.FOREIGN_KEY}

# How long the drop waits for a lock before the run keeps every table's definitions instead.
LOCK_TIMEOUT = "5s"


def _sql(template: str, state_schema: str) -> str:
    return template.format(table=qualified(state_schema, "definitions"))


async def read_facts(connection: asyncpg.Connection, schema: str, tables: Sequence[str],
                     rows: Mapping[str, int]) -> dict[str, TableFacts]:
    """Per table: its definitions (its own, its foreign keys, those referencing it) and what
    stands in the way of dropping and making them again exactly."""
    definitions: dict[str, list[Definition]] = {t: [] for t in tables}
    blockers: dict[str, list[str]] = {t: [] for t in tables}
    ours = set(tables)
    async with connection.transaction():
        await connection.execute(_QUALIFIED_NAMES)
        for row in await connection.fetch(_TABLES, schema, list(tables)):
            why = ("it is partitioned" if row["partitioned"] else "it is a partition" if row["relispartition"]
                   else "it is part of an inheritance hierarchy" if row["inherits"] else None)
            if why:
                blockers[row["relname"]].append(why)
        # Citus refuses a foreign key made again after the parallel COPY in one transaction.
        for name in await citus_tables(connection, schema, list(tables)):
            blockers[name].append("it is a Citus table (its constraints stand on every shard)")
        for row in await connection.fetch(_INDEXES, schema, list(tables)):
            name, table = row["relname"], row["table_name"]
            why = ("is its replica identity" if row["indisreplident"] else "is its CLUSTER index"
                   if row["indisclustered"] else "is in a tablespace of its own" if row["own_tablespace"]
                   else "has a comment" if row["commented"] else
                   f"is needed by {row['dependents']}" if row["dependents"] else None)
            if why:
                blockers[table].append(f"index {name} {why}")
            elif not row["of_constraint"]:
                definitions[table].append(Definition(schema, table, name, DefinitionKind.INDEX,
                                                     row["pg_get_indexdef"]))
        for row in await connection.fetch(_CONSTRAINTS, schema, list(tables)):
            name, contype = row["conname"], row["contype"]
            on = row["relname"] if row["nspname"] == schema and row["relname"] in ours else None
            referenced = row["ref_table"] if row["ref_schema"] == schema and row["ref_table"] in ours else None
            concerned = {t for t in (on, referenced) if t is not None}
            why = ("is an exclusion constraint" if contype == "x" else
                   "is inherited" if not row["conislocal"] or row["inherited_fk"] else
                   f"is on partitioned table {row['relname']}" if row["partitioned"] else
                   "has a comment" if row["commented"] else
                   f"is needed by {row['dependents']}" if row["dependents"] else None)
            if why:
                for table in concerned:
                    blockers[table].append(f"{'constraint' if contype == 'x' else _KINDS[contype]} {name} {why}")
                continue
            definition = Definition(row["nspname"], row["relname"], name, _KINDS[contype],
                                    row["pg_get_constraintdef"], row["convalidated"])
            for table in concerned:
                definitions[table].append(definition)
        # Tables whose locks the drop takes: each one's own, and those across its foreign keys.
        touched = {(d.schema, d.table) for found in definitions.values() for d in found} | {(schema, t) for t in tables}
        writers = await connection.fetch(_WRITERS, [s for s, _ in touched], [t for _, t in touched])
    for writer_schema, writer_table, pid in writers:
        for table, found in definitions.items():
            if (writer_schema, writer_table) == (schema, table):
                blockers[table].append(f"another session (pid {pid}) is writing to it")
            elif any((d.schema, d.table) == (writer_schema, writer_table) for d in found):
                blockers[table].append(f"another session (pid {pid}) is writing to {writer_schema}.{writer_table}, "
                                       "tied to it by a foreign key")
    return {t: TableFacts(t, tuple(definitions[t]), tuple(dict.fromkeys(blockers[t])), rows.get(t, 0))
            for t in tables}


async def decisions(connection: asyncpg.Connection, plan: MigrationPlan, settings: Settings,
                    rows: Mapping[str, int] | None = None, skip: Iterable[str] = ()) -> list[SetAside]:
    """The path of every existing table the plan loads into (but those in `skip`). `rows`:
    what each holds (counted here if not given)."""
    loaded = {t.target: t.source.row_count for t in plan.tables if not t.create and t.name not in set(skip)}
    if not loaded:
        return []
    if rows is None:
        rows = {name: int(await connection.fetchval(f"SELECT count(*) FROM {qualified(plan.schema, name)}"))
                for name in loaded}
    facts = await read_facts(connection, plan.schema, list(loaded), rows)
    return [decide(facts[name], if_exists=settings.if_exists.value, load_rows=loaded[name]) for name in loaded]


async def set_aside(connection: asyncpg.Connection, plan: MigrationPlan, settings: Settings,
                    rows: Mapping[str, int], skip: Iterable[str], stats: RunStats) -> list[SetAside]:
    """Record and drop, in one transaction, the definitions of the existing tables the plan
    loads into (but those in `skip`, which an earlier run loaded). Returns the decisions."""
    chosen = await decisions(connection, plan, settings, rows, skip)
    definitions = dropped(chosen)
    if not definitions:
        return chosen
    await connection.execute(_sql(_CREATE, settings.state_schema))
    try:
        async with connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await connection.executemany(_sql(_RECORD, settings.state_schema), [
                (plan.schema, d.schema, d.table, d.name, d.kind.value, d.body, d.valid) for d in definitions])
            for definition in definitions:
                await connection.execute(definition.drop_sql())
    except asyncpg.LockNotAvailableError:
        stats.notes.append(f"indexes and constraints kept during the load: a table was locked by another session "
                           f"for over {LOCK_TIMEOUT}")
        return [SetAside(d.table, kept_because="another session held a lock on a table it is tied to")
                for d in chosen]
    for decision in chosen:
        if decision.definitions:
            stats.notes.append(f"{decision.table}: {len(decision.definitions)} index(es) and constraint(s) set "
                               "aside during the load and made again after it")
    return chosen


async def pending(connection: asyncpg.Connection, schema: str | None, state_schema: str,
                  table: str | None = None) -> list[tuple[Definition, str | None]]:
    """The definitions recorded and not made again yet (and why the last attempt failed)."""
    if not await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified(state_schema, "definitions")):
        return []
    return [(Definition(r["def_schema"], r["def_table"], r["name"], DefinitionKind(r["kind"]), r["body"], r["valid"]),
             r["error"]) for r in await connection.fetch(_sql(_PENDING, state_schema), schema, table)]


async def pending_labels(dsn: str, schema: str | None, state_schema: str) -> list[tuple[str, str, str]]:
    """`copier status`: what is set aside and not made again yet, as (schema, table, label)."""
    async with connected(dsn) as connection:
        return [(definition.schema, definition.table, definition.label + (f" (last attempt: {error})" if error else ""))
                for definition, error in await pending(connection, schema, state_schema)]


class RestoreFailed(TargetError):
    """A definition PostgreSQL would not make again: which one, with the SQL that failed."""

    def __init__(self, definition: Definition, sql: str, error: asyncpg.PostgresError) -> None:
        super().__init__(f"{definition.label} not made again: {describe_pg_error(error)}; the SQL that failed: {sql}",
                         table=definition.table, sqlstate=error.sqlstate, transient=is_transient(error))
        self.definition, self.sql, self.error = definition, sql, error


async def _state_of(connection: asyncpg.Connection, definition: Definition) -> bool | None:
    """None if the definition is not in the schema; else whether it stands validated."""
    if definition.kind is DefinitionKind.INDEX:
        found = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL",
                                          qualified(definition.schema, definition.name))
        return True if found else None
    return await connection.fetchval(  # type: ignore[no-any-return]
        "SELECT c.convalidated FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND t.relname = $2 AND c.conname = $3",
        definition.schema, definition.table, definition.name)


async def _make_again(connection: asyncpg.Connection, definition: Definition, state_schema: str, *,
                      not_valid: bool = False) -> None:
    """Create it (unless it is there), and forget the record, in the caller's transaction.
    `not_valid`: a foreign key added without checking its rows, still recorded until validated."""
    found = await _state_of(connection, definition)
    steps = ([definition.create_sql(not_valid=not_valid)] if found is None else []) + (
        [definition.validate_sql()] if not not_valid and definition.valid and found is False else [])
    for sql in steps:
        try:
            async with connection.transaction():
                await connection.execute(sql)
        except asyncpg.PostgresError as exc:
            raise RestoreFailed(definition, sql, exc) from None
    if not not_valid or not definition.valid:
        await connection.execute(_sql(_FORGET, state_schema), definition.schema, definition.table, definition.name,
                                 definition.kind.value)


async def _nothing() -> None:
    return None


# The error a definition's rows raise when it is made again, per kind: the rows
# `refused_rows` can take out of the table (anything else fails the table, or loads it again).
_REFUSED_BY_ROWS: dict[DefinitionKind, type[asyncpg.PostgresError]] = {
    DefinitionKind.PRIMARY_KEY: asyncpg.UniqueViolationError, DefinitionKind.UNIQUE: asyncpg.UniqueViolationError,
    DefinitionKind.INDEX: asyncpg.UniqueViolationError, DefinitionKind.CHECK: asyncpg.CheckViolationError,
    DefinitionKind.FOREIGN_KEY: asyncpg.ForeignKeyViolationError}


async def _make_again_without_refused(connection: asyncpg.Connection, definition: Definition, state_schema: str,
                                      refused_rows: Callable[[Definition], Awaitable[bool]] | None,
                                      before_duplicates: Callable[[], Awaitable[None]] = _nothing) -> None:
    """_make_again; if the rows loaded break it, `refused_rows(definition)` takes them out
    (False: it could not, and the failure is raised), and it is made again. A foreign key
    or a check is first added NOT VALID: in the catalog, it says what to take out, and its
    VALIDATE after checks every row again (failing, undoing the load, if one was left).
    `before_duplicates()` is awaited before duplicate keys are taken out."""
    try:
        await _make_again(connection, definition, state_schema)
    except RestoreFailed as failed:
        refused_by = _REFUSED_BY_ROWS.get(definition.kind)
        if refused_rows is None or refused_by is None or not isinstance(failed.error, refused_by):
            raise
        if definition.kind in CHECKED_LATER:
            await _make_again(connection, definition, state_schema, not_valid=True)
        else:
            await before_duplicates()
        if not await refused_rows(definition):
            raise
        await _make_again(connection, definition, state_schema)


async def _orphans_first(connection: asyncpg.Connection, keys: list[Definition], state_schema: str,
                         refused_rows: Callable[[Definition], Awaitable[bool]]) -> None:
    """The orphans of foreign keys `keys` taken out (each added NOT VALID; validated later,
    in its turn), the tables they reference committed: before duplicates are, so that a row
    refused by its foreign key holds no key another row then loses, as when rows are
    screened with every rule in place. A key that cannot be added yet (one referencing this
    table's own key, not made yet: a row's parent may be a row of the load, checked after
    the keys there too) is left to its turn."""
    for key in keys:
        try:
            await _make_again(connection, key, state_schema, not_valid=True)
        except RestoreFailed:
            continue  # in its own savepoint: nothing of it stays
        await refused_rows(key)  # False (not modelled): its VALIDATE, in its turn, fails as before


async def load_then_restore(connection: asyncpg.Connection, schema: str, table: str, state_schema: str,
                            load: Callable[[bool], Awaitable[_T]], note: Callable[[str], None], *,
                            loaded: Callable[[], None] = lambda: None,
                            parents: Callable[[], Awaitable[None]] = _nothing,
                            refused_rows: Callable[[Definition], Awaitable[bool]] | None = None,
                            orphans_likely: Callable[[Definition], bool] = lambda _key: False) -> _T:
    """In the table's load transaction: load, then make its indexes and constraints again,
    its foreign keys too (the tables they reference loaded before it), so they commit with
    the rows. Rows a definition refuses (a failed check, a duplicate key, a missing parent)
    are taken out of the loaded table set-wise by `refused_rows(definition)` (False: it
    could not), and the definition made again. Checks go first, then keys and indexes, then
    foreign keys, so that, as when rows are screened with every rule in place, a row a check
    refuses does not hold a key another row then loses; where a key finds duplicates, the
    orphans of its foreign keys to other tables go before them, for the same reason. If the rows break one otherwise (an
    indexed expression failing on a value, a definition `refused_rows` does not model), the
    load is undone and done again with them in place, where the rows that break them are
    rejected (screening.py), as for any table copier does not set aside. `load(refused)`:
    `refused` when it loads again rows PostgreSQL refused. `loaded()` is called once the
    rows are in (tables that reference this one may start loading theirs), `parents()`
    awaited before its first foreign key is made (the tables it references are then
    committed, keys and all), so that its rows, keys and indexes go in while theirs are
    still being made, as for tables copier creates. A foreign key `orphans_likely` names
    then (the table it references refused rows of this run, so its children here are
    orphans) has its orphans taken out first, without trying it validated: an ADD that
    fails costs about what its VALIDATE does (the whole table joined to its parent), paid
    for nothing. Its VALIDATE after still checks every row."""
    own = restore_order([d for d, _error in await pending(connection, schema, state_schema, table)])
    if not own:
        return await load(False)
    keys = [d for d in own if d.kind is DefinitionKind.FOREIGN_KEY]  # last (restore_order)
    checks = [d for d in own if d.kind is DefinitionKind.CHECK]
    orphans_taken = False

    async def orphans_first() -> None:
        nonlocal orphans_taken
        if keys and refused_rows is not None and not orphans_taken:
            orphans_taken = True
            await parents()
            await _orphans_first(connection, keys, state_schema, refused_rows)

    try:
        async with connection.transaction():
            result = await load(False)
            loaded()
            for definition in checks + [d for d in own if d not in checks and d not in keys]:
                await _make_again_without_refused(connection, definition, state_schema, refused_rows, orphans_first)
            if keys:
                await parents()
                likely = [k for k in keys if orphans_likely(k)]
                if likely and refused_rows is not None and not orphans_taken:
                    await _orphans_first(connection, likely, state_schema, refused_rows)
            for definition in keys:
                await _make_again_without_refused(connection, definition, state_schema, refused_rows)
            return result
    except RestoreFailed as failed:
        if not is_row_error(failed.error):  # a disk full, say: the table fails, naming it
            raise
        note(f"copier: {table}: its rows break {failed.definition.label} ({describe_pg_error(failed.error)}): "
             "loading it again with its indexes and constraints in place, to reject those rows")
    if keys:
        await parents()
    for definition in own:
        await _make_again(connection, definition, state_schema)
    return await load(True)


async def restore_pending(pool: asyncpg.Pool, schema: str, state_schema: str) -> list[RestoreFailed]:
    """Make again everything recorded for `schema`: indexes and constraints first (of tables
    whose load failed, or of an earlier run), then foreign keys, each added NOT VALID and
    then validated, the keys of different tables at once (as copier adds its own). Returns
    the ones PostgreSQL refused (still recorded, with the error; a refused foreign key
    stays NOT VALID, enforced for new rows)."""
    failures: list[RestoreFailed] = []
    async with pool.acquire() as connection:
        every = restore_order([d for d, _error in await pending(connection, schema, state_schema)])
        keys = [d for d in every if d.kind is DefinitionKind.FOREIGN_KEY]
        for definition in [d for d in every if d.kind is not DefinitionKind.FOREIGN_KEY] + keys:
            try:
                async with connection.transaction():
                    await _make_again(connection, definition, state_schema,
                                      not_valid=definition.kind is DefinitionKind.FOREIGN_KEY)
            except RestoreFailed as failed:
                failures.append(failed)
                await _remember(connection, failed, state_schema)
    refused = {f.definition for f in failures}
    by_table: dict[tuple[str, str], list[Definition]] = {}
    for key in keys:
        if key not in refused:
            by_table.setdefault((key.schema, key.table), []).append(key)

    async def validate(definitions: list[Definition]) -> None:
        async with pool.acquire() as own:
            for definition in definitions:
                try:
                    async with own.transaction():
                        await _make_again(own, definition, state_schema)
                except RestoreFailed as failed:
                    failures.append(failed)
                    await _remember(own, failed, state_schema)

    async with anyio.create_task_group() as group:
        for definitions in by_table.values():
            group.start_soon(validate, definitions)
    return failures


async def _remember(connection: asyncpg.Connection, failed: RestoreFailed, state_schema: str) -> None:
    d = failed.definition
    await connection.execute(_sql(_FAILED, state_schema), d.schema, d.table, d.name, d.kind.value, str(failed))
