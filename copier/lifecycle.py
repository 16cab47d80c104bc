"""A table's life, and its one owner. TableLifecycle alone moves a table through

    planned -> loading -> loaded -> keyed -> done
               loading -> failed | skipped | interrupted
    planned -> skipped

in memory (TableStats.status) and in the state table (state.py) alike: a move is made in
memory once it is true in the target (its transaction committed), and recorded then, or
inside that transaction. It wakes whatever waits for the table (its rows in; its rows
committed or its end) and hands it to verify once keyed. A move not in MOVES is a bug:
IllegalTransition. No other module assigns a status or sets those events
(tests/test_sourcecode.py).

The words mean the same in memory and in the state table: loaded, its rows are committed;
keyed, its primary key, indexes and sequences are added too; done, so are its foreign
keys, the user's definitions set aside for the load, its translated checks (the whole
complete phase: Lifecycles.done)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

import anyio
import asyncpg
from anyio.streams.memory import MemoryObjectSendStream

from . import state
from .faults import describe_failure, is_environmental, retrying
from .planning import TablePlan
from .resume import TableState
from .stats import TableStats, TableStatus

S = TableStatus

# Every move a table may make; the rest are refused. Written out whole (tests/test_lifecycle_moves.py).
MOVES: Mapping[TableStatus, frozenset[TableStatus]] = {
    S.PLANNED: frozenset({S.LOADING, S.SKIPPED}),  # skipped: a parent failed, or a signal came first
    S.LOADING: frozenset({S.LOADED, S.FAILED, S.SKIPPED, S.INTERRUPTED}),  # skipped: a parent failed meanwhile
    S.LOADED: frozenset({S.KEYED}),
    S.KEYED: frozenset({S.DONE}),
    S.DONE: frozenset(),
    S.FAILED: frozenset(),
    S.SKIPPED: frozenset(),
    S.INTERRUPTED: frozenset(),
}

# The statuses in which a table's rows are committed in the target.
COMMITTED = frozenset({S.LOADED, S.KEYED, S.DONE})


class IllegalTransition(AssertionError):
    """Raised when code asks a table for a move MOVES does not allow (a bug in copier,
    never a fault of the data or the server)."""


@dataclass(frozen=True, slots=True)
class Recorder:
    """Where a run records its tables' progress: over a connection of its pool, or the
    caller's (to commit with its transaction)."""

    pool: asyncpg.Pool
    schema: str
    state_schema: str
    retries: int
    dsn: str

    async def write(self, connection: asyncpg.Connection | None, table: str, status: TableStatus, *,
                    written: int | None = None, rejected: int | None = None, error: str | None = None) -> None:
        if connection is not None:
            await state.set_status(connection, self.schema, table, status, written=written, rejected=rejected,
                                   error=error, state_schema=self.state_schema)
            return
        async with self.pool.acquire() as own:
            await self.write(own, table, status, written=written, rejected=rejected, error=error)

    async def write_many(self, connection: asyncpg.Connection | None,
                         tables: list[tuple[str, TableStatus, int | None, int | None]]) -> None:
        if connection is not None:
            await state.set_statuses(connection, self.schema, tables, state_schema=self.state_schema)
            return
        async with self.pool.acquire() as own:
            await self.write_many(own, tables)


