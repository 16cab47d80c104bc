"""The columnar lane's pure core, against oracles of its own: here Python's repr, which is
how the exact lane reads a double into numeric (Decimal(repr(x)))."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from decimal import Decimal, localcontext

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from copier import arrowlane, lanes, normalise
from copier.casting import Kind, TargetType
from copier.planning import ColumnPlan

# (precision, scale) pairs the lane takes, from none to the most places it takes.
_NUMERICS = [(12, 2), (4, 4), (6, 0), (18, 2), (38, 10), (15, 15), (3, 1)]


def _route(precision: int, scale: int) -> arrowlane.Route:
    target = TargetType(f"numeric({precision},{scale})", Kind.NUMERIC, precision=precision, scale=scale)
    return arrowlane.Route(ColumnPlan("v", "v", f"NUMERIC({precision},{scale})", target))


def _storable(number: Decimal | None, precision: int, scale: int) -> bool:
    """Whether the exact lane stores the number as it is: no rounding, in range."""
    if number is None:
        return False
    with localcontext() as context:
        context.prec = 100
        return abs(number) < Decimal(10) ** (precision - scale) and number == number.quantize(Decimal(1).scaleb(-scale))


def _check(values: list[float], precision: int, scale: int) -> None:
    converted, flagged = arrowlane._normalise(_route(precision, scale), pa.array(values, pa.float64()), "UTC")
    assert flagged is not None
    for value, got, odd in zip(values, converted.to_pylist(), flagged.to_pylist(), strict=True):
        exact = Decimal(repr(value)) if math.isfinite(value) else None
        storable = _storable(exact, precision, scale)
        if not odd:
            assert storable and got == exact, (value, precision, scale, got)
        elif storable and abs(value) * 10 ** scale < 2 ** 51:
            # Flagging is always safe (the exact lane takes the value), but below 2^51 the
            # lane must take every value that needs no rounding: else it is slow for nothing.
            raise AssertionError(f"{value!r} into numeric({precision},{scale}) left to the exact lane")


def test_numeric_edges() -> None:
    edges = [2.675, 1234.565, 0.1, 0.2, 0.3, 0.30000000000000004, -0.0, 0.0, 12.0, 99.995, 99.99, -99.99, 0.07,
             0.125, 1e16, 1e-7, 5e-324, 1.5e300, math.inf, -math.inf, math.nan, 9999999999.99, 10000000000.0,
             -9999999999.99, 2.0**52 / 100, 2.0**53, 1.005, 8.325, 0.015, 4503599627370.49, 45035996273704.96]
    for precision, scale in _NUMERICS:
        _check(edges, precision, scale)


@settings(max_examples=300, deadline=None)
@given(cents=st.lists(st.integers(-10**14, 10**14), min_size=1, max_size=50),
       places=st.integers(0, 6), numeric=st.sampled_from(_NUMERICS))
def test_numeric_decimals_typed_as_doubles(cents: list[int], places: int, numeric: tuple[int, int]) -> None:
    """Values as applications write them: decimals of a few places, stored as REAL."""
    _check([c / 10**places for c in cents], *numeric)


@settings(max_examples=300, deadline=None)
@given(bits=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50), numeric=st.sampled_from(_NUMERICS))
def test_numeric_any_double(bits: list[int], numeric: tuple[int, int]) -> None:
    """Every double, NaN, infinities and subnormals included."""
    _check([struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits], *numeric)


def test_numeric_scales_past_what_decimal128_takes_travel_as_wire_bytes() -> None:
    assert lanes.column_why(_route(38, 15).column.type) is None and arrowlane.in_decimal128(_route(38, 15).column)
    assert lanes.column_why(_route(38, 16).column.type) is None and not arrowlane.in_decimal128(_route(38, 16).column)
    assert lanes.column_why(_route(39, 2).column.type) is None and not arrowlane.in_decimal128(_route(39, 2).column)
    negative = TargetType("numeric(5,-2)", Kind.NUMERIC, precision=5, scale=-2)
    assert lanes.column_why(negative) == "a type the columnar lane does not produce"


def test_trailing_zeros_are_not_rounding() -> None:
    """The exact lane's count of rounded values, which the columnar lane's must match."""
    assert not normalise.needs_rounding(12.0, 0)
    assert not normalise.needs_rounding(0.0, 0)
    assert not normalise.needs_rounding("1.500", 1)
    assert not normalise.needs_rounding("0.000", 0)
    assert normalise.needs_rounding(12.5, 0)
    assert normalise.needs_rounding("1.2345", 3)
    assert normalise.needs_rounding(2.675, 2)


def test_presence_bits_across_several_integers() -> None:
    """Which values are NULL, for 130 nullable columns (three integers of bits), against
    what Python's sqlite3 reads."""
    import random
    import sqlite3

    from copier import crosscheck

    columns = [f"c{i}" for i in range(130)]
    connection = sqlite3.connect(":memory:")
    connection.execute(f"CREATE TABLE t ({', '.join(columns)})")
    chance = random.Random(7)
    rows = [tuple(None if chance.random() < 0.3 else chance.choice([0, "x", 1.5, b"\x00"]) for _ in columns)
            for _ in range(50)]
    rows.append((None,) * len(columns))
    rows.append((1,) * len(columns))
    connection.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(columns))})", rows)
    masks = connection.execute(f"SELECT {', '.join(crosscheck.presence_sql(columns))} FROM t ORDER BY rowid").fetchall()
    assert len(masks[0]) == 3
    flags = crosscheck.present([pa.array([m[i] for m in masks], pa.int64()) for i in range(3)], len(columns))
    assert [[flags[c][r].as_py() for c in range(len(columns))] for r in range(len(rows))] == \
        [[v is not None for v in row] for row in rows]


