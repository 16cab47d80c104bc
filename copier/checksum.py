"""Content digests for verify: the same digest from converted SQLite rows and from the rows
asyncpg reads back, computed a page at a time with C-level maps.

Pure. A row's hash is Python's hash of the row tuple, after a per-column normalisation
that makes a value and its PostgreSQL round trip equal and hash apart from its
neighbours: numbers become their repr (hash(-1) == hash(-2) for ints, floats and
Decimals), numerics are normalised first (12 and 12.00), jsonb is re-serialised, real is
rounded to float4, uuids become text. Datetimes hash by instant, whatever their zone;
text and bytes by salted SipHash. A table's digest is the sum of its row hashes, so row
order does not matter and duplicates count. Hashes are salted per process, which is
fine: both sides are digested in the same process.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from datetime import UTC

from .casting import Kind

BUCKETS = 256
UTC = UTC

Row = tuple[object, ...]
Normaliser = Callable[[object], object]

# Before Python 3.12, hash(None) is its address, which differs between processes: NULLs
# are replaced by a text no column can hold (PostgreSQL text cannot contain NUL).
NULL = "\x00NULL"


def _decimal(value: object) -> object:
    return NULL if value is None else str(value.normalize())  # type: ignore[attr-defined]


def _float4(value: object) -> object:
    return NULL if value is None else repr(struct.unpack("f", struct.pack("f", value))[0])


def _json(value: object) -> object:
    return NULL if value is None else json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"))  # type: ignore[arg-type]


def _text(value: object) -> object:
    return NULL if value is None else str(value)


def _number(value: object) -> object:
    return NULL if value is None else repr(value)


_NORMALISERS: dict[Kind, Normaliser] = {
    Kind.INT2: _number,
    Kind.INT4: _number,
    Kind.INT8: _number,
    Kind.FLOAT8: _number,
    Kind.NUMERIC: _decimal,
    Kind.FLOAT4: _float4,
    Kind.JSON: _json,
    Kind.JSONB: _json,
    Kind.UUID: _text,
}


def normalisers(kinds: Sequence[Kind]) -> list[Normaliser | None]:
    """Per column: what makes both sides' values equal; None where they already are."""
    return [_NORMALISERS.get(kind) for kind in kinds]


def normalise(rows: Sequence[Sequence[object]], per_column: Sequence[Normaliser | None]) -> list[Row]:
    """Rows as plain tuples of normalised values (asyncpg Records included)."""
    if not rows:
        return []
    columns: list[Sequence[object]] = list(zip(*rows))
    for index, normaliser in enumerate(per_column):
        if normaliser is not None:
            columns[index] = list(map(normaliser, columns[index]))
        elif None in columns[index]:
            columns[index] = [NULL if v is None else v for v in columns[index]]
    return list(zip(*columns))


def total(rows: Sequence[Row]) -> int:
    """The sum of the rows' hashes (C-level)."""
    return sum(map(hash, rows))


def row_hash(row: Row) -> int:
    return hash(row)


def key_text(row: Row, key_positions: Sequence[int]) -> str:
    values = [row[i] for i in key_positions]
    return ", ".join(str(v) for v in values) if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


def bucket_of(key: str) -> int:
    return hash(key) % BUCKETS
