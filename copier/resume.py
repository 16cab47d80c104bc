"""What each table of a run needs, given what an earlier run recorded (--resume). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .errors import TargetError
from .stats import TableStatus


@dataclass(frozen=True, slots=True)
class TableState:
    """One row of the state table (copier.tables), as a run recorded it."""

    target_schema: str
    source_table: str
    target_table: str
    status: TableStatus
    created: bool
    rows_source: int | None
    rows_written: int | None
    rows_rejected: int | None
    source_path: str | None
    source_fingerprint: str
    plan_fingerprint: str
    error: str | None
    updated_at: object
    reject_file: str | None = None  # the reject file of the run that recorded this


class Need(StrEnum):
    FRESH = "fresh"  # load from a clean start
    FINISH_KEYS = "finish keys"  # the data is committed: add what is missing of keys, indexes, sequences
    SKIP = "skip"  # done by the earlier run


def resume_needs(tables: Iterable[str], earlier: Mapping[str, TableState], *, resume: bool, force: bool,
                 schema: str, source_fingerprint: str, plan_fingerprint: str) -> dict[str, Need]:
    """Per table of the plan. Without --resume every table is fresh; with it, a run must
    have been recorded, and the source and the plan must be unchanged (unless --force)."""
    names = list(tables)
    if not resume:
        return dict.fromkeys(names, Need.FRESH)
    if not earlier:
        raise TargetError(f"nothing to resume: no earlier run recorded for schema {schema!r}",
                          hint="run without --resume")
    changed_source = any(s.source_fingerprint != source_fingerprint for s in earlier.values())
    changed_plan = any(s.plan_fingerprint != plan_fingerprint for s in earlier.values())
    if (changed_source or changed_plan) and not force:
        what = "the SQLite file" if changed_source else "the plan (tables, types or value flags)"
        raise TargetError(f"cannot resume: {what} changed since the interrupted run",
                          hint="start over with --if-exists truncate, or add --force to resume anyway")
    return {name: need_of(earlier.get(name)) for name in names}


def need_of(recorded: TableState | None) -> Need:
    """What a table needs, from what an earlier run recorded of it (None: nothing)."""
    status = recorded.status if recorded is not None else None
    if status is TableStatus.DONE:
        return Need.SKIP
    return Need.FINISH_KEYS if status in (TableStatus.LOADED, TableStatus.KEYED) else Need.FRESH


def interrupted(earlier: Mapping[str, TableState]) -> bool:
    """An earlier run stopped before it finished: some table is neither done nor failed."""
    return any(s.status not in (TableStatus.DONE, TableStatus.FAILED) for s in earlier.values())
