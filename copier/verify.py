"""Prove the load: per table, row counts and an order-independent content checksum computed
the same way from the SQLite rows (converted as the load converts them) and from the rows
read back from PostgreSQL. Streaming, bounded memory. Rows in the reject file are accounted
for. On a difference, a second pass over the differing key buckets names the rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

import anyio
import anyio.to_process
import asyncpg

from . import ddl, target
from .checksum import BUCKETS, bucket_of, key_text, normalise, normalisers, row_hash
from .checksum import total as checksum_total
from .ident import qualified, quote_ident
from .normalise import ConvertedPage, Options, converter_for
from .plan import MigrationPlan, TablePlan
from .reader import read_range, table_ranges
from .rejects import read_rejects
from .settings import Settings
from .stats import RunStats, Status, TableStats
from .worker import share_hash_seed

SHOWN_KEYS = 5
DRILL_BUCKETS = 4


class Pass(Enum):
    TOTAL = "total"  # count and sum of row hashes
    BUCKETS = "buckets"  # the same, per bucket of primary keys
    COLLECT = "collect"  # row hashes by key, for some buckets


@dataclass
class Digest:
    mode: Pass
    key_positions: Sequence[int]
    collect: frozenset[int] = frozenset()
    rows: int = 0
    total: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    collected: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, rows: Sequence[tuple[object, ...]]) -> None:
        self.rows += len(rows)
        if self.mode is Pass.TOTAL:
            self.total += checksum_total(rows)
            return
        for row in rows:  # only after a difference was found: row by row is fine
            digest = row_hash(row)
            key = key_text(row, self.key_positions)
            bucket = bucket_of(key)
            self.buckets[bucket] += digest
            if bucket in self.collect:
                self.collected[key].append(digest)


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    rejected: int
    preexisting: int = 0
    checksum_equal: bool | None = None  # None: not computed (rows kept by --if-exists append)
    differing_keys: tuple[str, ...] = ()
    keyless: bool = False

    @property
    def ok(self) -> bool:
        counts = self.source_rows == self.target_rows - self.preexisting + self.rejected
        return counts and self.checksum_equal is not False

    def describe(self) -> str:
        kept = f" - {self.preexisting:,} kept" if self.preexisting else ""
        line = (f"{self.table}: source {self.source_rows:,} rows, target {self.target_rows:,}{kept}, "
                f"rejected {self.rejected:,}")
        if self.checksum_equal is None:
            line += ", checksum not compared"
        elif self.checksum_equal:
            line += ", checksum equal"
        else:
            line += ", CONTENT DIFFERS"
            if self.differing_keys:
                line += f" at key(s) {', '.join(self.differing_keys)}"
            elif self.keyless:
                line += " (no primary key to name the rows)"
        return line + (": ok" if self.ok else ": MISMATCH")


def _natural(key: str) -> tuple[tuple[int, int, str], ...]:
    """Integers in numeric order, before text; composite keys part by part."""
    parts = key.strip("()").split(", ")
    return tuple((0, int(part), "") if part.lstrip("-").isdigit() else (1, 0, part) for part in parts)


def _reject_keys(reject_file: Path | None) -> dict[str, set[object]]:
    keys: dict[str, set[object]] = defaultdict(set)
    for record in read_rejects(reject_file) if reject_file else []:
        key = record["key"]
        keys[str(record["table"])].add(tuple(key) if isinstance(key, list) else key)
    return keys


async def verify_tables(
    path: Path, settings: Settings, plan: MigrationPlan, reject_file: Path | None,
    preexisting: dict[str, int] | None = None,
) -> list[TableCheck]:
    share_hash_seed()
    rejected = _reject_keys(reject_file)
    options = settings.value_options()
    connection = await target.connect(settings.dsn)
    try:
        return [await _check_table(path, connection, settings.dsn, plan.schema, table, options, rejected[table.name],
                                   (preexisting or {}).get(table.name, 0), settings.batch_size)
                for table in plan.tables]
    finally:
        await connection.close()


async def _check_table(
    path: Path, connection: asyncpg.Connection, dsn: str, schema: str, table: TablePlan, options: Options,
    rejected: set[object], kept: int, batch_size: int,
) -> TableCheck:
    target_rows = await connection.fetchval(ddl.count_rows(schema, table.target))
    base = TableCheck(table.name, table.source.row_count, target_rows, len(rejected), kept)
    if kept:
        return base  # the target also holds rows that never came from this source
    key_positions = [i for i, c in enumerate(table.columns) if c.source in table.source.primary_key]

    async def both(mode: Pass, collect: frozenset[int] = frozenset()) -> tuple[Digest, Digest]:
        source, found = Digest(mode, key_positions, collect), Digest(mode, key_positions, collect)
        await _digests(path, connection, schema, table, options, rejected, batch_size, source, found)
        return source, found

    source, found = await _totals_in_workers(path, dsn, schema, table, options, rejected, batch_size)
    if source.total == found.total and source.rows == found.rows:
        return replace(base, checksum_equal=True)
    differing: list[str] = []
    if key_positions:
        source, found = await both(Pass.BUCKETS)
        buckets = frozenset([b for b in range(BUCKETS) if source.buckets[b] != found.buckets[b]][:DRILL_BUCKETS])
        source, found = await both(Pass.COLLECT, buckets)
        keys = set(source.collected) | set(found.collected)
        differing = [k for k in sorted(keys, key=_natural)
                     if sorted(source.collected.get(k, [])) != sorted(found.collected.get(k, []))][:SHOWN_KEYS]
    return replace(base, checksum_equal=False, differing_keys=tuple(differing), keyless=not key_positions)


async def _digests(
    path: Path, connection: asyncpg.Connection, schema: str, table: TablePlan, options: Options,
    rejected: set[object], batch_size: int, source: Digest, found: Digest,
) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(_read_source, path, table, options, rejected, batch_size, source)
        group.start_soon(_read_target, connection, schema, table, batch_size, found)


async def _read_source(path: Path, table: TablePlan, options: Options, rejected: set[object], batch_size: int,
                       digest: Digest) -> None:
    per_column = normalisers([c.type.kind for c in table.columns])
    converters = [converter_for(c.type, options) for c in table.columns]
    send, receive = anyio.create_memory_object_stream[ConvertedPage](2)
    ranges = await table_ranges(path, table.source, 1, batch_size)
    async with anyio.create_task_group() as group, send, receive:
        for key_range in ranges:
            group.start_soon(read_range, path, table, key_range, converters, batch_size, send.clone(),
                             TableStats(table.name, table.target))
        send.close()
        async for page in receive:
            records = page.records
            if rejected:
                records = [r for k, r in zip(page.keys, records) if k not in rejected]
            digest.add(normalise(records, per_column))


async def _read_target(connection: asyncpg.Connection, schema: str, table: TablePlan, batch_size: int,
                       digest: Digest) -> None:
    per_column = normalisers([c.type.kind for c in table.columns])
    columns = ", ".join(quote_ident(c.target) for c in table.columns)
    sql = f"SELECT {columns} FROM {qualified(schema, table.target)}"
    async with connection.transaction(readonly=True):
        cursor = await connection.cursor(sql)
        while rows := await cursor.fetch(batch_size):
            digest.add(normalise(rows, per_column))


async def _totals_in_workers(
    path: Path, dsn: str, schema: str, table: TablePlan, options: Options, rejected: set[object], batch_size: int,
) -> tuple[Digest, Digest]:
    """The source and the target digest at once, each in a worker process (both Python-bound).
    Their str hashes agree because every worker shares this run's PYTHONHASHSEED."""
    results: dict[str, Digest] = {}

    async def run(side: str, job: Callable[..., Digest], *args: object) -> None:
        results[side] = await anyio.to_process.run_sync(job, *args, cancellable=True)

    async with anyio.create_task_group() as group:
        group.start_soon(run, "source", source_total_job, path, table, options, rejected, batch_size)
        group.start_soon(run, "target", target_total_job, dsn, schema, table, batch_size)
    return results["source"], results["target"]


