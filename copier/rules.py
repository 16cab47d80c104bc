"""The value rule book: per target Kind, which SQLite storage classes it takes, in which
forms, and what each becomes; and the constants those rules are made of, written once.

Two engines read it: normalise.py converts value by value (and column-at-once for the
common cases), arrowlane.py converts Arrow batches in compute kernels. Each engine names
an implementation per Form; tests/test_rules.py checks that every Form of every Kind has
one in each engine, and tests/test_lanes.py that both give PostgreSQL the same value.
crosscheck.py, verify's oracle, does not read this book: it must not share what it checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .casting import Kind

# --- constants ----------------------------------------------------------------------------

# Unix seconds that Python's datetime (and PostgreSQL's years 1..9999 as copier loads them)
# can represent: 0001-01-01 00:00:00 and 9999-12-31 23:59:59. An integer outside this range is
# read as milliseconds, if that fits (every ms value after 1978-01-11 does).
MIN_SECONDS = -62135596800
MAX_SECONDS = 253402300799
MIN_MILLIS = MIN_SECONDS * 1000
MAX_MILLIS = MAX_SECONDS * 1000
# Julian days of 0001-01-01 and 9999-12-31: a REAL in this range is a Julian day (SQLite's own
# REAL date form), read to the millisecond as SQLite does; any other number is Unix time.
JULIAN_DAY_RANGE = (1721425.5, 5373484.5)
UNIX_EPOCH_JULIAN_DAY = 2440587.5
MILLIS_PER_DAY = 86_400_000

# -bound <= value < bound
INT_BOUNDS: Mapping[Kind, int] = {Kind.INT2: 2**15, Kind.INT4: 2**31, Kind.INT8: 2**63}
# The largest integer a double holds exactly, and every integer below it in magnitude.
EXACT_IN_DOUBLE = 2**53

TRUE_WORDS = frozenset({"1", "t", "true", "y", "yes", "on"})
FALSE_WORDS = frozenset({"0", "f", "false", "n", "no", "off"})
# Text a REAL-like target reads as a special value (lower-cased, stripped).
SPECIAL_FLOATS: Mapping[str, float] = {"nan": float("nan"), "infinity": float("inf"), "+infinity": float("inf"),
                                       "-infinity": float("-inf"), "inf": float("inf"), "+inf": float("inf"),
                                       "-inf": float("-inf")}

INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)
DECIMAL_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)
DATE_TEXT = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)
DATE_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\d[+-]\d\d(:?\d\d)?", re.ASCII)
DATE_WITH_OFFSET_LENGTHS = frozenset({13, 15, 16})  # YYYY-MM-DD+HH, +HHMM, +HH:MM
TIME_TEXT = re.compile(r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?", re.ASCII)

# The ISO 8601 text forms both engines read alike, as RE2/Python patterns over a whole value.
# Year 0 is rejected by both; hour 24 and leap seconds are Python's to reject, one by one.
YEAR = r"(000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})"
CLOCK = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
OFFSET = r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
DATE_PATTERN = rf"^{YEAR}-\d\d-\d\d$"
NAIVE_PATTERN = rf"^{YEAR}-\d\d-\d\d([ T]{CLOCK})?$"
AWARE_PATTERN = rf"^{YEAR}-\d\d-\d\d[ T]{CLOCK}{OFFSET}$"


def unix_unit(value: int | float) -> int | None:
    """How many of a number's units make a second: 1 for Unix seconds, 1000 for
    milliseconds (a number past the seconds range), None for neither (out of range)."""
    if MIN_SECONDS <= value <= MAX_SECONDS:
        return 1
    if MIN_MILLIS <= value <= MAX_MILLIS:
        return 1000
    return None


def is_julian_day(value: float) -> bool:
    return JULIAN_DAY_RANGE[0] <= value <= JULIAN_DAY_RANGE[1]


# --- the book -------------------------------------------------------------------------------


class Storage(StrEnum):
    """SQLite's storage classes (NULL aside: NULL is NULL for every Kind)."""

    INTEGER = "integer"
    REAL = "real"
    TEXT = "text"
    BLOB = "blob"


class Form(StrEnum):
    """What a value of one storage class is read as, for one Kind."""

    INTEGER = "an integer in range"
    WHOLE_REAL = "a REAL without a fraction, in range"
    INTEGER_TEXT = "integer text"
    DOUBLE = "the number as a double"
    DOUBLE_TEXT = "decimal text, or nan/inf words"
    FLOAT4 = "the double rounded to float4, in range"
    DECIMAL = "the number's shortest decimal, at its own scale or rounded to the declared one"
    DECIMAL_TEXT = "decimal text"
    TEXT = "UTF-8 text without NUL, within the declared length"
    NUMBER_TEXT = "the number's text (repr)"
    BLOB_TEXT = "the blob's bytes as UTF-8 text"
    BYTES = "the bytes as they are"
    TEXT_BYTES = "the text's UTF-8 bytes"
    ZERO_ONE = "0 or 1"
    WORD = "a boolean word (TRUE_WORDS, FALSE_WORDS)"
    JSON_TEXT = "valid JSON text"
    UUID_TEXT = "a UUID's hex text"
    UUID_BYTES = "16 bytes"
    LABEL = "one of the enum's labels"
    ISO_DATE = "an ISO 8601 date, or a timestamp at midnight"
    ISO_TIMESTAMP = "ISO 8601 text; naive is wall time in --source-tz"
    UNIX_TIME = "Unix seconds, or milliseconds past the seconds range"
    JULIAN_OR_UNIX = "a Julian day within JULIAN_DAY_RANGE, else Unix seconds"
    ISO_TIME = "HH:MM[:SS[.ffffff]]"


