"""Small tables of one wave load together (tableload.load_group): one transaction, one
statement for their tables and one for their keys. Each table still gets what it gets
alone: its rows, rejects, keys, sequence and state record; and a table that fails does not
take the others of its group down."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from copier import load, tableload
from copier.casting import Kind, TargetType
from copier.normalise import Converter, Options, converter_for
from copier.planning import TablePlan

from .helpers import invoke, migrate, read_jsonl, sqlite_db
from .pg import Target


class GroupSpy:
    """Records each group attempt: its tables, and whether it stood."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[tuple[list[str], bool]] = []
        real = tableload._group_attempt

        async def spying(run: tableload.Run, tables: Sequence[TablePlan]) -> Any:
            try:
                result = await real(run, tables)
            except BaseException:
                self.attempts.append(([t.name for t in tables], False))
                raise
            self.attempts.append(([t.name for t in tables], True))
            return result

        monkeypatch.setattr(tableload, "_group_attempt", spying)


def ten_tables(path: Path, bad: dict[str, list[tuple[object, ...]]] | None = None) -> Path:
    statements = [f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY, name TEXT, at DATETIME)" for n in range(10)]
    rows: dict[str, list[tuple[object, ...]]] = {
        f"t{n}": [(k, f"row {k}", f"2024-01-0{k} 10:00:00") for k in range(1, 4)] for n in range(10)}
    rows.update(bad or {})
    return sqlite_db(path, *statements, "CREATE UNIQUE INDEX t4_at ON t4 (at)", rows=rows)


def test_small_tables_load_together_each_with_its_keys_rejects_sequence_and_state(
        tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = GroupSpy(monkeypatch)
    db = ten_tables(tmp_path / "ten.db", {
        "t3": [(1, "ok", "2024-01-01 10:00:00"), (2, "bad", "not a date"), (7, "ok", None)],
        # Distinct text to SQLite, one timestamp to PostgreSQL: the unique index cannot be built.
        "t4": [(1, "a", "2024-01-01 10:00:00"), (2, "b", "2024-01-01T10:00:00")],
    })
    rejects = tmp_path / "rejects.jsonl"
    result = migrate(target, db, "--jobs", "2", "--report", tmp_path / "r.json", "--reject-file", rejects)
    assert result.exit_code == 1, result.output  # the index warning
    assert sorted(spy.attempts) == [([f"t{n}" for n in range(5)], True), ([f"t{n}" for n in range(5, 10)], True)]

    report = json.loads((tmp_path / "r.json").read_text())
    tables = {t["table"]: t for t in report["tables"]}
    assert {name: (t["status"], t["rows_written"], t["rows_rejected"]) for name, t in tables.items()} == {
        **{f"t{n}": ("done", 3, 0) for n in range(10)}, "t3": ("done", 2, 1), "t4": ("done", 2, 0)}
    assert tables["t4"]["warnings"] == [
        'index t4_at not added: could not create unique index "t4_at" (Key (at)=(2024-01-01 10:00:00+00) is '
        "duplicated.)"]
    assert all(not t["warnings"] for name, t in tables.items() if name != "t4")
    assert [(r["table"], r["key"], r["column"]) for r in read_jsonl(rejects)] == [("t3", 2, "at")]

    keyed = target.fetch("SELECT conrelid::regclass::text AS t FROM pg_constraint WHERE contype = 'p' "
                         "AND connamespace = $1::regnamespace ORDER BY 1", target.schema)
    assert len(keyed) == 10
    # Each identity continues after its table's largest key.
    assert target.fetchval("SELECT nextval(pg_get_serial_sequence('t3', 'id'))") == 8
    assert target.fetchval("SELECT nextval(pg_get_serial_sequence('t9', 'id'))") == 4
    recorded = target.fetch("SELECT source_table, status, rows_written, rows_rejected FROM copier.tables "
                            "WHERE target_schema = $1 ORDER BY source_table", target.schema)
    assert [tuple(r) for r in recorded] == [(f"t{n}", "done", *((2, 1) if n == 3 else (2, 0) if n == 4 else (3, 0)))
                                            for n in range(10)]
    verified = invoke("verify", db, "--dsn", target.dsn, "--schema", target.schema)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.endswith("10 of 10 tables verified\n")


def test_a_table_that_fails_does_not_take_its_group_down(tmp_path: Path, target: Target,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    spy = GroupSpy(monkeypatch)
    db = ten_tables(tmp_path / "ten.db", {"t2": [(1, "bad", "not a date")]})
    sqlite_db(db, "CREATE TABLE child (id INTEGER PRIMARY KEY, t2_id INTEGER REFERENCES t2 (id))",
              rows={"child": [(1, 1)]})
    result = migrate(target, db, "--jobs", "1", "--on-error", "abort")
    assert result.exit_code == 1
    # One group of the ten (--jobs 1): undone by t2, then each table on its own.
    assert spy.attempts == [([f"t{n}" for n in range(10)], False)]
    assert not target.exists("t2") and not target.exists("child")
    assert all(target.count(f"t{n}") == 3 for n in range(10) if n != 2)
    assert "copier: error: child: not loaded: table t2 it references failed" in result.stderr
    keyed = target.fetchval("SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
                            "AND connamespace = $1::regnamespace", target.schema)
    assert keyed == 9


def test_a_row_postgresql_refuses_sends_each_table_of_the_group_alone(
        tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a group the rows load without savepoints; a row PostgreSQL refuses (here a NUL a
    broken converter lets through) undoes the group, and each table loads again alone,
    where the refused row is bisected out and rejected."""
    spy = GroupSpy(monkeypatch)
    real = converter_for

    def letting_nul_through(target_type: TargetType, options: Options) -> Converter:
        converter = real(target_type, options)
        if target_type.kind is not Kind.TEXT:
            return converter
        return replace(converter, ready_types=frozenset(), bulk=None,
                       convert=lambda v: "poisoned\x00" if v == "poison" else converter.convert(v))

    monkeypatch.setattr(load, "converter_for", letting_nul_through)
    db = ten_tables(tmp_path / "ten.db", {"t6": [(1, "ok", None), (2, "poison", None), (3, "ok", None)]})
    rejects = tmp_path / "rejects.jsonl"
    result = migrate(target, db, "--jobs", "1", "--reject-file", rejects)
    assert result.exit_code == 3, result.output  # rejected rows, and verified
    assert spy.attempts == [([f"t{n}" for n in range(10)], False)]
    assert [target.count(f"t{n}") for n in range(10)] == [3] * 6 + [2] + [3] * 3
    (record,) = read_jsonl(rejects)
    assert (record["table"], record["key"]) == ("t6", 2)
    assert "0x00" in record["reason"]
