"""Which lane loads a table, and each of its columns: decided here, once, when the plan is
made, and carried by the plan (TablePlan.lane). `copier plan`, `migrate`, the loaders and
the early import of pyarrow all read that decision; none of them makes it again.

The columnar lane (columnar.py, arrowlane.py) converts values in bulk, as Arrow batches;
the exact lane (normalise.py) converts them one by one. A table the columnar lane takes
still sends each value it cannot convert identically to the per-value path (its row goes
there): the run report counts the rows of each lane (TableStats.columnar).

Pure: no pyarrow, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from . import rules
from .casting import TargetType
from .catalog import Table


class Lane(StrEnum):
    """--lane: which lanes a run may use."""

    AUTO = "auto"  # the columnar lane where it gives the exact lane's output and pays off, the exact lane for the rest
    EXACT = "exact"  # every value through the per-value converters (slower; for comparison and debugging)
    COLUMNAR = "columnar"  # as auto, but small tables too (for comparison and tests)


# Below this many rows (the catalog's count), --lane auto leaves a table to the exact lane:
# the columnar lane's fixed cost per table (a census, a guarded query, an encoder: ~3 ms)
# is more than the exact lane spends on so few rows (benchmarks/README.md: small tables).
COLUMNAR_MIN_ROWS = 1_000

COLUMNAR = "columnar"
EXACT = "exact"


@dataclass(frozen=True, slots=True)
class LanePlan:
    """The lane of one table, and of each of its columns (in the plan's column order)."""

    columnar: bool
    why: str | None = None  # why the exact lane takes the table (None: the columnar lane does)
    # Per column: None where its values go in bulk, else why they go one by one.
    per_value: tuple[str | None, ...] = ()

    @property
    def name(self) -> str:
        return COLUMNAR if self.columnar else EXACT

    def describe(self) -> str:
        """As `copier plan` shows it: `columnar`, or `exact (why)`."""
        return COLUMNAR if self.columnar else f"{EXACT} ({self.why})"


# The plan's lane before it is decided (build_plan decides it for every table).
UNDECIDED = LanePlan(False, "not planned")


def column_why(target: TargetType) -> str | None:
    """Why the columnar lane cannot produce this column's values as the exact lane does
    (None: it converts them in bulk, as the rule book says)."""
    if rules.RULES[target.kind].columnar and (target.scale or 0) >= 0:
        return None
    return "a type the columnar lane does not produce"


def rangeable(table: Table) -> bool:
    """Whether the table can be read in key ranges (Table.range_key: its rowid, or its
    primary key), as the columnar lane reads tables."""
    return bool(table.range_key)


def choose(table: Table, columns: Sequence[tuple[str, TargetType]], lane: Lane) -> LanePlan:
    """The lane of a table whose columns are (target name, type), under --lane `lane`."""
    own = tuple(column_why(target) for _name, target in columns)
    why = _table_why(table, columns, own, lane)
    if why is None:
        return LanePlan(True, None, own)
    return LanePlan(False, why, tuple(reason or why for reason in own))


def _table_why(table: Table, columns: Sequence[tuple[str, TargetType]], own: Sequence[str | None],
               lane: Lane) -> str | None:
    if lane is Lane.EXACT:
        return "--lane exact"
    if not rangeable(table):
        return ("no key to read ranges by (no rowid SQL can reach, no primary key of NOT NULL columns "
                "that SQLite keeps in its columns' order)")
    if not columns:
        return "no columns"
    for (name, target), reason in zip(columns, own):
        if reason is not None:
            return f"{name} {target.sql}: {reason}"
    if lane is Lane.AUTO and table.row_count < COLUMNAR_MIN_ROWS:
        return f"under {COLUMNAR_MIN_ROWS:,} rows, where the exact lane costs less"
    return None


__all__ = ["COLUMNAR_MIN_ROWS", "Lane", "LanePlan", "UNDECIDED", "choose", "column_why", "rangeable"]
