from __future__ import annotations

import pytest

from copier.casting import map_declared_type, parse_pg_type
from copier.catalog import Catalog, Column, ForeignKey, Index, Table
from copier.errors import PlanError
from copier.normalise import Options
from copier.planning import ExistingColumn, ExistingTable, build_plan, select_tables, translate_default


def table(name: str, *refs: str, pk: str | None = "id") -> Table:
    columns = [Column("id", "INTEGER", pk_position=1 if pk else 0)] + [Column(f"{r}_id", "INTEGER") for r in refs]
    return Table(name, tuple(columns), primary_key=(pk,) if pk else (),
                 foreign_keys=tuple(ForeignKey((f"{r}_id",), r, ("id",)) for r in refs))


def test_waves_follow_foreign_keys() -> None:
    catalog = Catalog((table("artist"), table("album", "artist"), table("track", "album", "genre"), table("genre")))
    plan = build_plan(catalog, {})
    assert plan.waves == (("artist", "genre"), ("album",), ("track",))
    assert plan.table("track").depends_on == ("album", "genre")


def test_self_reference_and_cycles_still_load() -> None:
    catalog = Catalog((table("employee", "employee"), table("a", "b"), table("b", "a"), table("c", "a")))
    plan = build_plan(catalog, {})
    assert plan.waves == (("a", "b", "employee"), ("c",))
    # Tables of a cycle wait for nothing (waiting for each other would never end).
    assert plan.table("a").depends_on == plan.table("b").depends_on == plan.table("employee").depends_on == ()
    assert plan.table("c").depends_on == ("a",)
    # Every reference, cyclic or not, becomes a foreign key added after the data.
    assert {(fk.table, fk.ref_table) for fk in plan.foreign_keys} == {
        ("employee", "employee"), ("a", "b"), ("b", "a"), ("c", "a")}


def test_tables_and_exclude_globs() -> None:
    assert select_tables(["auth_user", "auth_group", "files"], ["auth_*"], ["*_group"]) == ["auth_user"]
    with pytest.raises(PlanError, match="no table matches"):
        build_plan(Catalog((table("a"),)), {}, include=("zzz*",))


def test_reference_to_an_excluded_table_is_dropped_with_a_note() -> None:
    plan = build_plan(Catalog((table("artist"), table("album", "artist"))), {}, exclude=("artist",))
    assert plan.foreign_keys == ()
    assert "album: foreign key to artist dropped: that table is not migrated" in plan.notes


def test_integer_primary_key_becomes_identity_and_pk_after_data() -> None:
    plan = build_plan(Catalog((table("t"),)), {})
    column = plan.table("t").columns[0]
    assert column.identity and column.not_null and column.type.sql == "bigint"
    assert plan.table("t").primary_key == ("id",)


def test_existing_table_is_matched_by_name_and_case() -> None:
    existing = {"users": ExistingTable("users", (
        ExistingColumn("id", parse_pg_type("integer"), True, True),
        ExistingColumn("email", parse_pg_type("character varying(50)"), False, False),
        ExistingColumn("created", parse_pg_type("timestamp without time zone"), False, True),
    ))}
    source = Table("Users", (Column("ID", "INTEGER", pk_position=1), Column("Email", "TEXT")), primary_key=("ID",))
    plan = build_plan(Catalog((source,)), existing)
    planned = plan.table("Users")
    assert not planned.create and planned.target == "users"
    assert [(c.source, c.target, c.type.sql) for c in planned.columns] == [
        ("ID", "id", "integer"), ("Email", "email", "character varying(50)")]


def test_unmatched_column_is_an_error_before_data_moves() -> None:
    existing = {"t": ExistingTable("t", (ExistingColumn("id", parse_pg_type("integer"), True, False),))}
    source = Table("t", (Column("id", "INTEGER"), Column("extra", "TEXT")))
    with pytest.raises(PlanError, match="column 'extra' has no match in existing target table 't'"):
        build_plan(Catalog((source,)), existing)


def test_target_not_null_column_without_source_is_an_error() -> None:
    existing = {"t": ExistingTable("t", (ExistingColumn("id", parse_pg_type("integer"), True, False),
                                         ExistingColumn("tenant", parse_pg_type("integer"), True, False)))}
    with pytest.raises(PlanError, match="tenant are NOT NULL without a default"):
        build_plan(Catalog((Table("t", (Column("id", "INTEGER"),)),)), existing)


def test_long_names_get_a_unique_name_within_63_bytes() -> None:
    # Two 70-byte names sharing their first 63 bytes: PostgreSQL would truncate both to one.
    long_a, long_b = "x" * 68 + "_aaaa", "x" * 68 + "_bbbb"
    catalog = Catalog((table(long_a), Table(long_b, (Column("c" * 70, "TEXT"), Column("c" * 69 + "d", "TEXT"))),
                       table("short", long_a)))
    plan = build_plan(catalog, {})
    targets = [plan.table(long_a).target, plan.table(long_b).target]
    assert all(len(t.encode()) <= 63 for t in targets) and len(set(targets)) == 2
    columns = [c.target for c in plan.table(long_b).columns]
    assert all(len(c.encode()) <= 63 for c in columns) and len(set(columns)) == 2
    (fk,) = plan.foreign_keys
    assert (fk.target, fk.ref_target) == ("short", plan.table(long_a).target)
    assert any(long_a in note and "created as" in note for note in plan.notes)
    # Found under the same name by a later plan (verify, --resume) once it exists.
    existing = {t: ExistingTable(t, (ExistingColumn("id", parse_pg_type("bigint"), True, True),))
                for t in targets[:1]}
    assert build_plan(catalog, existing).table(long_a).create is False


