from __future__ import annotations

import pytest

from copier.casting import Kind, map_declared_type, parse_pg_type
from copier.errors import PlanError


@pytest.mark.parametrize(("declared", "sql"), [
    ("INTEGER", "bigint"),
    ("int", "bigint"),
    ("smallint unsigned", "bigint"),
    ("UNSIGNED BIG INT", "bigint"),
    ("intege", "bigint"),  # pgloader's corpus: affinity says INT
    ("REAL", "double precision"),
    ("FLOAT", "double precision"),
    ("double precision", "double precision"),
    ("NUMERIC", "numeric"),
    ("NUMERIC(10,2)", "numeric(10,2)"),
    ("decimal( 20 , 6 )", "numeric(20,6)"),
    ("DECIMAL(5)", "numeric(5,0)"),
    ("TEXT", "text"),
    ("NVARCHAR(160)", "text"),
    ("character(20)", "text"),
    ("CLOB", "text"),
    ("BLOB", "bytea"),
    ("", "bytea"),
    ("BOOLEAN", "boolean"),
    ("bool", "boolean"),
    ("DATE", "date"),
    ("DATETIME", "timestamptz"),
    ("TIMESTAMP", "timestamptz"),
    ("timestamp without time zone", "timestamp"),
    ("TIME", "time"),
    ("JSON", "jsonb"),
    ("UUID", "uuid"),
    ("unsigned", "text"),  # NUMERIC affinity but no known name: the catch-all
    ("money", "numeric"),
    ("geometry", "text"),
])
def test_declared_types_map_to_documented_targets(declared: str, sql: str) -> None:
    assert map_declared_type(declared).sql == sql


@pytest.mark.parametrize(("formatted", "kind", "limit"), [
    ("integer", Kind.INT4, None),
    ("smallint", Kind.INT2, None),
    ("character varying(30)", Kind.TEXT, 30),
    ("character(2)", Kind.TEXT, 2),
    ("numeric(10,2)", Kind.NUMERIC, None),
    ("timestamp(3) with time zone", Kind.TIMESTAMPTZ, None),
    ("timestamp without time zone", Kind.TIMESTAMP, None),
    ("jsonb", Kind.JSONB, None),
])
def test_existing_column_types_are_understood(formatted: str, kind: Kind, limit: int | None) -> None:
    parsed = parse_pg_type(formatted)
    assert (parsed.kind, parsed.max_length) == (kind, limit)


def test_numeric_typmod_of_existing_column() -> None:
    parsed = parse_pg_type("numeric(10,2)")
    assert (parsed.precision, parsed.scale) == (10, 2)


def test_enum_labels_make_an_enum_target() -> None:
    parsed = parse_pg_type("mood", enum_labels=("sad", "ok"))
    assert parsed.kind is Kind.ENUM and parsed.labels == ("sad", "ok")


def test_unsupported_target_type_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="inet is not supported"):
        parse_pg_type("inet")
