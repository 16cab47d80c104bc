"""What a load of some key ranges of one table is given (LoadSpec), and what it counts
(LoadCounts): shared by the lanes (load.py, columnar.py) and their callers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .normalise import ConvertedPage, Options
from .planning import TablePlan
from .settings import OnError
from .source import KeyRange


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


class Counted:
    """A progress callback that remembers the rows it counted, to take them back when the
    load that counted them is undone and done again (a refused COPY loaded again page by
    page, a set-aside table loaded again with its constraints, a retry): the bar then moves
    back and on again, and never counts a row twice (it once said "20,000 of 10,000 rows")."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self._advance = advance
        self.rows = 0

    def __call__(self, rows: int) -> None:
        self.rows += rows
        self._advance(rows)

    def take_back(self) -> None:
        if self.rows:
            self._advance(-self.rows)
            self.rows = 0


__all__ = ["Counted", "LoadCounts", "LoadSpec"]
