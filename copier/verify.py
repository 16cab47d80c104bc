"""Prove the load: per table, row counts and an order-independent content checksum computed
the same way from the SQLite rows (converted as the load converts them) and from the rows
read back from PostgreSQL. Streaming, bounded memory. Rows in the reject file are accounted
for. On a difference, a second pass over the differing key buckets names the rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import asyncpg

from . import ddl, target
from .casting import Kind
from .checksum import BUCKETS, MASK, bucket_of, key_of, row_hash
from .ident import qualified, quote_ident
from .normalise import ConvertedPage, Options, converter_for
from .plan import MigrationPlan, TablePlan
from .reader import read_range, table_ranges
from .rejects import read_rejects
from .settings import Settings
from .stats import RunStats, Status, TableStats

SHOWN_KEYS = 5
DRILL_BUCKETS = 4


@dataclass
class Digest:
    rows: int = 0
    total: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    collected: dict[tuple[str, ...], list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, values: Sequence[object], kinds: Sequence[Kind], key_positions: Sequence[int],
            collect: frozenset[int]) -> None:
        digest = row_hash(values, kinds)
        self.rows += 1
        self.total = (self.total + digest) & MASK
        if key_positions:
            key = key_of(values, kinds, key_positions)
            bucket = bucket_of(key)
            self.buckets[bucket] = (self.buckets[bucket] + digest) & MASK
            if bucket in collect:
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


def _natural(key: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    """Integers in numeric order, before text."""
    return tuple((0, int(part), "") if part.lstrip("-").isdigit() else (1, 0, part) for part in key)


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
    rejected = _reject_keys(reject_file)
    options = settings.value_options()
    connection = await target.connect(settings.dsn)
    try:
        return [await _check_table(path, connection, plan.schema, table, options, rejected[table.name],
                                   (preexisting or {}).get(table.name, 0), settings.batch_size)
                for table in plan.tables]
    finally:
        await connection.close()


async def _check_table(
    path: Path, connection: asyncpg.Connection, schema: str, table: TablePlan, options: Options,
    rejected: set[object], kept: int, batch_size: int,
) -> TableCheck:
    target_rows = await connection.fetchval(ddl.count_rows(schema, table.target))
    base = TableCheck(table.name, table.source.row_count, target_rows, len(rejected), kept)
    if kept:
        return base  # the target also holds rows that never came from this source
    key_positions = [i for i, c in enumerate(table.columns) if c.source in table.source.primary_key]
    source, found = await _digests(path, connection, schema, table, options, rejected, batch_size, frozenset())
    if source.total == found.total and source.rows == found.rows:
        return replace(base, checksum_equal=True)
    differing: list[str] = []
    if key_positions:
        buckets = frozenset([b for b in range(BUCKETS) if source.buckets[b] != found.buckets[b]][:DRILL_BUCKETS])
        source, found = await _digests(path, connection, schema, table, options, rejected, batch_size, buckets)
        keys = set(source.collected) | set(found.collected)
        differing = [f"({', '.join(k)})" if len(k) > 1 else k[0] for k in sorted(keys, key=_natural)
                     if sorted(source.collected.get(k, [])) != sorted(found.collected.get(k, []))][:SHOWN_KEYS]
    return replace(base, checksum_equal=False, differing_keys=tuple(differing), keyless=not key_positions)


async def _digests(
    path: Path, connection: asyncpg.Connection, schema: str, table: TablePlan, options: Options,
    rejected: set[object], batch_size: int, collect: frozenset[int],
) -> tuple[Digest, Digest]:
    kinds = [c.type.kind for c in table.columns]
    key_positions = [i for i, c in enumerate(table.columns) if c.source in table.source.primary_key]
    source = Digest()
    found = Digest()

    async def read_source() -> None:
        converters = [converter_for(c.type, options) for c in table.columns]
        send, receive = anyio.create_memory_object_stream[ConvertedPage](2)
        ranges = await table_ranges(path, table.source, 1, batch_size)
        async with anyio.create_task_group() as group, send, receive:
            for key_range in ranges:
                group.start_soon(read_range, path, table, key_range, converters, batch_size, send.clone(),
                                 TableStats(table.name, table.target))
            send.close()
            async for page in receive:
                for key, record in zip(page.keys, page.records):
                    if key not in rejected:
                        source.add(record, kinds, key_positions, collect)

    async def read_target() -> None:
        columns = ", ".join(quote_ident(c.target) for c in table.columns)
        sql = f"SELECT {columns} FROM {qualified(schema, table.target)}"
        async with connection.transaction(readonly=True):
            async for record in connection.cursor(sql, prefetch=batch_size):
                found.add(tuple(record), kinds, key_positions, collect)

    async with anyio.create_task_group() as group:
        group.start_soon(read_source)
        group.start_soon(read_target)
    return source, found


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
