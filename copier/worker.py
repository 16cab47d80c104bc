"""Key ranges of one big table load in parallel, each over its own PostgreSQL connection,
into the table's staging table. The parent renames the staging table into place once every
range is in, so the table appears whole or not at all.

Ranges the exact lane converts load in worker processes: its per-value work is Python's,
and one Python process is bound to one core. Ranges the columnar lane takes load in this
process, concurrently: its work is C and Rust that release the GIL, so threads use every
core, without a process (and its memory) per core."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import asyncpg

from . import source, target
from .errors import CopierError, LoadError
from .faults import describe_pg_error, is_transient, root_cause, sqlstate_of
from .load import load_rows
from .loadspec import LoadCounts, LoadSpec
from .rejects import RejectList


@dataclass(frozen=True, slots=True)
class ChunkResult:
    counts: LoadCounts
    rejects: list[str]  # reject-file lines (RejectList.lines)


def load_chunk(spec: LoadSpec, dsn: str) -> ChunkResult:
    """Entry point in the worker process (anyio.to_process). A failure travels back to the
    parent, which retries the whole table (the one retry loop: tableload.load_table)."""
    tune_gc()
    try:
        return anyio.run(_load_chunk_alone, spec, dsn)
    except Exception as exc:
        raise _picklable(exc) from None


def _picklable(exc: Exception) -> Exception:
    """Errors travel back to the parent pickled; driver errors become CopierErrors that
    keep their message, SQLSTATE-based hint and transience."""
    if isinstance(exc, CopierError):
        return exc
    cause = root_cause(exc)
    message = (describe_pg_error(cause) if isinstance(cause, asyncpg.PostgresError)
               else f"{type(cause).__name__}: {cause}")
    return LoadError(message, sqlstate=sqlstate_of(cause) or None, transient=is_transient(exc))


async def load_chunk_here(spec: LoadSpec, dsn: str, advance: Callable[[int], None],
                          rejects: RejectList) -> ChunkResult:
    """A range loaded in this process (the columnar lane's way), its rejects into `rejects`
    (the table's, which stay on disk past a few megabytes: ChunkResult.rejects is empty)."""
    return await _load_chunk(spec, dsn, advance, rejects)


async def _load_chunk_alone(spec: LoadSpec, dsn: str) -> ChunkResult:
    """A chunk in a worker process: both SQLite libraries read the file here too, so none
    of their connections closes before the chunk's end (source._Kept)."""
    try:
        async with source.keep_connections():
            return await _load_chunk(spec, dsn)
    finally:
        columnar = sys.modules.get(f"{__package__}.columnar")
        if columnar is not None:
            columnar.release_idle()


async def _load_chunk(spec: LoadSpec, dsn: str, advance: Callable[[int], None] = lambda _rows: None,
                      rejects: RejectList | None = None) -> ChunkResult:
    async with target.connected(dsn) as connection:
        # Durable all the same: the parent's rename commits synchronously, which flushes
        # the WAL of every chunk committed before it.
        await connection.execute("SET synchronous_commit = off")
        own = rejects is None
        found = RejectList() if rejects is None else rejects
        try:
            async with connection.transaction():
                counts = await load_rows(spec, connection, found, advance)
            return ChunkResult(counts, list(found.lines()) if own else [])
        finally:
            if own:
                found.close()


def tune_gc() -> None:
    """Rows are tuples of atoms, never cycles: collecting every 700 allocations only costs."""
    gc.set_threshold(200_000, 50, 100)


__all__ = ["ChunkResult", "load_chunk", "load_chunk_here", "tune_gc"]
