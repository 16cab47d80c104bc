"""The rule book is complete and says what the per-value converter does: for every Kind, each
storage class it lists takes a value of that class to the listed Python type, and each storage
class it does not list is rejected. The samples and their results are written out here."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from copier import lanes, rules
from copier.casting import Kind, TargetType
from copier.errors import ValueRejected
from copier.normalise import Options, converter_for
from copier.planning import ColumnPlan
from copier.rules import Storage

# One value of each storage class per Kind, and what the per-value path makes of it.
_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
SAMPLES: dict[Kind, dict[Storage, tuple[object, object]]] = {
    Kind.BOOL: {Storage.INTEGER: (1, True), Storage.REAL: (0.0, False), Storage.TEXT: ("yes", True)},
    Kind.INT2: {Storage.INTEGER: (7, 7), Storage.REAL: (7.0, 7), Storage.TEXT: (" 7 ", 7)},
    Kind.INT4: {Storage.INTEGER: (7, 7), Storage.REAL: (7.0, 7), Storage.TEXT: ("7", 7)},
    Kind.INT8: {Storage.INTEGER: (7, 7), Storage.REAL: (7.0, 7), Storage.TEXT: ("7", 7)},
    Kind.FLOAT4: {Storage.REAL: (1.5, 1.5), Storage.INTEGER: (3, 3.0), Storage.TEXT: ("2.5", 2.5)},
    Kind.FLOAT8: {Storage.REAL: (1.5, 1.5), Storage.INTEGER: (3, 3.0), Storage.TEXT: ("-inf", float("-inf"))},
    Kind.NUMERIC: {Storage.INTEGER: (12, Decimal("12")), Storage.REAL: (0.1, Decimal("0.1")),
                   Storage.TEXT: ("12.50", Decimal("12.50"))},
    Kind.TEXT: {Storage.TEXT: ("ann", "ann"), Storage.INTEGER: (12, "12"), Storage.REAL: (0.5, "0.5"),
                Storage.BLOB: (b"ab", "ab")},
    Kind.BYTEA: {Storage.BLOB: (b"\x00\xff", b"\x00\xff"), Storage.TEXT: ("é", b"\xc3\xa9")},
    Kind.DATE: {Storage.TEXT: ("2021-03-04", date(2021, 3, 4)), Storage.INTEGER: (86_400, date(1970, 1, 2)),
                Storage.REAL: (2459215.5, date(2021, 1, 1))},
    Kind.TIME: {Storage.TEXT: ("05:06:07.5", time(5, 6, 7, 500000))},
    Kind.TIMESTAMPTZ: {Storage.TEXT: ("2021-03-04 05:06:07+02:00", datetime(2021, 3, 4, 3, 6, 7, tzinfo=UTC)),
                       Storage.INTEGER: (1_700_000_000_123, datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
                       Storage.REAL: (2459215.75, datetime(2021, 1, 1, 6, tzinfo=UTC))},
    Kind.TIMESTAMP: {Storage.TEXT: ("2021-03-04T05:06", datetime(2021, 3, 4, 5, 6)),
                     Storage.INTEGER: (0, datetime(1970, 1, 1)),
                     Storage.REAL: (1.5, datetime(1970, 1, 1, 0, 0, 1, 500000))},
    Kind.JSON: {Storage.TEXT: ('{"a": 1}', '{"a": 1}'), Storage.INTEGER: (5, "5"), Storage.REAL: (0.5, "0.5"),
                Storage.BLOB: (b"[1]", "[1]")},
    Kind.JSONB: {Storage.TEXT: ("[]", "[]"), Storage.INTEGER: (5, "5"), Storage.REAL: (0.5, "0.5"),
                 Storage.BLOB: (b"{}", "{}")},
    Kind.UUID: {Storage.TEXT: (str(_ID).upper(), str(_ID)), Storage.BLOB: (_ID.bytes, str(_ID))},
    Kind.ENUM: {Storage.TEXT: ("red", "red")},
}
# A value of each storage class that no Kind's listed form could take; used for the classes a
# Kind does not list, which it must reject whatever the value.
UNLISTED: dict[Storage, object] = {Storage.INTEGER: 1, Storage.REAL: 1.0, Storage.TEXT: "1", Storage.BLOB: b"1"}


def _target(kind: Kind) -> TargetType:
    return TargetType(kind.value, kind, labels=("red", "green") if kind is Kind.ENUM else ())


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_a_complete_rule(kind: Kind) -> None:
    rule = rules.RULES[kind]
    assert rule.takes, kind
    assert set(rule.takes) <= set(Storage)
    assert all(isinstance(form, rules.Form) for form in rule.takes.values())
    assert set(SAMPLES[kind]) == set(rule.takes), "the samples above cover exactly the listed classes"
    assert set(rule.bulk) <= set(rule.takes), "the columnar lane reads only what the Kind takes"
    assert len(set(rule.bulk)) == len(rule.bulk)


@pytest.mark.parametrize("kind", list(Kind))
def test_each_listed_class_becomes_the_listed_type(kind: Kind) -> None:
    convert = converter_for(_target(kind), Options())
    rule = rules.RULES[kind]
    for storage, (value, expected) in SAMPLES[kind].items():
        converted = convert(value)
        assert converted == expected, (storage, value)
        assert type(converted) is rule.becomes, (storage, value)


@pytest.mark.parametrize("kind", list(Kind))
def test_each_unlisted_class_is_rejected(kind: Kind) -> None:
    convert = converter_for(_target(kind), Options())
    for storage in set(Storage) - set(rules.RULES[kind].takes):
        with pytest.raises(ValueRejected):
            convert(UNLISTED[storage])


@pytest.mark.parametrize("kind", list(Kind))
def test_the_columnar_lane_takes_what_the_book_says(kind: Kind) -> None:
    target = TargetType("numeric(12,2)", kind, precision=12, scale=2) if kind is Kind.NUMERIC else _target(kind)
    column = ColumnPlan("v", "v", "", target)
    assert (lanes.column_why(column.type) is None) is rules.RULES[kind].columnar


@pytest.mark.parametrize(("value", "unit"), [
    (0, 1), (rules.MIN_SECONDS, 1), (rules.MAX_SECONDS, 1), (rules.MAX_SECONDS + 1, 1000),
    (1_700_000_000_123, 1000), (rules.MIN_SECONDS - 1, 1000), (253402300799000, 1000), (253402300799001, None),
    (-62135596800000, 1000), (-62135596800001, None), (1.5, 1),
])
def test_unix_units(value: int | float, unit: int | None) -> None:
    assert rules.unix_unit(value) == unit
