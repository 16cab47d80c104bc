"""Content fingerprints for verify: the same canonical bytes from a converted SQLite value and
from the value asyncpg reads back, so that equal data gives equal sums on both sides.

Pure. A table's digest is the sum of its row hashes modulo 2**64: order-independent,
duplicate-aware, and computable while streaming.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from hashlib import blake2b

from .casting import Kind

MASK = 2**64 - 1
BUCKETS = 256


def canonical(value: object, kind: Kind) -> str:
    """Text that is equal for a value and its PostgreSQL round trip."""
    if value is None:
        return "\x00N"
    if kind is Kind.FLOAT4 and isinstance(value, float):
        return repr(struct.unpack("f", struct.pack("f", value))[0])  # what real keeps
    if kind in (Kind.JSON, Kind.JSONB) and isinstance(value, str):
        # jsonb re-orders keys and drops whitespace; compare the parsed document.
        return json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, Decimal):
        return "NaN" if value.is_nan() else str(value.normalize())
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def row_hash(values: Sequence[object], kinds: Sequence[Kind]) -> int:
    text = "\x1e".join(canonical(v, k) for v, k in zip(values, kinds))
    return int.from_bytes(blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def key_of(values: Sequence[object], kinds: Sequence[Kind], key_positions: Sequence[int]) -> tuple[str, ...]:
    return tuple(canonical(values[i], kinds[i]) for i in key_positions)


def bucket_of(key: tuple[str, ...]) -> int:
    return blake2b("\x1e".join(key).encode("utf-8", "surrogatepass"), digest_size=2).digest()[0] % BUCKETS
