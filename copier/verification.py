"""Prove the load: per table, row counts, and every row compared with the source through a
path that shares nothing with the load's converters (see crosscheck.py): the raw SQLite
values are shipped as text into a temporary table (a small table's as array parameters
of its query), PostgreSQL reads them into the target types itself, and the two sides are
compared as multisets (digests first for big tables; one GROUP BY over both). Streaming,
bounded memory (the server sorts on disk). Rows in the reject file are accounted for. On
a difference, the differing primary keys are named. During a migration each table is
checked as soon as it is loaded, a big table's source digest made while it loads
(EarlyDigests)."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import anyio.to_thread
import asyncpg
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import batching, crosscheck, ddl, source, target
from .casting import Kind
from .faults import ended_if_lost
from .ident import qualified, quote_sqlite
from .normalise import ConvertedPage, Converter
from .planning import MigrationPlan, TablePlan
from .reader import read_range, split_ranges, table_ranges
from .settings import Settings
from .source import KeyRange
from .stats import RunStats
from .tasks import task_group

SHOWN_KEYS = 5
# Rows verify reads and ships at a time (fewer where rows are wide: batching.batch_rows).
# Its own, not --batch-size, which tunes the load: a check of a table reads differently.
_VERIFY_BATCH_ROWS = batching.DEFAULT_BATCH_ROWS
# Source ranges read, shipped and digested at once, each over its own connection.
_VERIFY_READERS = 2
# Tables this big are first compared by digest (see _digests_agree); smaller ones row by row
# in one query at once, which costs less than the digests' connections.
_DIGEST_MIN_ROWS = 20_000
# Tables under this many rows are compared in one query, their source rows passed as array
# parameters: no temporary table, no COPY (_check_together); and up to this many such
# tables at once, when they are waiting.
_INLINE_MAX_ROWS = 1_000
_TOGETHER_MAX_TABLES = 32
_TOGETHER_MAX_PARAMETERS = 30_000  # of PostgreSQL's 65,535 per statement; a table ships 2 per column
# The source text held for one such query: past it (rows of big values), a table is checked
# the streaming way, through a temporary table.
_TOGETHER_MAX_BYTES = 16 * 2**20
_SOURCE_COPY = "copier_verify_source"
# Rows shipped into the temporary table before the source digest takes them in and empties
# it: the digest of a range is made while the range ships, not after it (the server
# digested a range only once its COPYs had ended: 0.3-0.8 s of a 200,000-row table after its
# load, benchmarks/README), and the table stays within temp_buffers.
_DIGEST_CHUNK_ROWS = 32_768
# Columns compared in one pass. The temporary table holds up to 3 per column (PostgreSQL
# allows 1,600 a table) and a small table's query unnests 2 arrays per column (at most
# 1,664 result columns): a wider table is compared in groups of columns (_column_groups).
_GROUP_COLUMNS = 400
# How long verify waits for a scheduled early digest to start: start_soon runs it at the
# loop's next pass, so only a task that will never run (its task group gone) waits this long.
_EARLY_START_SECONDS = 30.0
# Every type sqlite3 returns: a converter that leaves values as SQLite stored them.
_RAW_TYPES: frozenset[type] = frozenset({int, float, str, bytes, type(None)})


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    rejected: int
    preexisting: int = 0
    content_equal: bool | None = None  # None: not computed (rows kept by --if-exists append)
    differing_keys: tuple[str, ...] = ()
    keyless: bool = False
    problem: str | None = None  # PostgreSQL could not read a source value as the target type

    @property
    def ok(self) -> bool:
        counts = self.source_rows == self.target_rows - self.preexisting + self.rejected
        return counts and self.content_equal is not False

    def as_dict(self) -> dict[str, object]:
        return {"table": self.table, "ok": self.ok, "source_rows": self.source_rows, "target_rows": self.target_rows,
                "rejected": self.rejected, "preexisting": self.preexisting, "content_equal": self.content_equal,
                "differing_keys": list(self.differing_keys), "problem": self.problem}

    def describe(self) -> str:
        kept = f" - {self.preexisting:,} kept" if self.preexisting else ""
        line = (f"{self.table}: source {self.source_rows:,} rows, target {self.target_rows:,}{kept}, "
                f"rejected {self.rejected:,}")
        if self.content_equal is None:
            line += ", content not compared"
        elif self.content_equal:
            line += ", content equal"
        else:
            line += ", CONTENT DIFFERS"
            if self.problem:
                line += f" ({self.problem})"
            elif self.differing_keys:
                line += f" at key(s) {', '.join(self.differing_keys)}"
            elif self.keyless:
                line += " (no primary key to name the rows)"
        return line + (": ok" if self.ok else ": MISMATCH")


def _natural(key: str) -> tuple[tuple[int, int, str], ...]:
    """Integers in numeric order, before text; composite keys part by part."""
    parts = key.strip("()").split(", ")
    return tuple((0, int(part), "") if part.lstrip("-").isdigit() else (1, 0, part) for part in parts)


class RejectKeys:
    """The keys of the rejected rows, per table, from the reject file; read as the file grows
    (a run appends each table's rejects before the table counts as loaded)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.read_to = 0  # bytes of the file read so far: whole lines only
        self.keys: dict[str, set[object]] = defaultdict(set)

    def of(self, table: str) -> set[object]:
        if self.path is not None and self.path.exists():
            with self.path.open("rb") as handle:
                handle.seek(self.read_to)
                data = handle.read()
            complete = data[:data.rfind(b"\n") + 1]
            self.read_to += len(complete)
            for line in complete.decode("utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    key = record["key"]
                    self.keys[str(record["table"])].add(tuple(key) if isinstance(key, list) else key)
        return self.keys[table]


@dataclass
class _EarlyDigest:
    attempt: int | None  # the data_version the load attempt it goes with started at
    before: int | None = None  # the data_version before and after it read the source
    after: int | None = None
    digest: tuple[int, object] | None = None
    started: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)  # set once started, however it ends
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class EarlyDigests:
    """The source side of a big table's digest comparison (_digests_agree), computed while the
    table loads and its keys are built (PostgreSQL builds a primary key on one backend, and
    the load leaves CPU over), so that once the table is done only the target's digest is
    left. One per load attempt: a retry starts it again, and a digest counts only where the
    source did not change (PRAGMA data_version, as ChangeWatch reads it) from the attempt's
    start until the digest had read it, so it read what the attempt that succeeded read.
    It covers every row: a table whose load rejected rows is digested again without them."""

    def __init__(self, path: Path, settings: Settings, group: TaskGroup,
                 version: Callable[[], int | None]) -> None:
        self.path, self.settings, self.group, self.version = path, settings, group, version
        self.digests: dict[str, _EarlyDigest] = {}

    def wanted(self, table: TablePlan) -> bool:
        """Tables verify compares by digest, in one group of columns, and of this source only."""
        return table.create and table.source.row_count >= _DIGEST_MIN_ROWS and len(table.columns) <= _GROUP_COLUMNS

    def start(self, table: TablePlan, attempt: int | None) -> None:
        """At the start of a load attempt that read the source at data_version `attempt`."""
        table = _whole(table)  # as check_tables compares it: generated columns too
        if not self.wanted(table):
            return
        if (earlier := self.digests.get(table.name)) is not None:
            earlier.scope.cancel()
            earlier.done.set()
        early = self.digests[table.name] = _EarlyDigest(attempt)
        self.group.start_soon(self._compute, table, early)

    async def _compute(self, table: TablePlan, early: _EarlyDigest) -> None:
        early.started.set()
        try:
            with early.scope:
                early.before = self.version()
                # One reader, not _VERIFY_READERS: the load's own readers run meanwhile, and
                # a second range's batches took the default run's tree past 150 MB (benchmarks/README).
                early.digest = await _source_digest(self.path, self.settings, table, set(), readers=1)
                early.after = self.version()
        except Exception:  # noqa: BLE001 - verify then reads the source itself, and says what fails
            early.digest = None
        finally:  # cancelled with its task group too: take() must not wait for it
            early.done.set()

    def pending(self, table: str) -> bool:
        """Whether the table's source digest was started here (take may still find it unusable)."""
        return table in self.digests

    async def take(self, table: str, rejected: set[object]) -> tuple[int, object] | None:
        """The table's early source digest, if it stands for what the load read; else None."""
        early = self.digests.pop(table, None)
        if early is None:
            return None
        with anyio.move_on_after(_EARLY_START_SECONDS):
            await early.started.wait()
        if not early.started.is_set():  # its task never ran: verify reads the source itself
            early.scope.cancel()
            return None
        await early.done.wait()
        if rejected or early.attempt is None or not early.before == early.after == early.attempt:
            return None
        return early.digest


async def verify_tables(
    path: Path, settings: Settings, plan: MigrationPlan, reject_file: Path | None,
    preexisting: Mapping[str, int] | None = None, advance: Callable[[int], None] = lambda _tables: None,
) -> list[TableCheck]:
    """Check every table of the plan, --jobs of them at once (the biggest first); the checks
    in the plan's order."""
    send, receive = anyio.create_memory_object_stream[TablePlan](math.inf)
    with send:
        for table in sorted(plan.tables, key=lambda t: -t.source.row_count):
            send.send_nowait(table)
    checks = await check_tables(path, settings, plan.schema, receive, RejectKeys(reject_file), preexisting or {},
                                advance)
    return [checks[table.name] for table in plan.tables]


def _whole(table: TablePlan) -> TablePlan:
    """The table with the columns PostgreSQL generates among those checked: their values
    were computed, not loaded, and must still be SQLite's."""
    return replace(table, columns=table.all_columns, generated=()) if table.generated else table


async def check_tables(path: Path, settings: Settings, schema: str, tables: MemoryObjectReceiveStream[TablePlan],
                       rejected: RejectKeys, preexisting: Mapping[str, int],
                       advance: Callable[[int], None], early: EarlyDigests | None = None) -> dict[str, TableCheck]:
    """Check each table the stream brings, until it closes: --jobs checkers, each keeping one
    connection (in the session's zone: see _check_together) and taking the next table; a
    big table's source digest from `early` where the load had it computed."""
    checks: dict[str, TableCheck] = {}

    def small(table: TablePlan) -> bool:
        return (not preexisting.get(table.name, 0) and table.source.row_count < _INLINE_MAX_ROWS
                and len(table.columns) <= _GROUP_COLUMNS)

    async def checker(waiting: MemoryObjectReceiveStream[TablePlan]) -> None:
        async with waiting, target.connected(settings.dsn) as connection:
            await connection.execute(crosscheck.set_time_zone(settings.source_tz, local=False))

            async def alone(table: TablePlan) -> None:
                left_out = rejected.of(table.name)
                kept = preexisting.get(table.name, 0)
                found = None
                if early is not None and early.pending(table.name) and not left_out and not kept:
                    # The target's digest first, while the source's may still be shipping
                    # (json's ends 1-3 s after the table's keys): this connection is idle
                    # until then, and the table's rows no longer change.
                    found = await _target_digest(connection, schema, table)
                made = await early.take(table.name, left_out) if early is not None else None
                group_checks = [await _check_table(path, connection, schema, group, settings, left_out, kept, made,
                                                   found)
                                for group in _column_groups(table)]
                checks[table.name] = _merged(group_checks)
                advance(1)

            async for table in waiting:
                table = _whole(table)
                if not small(table):
                    await alone(table)
                    continue
                # Small tables waiting now are checked with it, in one query.
                together, later = [table], []
                parameters = 2 * len(table.columns)
                while len(together) < _TOGETHER_MAX_TABLES and parameters < _TOGETHER_MAX_PARAMETERS:
                    try:
                        more = waiting.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    more = _whole(more)
                    if small(more):
                        together.append(more)
                        parameters += 2 * len(more.columns)
                    else:
                        later.append(more)
                for check in await _check_together(path, connection, schema, together, settings, rejected):
                    checks[check.table] = check
                advance(len(together))
                for table in later:
                    await alone(table)

    async with tables, task_group() as group:
        for _ in range(settings.jobs):
            group.start_soon(checker, tables.clone())
    return checks


async def _check_table(
    path: Path, connection: asyncpg.Connection, schema: str, table: TablePlan, settings: Settings,
    rejected: set[object], kept: int, early: tuple[int, object] | None = None,
    found_digest: tuple[int, object] | None = None,
) -> TableCheck:
    """`early`: the source side's digest, made already (EarlyDigests); `found_digest`: the
    target's, if made already."""
    found = [crosscheck.found_sql(c.type, c.target) for c in table.columns]
    target_table = qualified(schema, table.target)
    key_positions = _key_positions(table)
    if early is not None and not kept and found_digest is None:
        # All that is left of the digest comparison: the target's digest, which counts its
        # rows too (one scan, not two, on this connection: no other to open).
        found_digest = await _target_digest(connection, schema, table)
    target_rows = (found_digest[0] if found_digest is not None
                   else await connection.fetchval(ddl.count_rows(schema, table.target)))
    base = TableCheck(table.name, table.source.row_count, target_rows, len(rejected), kept,
                      keyless=not key_positions)
    if kept:
        return base  # the target also holds rows that never came from this source
    try:
        if early is not None:
            agree = found_digest is not None and early == found_digest
        else:
            agree = table.source.row_count >= _DIGEST_MIN_ROWS and await _digests_agree(
                path, settings, table, rejected, found, target_table)
        if agree:
            return replace(base, content_equal=True, keyless=not key_positions)  # see crosscheck.digest_sql
        # A small table, different digests, or no digest here: the rows themselves, compared,
        # and the differing keys named.
        async with connection.transaction():
            expected = await _ship_all(path, connection, table, rejected, settings)
            differences = crosscheck.differences_sql(expected, _SOURCE_COPY, found, target_table)
            differing = await connection.fetchval(f"SELECT coalesce(sum(abs(surplus)), 0) FROM ({differences}) d")
            keys: list[str] = []
            if differing and key_positions:
                rows = await connection.fetch(f"SELECT * FROM ({differences}) d LIMIT {2 * SHOWN_KEYS}")
                keys = [_key_text([row[i] for i in key_positions]) for row in rows]
    except asyncpg.DataError as exc:
        return replace(base, content_equal=False, problem=_unreadable(exc))
    return _compared(base, differing, keys)


async def _target_digest(connection: asyncpg.Connection, schema: str,
                         table: TablePlan) -> tuple[int, object] | None:
    """The target's (rows, digest), or None (no digest on this server, or a value it cannot
    hash: then compared row by row, which says what fails)."""
    found = [crosscheck.found_sql(c.type, c.target) for c in table.columns]
    with contextlib.suppress(asyncpg.DataError):
        return await _digest(connection, crosscheck.digest_sql(found, qualified(schema, table.target)))
    return None


def _column_groups(table: TablePlan) -> list[TablePlan]:
    """The table as one, or (wider than _GROUP_COLUMNS) as groups of its columns, each with
    the primary key's columns, so that a differing row is still named by its key. For a
    table with a primary key, every group equal means the rows are equal; for one without,
    each group's rows are compared as a multiset on their own."""
    if len(table.columns) <= _GROUP_COLUMNS:
        return [table]
    keys = [c for c in table.columns if c.source in table.source.primary_key]
    others = [c for c in table.columns if c.source not in table.source.primary_key]
    width = _GROUP_COLUMNS - len(keys)
    return [replace(table, columns=(*keys, *others[start:start + width])) for start in range(0, len(others), width)]


def _merged(checks: Sequence[TableCheck]) -> TableCheck:
    """One table's check from the checks of its column groups."""
    first = checks[0]
    if len(checks) == 1 or first.content_equal is None:
        return first
    keys = sorted({key for check in checks for key in check.differing_keys}, key=_natural)[:SHOWN_KEYS]
    problems = [check.problem for check in checks if check.problem]
    return replace(first, content_equal=all(check.content_equal for check in checks),
                   differing_keys=tuple(keys), problem=problems[0] if problems else None)


def _unreadable(exc: asyncpg.DataError) -> str:
    """The load accepted a value that PostgreSQL itself reads otherwise, or not at all."""
    return f"PostgreSQL cannot read a source value as loaded: {str(exc).splitlines()[0]}"


def _compared(base: TableCheck, differing: int, keys: Sequence[str]) -> TableCheck:
    shown = tuple(sorted(set(keys), key=_natural)[:SHOWN_KEYS])
    return replace(base, content_equal=not differing, differing_keys=shown if differing else ())


@dataclass(frozen=True, slots=True)
class _Inline:
    """A small table's check as SQL: its source rows passed as one array parameter per
    shipped column (numbered from `first`), compared with its target rows."""

    table: TablePlan
    target_table: str
    rejected: int
    arrays: list[list[str | None]]
    differences: str  # the differing rows (crosscheck.differences_sql)

    @property
    def counted(self) -> str:
        return (f"(SELECT count(*) FROM {self.target_table}), "
                f"(SELECT coalesce(sum(abs(surplus)), 0) FROM ({self.differences}) d)")


def _inline(table: TablePlan, schema: str, rows: list[tuple[str | None, ...]], rejected: int,
            first: int = 1) -> _Inline:
    columns = crosscheck.source_columns(len(table.columns))
    arrays = [list(column) for column in zip(*rows)] if rows else [[] for _ in columns]
    shipped = (f"unnest({', '.join(f'${first + i}::text[]' for i in range(len(columns)))}) "
               f"AS shipped({', '.join(columns)})")
    expected = [crosscheck.expected_sql(c.type, i) for i, c in enumerate(table.columns)]
    found = [crosscheck.found_sql(c.type, c.target) for c in table.columns]
    target_table = qualified(schema, table.target)
    return _Inline(table, target_table, rejected, arrays,
                   crosscheck.differences_sql(expected, shipped, found, target_table))


async def _check_together(path: Path, connection: asyncpg.Connection, schema: str, tables: Sequence[TablePlan],
                          settings: Settings, rejected: RejectKeys) -> list[TableCheck]:
    """Small tables in one query, in the zone the checker's session is set to (check_tables):
    each table's rows counted and compared; the differing keys of a table that differs
    asked for afterwards. If PostgreSQL cannot read a source value, each table alone, to
    say which."""
    inlines: list[_Inline] = []
    streamed: list[TableCheck] = []  # tables too big in bytes to hold: checked the streaming way
    budget = _TOGETHER_MAX_BYTES
    for table in tables:
        left_out = rejected.of(table.name)
        held = await _source_text_rows(path, table, left_out, settings, budget)
        if held is None:
            streamed.append(await _check_table(path, connection, schema, table, settings, left_out, 0))
            continue
        rows, size = held
        budget -= size
        inlines.append(_inline(table, schema, rows, len(left_out), 1 + sum(len(i.arrays) for i in inlines)))
    if not inlines:
        return streamed
    tables = [inline.table for inline in inlines]
    arguments = [array for inline in inlines for array in inline.arrays]
    try:
        counts = await connection.fetchrow(f"SELECT {', '.join(i.counted for i in inlines)}", *arguments)
    except asyncpg.DataError as exc:
        if len(tables) == 1:
            base = TableCheck(tables[0].name, tables[0].source.row_count, 0, inlines[0].rejected)
            target_rows = await connection.fetchval(ddl.count_rows(schema, tables[0].target))
            return [replace(base, target_rows=target_rows, content_equal=False, problem=_unreadable(exc)), *streamed]
        return [check for table in tables
                for check in await _check_together(path, connection, schema, [table], settings, rejected)] + streamed
    checks = []
    for n, inline in enumerate(inlines):
        table = inline.table
        key_positions = _key_positions(table)
        base = TableCheck(table.name, table.source.row_count, counts[2 * n], inline.rejected,
                          keyless=not key_positions)
        differing, keys = counts[2 * n + 1], list[str]()
        if differing and key_positions:
            alone = _inline(table, schema, [], inline.rejected)  # its SQL, numbered from $1
            found = await connection.fetch(f"SELECT * FROM ({alone.differences}) d LIMIT {2 * SHOWN_KEYS}",
                                           *inline.arrays)
            keys = [_key_text([row[i] for i in key_positions]) for row in found]
        checks.append(_compared(base, differing, keys))
    return checks + streamed


async def _digests_agree(path: Path, settings: Settings, table: TablePlan, rejected: set[object],
                         found: list[str], target_table: str) -> bool:
    """Both sides' digests, equal? The source's from ranges shipped and digested in parallel
    (a connection and temporary table each), the target's meanwhile on its own connection."""
    digests: dict[str, tuple[int, object] | None] = {}

    async def target_side() -> None:
        async with target.connected(settings.dsn) as own:
            digests["found"] = await _digest(own, crosscheck.digest_sql(found, target_table))

    async def source_side() -> None:
        digests["expected"] = await _source_digest(path, settings, table, rejected)

    async with task_group() as group:
        group.start_soon(target_side)
        group.start_soon(source_side)
    return digests["expected"] is not None and digests["expected"] == digests["found"]


async def _begin_source_copy(connection: asyncpg.Connection, table: TablePlan, zone: str,
                             usual: Sequence[str] | None = None) -> None:
    """In the caller's transaction: the session's zone, and the temporary table shipped into
    (with typed columns for the usual storage classes, when they are known)."""
    columns = crosscheck.source_table_columns(len(table.columns), usual)
    await connection.execute(f"{crosscheck.set_time_zone(zone)}; CREATE TEMPORARY TABLE {_SOURCE_COPY} ("
                             + ", ".join(f"{name} {kind}" for name, kind in columns) + ") ON COMMIT DROP")


async def _source_digest(path: Path, settings: Settings, table: TablePlan, rejected: set[object],
                         readers: int = _VERIFY_READERS) -> tuple[int, object] | None:
    """The source side's (rows, digest): the sums over key ranges shipped and digested in
    parallel. None where the Arrow way cannot take the table, or the server has no digest."""
    survey = await _survey(path, table, settings.busy_timeout, rejected, readers)
    if survey is None:
        return None
    usual, ranges = survey
    expected = [crosscheck.expected_typed_sql(c.type, i, usual[i]) for i, c in enumerate(table.columns)]
    parts: list[tuple[int, object] | None] = []

    async def one(key_range: KeyRange) -> None:
        sums: list[tuple[int, object] | None] = []

        async def take_in(connection: asyncpg.Connection) -> None:
            """The shipped rows' digest, then the table emptied for the next ones."""
            sums.append(await _digest(connection, crosscheck.digest_sql(expected, _SOURCE_COPY)))
            await connection.execute(f"TRUNCATE {_SOURCE_COPY}")

        async with target.connected(settings.dsn) as connection, connection.transaction():
            await _begin_source_copy(connection, table, settings.source_tz, usual)
            shipped = await _ship_columnar(path, connection, table, rejected, settings.busy_timeout, usual,
                                           [key_range], take_in)
            if shipped:
                await take_in(connection)
        parts.append(_summed(sums) if shipped else None)

    async with task_group() as group:
        for key_range in ranges:
            group.start_soon(one, key_range)
    return _summed(parts)


def _summed(parts: Sequence[tuple[int, object] | None]) -> tuple[int, object] | None:
    """The (rows, digest) of rows digested in parts (a multiset digest is their sum); None if
    any part has none."""
    known = [part for part in parts if part is not None]
    if len(known) < len(parts):
        return None
    return sum(rows for rows, _ in known), sum(digest for _, digest in known)  # type: ignore[misc]


async def _ship_all(path: Path, connection: asyncpg.Connection, table: TablePlan, rejected: set[object],
                    settings: Settings) -> list[str]:
    """Every source row into this connection's temporary table; returns the SQL of the
    expected values that reads them."""
    survey = await _survey(path, table, settings.busy_timeout, rejected, readers=1)
    await _begin_source_copy(connection, table, settings.source_tz, survey[0] if survey else None)
    if survey is not None and await _ship_columnar(path, connection, table, rejected, settings.busy_timeout,
                                                   *survey):
        usual = survey[0]
        return [crosscheck.expected_typed_sql(c.type, i, usual[i]) for i, c in enumerate(table.columns)]
    await _ship_source(path, connection, table, rejected, _VERIFY_BATCH_ROWS)
    return [crosscheck.expected_sql(c.type, i) for i, c in enumerate(table.columns)]


async def _digest(connection: asyncpg.Connection, sql: str) -> tuple[int, object] | None:
    """(rows, digest) of one side, or None where the server has no hash_record_extended
    (PostgreSQL before 14)."""
    try:
        async with connection.transaction():  # a savepoint: a missing function undoes only itself
            row = await connection.fetchrow(sql)
    except asyncpg.UndefinedFunctionError:
        return None
    return int(row[0]), row[1]


def _key_positions(table: TablePlan) -> list[int]:
    """Where the primary key's columns are among the table's (to name differing rows)."""
    return [i for i, c in enumerate(table.columns) if c.source in table.source.primary_key]


def _key_text(values: Sequence[object]) -> str:
    return str(values[0]) if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


def _raw(table: TablePlan) -> list[Converter]:
    """Converters that leave each value as SQLite stored it."""
    return [Converter(c.type, _RAW_TYPES, lambda v: v) for c in table.columns]


def _text_rows(table: TablePlan, page: ConvertedPage, rejected: set[object]) -> list[tuple[str | None, ...]]:
    """A page of raw rows, not rejected, as shipped rows: (storage class, text) per column."""
    rows = page.records if not rejected else [r for k, r in zip(page.keys, page.records) if k not in rejected]
    if not rows:
        return []
    binary = [c.type.kind is Kind.BYTEA for c in table.columns]
    forms = [crosscheck.text_forms(column, binary=is_binary) for column, is_binary in zip(zip(*rows), binary)]
    return list(zip(*itertools.chain.from_iterable(forms)))


async def _source_text_rows(path: Path, table: TablePlan, rejected: set[object], settings: Settings,
                            budget: int) -> tuple[list[tuple[str | None, ...]], int] | None:
    """Every source row of a small table, not rejected, as shipped rows, and the length of
    their text; None once that passes `budget` (rows of big values: the caller streams them
    instead)."""
    send, receive = anyio.create_memory_object_stream[ConvertedPage](1)
    rows: list[tuple[str | None, ...]] = []
    size = 0

    async def read() -> None:
        with send:
            for key_range in await table_ranges(path, table.source, 1):
                await read_range(path, table, key_range, _raw(table), _VERIFY_BATCH_ROWS, send.clone(),
                                 settings.busy_timeout)

    async with task_group() as group, receive:
        group.start_soon(read)
        async for page in receive:
            formed = _text_rows(table, page, rejected)
            size += sum(len(value) for row in formed for value in row if value is not None)
            if size > budget:
                group.cancel_scope.cancel()
                return None
            rows += formed
    return rows, size


async def _ship_source(path: Path, connection: asyncpg.Connection, table: TablePlan, rejected: set[object],
                       batch_size: int) -> None:
    """The source rows, not rejected, as (storage class, text) pairs: one COPY, page by page."""
    send, receive = anyio.create_memory_object_stream[ConvertedPage](2)

    async def records() -> AsyncIterator[tuple[str | None, ...]]:
        async for page in receive:
            for row in _text_rows(table, page, rejected):
                yield row

    async with anyio.create_task_group() as group, send, receive:
        for key_range in await table_ranges(path, table.source, 1):
            group.start_soon(read_range, path, table, key_range, _raw(table), batch_size, send.clone())
        send.close()
        async with ended_if_lost(connection):
            await connection.copy_records_to_table(_SOURCE_COPY, records=records(),
                                                   columns=crosscheck.source_columns(len(table.columns)))


async def _survey(path: Path, table: TablePlan, busy_timeout: float, rejected: set[object],
                  readers: int = _VERIFY_READERS) -> tuple[list[str], list[KeyRange]] | None:
    """Each column's usual storage class (from a sample), and the key ranges readers take:
    rowid stripes, or (WITHOUT ROWID) the primary key's rows, in one range.
    None where the Arrow way cannot take the table (no key to range, a reader failure, or
    rejected rows of a WITHOUT ROWID table, whose keys the batches name as SQLite quotes
    them, not as the reject file does)."""
    from .columnar import ArrowQuery, ColumnarDeclined

    rowid = source.rowid_sql(table.source)
    if rowid is None and (not source.key_columns(table.source) or rejected):
        return None
    columns = [c.source for c in table.columns]
    kinds = [c.type.kind for c in table.columns]

    one_range = readers == 1 or table.source.row_count <= _VERIFY_BATCH_ROWS

    def survey() -> tuple[list[str], list[tuple[object, ...]]]:
        query = ArrowQuery(path, busy_timeout)
        try:
            sample = [tuple(map(str, row)) for row in query.rows(crosscheck.census_sql(table.source.name, columns))]
            bounds: list[tuple[object, ...]] = [(-2**63, 2**63 - 1)] if one_range or rowid is None else query.rows(
                f"SELECT min({rowid}), max({rowid}) FROM {quote_sqlite(table.source.name)}")
            return crosscheck.usual_classes(sample, kinds), bounds
        finally:
            query.close()

    try:
        usual, bounds = await anyio.to_thread.run_sync(survey)
    except ColumnarDeclined:
        return None
    if rowid is None:
        return usual, [source.WHOLE]
    low, high = bounds[0]
    if low is None:
        return usual, []
    if one_range:  # every rowid: no need to know the bounds
        return usual, [KeyRange(int(low), int(high))]  # type: ignore[call-overload]
    return usual, split_ranges((int(low), int(high)), readers)  # type: ignore[call-overload]


async def _ship_columnar(path: Path, connection: asyncpg.Connection, table: TablePlan, rejected: set[object],
                         busy_timeout: float, usual: list[str], ranges: list[KeyRange],
                         take_in: Callable[[asyncpg.Connection], Awaitable[None]] | None = None) -> bool:
    """Key ranges of the source (_survey's), not rejected, as text forms made a batch at a time in
    Arrow (crosscheck.batch_text_forms), into this connection's temporary table; `take_in`
    called each _DIGEST_CHUNK_ROWS rows or so (it empties the table). False (the table
    emptied again) where the Arrow reader fails: the caller ships row by row."""
    import pyarrow as pa  # here: 80 ms to import, which small tables need not pay
    import pyarrow.compute as pc

    from .columnar import ArrowQuery, ColumnarDeclined, chunks, copy_parts

    key = source.key_sql(table.source)  # the rowid, or the primary key as SQLite quotes it
    columns = [c.source for c in table.columns]
    kinds = [c.type.kind for c in table.columns]
    binary = [k is Kind.BYTEA for k in kinds]
    not_null = {c.name for c in table.source.columns if c.not_null} | {table.source.rowid_alias}
    nullable = [c not in not_null for c in columns]
    values = [f"n{i}" if u in crosscheck.TYPED else f"v{i}" for i, u in enumerate(usual)]
    key_column = crosscheck.rowid_column(columns, usual, table.source.rowid_alias)
    skipped = pa.array([k for k in rejected if isinstance(k, int)], pa.int64())
    send, receive = anyio.create_memory_object_stream[tuple[tuple[bytes, ...], int, list[int | str]]](1)

    async def produce(key_range: KeyRange,
                      out: MemoryObjectSendStream[tuple[tuple[bytes, ...], int, list[int | str]]]) -> None:
        where = source.range_condition(table.source, key_range)
        sql = crosscheck.read_sql(table.source.name, columns, usual, kinds, nullable, key, where,
                                  table.source.rowid_alias)

        def start() -> ArrowQuery:
            query = ArrowQuery(path, busy_timeout)
            try:
                query.start(sql, query.batch_rows(table.source.name, columns, where, _VERIFY_BATCH_ROWS))
            except BaseException:
                query.close()
                raise
            return query

        def prepare(query: ArrowQuery) -> tuple[tuple[bytes, ...], int, list[int | str]] | None:
            batch = query.next()
            if batch is None:
                return None
            if len(skipped):
                batch = batch.filter(pc.invert(pc.is_in(batch.column(0), value_set=skipped)))
            formed = crosscheck.batch_text_forms(batch, usual, binary, nullable, key_column)
            rows = len(formed.values[0]) if formed.values else 0
            parts = copy_parts(pa.RecordBatch.from_arrays(formed.values, names=values)) if rows else ()
            return parts, rows, formed.odd_keys

        query = await anyio.to_thread.run_sync(start)
        try:
            async with out:
                while (prepared := await anyio.to_thread.run_sync(prepare, query)) is not None:
                    await out.send(prepared)
        finally:
            await anyio.to_thread.run_sync(query.close)

    held = 0  # rows in the table since take_in last emptied it
    try:
        async with task_group() as group, receive:
            for key_range in ranges:
                group.start_soon(produce, key_range, send.clone())
            send.close()
            async for parts, rows, odd_keys in receive:
                if parts:
                    async with ended_if_lost(connection):
                        await connection.copy_to_table(_SOURCE_COPY, source=chunks(parts), columns=values,
                                                       format="binary")
                if odd_keys:
                    await _ship_odd_rows(path, connection, table, odd_keys, busy_timeout)
                held += rows + len(odd_keys)
                if take_in is not None and held >= _DIGEST_CHUNK_ROWS:
                    await take_in(connection)
                    held = 0
    except ColumnarDeclined:
        await connection.execute(f"TRUNCATE {_SOURCE_COPY}")
        return False
    return True


async def _ship_odd_rows(path: Path, connection: asyncpg.Connection, table: TablePlan, keys: list[int | str],
                         busy_timeout: float) -> None:
    """Rows holding a value of an unusual storage class (or text the Arrow way leaves out),
    read again by key (source.key_sql's) and shipped as text_form makes them."""
    rows = await source.rows_by_key(path, table.source, [c.source for c in table.columns], keys, busy_timeout)
    binary = [c.type.kind is Kind.BYTEA for c in table.columns]
    after_key = len(source.key_columns(table.source))
    forms = [crosscheck.text_forms(column, binary=b) for column, b in zip(list(zip(*rows))[after_key:], binary)]
    records = list(zip(*itertools.chain.from_iterable(forms)))
    async with ended_if_lost(connection):
        await connection.copy_records_to_table(_SOURCE_COPY, records=records,
                                               columns=crosscheck.source_columns(len(table.columns)))


async def verify_run(path: Path, settings: Settings, schema: str, stats: RunStats, reject_file: Path,
                     loaded: MemoryObjectReceiveStream[TablePlan],
                     advance: Callable[[int], None] = lambda _tables: None, early: EarlyDigests | None = None) -> None:
    """Verify each table this run loaded as soon as it is (the stream brings it; its rows no
    longer change); a mismatch becomes a run warning."""
    kept = {name: t.preexisting for name, t in stats.tables.items()}
    checks = await check_tables(path, settings, schema, loaded, RejectKeys(reject_file), kept, advance, early)
    bad = [checks[name] for name in stats.tables if name in checks and not checks[name].ok]
    stats.verified = not bad
    stats.warnings += [f"verify: {c.describe()}" for c in bad]
