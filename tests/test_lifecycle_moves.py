"""A table's lifecycle (copier/lifecycle.py): the moves it may make, written out; the ones
it refuses; the events it sets; and, after real runs, its status in memory (the report)
equal to the one recorded in the state table (copier status)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from copier.catalog import Catalog
from copier.lifecycle import MOVES, IllegalTransition, Lifecycles, TableLifecycle
from copier.planning import TablePlan
from copier.prepare import plan_for
from copier.settings import Settings
from copier.source import catalog_of
from copier.stats import TableStats, TableStatus

from .helpers import invoke, migrate, sqlite_db
from .pg import Target

S = TableStatus

# The transition table, written out: every move a table may make.
LEGAL = {
    (S.PLANNED, S.LOADING), (S.PLANNED, S.SKIPPED),
    (S.LOADING, S.LOADED), (S.LOADING, S.FAILED), (S.LOADING, S.SKIPPED), (S.LOADING, S.INTERRUPTED),
    (S.LOADED, S.KEYED),
    (S.KEYED, S.DONE),
}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> TablePlan:
    path = sqlite_db(tmp_path_factory.mktemp("moves") / "t.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    catalog: Catalog = catalog_of(path)
    (planned,) = plan_for(catalog, Settings(dsn="postgresql://x/y"), {}).tables
    return planned


def lifecycle(table: TablePlan, status: TableStatus = S.PLANNED) -> TableLifecycle:
    return TableLifecycle(table, TableStats(table.name, table.target, status=status))


def test_the_moves_are_the_ones_written_out() -> None:
    assert {(a, b) for a, tos in MOVES.items() for b in tos} == LEGAL
    assert set(MOVES) == set(TableStatus)


@pytest.mark.parametrize(("before", "after"), list(itertools.product(TableStatus, TableStatus)))
def test_each_move_is_made_or_refused_as_the_table_says(table: TablePlan, before: TableStatus,
                                                       after: TableStatus) -> None:
    async def move() -> None:
        one = lifecycle(table, before)
        if (before, after) in LEGAL:
            one._move(after)
            assert one.status is after
        else:
            with pytest.raises(IllegalTransition, match=f"table t: {before.value} -> {after.value} is not a move"):
                one._move(after)
            assert one.status is before  # refused: nothing changed

    anyio.run(move)


def test_the_public_moves_refuse_what_a_table_cannot_do(table: TablePlan) -> None:
    async def refused(status: TableStatus, act: Callable[[TableLifecycle], object]) -> None:
        one = lifecycle(table, status)
        with pytest.raises(IllegalTransition):
            result = act(one)
            if hasattr(result, "__await__"):
                await result
        assert one.status is status

    async def main() -> None:
        await refused(S.LOADED, lambda t: t.start())  # loaded -> loading (or planned): never back
        await refused(S.LOADING, lambda t: t.start())  # started twice
        await refused(S.PLANNED, lambda t: t.loaded())  # loaded without loading
        await refused(S.LOADING, lambda t: t.keyed())  # keyed without its rows committed
        await refused(S.LOADED, lambda t: t.failed("x"))  # committed rows are not rolled back
        await refused(S.DONE, lambda t: t.skipped("x"))
        await refused(S.PLANNED, lambda t: t.rows_in())
        await refused(S.KEYED, lambda t: t.keys_missing("x"))
        one = lifecycle(table, S.LOADED)
        await Lifecycles([one]).done()  # done without keys: not done
        assert one.status is S.LOADED

    anyio.run(main)


def test_a_table_wakes_its_waiters_once_past_loading_and_not_before(table: TablePlan) -> None:
    async def main() -> None:
        one = lifecycle(table)
        one.start()
        with pytest.raises(IllegalTransition, match="its load ended while it was loading"):
            one.check_settled()
        with anyio.move_on_after(0.05) as waited:
            await one.wait_loaded()
        assert waited.cancelled_caught  # loading: nobody is woken
        one.rows_in()
        with anyio.fail_after(5):
            await one.wait_rows_in()  # the early ones go
        with anyio.move_on_after(0.05) as waited:
            await one.wait_loaded()
        assert waited.cancelled_caught  # its rows are in, not committed
        one.loaded()
        with anyio.fail_after(5):
            await one.wait_loaded()
        one.check_settled()
        assert one.committed and not one.has_keys
        failed = lifecycle(table)
        failed.start()
        await failed.failed("broken")
        with anyio.fail_after(5):
            await failed.wait_loaded()
            await failed.wait_rows_in()
        assert not failed.committed and failed.stats.error == "broken (table rolled back)"

    anyio.run(main)


def test_done_moves_every_keyed_table_but_those_held_and_nothing_else(table: TablePlan) -> None:
    """Lifecycles.done, once the complete phase has run whole: keyed tables done; one whose
    foreign key waits for a table that is not complete stays keyed; the others stay as they are."""
    async def main() -> None:
        def named(name: str, status: TableStatus) -> TableLifecycle:
            return TableLifecycle(replace(table, source=replace(table.source, name=name)),
                                  TableStats(name, name, status=status))

        every = [named("parent", S.LOADED), named("child", S.KEYED), named("other", S.KEYED),
                 named("gone", S.FAILED)]
        await Lifecycles(every).done(held=["child"])
        assert [t.status for t in every] == [S.LOADED, S.KEYED, S.DONE, S.FAILED]

    anyio.run(main)


def _statuses(target: Target, report: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Each table's status in memory (the run's report) and in the state table."""
    memory = {t["table"]: t["status"] for t in json.loads(report.read_text())["tables"]}
    recorded = {r["source_table"]: r["status"] for r in target.fetch(
        "SELECT source_table, status FROM copier.tables WHERE target_schema = $1", target.schema)}
    return memory, recorded


def test_memory_and_state_table_agree_after_a_run_with_a_failed_and_a_skipped_table(tmp_path: Path,
                                                                                   target: Target) -> None:
    source = sqlite_db(
        tmp_path / "shop.db",
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id), at DATETIME)",
        "CREATE TABLE line (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id))",
        "CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)",
        rows={"customer": [(1, "ann")], "orders": [(1, 1, "2021-01-01"), (2, 1, "not a date")],
              "line": [(1, 1)], "note": [(1, "hello")]})
    report = tmp_path / "r.json"
    assert migrate(target, source, "--on-error", "abort", "--report", report).exit_code == 1
    memory, recorded = _statuses(target, report)
    assert memory == {"customer": "done", "orders": "failed", "line": "skipped", "note": "done"}
    assert recorded == memory
    assert "skipped" in invoke("status", "--dsn", target.dsn, "--schema", target.schema).stdout

    # A normal run (its one bad value rejected): every table done, here and there.
    normal = Target(target.dsn, target.schema + "_ok")
    report = tmp_path / "r2.json"
    assert migrate(normal, source, "--report", report).exit_code == 3
    memory, recorded = _statuses(normal, report)
    assert memory == dict.fromkeys(("customer", "orders", "line", "note"), "done") == recorded
