"""Prove the load: compare each table's row count in PostgreSQL with the SQLite source,
accounting for rows listed in the reject file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import ddl, target
from .plan import MigrationPlan
from .rejects import read_rejects
from .settings import Settings
from .stats import RunStats, Status


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    rejected: int
    preexisting: int = 0

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows - self.preexisting + self.rejected

    def describe(self) -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        kept = f" - kept {self.preexisting:,}" if self.preexisting else ""
        return (f"{self.table}: source {self.source_rows:,} = target {self.target_rows:,}{kept}"
                f" + rejected {self.rejected:,}: {verdict}")


async def check_counts(
    settings: Settings, plan: MigrationPlan, reject_file: Path | None, preexisting: dict[str, int] | None = None
) -> list[TableCheck]:
    rejected = Counter(str(r["table"]) for r in read_rejects(reject_file)) if reject_file else Counter()
    connection = await target.connect(settings.dsn)
    try:
        checks = []
        for table in plan.tables:
            rows = await connection.fetchval(ddl.count_rows(plan.schema, table.target))
            checks.append(TableCheck(table.name, table.source.row_count, rows, rejected[table.name],
                                     (preexisting or {}).get(table.name, 0)))
        return checks
    finally:
        await connection.close()


async def verify_run(path: Path, settings: Settings, plan: MigrationPlan, stats: RunStats,
                     reject_file: Path) -> None:
    """Check the tables this run loaded; a mismatch becomes a run warning."""
    loaded = [t for t in plan.tables if stats.tables[t.name].status is Status.DONE]
    subset = MigrationPlan(plan.schema, tuple(loaded), (), (), ())
    kept = {name: t.preexisting for name, t in stats.tables.items()}
    checks = await check_counts(settings, subset, reject_file, kept)
    bad = [c for c in checks if not c.ok]
    stats.verified = not bad
    stats.warnings += [f"verify: {c.describe()}" for c in bad]