class TableLifecycle:
    """One table's status, in memory and in the state table, and its wake-up events."""

    def __init__(self, table: TablePlan, stats: TableStats, recorder: Recorder | None = None,
                 verify: MemoryObjectSendStream[TablePlan] | None = None, earlier: TableState | None = None) -> None:
        self.table, self.stats = table, stats
        self._recorder, self._verify = recorder, verify
        # What the state table holds for it, as far as this run knows: the plan's record, or
        # the earlier run's (--resume); None when progress is not recorded.
        self._recorded: TableStatus | None = None
        if recorder is not None:
            self._recorded = earlier.status if earlier is not None else S.PLANNED
        self._pending: TableStatus | None = None  # written inside a transaction not yet known committed
        self._rows_in, self._loaded = anyio.Event(), anyio.Event()

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def status(self) -> TableStatus:
        return self.stats.status

    @property
    def recorded(self) -> TableStatus | None:
        """What the state table holds for it (None: progress is not recorded), as this run wrote it."""
        return self._recorded

    @property
    def committed(self) -> bool:
        """Its rows are committed in the target (it may still lack keys)."""
        return self.status in COMMITTED

    @property
    def has_keys(self) -> bool:
        """Its keys, indexes and sequences are in place (done or about to be)."""
        return self.status in (S.KEYED, S.DONE)

    # --- waiting for it ----------------------------------------------------------------

    async def wait_rows_in(self) -> None:
        """Until its rows are in (maybe not committed yet), or it has ended whatever way."""
        await self._rows_in.wait()

    async def wait_loaded(self) -> None:
        """Until its rows are committed, or it has ended whatever way."""
        await self._loaded.wait()

    def rows_in(self) -> None:
        """Its rows are in, inside the load's transaction (existing.load_then_restore): the
        tables that start early may go (their foreign keys still wait for the commit)."""
        self._require(S.LOADING, "rows in")
        self._rows_in.set()

    # --- the moves -----------------------------------------------------------------------

    def start(self) -> None:
        self._move(S.LOADING)
        self.stats.started = time.monotonic()

    async def record_in(self, connection: asyncpg.Connection, status: TableStatus, *, written: int | None = None,
                        rejected: int | None = None) -> None:
        """The record of a move, written in the caller's transaction so that it commits with
        the rows; the move in memory follows once the transaction has committed
        (loaded/keyed). A rolled-back attempt leaves the record as it was, which --resume
        reads as "load it"."""
        self._require(S.LOADING, f"record {status.value}")
        if status not in (S.LOADING, S.LOADED, S.KEYED):
            raise IllegalTransition(f"table {self.name}: {status.value} is not recorded with the rows")
        if self._recorder is None:
            return
        await self._recorder.write(connection, self.name, status, written=written, rejected=rejected)
        self._pending = status

    def loaded(self) -> None:
        """Its rows are committed (by this run: a record written with them applies now; or by
        the run --resume continues). Tables that reference it may load."""
        self._move(S.LOADED)

    async def keyed(self) -> None:
        """Its primary key, indexes and sequences are added: recorded (unless its load's
        transaction recorded it), and it goes to verify, with the rows the attempt that
        loaded it read (a retry after the file was written to read more than the plan saw)."""
        self._move(S.KEYED)
        if self._verify is not None:
            self._verify.send_nowait(replace(self.table, source=replace(self.table.source,
                                                                         row_count=self.stats.read)))
        if self._recorded is not S.KEYED:
            await self._record_quietly(S.KEYED, written=self.stats.written, rejected=self.stats.rejected)

    async def keys_missing(self, message: str) -> None:
        """Its rows are committed, its keys could not be completed (a fault of the server):
        it stays loaded, in the state table too, for --resume to finish."""
        self._require(S.LOADED, "keys missing")
        self.stats.error = f"its rows are loaded, but its keys, indexes or sequences are not complete: {message}"
        self.stats.fault = True
        if self._recorded is not None and self._recorded is not S.LOADED:
            await self._record_quietly(S.LOADED)

    async def failed(self, message: str, *, fault: bool = False) -> None:
        """Its load failed and was rolled back: nothing of it stands, its rejects included.
        `fault`: the server's or machine's, which --resume gets past (not the data's)."""
        self._move(S.FAILED)
        self.stats.error, self.stats.fault = f"{message} (table rolled back)", fault
        self.stats.written = self.stats.rejected = 0  # its rejects never reach the reject file either
        await self._record_quietly(S.FAILED, error=self.stats.error)

    async def skipped(self, reason: str) -> None:
        """Not loaded, as a table it references failed (nothing of it stands)."""
        self._move(S.SKIPPED)
        self.stats.error = reason
        await self._record_quietly(S.SKIPPED, error=reason)

    def interrupted(self) -> bool:
        """After SIGINT/SIGTERM, in memory: in flight, rolled back; not started, skipped.
        Whether it moved (Lifecycles.record_interrupted records those)."""
        if self.status is S.LOADING:
            self._move(S.INTERRUPTED)
            self.stats.error = "interrupted (rolled back)"
            return True
        if self.status is S.PLANNED:
            self._move(S.SKIPPED)
            self.stats.error = "not started (interrupted)"
            return True
        return False

    def check_settled(self) -> None:
        """Its load's turn is over: it must have moved past loading, or the tables waiting
        for it would wait forever."""
        if self.status in (S.PLANNED, S.LOADING):
            raise IllegalTransition(f"table {self.name}: its load ended while it was {self.status.value}")

    # --- inside ----------------------------------------------------------------------------

    def _require(self, status: TableStatus, what: str) -> None:
        if self.status is not status:
            raise IllegalTransition(f"table {self.name}: {what} while {self.status.value}")

    def _move(self, to: TableStatus) -> None:
        """The one place a table's status changes, and its events are set."""
        if to not in MOVES[self.status]:
            raise IllegalTransition(f"table {self.name}: {self.status.value} -> {to.value} is not a move a table "
                                    "makes")
        self.stats.status = to
        if to in (S.LOADED, S.KEYED) and self._pending is not None:
            self._recorded = self._pending  # the transaction that wrote it has committed
        self._pending = None
        if to is not S.LOADING:  # past loading, whatever way: every wait for it ends
            self._rows_in.set()
            self._loaded.set()

    async def _record_quietly(self, status: TableStatus, *, written: int | None = None, rejected: int | None = None,
                              error: str | None = None) -> None:
        """Recorded outside a table's transaction: retried if the connection was lost; if it
        still cannot be written, a warning (--resume checks the catalog, not the record
        alone, so an old record costs only time)."""
        recorder = self._recorder
        if recorder is None:
            return
        try:
            await retrying(lambda: recorder.write(None, self.name, status, written=written, rejected=rejected,
                                                  error=error),
                           recorder.retries, lambda _attempt, _exc: None, recorder.pool)
        except Exception as exc:
            if not is_environmental(exc):
                raise
            self.stats.warnings.append(f"its progress ({status.value}) was not recorded: "
                                       f"{describe_failure(exc, recorder.dsn)}")
            return
        self._recorded = status


