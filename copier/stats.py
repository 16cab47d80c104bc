"""Per-table counters and the views of them: the summary table and the JSON report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class TableStatus(StrEnum):
    """Where a table is in its life; the same words in the summary, the report and the
    state table (copier status)."""

    PLANNED = "planned"
    LOADING = "loading"
    LOADED = "loaded"  # data committed; keys, indexes and sequences still to add
    KEYED = "keyed"  # and its keys, indexes and sequences added; foreign keys still to add
    DONE = "done"
    FAILED = "failed"  # rolled back
    INTERRUPTED = "interrupted"  # rolled back by SIGINT/SIGTERM
    SKIPPED = "skipped"  # a table it depends on failed, or the run was interrupted first


@dataclass(slots=True)
class TableStats:
    name: str
    target: str
    expected: int = 0  # rows in the source
    preexisting: int = 0  # rows the target table already held and kept (--if-exists append)
    read: int = 0
    written: int = 0
    rejected: int = 0
    rounded: int = 0  # numeric values rounded to their column's declared scale
    columnar: int = 0  # of the rows written, those the columnar lane wrote (the rest: the exact lane)
    lane: str = "exact"  # the lane the plan gave the table (lanes.LanePlan.name)
    retries: int = 0  # attempts that failed for a transient reason and were made again
    chunks: int = 0  # rowid chunks loaded by worker processes (0: loaded in this process)
    resumed: bool = False  # its rows were loaded by the run --resume continues, not by this one
    status: TableStatus = TableStatus.PLANNED
    error: str | None = None
    # The error is a fault of the server or machine (connection lost, disk full…), not of
    # the data: --resume finishes the table once the fault is gone.
    fault: bool = False
    warnings: list[str] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None

    @property
    def seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    @property
    def rows_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def exact(self) -> int:
        """Of the rows written, those the exact lane wrote (converted one by one); 0 for a
        resumed table, whose rows the earlier run counted, not by lane."""
        return 0 if self.resumed else max(0, self.written - self.columnar)

    @property
    def errors(self) -> int:
        return (self.error is not None) + len(self.warnings)

    def as_dict(self) -> dict[str, object]:
        return {
            "table": self.name, "target": self.target, "status": self.status.value,
            "rows_source": self.expected, "rows_read": self.read, "rows_written": self.written,
            "rows_rejected": self.rejected, "values_rounded": self.rounded,
            "lane": self.lane, "rows_columnar": self.columnar, "rows_exact": self.exact,
            "retries": self.retries,
            "worker_chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "rows_per_second": None if self.resumed else round(self.rows_per_second, 1),
            "resumed": self.resumed,
            "error": self.error, "warnings": list(self.warnings),
        }


@dataclass(slots=True)
class RunStats:
    tables: dict[str, TableStats] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # not tied to one table
    notes: list[str] = field(default_factory=list)  # what the plan could not carry over
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    verified: bool | None = None
    interrupted: str | None = None  # the signal that stopped the run
    stopped: str | None = None  # the step a fault of the server or machine ended the run at, and why
    # seconds per phase: load, foreign keys, verify
    phases: dict[str, float] = field(default_factory=dict)
    reject_file: str | None = None  # where this run's rejected rows went

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def totals(self) -> dict[str, object]:
        rows = list(self.tables.values())
        written = sum(t.written for t in rows)
        return {
            "tables": len(rows),
            "tables_failed": sum(t.status is TableStatus.FAILED for t in rows),
            "tables_skipped": sum(t.status is TableStatus.SKIPPED for t in rows),
            "rows_read": sum(t.read for t in rows),
            "rows_written": written,
            "rows_rejected": sum(t.rejected for t in rows),
            "errors": sum(t.errors for t in rows) + len(self.warnings),
            "retries": sum(t.retries for t in rows),
            "values_rounded": sum(t.rounded for t in rows),
            "rows_columnar": sum(t.columnar for t in rows),
            "rows_exact": sum(t.exact for t in rows),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(written / self.seconds, 1) if self.seconds > 0 else 0.0,
        }


def render_summary(stats: RunStats) -> str:
    """A fixed-width table like pgloader's, one line per table and a total line."""
    header = ("table", "rows read", "written", "rejected", "errors", "seconds", "rows/s", "status")
    lines = [header]
    for t in stats.tables.values():
        lines.append((t.name, f"{t.read:,}", f"{t.written:,}", f"{t.rejected:,}", str(t.errors),
                      f"{t.seconds:.3f}", "-" if t.resumed else f"{t.rows_per_second:,.0f}", t.status.value))
    total = stats.totals()
    lines.append(("TOTAL", f"{total['rows_read']:,}", f"{total['rows_written']:,}",
                  f"{total['rows_rejected']:,}", str(total["errors"]), f"{stats.seconds:.3f}",
                  f"{float(total['rows_per_second']):,.0f}", ""))  # type: ignore[arg-type]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1])]
        return "  ".join(cells + [row[-1]]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [fmt(lines[0]), rule, *(fmt(r) for r in lines[1:-1]), rule, fmt(lines[-1])]
    problems = [f"{t.name}: {t.error}" for t in stats.tables.values() if t.error]
    problems += [f"{t.name}: {w}" for t in stats.tables.values() for w in t.warnings]
    problems += stats.warnings
    if stats.stopped:
        problems.append(f"stopped at {stats.stopped}; rerun with --resume to finish")
    elif faulted := [t.name for t in stats.tables.values() if t.fault]:
        problems.append(f"a fault of the server or machine left {', '.join(faulted)} unfinished; "
                        "rerun with --resume to finish")
    out += _verification_lines(stats)
    retried = [t for t in stats.tables.values() if t.retries]
    if retried:
        out += ["", "Retried after a transient failure: " + ", ".join(
            f"{t.name} ({t.retries} time{'s' if t.retries > 1 else ''})" for t in retried)]
    notes = [*stats.notes, *(f"{t.name}: {t.rounded:,} numeric value(s) had more decimal places than their "
                             "column's declared scale and were rounded (as PostgreSQL rounds)"
                             for t in stats.tables.values() if t.rounded)]
    notes += [f"{t.name}: {t.exact:,} of {t.written:,} rows written went through the exact lane (values the "
              "columnar lane does not convert in bulk)" for t in stats.tables.values()
              if t.lane == "columnar" and t.exact and t.status is TableStatus.DONE]
    if notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in notes]
    if problems:
        out += ["", "Problems:"] + [f"  - {p}" for p in problems]
    return "\n".join(out)


def _verification_lines(stats: RunStats) -> list[str]:
    """Says "verified" only of what was: tables that failed or were skipped were not. Every
    table only once every table is done (its keys and constraints in place too); a keyed
    table's rows were verified, what it lacks is named where the run stopped."""
    if not stats.verified:
        return []
    if all(t.status is TableStatus.DONE for t in stats.tables.values()):
        return ["", "Verified: every table's row count and every row's content match the source."]
    unverified = [t.name for t in stats.tables.values() if t.status not in (TableStatus.KEYED, TableStatus.DONE)]
    verified = len(stats.tables) - len(unverified)
    return ["", f"Verified {verified} of {len(stats.tables)} tables: their row counts and every row's content "
                "match the source." + (f" Not verified (not loaded): {', '.join(unverified)}." if unverified else "")]
