"""Consumers: push converted pages into PostgreSQL with binary COPY. The rows of a page that
PostgreSQL refuses are found set-wise (screening.py), or, when that model misses a rule,
by bisecting the page (pgloader's approach); they are rejected or abort the table, per
--on-error."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from .errors import LoadError
from .faults import describe_pg_error, ended_if_lost, is_row_error
from .normalise import ConvertedPage, Rejection, Value
from .planning import TablePlan
from .rejects import RejectSink
from .screening import Screen
from .settings import OnError


@dataclass
class TableWriter:
    connection: asyncpg.Connection
    schema: str
    plan: TablePlan
    rejects: RejectSink
    on_error: OnError
    max_rejects: int | None = None  # more rejected rows than this fail the table
    rejected: int = 0  # rows this writer sent to `rejects`
    # Rows the converters refused while streaming, logged only once the COPY succeeded:
    # if PostgreSQL refuses a row, the table is loaded again and they are found again.
    _pending: list[Rejection] = field(default_factory=list)
    # Once a page was refused, the pages after it are screened at once (screening.py), without
    # a COPY probe first: a refused table is seldom refused by one page only.
    screening: bool = False
    _screen: Screen | None = None  # the table's rules, read when a page is first refused

    @property
    def _columns(self) -> list[str]:
        return [c.target for c in self.plan.columns]

    async def stream(self, pages: AsyncIterable[ConvertedPage], advance: Callable[[int], None]) -> int:
        """One COPY for the whole table, fed page by page (PostgreSQL ingests while we
        convert). Returns the rows written."""
        written = 0

        async def records() -> AsyncIterator[tuple[Value, ...]]:
            nonlocal written
            async for page in pages:
                for rejection in page.rejections:
                    if self.on_error is OnError.ABORT:
                        self.reject(rejection.key, self.plan.columns[rejection.column].target, rejection.value,
                                    rejection.reason)
                    self._pending.append(rejection)
                written += len(page.records)
                advance(len(page.records) + len(page.rejections))
                for record in page.records:
                    yield record

        async with ended_if_lost(self.connection):
            await self.connection.copy_records_to_table(
                self.plan.target, records=records(), columns=self._columns, schema_name=self.schema)
        for rejection in self._pending:
            self.reject(rejection.key, self.plan.columns[rejection.column].target, rejection.value,
                        rejection.reason)
        self._pending.clear()
        return written

    def discard_pending(self) -> None:
        self._pending.clear()

    async def write(self, page: ConvertedPage) -> int:
        """Write one page; returns the rows written. Rejections in the page are handled first."""
        self.reject_unconverted(page)
        return await self._copy(page.keys, page.records)

    def reject_unconverted(self, page: ConvertedPage) -> None:
        """The page's rows holding a value that did not convert."""
        for rejection in page.rejections:
            self.reject(rejection.key, self.plan.columns[rejection.column].target, rejection.value,
                        rejection.reason)

    async def _copy(self, keys: Sequence[object], records: Sequence[tuple[Value, ...]]) -> int:
        """Write a page, leaving out (rejecting) the rows PostgreSQL refuses: a COPY probe (rolled
        back; the rows are written once it passed); once a page was refused, the set-wise
        screen instead, whose INSERT is a probe released when it passes; bisection of the
        page when even that is refused.

        No savepoint outlives its probe (rolled back or released at once): one left open
        holds a lock until the table commits, and thousands of bad rows would exhaust
        PostgreSQL's lock table ("out of shared memory")."""
        if not records:
            return 0
        if not self.screening:
            if await self._probe(records) is None:
                await self._write(records)
                return len(records)
            self.screening = True
        if self._screen is None:
            self._screen = await Screen.of(self.connection, self.schema, self.plan.target, self._columns)
        screened = await self._screen.page(records)
        if screened is not None:
            for found in screened.refused:
                self.reject(keys[found.index], found.column, self._value(records[found.index], found.column),
                             found.reason)
            return screened.written
        # The model let through a row PostgreSQL refuses: bisection, for this page.
        bad = await self._find_bad(records, 0, None)
        for index, error in sorted(bad.items()):
            self.reject(keys[index], getattr(error, "column_name", None), records[index], describe_pg_error(error))
        good = [i for i in range(len(records)) if i not in bad]
        if not good:
            return 0
        good_records = [records[i] for i in good]
        if await self._probe(good_records) is None:
            await self._write(good_records)
            return len(good_records)
        # Rows fine alone but not together (the same key twice in the page): one at a time.
        written = 0
        for index in good:
            refused = await self._probe([records[index]])
            if refused is None:
                await self._write([records[index]])
                written += 1
            else:
                self.reject(keys[index], getattr(refused, "column_name", None), records[index],
                             describe_pg_error(refused))
        return written

    async def _find_bad(self, records: Sequence[tuple[Value, ...]], offset: int,
                        error: BaseException | None) -> dict[int, BaseException]:
        """Bisection (pgloader's): the refused rows of `records` by index, each with its error.
        `error` is the probe of the whole of `records` when already known."""
        refused = error or await self._probe(records)
        if refused is None:
            return {}
        if len(records) == 1:
            return {offset: refused}
        middle = len(records) // 2
        return {**await self._find_bad(records[:middle], offset, None),
                **await self._find_bad(records[middle:], offset + middle, None)}

    async def _probe(self, records: Sequence[tuple[Value, ...]]) -> BaseException | None:
        """COPY `records` in a savepoint that is rolled back: None if PostgreSQL accepts them,
        else the row error. Any other error (a lost connection) is raised."""
        await self.connection.execute("SAVEPOINT copier_probe")
        try:
            await self._write(records)
        except Exception as exc:
            if not is_row_error(exc):
                raise  # the connection may be gone: the table's transaction is lost anyway
            return exc
        finally:
            # Released too: asyncpg's nested transaction leaves the savepoint open after
            # ROLLBACK TO, and each open one holds a lock until the table commits.
            if self.connection.is_in_transaction() and not self.connection.is_closed():
                await self.connection.execute("ROLLBACK TO SAVEPOINT copier_probe; RELEASE SAVEPOINT copier_probe")
        return None

    async def _write(self, records: Sequence[tuple[Value, ...]]) -> None:
        async with ended_if_lost(self.connection):
            await self.connection.copy_records_to_table(
                self.plan.target, records=records, columns=self._columns, schema_name=self.schema)

    def _value(self, record: tuple[Value, ...], column: str | None) -> Value | tuple[Value, ...]:
        """What the reject file shows: the named column's value, else the row."""
        return record[self._columns.index(column)] if column in self._columns else record

    def reject(self, key: object, column: str | None, value: Value, reason: str) -> None:
        where = f"table {self.plan.name}: row {key!r}" + (f": column {column}" if column else "")
        if self.on_error is OnError.ABORT:
            raise LoadError(f"{where}: {reason}", hint="--on-error reject loads the other rows",
                            table=self.plan.name, column=column, row=key)
        self.rejects.add(self.plan.name, key, column, value, reason)
        self.rejected += 1
        check_max_rejects(self.plan.name, self.rejected, self.max_rejects)


    def reject_reasons(self, rows: Sequence[tuple[object, str | None, str]]) -> None:
        """Rows a set query refused, (key, column, reason) each, no value read: as `reject`,
        in bulk (an append rerun refuses every row of its table)."""
        if not rows:
            return
        if self.on_error is OnError.ABORT:
            key, column, reason = rows[0]
            self.reject(key, column, None, reason)  # raises
        self.rejects.add_reasons(self.plan.name, rows)
        self.rejected += len(rows)
        check_max_rejects(self.plan.name, self.rejected, self.max_rejects)


def check_max_rejects(table: str, rejected: int, limit: int | None) -> None:
    if limit is not None and rejected > limit:
        raise LoadError(f"table {table}: more than {limit:,} rows rejected (--max-rejects)",
                        hint="see the reason in the first rows of the error; raise --max-rejects to load anyway",
                        table=table)