def _wire_value(wire: bytes) -> tuple[Decimal, int]:
    """PostgreSQL's numeric binary form read back (numeric_recv's layout): value and dscale."""
    ndigits, weight, sign, dscale = struct.unpack(">hhHH", wire[:8])
    digits = struct.unpack(f">{ndigits}h", wire[8:])
    with localcontext() as context:
        context.prec = 200
        value = sum((Decimal(d) * Decimal(10000) ** (weight - i) for i, d in enumerate(digits)), Decimal(0))
    return (-value if sign == 0x4000 else value), dscale


def _check_wire(reals: Sequence[float | None], integers: Sequence[int | None], precision: int | None = None,
                scale: int | None = None) -> None:
    sql = "numeric" if precision is None else f"numeric({precision},{scale})"
    route = arrowlane.Route(ColumnPlan("v", "v", "NUMERIC", TargetType(sql, Kind.NUMERIC, precision=precision,
                                                                          scale=scale)))
    wire, odd = arrowlane.numeric_wire(route, pa.array(reals, pa.float64()), pa.array(integers, pa.int64()))
    for real, integer, got, flagged in zip(reals, integers, wire.to_pylist(), odd.to_pylist(), strict=True):
        value = real if real is not None else integer
        if value is None:
            assert got is None
            continue
        if flagged:
            assert got is None
            continue
        # What the exact lane writes: Decimal(repr(x)), at its own scale or quantized to s.
        exact = Decimal(repr(value))
        expected_scale = max(0, -int(exact.as_tuple().exponent)) if precision is None else scale
        assert got is not None and _wire_value(got) == (exact, expected_scale), (value, got)


@settings(max_examples=300, deadline=None)
@given(bits=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50),
       integers=st.lists(st.none() | st.integers(-2**63, 2**63 - 1), min_size=50, max_size=50))
def test_numeric_wire_any_double_or_integer(bits: list[int], integers: list[int | None]) -> None:
    """numeric without a scale: each value at its own scale, as Decimal(repr(x)) has it."""
    reals: list[float | None] = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits]
    reals += [None] * (50 - len(reals))
    _check_wire(reals, [None if r is not None else i for r, i in zip(reals, integers)])


@settings(max_examples=200, deadline=None)
@given(cents=st.lists(st.integers(-10**17, 10**17), min_size=1, max_size=50), places=st.integers(0, 8))
def test_numeric_wire_decimals_typed_as_doubles(cents: list[int], places: int) -> None:
    _check_wire([c / 10**places for c in cents], [None] * len(cents))
    _check_wire([c / 10**places for c in cents], [None] * len(cents), 50, 20)