class Lifecycles(Mapping[str, TableLifecycle]):
    """The lifecycles of a run's tables, by source name, and the moves they make together."""

    def __init__(self, lifecycles: Iterable[TableLifecycle], recorder: Recorder | None = None) -> None:
        self._by_name = {lc.name: lc for lc in lifecycles}
        self._recorder = recorder

    def __getitem__(self, name: str) -> TableLifecycle:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    async def record_in(self, connection: asyncpg.Connection, names: Iterable[str], status: TableStatus,
                        counts: Mapping[str, tuple[int, int]]) -> None:
        """record_in for many tables at once, in one statement: (written, rejected) of each."""
        tables = [self[name] for name in names]
        for lc in tables:
            lc._require(S.LOADING, f"record {status.value}")
        if self._recorder is None:
            return
        await self._recorder.write_many(connection, [(lc.name, status, *counts[lc.name]) for lc in tables])
        for lc in tables:
            lc._pending = status

    async def done(self, held: Iterable[str] = ()) -> None:
        """The complete phase has run whole: every keyed table is done, in the state table
        (one statement; a failure raises, and leaves them keyed everywhere) and then in
        memory. `held`: tables left keyed, a foreign key of theirs not added because the
        table it references is not complete."""
        keep = set(held)
        done = [lc for lc in self.values() if lc.status is S.KEYED and lc.name not in keep]
        if self._recorder is not None and done:
            await self._recorder.write_many(None, [(lc.name, S.DONE, None, None) for lc in done])
        for lc in done:
            lc._move(S.DONE)
            if self._recorder is not None:
                lc._recorded = S.DONE

    def interrupt(self) -> None:
        """After SIGINT/SIGTERM, in memory (see TableLifecycle.interrupted)."""
        for lc in self.values():
            lc.interrupted()

    def lagging(self) -> list[TableLifecycle]:
        """The tables whose record lags their status in memory: a signal rolled them back or
        kept them from starting, or cancelled the write of their record."""
        if self._recorder is None:
            return []
        return [lc for lc in self.values() if lc.recorded is not None and lc.recorded is not lc.status
                and lc.status is not S.LOADING]

    async def record_lagging(self, connection: asyncpg.Connection) -> None:
        """The records of the lagging tables written, over `connection` (after a signal, a
        new one: the pool's transactions held these rows)."""
        lagging = self.lagging()
        if self._recorder is None or not lagging:
            return
        await state.set_statuses(connection, self._recorder.schema,
                                 [(lc.name, lc.status, None, None) for lc in lagging],
                                 state_schema=self._recorder.state_schema)
        for lc in lagging:
            lc._recorded = lc.status


__all__ = ["COMMITTED", "MOVES", "IllegalTransition", "Lifecycles", "Recorder", "TableLifecycle"]