def source_total_job(path: Path, table: TablePlan, options: Options, rejected: set[object],
                     batch_size: int) -> Digest:
    """In a worker process: the source side's row count and hash sum."""
    digest = Digest(Pass.TOTAL, ())
    anyio.run(_read_source, path, table, options, rejected, batch_size, digest)
    return digest


def target_total_job(dsn: str, schema: str, table: TablePlan, batch_size: int) -> Digest:
    """In a worker process: the target side's row count and hash sum."""
    digest = Digest(Pass.TOTAL, ())

    async def go() -> None:
        connection = await target.connect(dsn)
        try:
            await _read_target(connection, schema, table, batch_size, digest)
        finally:
            await connection.close()

    anyio.run(go)
    return digest


async def verify_run(path: Path, settings: Settings, plan: MigrationPlan, stats: RunStats,
                     reject_file: Path) -> None:
    """Verify the tables this run loaded; a mismatch becomes a run warning."""
    loaded = tuple(t for t in plan.tables if stats.tables[t.name].status is Status.DONE)
    subset = MigrationPlan(plan.schema, loaded, (), (), ())
    kept = {name: t.preexisting for name, t in stats.tables.items()}
    checks = await verify_tables(path, settings, subset, reject_file, kept)
    bad = [c for c in checks if not c.ok]
    stats.verified = not bad
    stats.warnings += [f"verify: {c.describe()}" for c in bad]
