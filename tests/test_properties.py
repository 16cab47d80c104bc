"""Property: whatever SQLite holds in a column of any declared type, after a migration the
PostgreSQL value equals the expected normalised value, or the row is in the reject file
with a reason naming that column."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import struct
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copier.casting import Kind, TargetType, map_declared_type
from copier.errors import ValueRejected
from copier.normalise import Options, converter_for
from copier.pipeline import make_plan
from copier.settings import Settings

from .helpers import migrate, read_jsonl
from .pg import Target

DECLARED = ["INTEGER", "REAL", "NUMERIC", "NUMERIC(10,2)", "TEXT", "BLOB", "BOOLEAN", "DATETIME", "DATE",
            "JSON", "UUID", "VARCHAR(5)", ""]
COLUMNS = [f"c{i}" for i in range(len(DECLARED))]

interesting_text = st.sampled_from([
    "12", " 7 ", "1e3", "3.0", "3.5", "abc", "", "NaN", "-Infinity", "true", "No", "t", "2021-01-01",
    "2021-01-01 10:20", "2021-01-01T10:20:30.123456Z", "2021-06-01 10:20:30+05:30", '{"a": [1, 2.5]}', "[]",
    "12345678-1234-5678-1234-567812345678", "x\x00y", "😀 𝄞",
])
sqlite_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=False),  # SQLite stores a NaN REAL as NULL
    st.sampled_from([2459215.5, 1_700_000_000.5, 0.1, 1.005]),
    st.text(max_size=20),
    interesting_text,
    st.binary(max_size=20),
)


def expected(declared: str | TargetType, value: object) -> tuple[object, str | None]:
    """(converted value, None) or (None, rejection reason)."""
    target = map_declared_type(declared) if isinstance(declared, str) else declared
    try:
        return converter_for(target, Options())(value), None
    except ValueRejected as exc:
        return None, exc.reason


def comparable(values: tuple[object, ...], types: list[TargetType]) -> tuple[object, ...]:
    """Values as equal as PostgreSQL holds them: jsonb parsed, numerics without trailing
    zeros, real rounded to 4 bytes, NaNs and uuids as text."""
    out: list[object] = []
    for value, target in zip(values, types):
        if value is None:
            out.append(None)
        elif target.kind in (Kind.JSON, Kind.JSONB):
            # Numbers as decimals: jsonb prints 9.223372036854776e+18 as 9223372036854776000,
            # the same JSON number, which a float and an int would tell apart.
            out.append(json.loads(value, parse_float=Decimal, parse_int=Decimal))  # type: ignore[arg-type]
        elif target.kind is Kind.NUMERIC:
            out.append(str(value.normalize()))  # type: ignore[attr-defined]
        elif target.kind is Kind.FLOAT4:
            out.append(repr(struct.unpack("f", struct.pack("f", value))[0]))
        elif isinstance(value, float) or target.kind is Kind.UUID:
            out.append(repr(value) if isinstance(value, float) else str(value))
        else:
            out.append(value)
    return tuple(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(*[sqlite_values] * len(DECLARED)), min_size=1, max_size=25))
def test_every_value_arrives_exactly_or_is_rejected(rows: list[tuple[object, ...]], tmp_path: Path,
                                                    database: str) -> None:
    run = tmp_path / uuid.uuid4().hex[:8]
    run.mkdir()
    target = Target(database, f"p_{run.name}")
    db = run / "p.db"
    connection = sqlite3.connect(db)
    definitions = ", ".join(f"{c} {d}" for c, d in zip(COLUMNS, DECLARED))
    connection.execute(f"CREATE TABLE p (id INTEGER PRIMARY KEY, {definitions})")
    connection.executemany(f"INSERT INTO p VALUES (?, {', '.join('?' * len(COLUMNS))})",
                           [(i, *row) for i, row in enumerate(rows, 1)])
    connection.commit()
    # What SQLite actually stored (its affinity may have converted the value on insert).
    stored = {r[0]: r[1:] for r in connection.execute(f"SELECT id, {', '.join(COLUMNS)} FROM p")}
    connection.close()

    # The types copier chose: the declared ones, and for the untyped column the census's.
    plan = asyncio.run(make_plan(db, Settings(dsn=target.dsn, schema=target.schema), None))
    types = [c.type for c in plan.table("p").columns[1:]]
    # (NUMERIC(10,2) may be widened to hold a large value.)
    assert [t.kind for t in types[:-1]] == [map_declared_type(d).kind for d in DECLARED[:-1]]
    result = migrate(target, db, "--reject-file", run / "rejects.jsonl")
    assert result.exit_code in (0, 3), result.output
    rejects = {r["key"]: r for r in read_jsonl(run / "rejects.jsonl")} if (run / "rejects.jsonl").exists() else {}
    loaded = {r[0]: tuple(r)[1:] for r in target.fetch(f'SELECT id, {", ".join(COLUMNS)} FROM "{target.schema}".p')}
    for row_id, values in stored.items():
        outcomes = [expected(t, v) for t, v in zip(types, values)]
        first_bad = next((i for i, (_value, reason) in enumerate(outcomes) if reason), None)
        if first_bad is None:
            assert row_id in loaded, (row_id, values, rejects.get(row_id))
            assert comparable(loaded[row_id], types) == comparable(tuple(o[0] for o in outcomes), types)
        else:
            assert row_id not in loaded
            assert rejects[row_id]["column"] == COLUMNS[first_bad]
            assert rejects[row_id]["reason"] == outcomes[first_bad][1]
    assert set(rejects) | set(loaded) == set(stored)


@pytest.mark.parametrize("declared", DECLARED)
def test_each_declared_type_has_a_converter(declared: str) -> None:
    # A value of each declared type's own kind converts (NULL would return before any dispatch).
    from datetime import UTC, date, datetime
    from decimal import Decimal

    samples = {"INTEGER": (7, 7), "REAL": (0.5, 0.5), "NUMERIC": ("12.50", Decimal("12.50")),
               "NUMERIC(10,2)": (0.125, Decimal("0.13")), "TEXT": ("a", "a"), "BLOB": (b"\x01", b"\x01"),
               "BOOLEAN": (1, True), "DATETIME": ("2021-03-04 10:20", datetime(2021, 3, 4, 10, 20, tzinfo=UTC)),
               "DATE": ("2021-03-04", date(2021, 3, 4)), "JSON": ('{"a": 1}', '{"a": 1}'),
               "UUID": ("12345678-1234-5678-1234-567812345678", "12345678-1234-5678-1234-567812345678"),
               "VARCHAR(5)": ("abc", "abc"), "": (b"\x02", b"\x02")}
    assert set(samples) == set(DECLARED)
    value, converted = samples[declared]
    assert expected(declared, value) == (converted, None)