def test_generated_names_collide_with_no_table_and_no_taken_name() -> None:
    users = Table("users", (Column("id", "INTEGER", pk_position=1), Column("email", "TEXT")), primary_key=("id",),
                  indexes=(Index("sqlite_autoindex_users_1", ("email",), True, (False,)),))
    catalog = Catalog((users, table("users_pkey"), table("users_id_seq")))
    plan = build_plan(catalog, {}, reserved=["users_email_key"])
    planned = plan.table("users")
    names = [t.target for t in plan.tables]
    names += [t.primary_key_name for t in plan.tables] + [i.name for t in plan.tables for i in t.indexes]
    names += [c.sequence for t in plan.tables for c in t.columns if c.sequence]
    assert len(names) == len(set(names)), names
    assert {"users", "users_pkey", "users_id_seq"} <= {t.target for t in plan.tables}
    assert planned.primary_key_name not in ("users_pkey", "users_email_key")
    assert planned.indexes[0].name != "users_email_key"


def test_cast_overrides_by_column_and_by_declared_type() -> None:
    source = Table("t", (Column("a", "intege"), Column("b", "intege")))
    plan = build_plan(Catalog((source,)), {}, casts={"t.a": "text", "INTEGE": "numeric"})
    assert [c.type.sql for c in plan.table("t").columns] == ["text", "numeric"]


def test_autoincrement_floor_comes_from_sqlite_sequence() -> None:
    source = Table("t", (Column("id", "INTEGER", pk_position=1),), primary_key=("id",),
                   autoincrement_seq=40)
    assert build_plan(Catalog((source,)), {}).table("t").sequence_floor == 40


def test_sqlite_autoindex_names_are_renamed_and_names_stay_unique() -> None:
    source = Table("t", (Column("a", "TEXT"), Column("b", "TEXT")), indexes=(
        Index("sqlite_autoindex_t_1", ("a",), True, (False,)), Index("t", ("b",), False, (False,))))
    names = [i.name for i in build_plan(Catalog((source,)), {}).table("t").indexes]
    assert names[0] == "t_a_key"
    assert names[1] != "t" and names[1].startswith("t_")  # an index may not share the table's name


@pytest.mark.parametrize(("default", "declared", "sql"), [
    ("0", "INTEGER", "0"),
    ("'0'", "INTEGER", "0"),
    ('""', "TEXT", "''"),
    ("'it''s'", "TEXT", "'it''s'"),
    ("1.5", "REAL", "1.5"),
    ("CURRENT_TIMESTAMP", "DATETIME", "CURRENT_TIMESTAMP"),
    ("current_date", "DATE", "CURRENT_DATE"),
    ("0", "DATETIME", "'1970-01-01T00:00:00+00:00'"),
    ("(1)", "BOOLEAN", "true"),
    ("X'00ff'", "BLOB", "'\\x00ff'"),
    ("NULL", "TEXT", None),
])
def test_literal_defaults_translate(default: str, declared: str, sql: str | None) -> None:
    assert translate_default(default, map_declared_type(declared), Options()) == (sql, None)


@pytest.mark.parametrize(("default", "declared"), [
    ("strftime('%Y-%m-%d', 'now')", "TIMESTAMP"),
    ("'\"0\"'", "INTEGER"),
    ("'abc'", "INTEGER"),
])
def test_untranslatable_defaults_are_dropped_with_a_note(default: str, declared: str) -> None:
    sql, note = translate_default(default, map_declared_type(declared), Options())
    assert sql is None and note is not None and "dropped" in note


@pytest.mark.parametrize(("style", "table", "column"), [
    ("keep", "InvoiceLine", "UnitPrice"), ("lower", "invoiceline", "unitprice"),
    ("snake", "invoice_line", "unit_price")])
def test_identifier_styles(style: str, table: str, column: str) -> None:
    source = Table("InvoiceLine", (Column("InvoiceLineId", "INTEGER", pk_position=1), Column("UnitPrice", "REAL")),
                   primary_key=("InvoiceLineId",))
    plan = build_plan(Catalog((source,)), {}, identifiers=style)
    (planned,) = plan.tables
    assert planned.target == table and planned.columns[1].target == column


def test_names_that_fold_to_one_are_an_error_before_any_data_moves() -> None:
    with pytest.raises(PlanError, match="'Track' and 'track' both become 'track'"):
        build_plan(Catalog((table("Track"), table("track"))), {}, identifiers="lower")
    columns = Table("t", (Column("UnitPrice", "REAL"), Column("unit_price", "REAL")))
    with pytest.raises(PlanError, match="columns of t: 'UnitPrice' and 'unit_price' both become 'unit_price'"):
        build_plan(Catalog((columns,)), {}, identifiers="snake")