@dataclass(frozen=True, slots=True)
class KindRule:
    """One target Kind: each storage class it takes, in which form, and what it becomes (the
    Python type asyncpg's binary codec takes; the columnar lane writes the same wire bytes).
    A storage class not listed is rejected. `bulk`: the classes the columnar lane reads and
    converts in bulk, its own read first (a value of another class goes the per-value way);
    none: the columnar lane does not produce the Kind."""

    becomes: type
    takes: Mapping[Storage, Form] = field(default_factory=dict)
    bulk: tuple[Storage, ...] = ()

    @property
    def columnar(self) -> bool:
        return bool(self.bulk)


def _rules() -> Mapping[Kind, KindRule]:
    from datetime import date, datetime, time
    from decimal import Decimal

    integer = {Storage.INTEGER: Form.INTEGER, Storage.REAL: Form.WHOLE_REAL, Storage.TEXT: Form.INTEGER_TEXT}
    timestamp = {Storage.TEXT: Form.ISO_TIMESTAMP, Storage.INTEGER: Form.UNIX_TIME, Storage.REAL: Form.JULIAN_OR_UNIX}
    text = {Storage.TEXT: Form.TEXT, Storage.INTEGER: Form.NUMBER_TEXT, Storage.REAL: Form.NUMBER_TEXT,
            Storage.BLOB: Form.BLOB_TEXT}
    json = {Storage.TEXT: Form.JSON_TEXT, Storage.INTEGER: Form.JSON_TEXT, Storage.REAL: Form.JSON_TEXT,
            Storage.BLOB: Form.JSON_TEXT}
    dated = (Storage.TEXT, Storage.INTEGER, Storage.REAL)
    return {
        Kind.BOOL: KindRule(bool, {Storage.INTEGER: Form.ZERO_ONE, Storage.REAL: Form.ZERO_ONE,
                                   Storage.TEXT: Form.WORD}, (Storage.INTEGER,)),
        Kind.INT2: KindRule(int, integer, (Storage.INTEGER,)),
        Kind.INT4: KindRule(int, integer, (Storage.INTEGER,)),
        Kind.INT8: KindRule(int, integer, (Storage.INTEGER,)),
        Kind.FLOAT4: KindRule(float, {Storage.REAL: Form.FLOAT4, Storage.INTEGER: Form.FLOAT4,
                                      Storage.TEXT: Form.DOUBLE_TEXT}, (Storage.REAL,)),
        Kind.FLOAT8: KindRule(float, {Storage.REAL: Form.DOUBLE, Storage.INTEGER: Form.DOUBLE,
                                      Storage.TEXT: Form.DOUBLE_TEXT}, (Storage.REAL,)),
        # An integer keeps scale 0, a real at least one place: read apart (numeric(p, s) that
        # decimal128 holds reads integers as reals, arrowlane.Route.reads).
        Kind.NUMERIC: KindRule(Decimal, {Storage.INTEGER: Form.DECIMAL, Storage.REAL: Form.DECIMAL,
                                         Storage.TEXT: Form.DECIMAL_TEXT}, (Storage.REAL, Storage.INTEGER)),
        Kind.TEXT: KindRule(str, text, (Storage.TEXT,)),
        Kind.BYTEA: KindRule(bytes, {Storage.BLOB: Form.BYTES, Storage.TEXT: Form.TEXT_BYTES}, (Storage.BLOB,)),
        Kind.DATE: KindRule(date, {Storage.TEXT: Form.ISO_DATE, Storage.INTEGER: Form.UNIX_TIME,
                                   Storage.REAL: Form.JULIAN_OR_UNIX}, dated),
        Kind.TIME: KindRule(time, {Storage.TEXT: Form.ISO_TIME}, (Storage.TEXT,)),
        Kind.TIMESTAMPTZ: KindRule(datetime, timestamp, dated),
        Kind.TIMESTAMP: KindRule(datetime, timestamp, dated),
        Kind.JSON: KindRule(str, json, (Storage.TEXT,)),
        Kind.JSONB: KindRule(str, json, (Storage.TEXT,)),
        Kind.UUID: KindRule(str, {Storage.TEXT: Form.UUID_TEXT, Storage.BLOB: Form.UUID_BYTES},
                            (Storage.TEXT, Storage.BLOB)),
        Kind.ENUM: KindRule(str, {Storage.TEXT: Form.LABEL}, (Storage.TEXT,)),
    }


RULES: Mapping[Kind, KindRule] = _rules()

__all__ = ["AWARE_PATTERN", "DATE_PATTERN", "DATE_TEXT", "DATE_WITH_OFFSET", "DATE_WITH_OFFSET_LENGTHS",
           "DECIMAL_TEXT", "EXACT_IN_DOUBLE", "FALSE_WORDS", "INTEGER_TEXT", "INT_BOUNDS",
           "JULIAN_DAY_RANGE", "MAX_MILLIS", "MAX_SECONDS", "MILLIS_PER_DAY", "MIN_MILLIS", "MIN_SECONDS",
           "NAIVE_PATTERN", "RULES", "SPECIAL_FLOATS", "TIME_TEXT", "TRUE_WORDS", "UNIX_EPOCH_JULIAN_DAY", "Form",
           "KindRule", "Storage", "is_julian_day", "unix_unit"]
