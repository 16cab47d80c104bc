"""verify's digests: equal for a value and its PostgreSQL round trip, different for
neighbouring values, and the same in every worker process of a run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from copier.casting import Kind
from copier.checksum import normalise, normalisers, total

KINDS = [Kind.INT8, Kind.NUMERIC, Kind.TIMESTAMPTZ, Kind.TEXT, Kind.BYTEA, Kind.JSONB, Kind.UUID, Kind.FLOAT4]


def digest(*rows: tuple[object, ...]) -> int:
    return total(normalise(list(rows), normalisers(KINDS)))


def test_round_trips_digest_equal() -> None:
    paris = timezone(timedelta(hours=2))
    source = (12, Decimal("12"), datetime(2021, 1, 1, 12, tzinfo=paris), "a", b"\x00", '{"b": 1, "a": [1]}',
              "12345678-1234-5678-1234-567812345678", 0.1)
    back = (12, Decimal("12.00"), datetime(2021, 1, 1, 10, tzinfo=UTC), "a", b"\x00",
            '{"a": [1], "b": 1}', uuid.UUID("12345678-1234-5678-1234-567812345678"), 0.10000000149011612)
    assert digest(source) == digest(back)


def test_neighbours_differ() -> None:
    base = (None,) * len(KINDS)
    # hash(-1) == hash(-2) in CPython, for ints and Decimals alike: values are hashed as text.
    assert digest((-1, *base[1:])) != digest((-2, *base[1:]))
    assert digest((None, Decimal(-1), *base[2:])) != digest((None, Decimal(-2), *base[2:]))
    assert digest((None, None, None, "", *base[4:])) != digest(base)  # NULL is not ''
    assert digest((1, *base[1:]), (2, *base[1:])) == digest((2, *base[1:]), (1, *base[1:]))  # order-free
    assert digest((1, *base[1:])) != digest((1, *base[1:]), (1, *base[1:]))  # duplicates count


def test_same_digest_in_every_process_with_the_runs_seed() -> None:
    code = ("from copier.checksum import normalise, normalisers, total; from copier.casting import Kind;"
            "print(total(normalise([(None, 'x', b'y'), (1, None, None)], normalisers([Kind.INT8, Kind.TEXT, "
            "Kind.BYTEA]))))")
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    outputs = {subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                              check=True).stdout for _ in range(3)}
    assert len(outputs) == 1
