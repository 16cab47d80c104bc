"""Type mapping as data: SQLite declared type -> PostgreSQL type, and PostgreSQL type -> Kind.

`Kind` says how values are converted (see normalise.py); `TargetType.sql` is the DDL text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .errors import PlanError


class Kind(StrEnum):
    BOOL = "boolean"
    INT2 = "smallint"
    INT4 = "integer"
    INT8 = "bigint"
    FLOAT4 = "real"
    FLOAT8 = "double precision"
    NUMERIC = "numeric"
    TEXT = "text"
    BYTEA = "bytea"
    DATE = "date"
    TIME = "time"
    TIMESTAMPTZ = "timestamptz"
    TIMESTAMP = "timestamp"
    JSON = "json"
    JSONB = "jsonb"
    UUID = "uuid"
    ENUM = "enum"


@dataclass(frozen=True, slots=True)
class TargetType:
    sql: str  # as written in DDL / shown by format_type()
    kind: Kind
    max_length: int | None = None  # varchar(n) / char(n)
    precision: int | None = None  # numeric(p, s)
    scale: int | None = None
    labels: tuple[str, ...] = ()  # enum labels


def _numeric(match: re.Match[str]) -> TargetType:
    precision, scale = match.group("p"), match.group("s")
    if precision is None:
        return TargetType("numeric", Kind.NUMERIC)
    p, s = int(precision), int(scale or 0)
    if not 1 <= p <= 1000 or not 0 <= s <= p:
        return TargetType("numeric", Kind.NUMERIC)  # SQLite never checked it; neither can we
    return TargetType(f"numeric({p},{s})", Kind.NUMERIC, precision=p, scale=s)


def _fixed(sql: str, kind: Kind) -> Callable[[re.Match[str]], TargetType]:
    target = TargetType(sql, kind)
    return lambda _match: target


_TYPEMOD = r"\s*(?:\(\s*(?P<p>\d+)\s*(?:,\s*(?P<s>\d+)\s*)?\))?"

# Matched in order against the upper-cased declared type; the first match wins.
# The INT/CHAR/BLOB/REAL steps follow SQLite's affinity rules
# (https://www.sqlite.org/datatype3.html#determination_of_column_affinity);
# the named types before them catch what affinity alone would get wrong.
Rule = tuple[str, re.Pattern[str], Callable[[re.Match[str]], TargetType]]
CAST_RULES: tuple[Rule, ...] = (
    ("BOOL, BOOLEAN", re.compile(r"^BOOL(EAN)?\b"), _fixed("boolean", Kind.BOOL)),
    (
        "TIMESTAMP WITHOUT TIME ZONE",
        re.compile(r"^TIMESTAMP.*WITHOUT TIME ZONE"),
        _fixed("timestamp", Kind.TIMESTAMP),
    ),
    ("DATETIME, TIMESTAMP", re.compile(r"^(DATETIME|TIMESTAMP)"), _fixed("timestamptz", Kind.TIMESTAMPTZ)),
    ("DATE", re.compile(r"^DATE$"), _fixed("date", Kind.DATE)),
    ("TIME", re.compile(r"^TIME$"), _fixed("time", Kind.TIME)),
    ("JSON", re.compile(r"^JSONB?$"), _fixed("jsonb", Kind.JSONB)),
    ("UUID, GUID", re.compile(r"^(UUID|GUID|UNIQUEIDENTIFIER)$"), _fixed("uuid", Kind.UUID)),
    # SQLite never enforced INT widths, so every integer becomes bigint.
    ("contains INT", re.compile(r"INT"), _fixed("bigint", Kind.INT8)),
    # varchar(n) lengths were never enforced either: text keeps every value.
    ("contains CHAR, CLOB, TEXT", re.compile(r"CHAR|CLOB|TEXT"), _fixed("text", Kind.TEXT)),
    ("contains BLOB", re.compile(r"BLOB"), _fixed("bytea", Kind.BYTEA)),
    # REAL is an 8-byte IEEE float: float4 would lose digits.
    ("contains REAL, FLOA, DOUB", re.compile(r"REAL|FLOA|DOUB"), _fixed("double precision", Kind.FLOAT8)),
    ("NUMERIC(p,s), DECIMAL(p,s)", re.compile(r"^(NUMERIC|DECIMAL)" + _TYPEMOD + "$"), _numeric),
    ("MONEY", re.compile(r"^MONEY$"), _fixed("numeric", Kind.NUMERIC)),
    ("no type", re.compile(r"^$"), _fixed("bytea", Kind.BYTEA)),
    # Catch-all: text can hold any value SQLite can store as text or number, losslessly.
    ("anything else", re.compile(r""), _fixed("text", Kind.TEXT)),
)


def map_declared_type(declared: str) -> TargetType:
    """The PostgreSQL type copier creates for an SQLite declared type."""
    normalised = " ".join(declared.upper().split())
    for _label, pattern, build in CAST_RULES:
        match = pattern.search(normalised)
        if match:
            return build(match)
    raise AssertionError("the catch-all rule always matches")


_PG_KINDS: dict[str, Kind] = {
    "boolean": Kind.BOOL,
    "smallint": Kind.INT2,
    "integer": Kind.INT4,
    "bigint": Kind.INT8,
    "real": Kind.FLOAT4,
    "double precision": Kind.FLOAT8,
    "numeric": Kind.NUMERIC,
    "text": Kind.TEXT,
    "character varying": Kind.TEXT,
    "character": Kind.TEXT,
    "citext": Kind.TEXT,
    "name": Kind.TEXT,
    "bytea": Kind.BYTEA,
    "date": Kind.DATE,
    "time without time zone": Kind.TIME,
    "timestamp with time zone": Kind.TIMESTAMPTZ,
    "timestamp without time zone": Kind.TIMESTAMP,
    "json": Kind.JSON,
    "jsonb": Kind.JSONB,
    "uuid": Kind.UUID,
}

_FORMATTED = re.compile(r"^(?P<base>[a-z ]+?)\s*(?:\((?P<p>\d+)(?:,(?P<s>\d+))?\))?(?P<rest>[a-z ]*)$")


def parse_pg_type(formatted: str, *, enum_labels: tuple[str, ...] = ()) -> TargetType:
    """Kind and limits of an existing column, from format_type() output.

    Raises PlanError for types copier cannot load values into.
    """
    if enum_labels:
        return TargetType(formatted, Kind.ENUM, labels=enum_labels)
    match = _FORMATTED.match(formatted)
    if match:
        base = (match.group("base") + match.group("rest")).strip()
        p, s = match.group("p"), match.group("s")
        kind = _PG_KINDS.get(base)
        if kind is not None:
            if kind is Kind.TEXT and p is not None:
                return TargetType(formatted, kind, max_length=int(p))
            if kind is Kind.NUMERIC and p is not None:
                return TargetType(formatted, kind, precision=int(p), scale=int(s or 0))
            if kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP, Kind.TIME) or p is None:
                return TargetType(formatted, kind)
    raise PlanError(f"PostgreSQL type {formatted} is not supported as a copy target")
