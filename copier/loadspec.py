"""What a load of some key ranges of one table is given (LoadSpec), and what it counts
(LoadCounts): shared by the lanes (load.py, columnar.py) and their callers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .normalise import ConvertedPage, Options
from .planning import TablePlan
from .reader import KeyRange
from .settings import OnError


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """Everything a load of some key ranges of one table needs, picklable for workers.
    The lane is the plan's (table.lane)."""

    path: Path
    schema: str
    table: TablePlan  # table.target: where the rows go (the table, or its staging table)
    ranges: tuple[KeyRange | None, ...]
    options: Options
    batch_size: int
    queue_depth: int
    on_error: OnError
    busy_timeout: float
    max_rejects: int | None = None


@dataclass(slots=True)
class LoadCounts:
    """What one load did: counted here, from the pages and the writer, and handed to the
    table's owner (tableload), which alone updates the table's stats."""

    read: int = 0
    written: int = 0
    rejected: int = 0
    rounded: int = 0
    columnar: int = 0  # of `written`, the rows the columnar lane wrote (the rest: the exact lane)

    def tally(self, page: ConvertedPage) -> ConvertedPage:
        """Count a page the readers made, on its way to the writer."""
        self.read += len(page.records) + len(page.rejections)
        self.rounded += page.rounded
        return page

    def add(self, other: LoadCounts) -> None:
        self.read += other.read
        self.written += other.written
        self.rejected += other.rejected
        self.rounded += other.rounded
        self.columnar += other.columnar


__all__ = ["LoadCounts", "LoadSpec"]