def test_numeric_wire_edges() -> None:
    edges = [2.675, 0.1, 0.30000000000000004, -0.0, 0.0, 12.0, 1e16, 1e-7, 5e-324, 1.5e300, math.inf, -math.inf,
             math.nan, 1e15, 123456789012345680.0, 9.999999999999999e17, 1e18, -0.25, 0.0001, 0.00001]
    _check_wire(edges, [None] * len(edges))
    _check_wire(edges, [None] * len(edges), 50, 20)
    _check_wire(edges, [None] * len(edges), 40, 2)
    ints = [0, 1, -1, 2**63 - 1, -2**63, -2**63 + 1, 10**18, 9999, 10000]
    _check_wire([None] * len(ints), ints)
    _check_wire([None] * len(ints), ints, 20, 2)


def test_typed_scalars_are_made_once_and_keep_the_sign_of_zero() -> None:
    """The kernels' constants are made once each (arrowlane._int and its kin); a float is
    known by its bits, so -0.0 asked after 0.0 is still -0.0 (they are equal keys)."""
    assert arrowlane._int(7) is arrowlane._int(7) and arrowlane._U(7) is arrowlane._U(7)
    assert arrowlane._float(0.0).as_py() == 0.0
    assert math.copysign(1.0, arrowlane._float(-0.0).as_py()) == -1.0
    assert (arrowlane._float(10 ** 2).type, arrowlane._float(10 ** 2).as_py()) == (pa.float64(), 100.0)


# --- JSON: msgspec's scan, checked against json.loads (the exact lane's reading) -----------------

# Near-JSON text: the characters JSON is made of, and those that make it almost JSON.
_JSONISH = st.text(alphabet=st.sampled_from(list('{}[],:"\\ \t\n\r0123456789.eE+-abcdefnrtuxINaNfy/'
                                                 '\x00\x01\x7f\u00e9')), max_size=40)


def _json_loads_accepts(text: str) -> bool:
    try:
        json.loads(text, parse_constant=normalise._no_json_constant)
    except (ValueError, RecursionError):
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(text=st.one_of(_JSONISH, st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8).map(json.dumps).flatmap(lambda doc: st.sampled_from([doc, doc[:-1], doc + ",", " " + doc + "\n"]))))
def test_json_scan_accepts_only_what_json_loads_accepts(text: str) -> None:
    """The lane's verdict is json.loads's on every text: the scan may refuse more (json.loads
    then decides), never accept more."""
    accepted = _json_loads_accepts(text)
    try:
        arrowlane._SCAN(text)
    except Exception:
        pass
    else:
        assert accepted, text
    flagged = arrowlane._not_json(pa.array([text, '{"a": 1}'], pa.string())).to_pylist()
    assert [bool(f) for f in flagged] == [not accepted, False]


def test_json_verdicts_written_out() -> None:
    texts = ['{"a": [1, 2.5]}', "[1,]", "NaN", "[-Infinity]", "1e400", " 1 ", "01", "\ufeff1", '"\\ud800"',
             '{"a": 1}{"b": 2}', '"\x01"', "", None, "[" * 300 + "]" * 300, "[" * 1500 + "]" * 1500,
             "[" + ",".join(["[1]"] * 400) + "]"]
    not_json = [False, True, True, True, False, False, True, True, False, True, True, True, False, False, True, False]
    flagged = arrowlane._not_json(pa.array(texts, pa.string())).to_pylist()
    assert [bool(f) for f in flagged] == not_json
    # A batch's column after its first row is dropped (arrowlane.drop_witness): a slice, whose
    # texts start past the data's start; the shallow ones through their UTF-8 bytes.
    shallow = [(t, n) for t, n in zip(texts, not_json) if t is None or len(t) < 200] + [('"é", ', True), ('"é"', False)]
    for first in ("[", "{}"):
        sliced = pa.array([first] + [t for t, _n in shallow], pa.string()).slice(1)
        flagged = arrowlane._not_json(sliced).to_pylist()
        assert [bool(f) for f in flagged] == [n for _t, n in shallow]
    sliced = pa.array(["{}", '{"a": 1}', "[2]", "[1,]"], pa.string()).slice(1)  # only the last is not JSON
    assert [bool(f) for f in arrowlane._not_json(sliced).to_pylist()] == [False, False, True]
