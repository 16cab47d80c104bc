"""What each table needs on a rerun, decided without a server (copier.resume)."""

from __future__ import annotations

import pytest

from copier.errors import TargetError
from copier.resume import Need, TableState, interrupted, resume_needs
from copier.stats import TableStatus


def recorded(table: str, status: TableStatus, source: str = "s1", plan: str = "p1") -> TableState:
    return TableState("public", table, table, status, True, 10, None, None, "a.db", source, plan, None, None)


@pytest.mark.parametrize(("status", "need"), [
    (TableStatus.DONE, Need.SKIP),
    (TableStatus.LOADED, Need.FINISH_KEYS),
    (TableStatus.LOADING, Need.FRESH),
    (TableStatus.PLANNED, Need.FRESH),
    (TableStatus.FAILED, Need.FRESH),
    (None, Need.FRESH),  # not recorded: a table the earlier run did not plan
])
def test_each_recorded_status_decides_what_the_table_needs(status: TableStatus | None, need: Need) -> None:
    earlier = {"other": recorded("other", TableStatus.DONE)}
    if status is not None:
        earlier["t"] = recorded("t", status)
    needs = resume_needs(["t", "other"], earlier, resume=True, force=False, schema="public",
                         source_fingerprint="s1", plan_fingerprint="p1")
    assert needs == {"t": need, "other": Need.SKIP}


def test_without_resume_every_table_is_fresh() -> None:
    earlier = {"t": recorded("t", TableStatus.DONE, source="changed")}
    assert resume_needs(["t"], earlier, resume=False, force=False, schema="public", source_fingerprint="s1",
                        plan_fingerprint="p1") == {"t": Need.FRESH}


@pytest.mark.parametrize(("source", "plan", "what"), [
    ("s2", "p1", "the SQLite file"),
    ("s1", "p2", "the plan"),
])
def test_a_changed_source_or_plan_refuses_unless_forced(source: str, plan: str, what: str) -> None:
    earlier = {"t": recorded("t", TableStatus.LOADED)}
    with pytest.raises(TargetError, match=f"cannot resume: {what}"):
        resume_needs(["t"], earlier, resume=True, force=False, schema="public", source_fingerprint=source,
                     plan_fingerprint=plan)
    assert resume_needs(["t"], earlier, resume=True, force=True, schema="public", source_fingerprint=source,
                        plan_fingerprint=plan) == {"t": Need.FINISH_KEYS}


def test_nothing_to_resume() -> None:
    with pytest.raises(TargetError, match="nothing to resume: no earlier run recorded for schema 'app'"):
        resume_needs(["t"], {}, resume=True, force=False, schema="app", source_fingerprint="s",
                     plan_fingerprint="p")


def test_an_interrupted_run_is_one_with_a_table_neither_done_nor_failed() -> None:
    assert not interrupted({"a": recorded("a", TableStatus.DONE), "b": recorded("b", TableStatus.FAILED)})
    assert interrupted({"a": recorded("a", TableStatus.DONE), "b": recorded("b", TableStatus.LOADING)})
