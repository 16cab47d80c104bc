"""Consumers: push converted pages into PostgreSQL with binary COPY. A page that PostgreSQL
refuses is bisected to its exact bad rows (pgloader's approach), which are rejected or
abort the table, per --on-error."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from .errors import LoadError
from .faults import hint_for
from .normalise import ConvertedPage, Rejection, Value
from .plan import TablePlan
from .rejects import RejectSink
from .settings import OnError
from .stats import TableStats

# SQLSTATE classes that describe a bad row, not a broken connection or a missing
# privilege: data exceptions (22) and integrity violations (23).
_ROW_ERROR_CLASSES = ("22", "23")


def is_row_error(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in _ROW_ERROR_CLASSES
    # Raised client-side by asyncpg's binary encoders for a value of the wrong type.
    return isinstance(exc, asyncpg.DataError)


def describe_pg_error(exc: BaseException) -> str:
    """One line: the server's message, its detail, and our hint for the SQLSTATE."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    detail = getattr(exc, "detail", None)
    line = f"{message} ({detail})" if detail else message
    hint = hint_for(exc)
    return f"{line} (hint: {hint})" if hint else line


@dataclass
class TableWriter:
    connection: asyncpg.Connection
    schema: str
    plan: TablePlan
    stats: TableStats
    rejects: RejectSink
    on_error: OnError
    # Rows the converters refused while streaming, logged only once the COPY succeeded:
    # if PostgreSQL refuses a row, the table is loaded again and they are found again.
    _pending: list[Rejection] = field(default_factory=list)

    @property
    def _columns(self) -> list[str]:
        return [c.target for c in self.plan.columns]

    async def stream(self, pages: AsyncIterable[ConvertedPage], advance: Callable[[int], None]) -> None:
        """One COPY for the whole table, fed page by page (PostgreSQL ingests while we convert)."""
        written = 0

        async def records() -> AsyncIterator[tuple[Value, ...]]:
            nonlocal written
            async for page in pages:
                for rejection in page.rejections:
                    if self.on_error is OnError.ABORT:
                        self._reject(rejection.key, self.plan.columns[rejection.column].target, rejection.value,
                                     rejection.reason)
                    self._pending.append(rejection)
                written += len(page.records)
                advance(len(page.records) + len(page.rejections))
                for record in page.records:
                    yield record

        await self.connection.copy_records_to_table(
            self.plan.target, records=records(), columns=self._columns, schema_name=self.schema)
        for rejection in self._pending:
            self._reject(rejection.key, self.plan.columns[rejection.column].target, rejection.value,
                         rejection.reason)
        self._pending.clear()
        self.stats.written += written

    def discard_pending(self) -> None:
        self._pending.clear()

    async def write(self, page: ConvertedPage) -> int:
        """Write one page; returns the rows written. Rejections in the page are handled first."""
        for rejection in page.rejections:
            self._reject(rejection.key, self.plan.columns[rejection.column].target, rejection.value,
                         rejection.reason)
        written = await self._copy(page.keys, page.records)
        self.stats.written += written
        return written

    async def _copy(self, keys: Sequence[object], records: Sequence[tuple[Value, ...]]) -> int:
        if not records:
            return 0
        try:
            async with self.connection.transaction():  # a savepoint: a failed COPY undoes only itself
                await self.connection.copy_records_to_table(
                    self.plan.target, records=records, columns=self._columns, schema_name=self.schema)
            return len(records)
        except Exception as exc:
            if not is_row_error(exc):
                raise
            if len(records) == 1:
                self._reject(keys[0], getattr(exc, "column_name", None), records[0], describe_pg_error(exc))
                return 0
        middle = len(records) // 2
        return await self._copy(keys[:middle], records[:middle]) + await self._copy(keys[middle:], records[middle:])

    def _reject(self, key: object, column: str | None, value: Value, reason: str) -> None:
        where = f"table {self.plan.name}: row {key!r}" + (f": column {column}" if column else "")
        if self.on_error is OnError.ABORT:
            raise LoadError(f"{where}: {reason}", hint="--on-error reject loads the other rows",
                            table=self.plan.name, column=column, row=key)
        self.rejects.add(self.plan.name, key, column, value, reason)
        self.stats.rejected += 1

