"""--batch-size, its one meaning: rows read from SQLite, converted and sent to PostgreSQL
at a time, in every lane: a page of the exact lane, an Arrow batch of the columnar lane;
each goes into the table's COPY as one chunk. Fewer where rows are long: a batch stays
near BATCH_BYTES, whatever the setting, so that memory is bounded for wide rows too.

Pure: SQL text and arithmetic, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from .ident import quote_sqlite

# The default: past 8,192 rows per-batch costs (a query step, an encoder call, a COPY
# chunk) have vanished, and memory still holds a batch or two (benchmarks/README.md).
DEFAULT_BATCH_ROWS = 8_192
# A lane holds a batch as read, converted and encoded at once, two or three deep (bounded
# queues): rows of 3 KB at 8,192 a batch took 600 MB. Batches are cut at about this many
# bytes as stored, which keeps a wide table's batches as small in memory as a narrow one's.
BATCH_BYTES = 2 * 2**20
# Rows sampled at the start of a range to learn how wide its rows are.
_SIZE_SAMPLE = 256


def row_size_sql(table: str, columns: Sequence[str], where: str) -> str:
    """SQL: the widest row of a sample at the start of a key range (`where`), in bytes as
    stored (text and blobs; numbers as their text), plus 8 a value (fixed widths, offsets)."""
    width = _sum([f"coalesce(length(CAST({quote_sqlite(c)} AS BLOB)), 0)" for c in columns])
    listed = ", ".join(quote_sqlite(c) for c in columns) or "NULL"
    return (f"SELECT max({width}) + {8 * len(columns)} FROM (SELECT {listed} FROM {quote_sqlite(table)} "
            f"WHERE {where} LIMIT {_SIZE_SAMPLE})")


def _sum(terms: Sequence[str]) -> str:
    """SQL: the sum of the terms, as a balanced tree: SQLite refuses an expression deeper than
    1,000 (a + b + c + ... of a table of 1,000 columns is)."""
    if len(terms) <= 2:
        return " + ".join(terms) or "0"
    half = len(terms) // 2
    return f"({_sum(terms[:half])}) + ({_sum(terms[half:])})"


def batch_rows(batch_size: int, widest: int | None) -> int:
    """Rows per batch: --batch-size, fewer where rows of up to `widest` bytes (None: an
    empty range) would pass BATCH_BYTES."""
    return batch_size if not widest else max(1, min(batch_size, BATCH_BYTES // widest))


__all__ = ["BATCH_BYTES", "DEFAULT_BATCH_ROWS", "batch_rows", "row_size_sql"]
