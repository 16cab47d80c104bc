"""Rows PostgreSQL refuses, found set-wise (copier/screening.py): each refused row rejected
with the reason naming its constraint, every other row loaded; what the model leaves out (a
trigger) still found, by bisection; an append rerun of a loaded table rejects every row and
leaves the table as it was. The targets hold a row first, so their constraints stay live
during the load (an empty table's are set aside, and met again when they are made again).

Every run is a subprocess with a time limit: a hang fails the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import sqlite_db
from .pg import Target

TIME_LIMIT = 180

# Rows of good padding: none, so the exact lane loads the table and each page is screened;
# or enough that the columnar lane does (tables of 1,000 rows or more), and the whole table
# is staged and screened at once.
SIZES = pytest.mark.parametrize("padding", [0, 2_000], ids=["pages", "whole-table"])


def migrate(target: Target, source: Path, rejects: Path, *extra: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn, "--schema",
                           target.schema, "--quiet", "--reject-file", str(rejects), *map(str, extra)],
                          capture_output=True, text=True, timeout=TIME_LIMIT)


def rejected(path: Path) -> dict[Any, tuple[str | None, str]]:
    """key -> (column, reason), from the reject file."""
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    found = {r["key"]: (r["column"], r["reason"]) for r in records}
    assert len(found) == len(records), "a row rejected twice"
    return found


@SIZES
def test_rows_each_constraint_refuses_are_rejected_with_its_name(tmp_path: Path, target: Target,
                                                                 padding: int) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'SET search_path TO "{target.schema}"; '
                   "CREATE TABLE parent (id integer PRIMARY KEY); INSERT INTO parent VALUES (1), (2); "
                   "CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent (id), "
                   "qty integer NOT NULL CONSTRAINT qty_positive CHECK (qty > 0), code text UNIQUE); "
                   "INSERT INTO child VALUES (100, 1, 1, 'existing')")
    source = sqlite_db(tmp_path / "c.db", "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER, "
                       "qty INTEGER, code TEXT)",
                       rows={"child": [(1, 1, 5, "a"), (2, 9, 5, "b"), (3, None, 5, "c"), (4, 2, None, "d"),
                                       (5, 2, -1, "e"), (6, 1, 1, "a"), (7, 1, 1, "existing"), (8, 2, 3, None),
                                       (9, 2, 3, None), (100, 1, 1, "z"), (101, 2, 0, "y")]
                                      + [(i, 2, 1, f"p{i}") for i in range(1_000, 1_000 + padding)]})
    rejects = tmp_path / "r.jsonl"
    done = migrate(target, source, rejects, "--tables", "child", "--if-exists", "append")
    assert done.returncode == 3, done.stderr  # rows rejected, the others loaded and verified
    assert rejected(rejects) == {
        2: (None, 'insert or update on table "child" violates foreign key constraint "child_parent_id_fkey" '
                  '(Key (parent_id)=(9) is not present in table "parent".)'),
        4: ("qty", 'null value in column "qty" of relation "child" violates not-null constraint'),
        5: (None, 'new row for relation "child" violates check constraint "qty_positive"'),
        6: (None, 'duplicate key value violates unique constraint "child_code_key" (Key (code)=(a) already exists.)'),
        7: (None, 'duplicate key value violates unique constraint "child_code_key" '
                  "(Key (code)=(existing) already exists.)"),
        100: (None, 'duplicate key value violates unique constraint "child_pkey" (Key (id)=(100) already exists.)'),
        101: (None, 'new row for relation "child" violates check constraint "qty_positive"'),
    }
    assert [tuple(r) for r in target.fetch("SELECT id, parent_id, qty, code FROM child ORDER BY id")] == [
        (1, 1, 5, "a"), (3, None, 5, "c"), (8, 2, 3, None), (9, 2, 3, None), (100, 1, 1, "existing")] + [
        (i, 2, 1, f"p{i}") for i in range(1_000, 1_000 + padding)]


@SIZES
def test_a_table_referencing_itself_finds_parents_among_the_rows(tmp_path: Path, target: Target,
                                                                 padding: int) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'SET search_path TO "{target.schema}"; '
                   "CREATE TABLE node (id integer PRIMARY KEY, parent_id integer REFERENCES node (id)); "
                   "INSERT INTO node VALUES (1, NULL)")
    # 3's parent comes before it, 6's after it (one statement: both stand); 4's is missing,
    # so 5, its child, and 8, 5's child, are refused too.
    source = sqlite_db(tmp_path / "n.db", "CREATE TABLE node (id INTEGER PRIMARY KEY, parent_id INTEGER)",
                       rows={"node": [(2, 1), (3, 2), (4, 99), (5, 4), (6, 7), (7, 1), (8, 5)]
                             + [(i, 1) for i in range(1_000, 1_000 + padding)]})
    rejects = tmp_path / "r.jsonl"
    done = migrate(target, source, rejects, "--if-exists", "append")
    assert done.returncode == 3, done.stderr

    def orphan(parent: int) -> tuple[None, str]:
        return None, ('insert or update on table "node" violates foreign key constraint "node_parent_id_fkey" '
                      f'(Key (parent_id)=({parent}) is not present in table "node".)')

    assert rejected(rejects) == {4: orphan(99), 5: orphan(4), 8: orphan(5)}
    assert [tuple(r) for r in target.fetch("SELECT id, parent_id FROM node ORDER BY id")] == [
        (1, None), (2, 1), (3, 2), (6, 7), (7, 1)] + [(i, 1) for i in range(1_000, 1_000 + padding)]


@SIZES
def test_a_refusal_the_model_does_not_know_falls_back_to_bisection(tmp_path: Path, target: Target,
                                                                    padding: int) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'SET search_path TO "{target.schema}"; '
                   "CREATE TABLE parent (id integer PRIMARY KEY); INSERT INTO parent VALUES (1); "
                   "CREATE TABLE item (id integer PRIMARY KEY, parent_id integer REFERENCES parent (id)); "
                   "INSERT INTO item VALUES (1000, 1); "
                   "CREATE FUNCTION no_thirteens() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF NEW.id % 13 = 0 THEN RAISE EXCEPTION 'unlucky row %', NEW.id USING ERRCODE = 'check_violation'; "
                   "END IF; RETURN NEW; END $$; "
                   "CREATE TRIGGER no_thirteens BEFORE INSERT ON item FOR EACH ROW EXECUTE FUNCTION no_thirteens()")
    # Row 20's parent is missing; the padding's ids are no multiples of 13.
    rows = [(i, 2 if i == 20 else 1) for i in range(1, 41)] + [(2_000 + 13 * i + 1, 1) for i in range(padding)]
    source = sqlite_db(tmp_path / "i.db", "CREATE TABLE item (id INTEGER PRIMARY KEY, parent_id INTEGER)",
                       rows={"item": rows})
    rejects = tmp_path / "r.jsonl"
    done = migrate(target, source, rejects, "--if-exists", "append")
    assert done.returncode == 3, done.stderr
    assert rejected(rejects) == {
        13: (None, "unlucky row 13"), 26: (None, "unlucky row 26"), 39: (None, "unlucky row 39"),
        20: (None, 'insert or update on table "item" violates foreign key constraint "item_parent_id_fkey" '
                   '(Key (parent_id)=(2) is not present in table "parent".)')}
    assert [r[0] for r in target.fetch("SELECT id FROM item ORDER BY id")] == [
        i for i in range(1, 41) if i not in (13, 20, 26, 39)] + [1000] + [2_000 + 13 * i + 1 for i in range(padding)]


def test_an_append_rerun_rejects_every_row_and_leaves_the_table_as_it_was(tmp_path: Path, target: Target) -> None:
    rows = [(i, f"name {i}", i * 0.5) for i in range(1, 12_001)]
    source = sqlite_db(tmp_path / "t.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, x REAL)",
                       rows={"t": rows})
    first = tmp_path / "first.jsonl"
    assert migrate(target, source, first).returncode == 0
    before = target.fetchval("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t")
    # Statements writing into t, counted by a sequence (a rolled-back COPY's count stays).
    target.execute(f'SET search_path TO "{target.schema}"; CREATE SEQUENCE writes; '
                   "CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN PERFORM nextval('\"{target.schema}\".writes'); RETURN NULL; END $$; "
                   "CREATE TRIGGER counted BEFORE INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION count_write()")
    rejects = tmp_path / "again.jsonl"
    done = migrate(target, source, rejects, "--if-exists", "append", "--batch-size", "5000")
    assert done.returncode == 3, done.stderr
    # One: the INSERT of the rows that stand (none). Not a COPY first: row 1 is in t already.
    assert target.fetchval("SELECT last_value FROM writes") == 1
    assert rejected(rejects) == {
        i: (None, f'duplicate key value violates unique constraint "t_pkey" (Key (id)=({i}) already exists.)')
        for i in range(1, 12_001)}
    assert target.count("t") == 12_000
    assert target.fetchval("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t") == before


def test_on_error_abort_names_the_first_refused_row(tmp_path: Path, target: Target) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'SET search_path TO "{target.schema}"; '
                   "CREATE TABLE parent (id integer PRIMARY KEY); INSERT INTO parent VALUES (1); "
                   "CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent (id)); "
                   "INSERT INTO child VALUES (1000, 1)")
    source = sqlite_db(tmp_path / "a.db", "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER)",
                       rows={"child": [(1, 1), (2, 1), (3, 5), (4, 6)]})
    done = migrate(target, source, tmp_path / "r.jsonl", "--tables", "child", "--if-exists", "append",
                   "--on-error", "abort")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        'copier: error: child: table child: row 3: insert or update on table "child" violates foreign key '
        'constraint "child_parent_id_fkey" (Key (parent_id)=(5) is not present in table "parent".) '
        "(hint: --on-error reject loads the other rows) (table rolled back)"]
    assert [r[0] for r in target.fetch("SELECT id FROM child")] == [1000]


def test_progress_of_a_refused_load_never_passes_its_total(tmp_path: Path, target: Target) -> None:
    """The load refused, undone and done again: its bar is taken back, not counted twice
    (it once said "20,000 of 10,000 rows")."""
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'SET search_path TO "{target.schema}"; CREATE TABLE t (id integer PRIMARY KEY, v text); '
                   "INSERT INTO t VALUES (7, 'there')")
    source = sqlite_db(tmp_path / "p.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                       rows={"t": [(i, f"v{i}") for i in range(1, 3_001)]})
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn, "--schema",
                           target.schema, "--if-exists", "append", "--no-verify", "--reject-file",
                           str(tmp_path / "r.jsonl")], capture_output=True, text=True, timeout=TIME_LIMIT)
    assert done.returncode == 3, done.stderr
    counted = [line.split(": ", 2)[2].split(" rows")[0] for line in done.stderr.splitlines()
               if line.startswith("copier: t: ") and " of " in line]
    assert counted, done.stderr
    for shown in counted:
        rows, total = (int(n.replace(",", "")) for n in shown.split(" of "))
        assert rows <= total == 3_000, shown
    assert rejected(tmp_path / "r.jsonl") == {
        7: (None, 'duplicate key value violates unique constraint "t_pkey" (Key (id)=(7) already exists.)')}
    assert target.count("t") == 3_000


@SIZES
def test_an_upsert_rejects_the_rows_the_table_refuses_and_upserts_the_others(tmp_path: Path, target: Target,
                                                                             padding: int) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'SET search_path TO "{target.schema}"; '
                   "CREATE TABLE parent (id integer PRIMARY KEY); INSERT INTO parent VALUES (1), (2); "
                   "CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent (id), "
                   "qty integer NOT NULL CONSTRAINT qty_positive CHECK (qty > 0), note text); "
                   "INSERT INTO child VALUES (1, 1, 1, 'old 1'), (50, 2, 7, 'old 50')")
    source = sqlite_db(tmp_path / "u.db", "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER, "
                       "qty INTEGER, note TEXT)",
                       rows={"child": [(1, 2, 5, "new 1"), (2, 9, 5, "orphan"), (3, 1, None, "no qty"),
                                       (4, 1, -1, "negative"), (5, 1, 2, "five"), (50, 9, 1, "orphan update")]
                                      + [(i, 2, 1, f"p{i}") for i in range(1_000, 1_000 + padding)]})
    rejects, report = tmp_path / "r.jsonl", tmp_path / "report.json"
    done = migrate(target, source, rejects, "--tables", "child", "--if-exists", "upsert", "--report", report,
                   "--no-verify")
    assert done.returncode == 3, done.stderr  # rows rejected, the others upserted

    def orphan(parent: int) -> tuple[None, str]:
        return None, ('insert or update on table "child" violates foreign key constraint "child_parent_id_fkey" '
                      f'(Key (parent_id)=({parent}) is not present in table "parent".)')

    assert rejected(rejects) == {
        2: orphan(9), 3: ("qty", 'null value in column "qty" of relation "child" violates not-null constraint'),
        4: (None, 'new row for relation "child" violates check constraint "qty_positive"'), 50: orphan(9)}
    # 1 updated, 5 inserted, 50 as it was.
    assert [tuple(r) for r in target.fetch("SELECT id, parent_id, qty, note FROM child ORDER BY id")] == [
        (1, 2, 5, "new 1"), (5, 1, 2, "five"), (50, 2, 7, "old 50")] + [
        (i, 2, 1, f"p{i}") for i in range(1_000, 1_000 + padding)]
    child = next(t for t in json.loads(report.read_text())["tables"] if t["table"] == "child")
    assert (child["rows_read"], child["rows_written"], child["rows_rejected"]) == (6 + padding, 2 + padding, 4)


@SIZES
def test_an_upsert_into_a_table_no_column_names_rejects_by_source_key(tmp_path: Path, target: Target,
                                                                      padding: int) -> None:
    """A composite primary key and no rowid column in the target: the refused rows are found
    page by page and named by their rowids in the source; the others upserted."""
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'SET search_path TO "{target.schema}"; '
                   "CREATE TABLE parent (id integer PRIMARY KEY); INSERT INTO parent VALUES (1), (2); "
                   "CREATE TABLE pair (a integer, b integer, parent_id integer REFERENCES parent (id), "
                   "qty integer NOT NULL CONSTRAINT qty_positive CHECK (qty > 0), note text, PRIMARY KEY (a, b)); "
                   "INSERT INTO pair VALUES (1, 1, 1, 1, 'old 1'), (5, 5, 2, 7, 'old 5')")
    # Rowids 1, 2, ... in this order.
    rows = [(1, 1, 2, 5, "new 1"), (1, 2, 9, 5, "orphan"), (1, 3, 1, None, "no qty"), (1, 4, 1, -1, "negative"),
            (1, 5, 1, 2, "fine"), (5, 5, 9, 1, "orphan update")] + [(2, i, 2, 1, f"p{i}") for i in range(padding)]
    source = sqlite_db(tmp_path / "u.db", "CREATE TABLE pair (a INTEGER, b INTEGER, parent_id INTEGER, "
                       "qty INTEGER, note TEXT, PRIMARY KEY (a, b))", rows={"pair": rows})
    rejects, report = tmp_path / "r.jsonl", tmp_path / "report.json"
    done = migrate(target, source, rejects, "--tables", "pair", "--if-exists", "upsert", "--report", report,
                   "--no-verify")
    assert done.returncode == 3, done.stderr  # rows rejected, the others upserted
    orphan = (None, 'insert or update on table "pair" violates foreign key constraint "pair_parent_id_fkey" '
                    '(Key (parent_id)=(9) is not present in table "parent".)')
    assert rejected(rejects) == {
        2: orphan, 3: ("qty", 'null value in column "qty" of relation "pair" violates not-null constraint'),
        4: (None, 'new row for relation "pair" violates check constraint "qty_positive"'), 6: orphan}
    assert [json.loads(line)["key"] for line in rejects.read_text().splitlines()] == [2, 3, 4, 6]
    # (1, 1) updated, (1, 5) inserted, (5, 5) as it was.
    assert [tuple(r) for r in target.fetch("SELECT a, b, parent_id, qty, note FROM pair ORDER BY a, b")] == [
        (1, 1, 2, 5, "new 1"), (1, 5, 1, 2, "fine"), *((2, i, 2, 1, f"p{i}") for i in range(padding)),
        (5, 5, 2, 7, "old 5")]
    pair = next(t for t in json.loads(report.read_text())["tables"] if t["table"] == "pair")
    assert (pair["rows_read"], pair["rows_written"], pair["rows_rejected"]) == (6 + padding, 2 + padding, 4)
