"""Hostile shapes that once hung a run or lost rows or tables: reference cycles, a file
that fails its first query, far-apart and extreme rowids, a column called rowid, names
PostgreSQL generates or truncates. Runs that could hang go through a subprocess with a
time limit, so a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from copier.reader import split_ranges

from .helpers import corpus_file, sqlite_db
from .pg import Target

TIME_LIMIT = 120


def run_cli(*args: object) -> subprocess.CompletedProcess[str]:
    """`python -m copier ...` in a subprocess; a hang raises TimeoutExpired (the test fails)."""
    return subprocess.run([sys.executable, "-m", "copier", *map(str, args)], capture_output=True, text=True,
                          timeout=TIME_LIMIT)


def migrate_cli(target: Target, source: Path, *extra: object) -> subprocess.CompletedProcess[str]:
    return run_cli("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--quiet", *extra)


# Every shape of reference cycle: each table references the next; row i of every table
# references row i of the table it points to, so every foreign key can be added.
CYCLES = {
    "two": [("x", "y"), ("y", "x")],
    "three": [("a", "b"), ("b", "c"), ("c", "a")],
    "self": [("employee", "employee")],
    "two cycles sharing a table": [("p", "q"), ("q", "p"), ("q2", "p"), ("p", "q2")],
}


def _cycle_db(path: Path, edges: list[tuple[str, str]]) -> Path:
    tables: dict[str, list[str]] = {}
    for child, parent in edges:
        tables.setdefault(child, []).append(parent)
        tables.setdefault(parent, [])
    statements = []
    for name, parents in tables.items():
        references = "".join(f", {p}_ref integer references {p}(id)" for p in parents)
        statements.append(f"create table {name}(id integer primary key{references})")
    rows = {name: [(i, *([i] * len(parents))) for i in range(1, 4)] for name, parents in tables.items()}
    return sqlite_db(path, *statements, rows=rows)


@pytest.mark.parametrize("shape", sorted(CYCLES))
def test_every_cycle_shape_loads_with_its_foreign_keys(shape: str, tmp_path: Path, target: Target) -> None:
    edges = CYCLES[shape]
    source = _cycle_db(tmp_path / "cycle.db", edges)
    done = migrate_cli(target, source)
    assert done.returncode == 0, done.stderr
    for child, parent in edges:
        assert target.count(child) == 3
        assert target.fetchval(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = $1::regclass "
            "AND confrelid = $2::regclass", f'"{target.schema}"."{child}"', f'"{target.schema}"."{parent}"') >= 1


@pytest.mark.parametrize("command", ["plan", "verify", "migrate"])
def test_truncated_file_fails_and_exits(command: str, tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    source.write_bytes(source.read_bytes()[:4096])  # the header survives, the schema does not
    extra = ["--skip-integrity-check"] if command == "migrate" else []
    dsn = [] if command == "plan" else ["--dsn", target.dsn]
    done = run_cli(command, source, *dsn, *extra)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"copier: error: {source}: corrupt or not an SQLite database: "
                                                "database disk image is malformed"]


@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40, unique=True), st.integers(1, 9))
def test_stripes_cover_every_rowid_exactly_once(rowids: list[int], readers: int) -> None:
    ranges = split_ranges((min(rowids), max(rowids)), readers)
    assert 1 <= len(ranges) <= readers
    stripes = [(r.first, r.last) for r in ranges if isinstance(r.first, int) and isinstance(r.last, int)]
    assert len(stripes) == len(ranges)  # rowid stripes: integer bounds on both sides
    for rowid in rowids:
        assert sum(first <= rowid <= last for first, last in stripes) == 1
    # Every bound fits a signed 64-bit SQLite parameter.
    assert all(-(2**63) <= b < 2**63 for stripe in stripes for b in stripe)


def test_extreme_and_far_apart_rowids_all_arrive(tmp_path: Path, target: Target) -> None:
    extremes = [-(2**63), -1, 0, 1797657063271174144, 2**63 - 1]
    source = sqlite_db(tmp_path / "far.db", "create table t(id integer primary key, v text)",
                       rows={"t": [(i, f"v{i}") for i in extremes]})
    done = migrate_cli(target, source, "--readers", 4, "--batch-size", 1)
    assert done.returncode == 0, done.stderr
    assert sorted(r[0] for r in target.fetch("SELECT id FROM t")) == extremes


def test_extreme_rowids_through_worker_processes(tmp_path: Path, target: Target) -> None:
    # Enough rows for worker processes, spread over the whole int64 range.
    step = (2**64 - 1) // 59_999
    ids = [-(2**63) + i * step for i in range(60_000)]
    source = sqlite_db(tmp_path / "wide.db", "create table t(id integer primary key, v integer)",
                       rows={"t": [(i, n) for n, i in enumerate(ids)]})
    done = migrate_cli(target, source, "--workers", 2)
    assert done.returncode == 0, done.stderr
    assert target.count("t") == 60_000
    assert target.fetchval("SELECT min(id)::text || ' ' || max(id)::text FROM t") == f"{ids[0]} {ids[-1]}"


def test_giant_row_ids_from_the_corpus(tmp_path: Path, target: Target) -> None:
    source = corpus_file("duckdb/giant_row_id.db", tmp_path)
    done = migrate_cli(target, source)
    assert done.returncode == 0, done.stderr
    assert sorted(r[0] for r in target.fetch("SELECT id FROM sparse_row_id")) == [0, 1797657063271174144]


def test_columns_called_rowid(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(
        tmp_path / "rowid.db",
        "create table one(rowid text, v text)",
        "create table all_three(rowid text, _rowid_ text, oid text, id integer primary key)",
        "create table keyless(rowid text, _rowid_ text, oid text)",
        rows={"one": [("r1", "a"), ("r2", "b")], "all_three": [("a", "b", "c", 7), ("d", "e", "f", 9)],
              "keyless": [("a", "b", "c"), ("d", "e", "f"), ("a", "b", "c")]})
    done = migrate_cli(target, source)
    assert done.returncode == 0, done.stderr
    assert sorted(tuple(r) for r in target.fetch("SELECT rowid, v FROM one")) == [("r1", "a"), ("r2", "b")]
    assert sorted(r[0] for r in target.fetch("SELECT id FROM all_three")) == [7, 9]
    assert sorted(tuple(r) for r in target.fetch('SELECT rowid, _rowid_, oid FROM keyless')) == [
        ("a", "b", "c"), ("a", "b", "c"), ("d", "e", "f")]


def test_names_postgres_would_generate_are_left_to_the_users_tables(tmp_path: Path, target: Target) -> None:
    long_name = "a_table_name_well_beyond_what_postgresql_keeps_in_an_identifier_xyz"
    source = sqlite_db(
        tmp_path / "names.db",
        "create table users(id integer primary key, email text unique)",
        "create table users_pkey(id integer primary key, a text)",
        "create table users_id_seq(id integer primary key, b text)",
        f"create table {long_name}(id integer primary key, user_id integer references users(id))",
        rows={"users": [(1, "a@b"), (2, "c@d")], "users_pkey": [(1, "x")], "users_id_seq": [(1, "y")],
              long_name: [(1, 2)]})
    report = tmp_path / "report.json"
    done = migrate_cli(target, source, "--report", report)
    assert done.returncode == 0, done.stderr
    assert target.count("users") == 2 and target.count("users_pkey") == 1 and target.count("users_id_seq") == 1
    assert target.fetchval("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'users' "
                           "AND indexdef LIKE 'CREATE UNIQUE INDEX % (email)'", target.schema) == 1
    shortened = target.fetchval("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace "
                                "WHERE nspname = $1 AND relname LIKE 'a_table_name%' AND relkind = 'r'",
                                target.schema)
    assert shortened is not None and len(shortened.encode()) <= 63
    assert target.count(shortened) == 1
    notes = json.loads(report.read_text())["notes"]
    assert any(long_name in note and shortened in note for note in notes)
    done = run_cli("verify", source, "--dsn", target.dsn, "--schema", target.schema)
    assert done.returncode == 0, done.stdout + done.stderr
    # The app can insert: the identity's sequence (not named users_id_seq) moved past the ids.
    assert target.fetchval("INSERT INTO users (email) VALUES ('new') RETURNING id") == 3


def test_source_is_untouched_by_a_cycle_run(tmp_path: Path, target: Target) -> None:
    source = _cycle_db(tmp_path / "cycle.db", CYCLES["two"])
    before = source.read_bytes()
    assert migrate_cli(target, source).returncode == 0
    assert source.read_bytes() == before
    with sqlite3.connect(source) as connection:
        assert connection.execute("select count(*) from x").fetchone() == (3,)


def test_first_and_last_representable_dates_arrive_as_themselves(tmp_path: Path, target: Target) -> None:
    edges = [("0001-01-01", "0001-01-01 00:00:00", "0001-01-01 00:00:00"),
             ("9999-12-31", "9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999"),
             ("2000-01-01", "2000-01-01 00:00:00", "2000-01-01 00:00:00")]
    source = sqlite_db(tmp_path / "dates.db",
                       "create table d(id integer primary key, day date, at datetime, wall text)",
                       rows={"d": [(n, *e) for n, e in enumerate(edges)]})
    done = migrate_cli(target, source, "--cast", "d.wall=timestamp without time zone")
    assert done.returncode == 0, done.stderr
    # Expected values from PostgreSQL's own parsing of the source text.
    for n, (day, at, wall) in enumerate(edges):
        assert target.fetchval("SELECT day = $2::text::date AND at = ($3::text || '+00')::timestamptz "
                               "AND wall = $4::text::timestamp AND isfinite(day) AND isfinite(at) FROM d WHERE id = $1",
                               n, day, at, wall) is True, day


def test_summary_says_verified_only_of_tables_that_loaded(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(
        tmp_path / "shop.db",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, at DATETIME)",
        "CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)",
        rows={"orders": [(1, "2021-01-01"), (2, "not a date")], "note": [(1, "hello")]})
    done = run_cli("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--on-error", "abort")
    assert done.returncode == 1
    assert "every table" not in done.stdout
    assert ("Verified 1 of 2 tables: their row counts and every row's content match the source. "
            "Not verified (not loaded): orders.") in done.stdout
    # The failed table's rejected row is not counted as written to the reject file.
    assert "rejected row(s) written" not in done.stdout


def test_every_row_a_duplicate_is_rejected_in_bounded_server_resources(tmp_path: Path, target: Target) -> None:
    # PostgreSQL's lock table holds 64 x max_connections entries: 8,715 savepoints kept
    # until commit would exhaust it ("out of shared memory").
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    assert migrate_cli(target, source, "--tables", "PlaylistTrack", "--tables", "Playlist",
                       "--tables", "Track", "--tables", "Album", "--tables", "Artist", "--tables", "Genre",
                       "--tables", "MediaType").returncode == 0
    rejects = tmp_path / "again.jsonl"
    done = migrate_cli(target, source, "--tables", "PlaylistTrack", "--if-exists", "append",
                       "--reject-file", rejects, "--no-verify")
    assert done.returncode == 3, done.stderr
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(records) == 8715
    assert all(r["reason"].startswith("duplicate key value violates unique constraint") for r in records)
    assert target.count("PlaylistTrack") == 8715


def test_rows_that_conflict_only_with_each_other(tmp_path: Path, target: Target) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'CREATE TABLE "{target.schema}".t (id integer PRIMARY KEY, v text)')
    source = sqlite_db(tmp_path / "dup.db", "create table t(id integer, v text)",
                       rows={"t": [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")]})
    rejects = tmp_path / "dup.jsonl"
    done = migrate_cli(target, source, "--reject-file", rejects, "--no-verify")
    assert done.returncode == 3, done.stderr
    assert sorted(tuple(r) for r in target.fetch("SELECT id, v FROM t")) == [(1, "a"), (2, "b"), (3, "d")]
    assert sorted(json.loads(line)["key"] for line in rejects.read_text().splitlines()) == [3, 5]


def test_virtual_tables_arrive_as_plain_tables_and_shadow_tables_stay_behind(tmp_path: Path, target: Target) -> None:
    report = tmp_path / "report.json"
    for name in ("fts.db", "rtree.db"):
        done = migrate_cli(target, corpus_file(f"duckdb/{name}", tmp_path), "--report", report)
        assert done.returncode == 0, done.stderr
    assert [tuple(r) for r in target.fetch("SELECT sender, title, body FROM email")] == [
        ("test@gmail.com", "Title", "Body")]
    # Coordinates as SQLite returns them (R*Tree stores 32-bit floats), written out here.
    assert sorted(tuple(r) for r in target.fetch('SELECT id, "minX", "maxX", "minY", "maxY" FROM demo_index')) == [
        (28215, -80.7812271118164, -80.60470581054688, 35.20881271362305, 35.297367095947266),
        (28216, -80.95728302001953, -80.84059143066406, 35.23591995239258, 35.367828369140625)]
    tables = {r[0] for r in target.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", target.schema)}
    assert tables == {"email", "demo_index"}
    notes = json.loads(report.read_text())["notes"]
    assert any("spatial index is not recreated" in n and "GiST" in n for n in notes)


def test_a_virtual_table_whose_module_cannot_load_is_a_named_problem(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "vt.db", "create table plain(id integer primary key)", rows={"plain": [(1,)]})
    with sqlite3.connect(source) as connection:
        connection.execute("PRAGMA writable_schema = ON")
        connection.execute("INSERT INTO sqlite_master VALUES ('table', 'notes', 'notes', 0, "
                           "'CREATE VIRTUAL TABLE notes USING nosuchmodule(body)')")
    done = run_cli("migrate", source, "--dsn", target.dsn, "--schema", target.schema)
    assert done.returncode == 1
    assert "notes: module nosuchmodule cannot be loaded by this SQLite library" in done.stdout
    assert "its rows were NOT copied" in done.stdout
    assert target.count("plain") == 1


def test_untyped_columns_get_the_narrowest_type_that_holds_their_values(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "untyped.db", "create table t(ints, mixed, reals, blobs, texts, empty)",
                       rows={"t": [(1, 1, 0.5, b"\x00", "a", None), (2**62, 2.5, 1.0, b"\x01", 7, None)]})
    done = migrate_cli(target, source)
    assert done.returncode == 0, done.stderr
    types = dict(target.fetch("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_schema = $1 AND table_name = 't'", target.schema))
    assert types == {"ints": "bigint", "mixed": "double precision", "reals": "double precision",
                     "blobs": "bytea", "texts": "text", "empty": "bytea"}
    assert sorted(tuple(r) for r in target.fetch("SELECT ints, mixed, texts FROM t")) == [
        (1, 1.0, "a"), (2**62, 2.5, "7")]
    plan = run_cli("plan", source)
    assert "t.mixed: no declared type; holds 1 integer, 1 real: double precision" in plan.stdout


def test_numeric_scale_rounds_as_postgres_and_precision_widens(tmp_path: Path, target: Target) -> None:
    values = [1234.565, 2.675, 12345678901.5, 0.125, -0.125, 7]
    source = sqlite_db(tmp_path / "money.db", "create table m(id integer primary key, amount numeric(10,2))",
                       rows={"m": list(enumerate(values))})
    report = tmp_path / "report.json"
    done = migrate_cli(target, source, "--report", report)
    assert done.returncode == 0, done.stderr
    assert target.fetchval("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attname = 'amount' "
                           "AND attrelid = $1::regclass", f'"{target.schema}".m') == "numeric(13,2)"
    # Expected: PostgreSQL's own rounding of each value's shortest decimal text.
    for n, value in enumerate(values):
        assert target.fetchval("SELECT amount = $2::text::numeric(13,2) FROM m WHERE id = $1", n, repr(value))
    document = json.loads(report.read_text())
    assert document["totals"]["values_rounded"] == 4  # 1234.565, 2.675, 0.125, -0.125
    plan = run_cli("plan", source)
    assert "m.amount: widened from numeric(10,2) to numeric(13,2)" in plan.stdout


def test_numeric_over_precision_into_an_existing_table_is_rejected(tmp_path: Path, target: Target) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'CREATE TABLE "{target.schema}".m (id integer, amount numeric(5,2))')
    source = sqlite_db(tmp_path / "over.db", "create table m(id integer primary key, amount numeric(10,2))",
                       rows={"m": [(1, 123.456), (2, 12345678.9)]})
    rejects = tmp_path / "over.jsonl"
    done = migrate_cli(target, source, "--reject-file", rejects)
    assert done.returncode == 3, done.stderr
    assert [tuple(r) for r in target.fetch("SELECT id, amount::text FROM m")] == [(1, "123.46")]
    (record,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert record["key"] == 2 and "out of range" in record["reason"]


def test_unique_collate_nocase_stays_case_insensitive(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(
        tmp_path / "nocase.db",
        "create table users(id integer primary key, email text collate nocase unique, nick text)",
        "create unique index users_nick on users(nick collate nocase)",
        "create table tags(name text collate nocase primary key) without rowid",
        rows={"users": [(1, "Ann@x.org", "ann")], "tags": [("Red",)]})
    report = tmp_path / "report.json"
    done = migrate_cli(target, source, "--report", report)
    assert done.returncode == 0, done.stderr
    # PostgreSQL refuses what SQLite would have refused: the same value in another case.
    for sql in (f"INSERT INTO \"{target.schema}\".users VALUES (2, 'ANN@X.ORG', 'b')",
                f"INSERT INTO \"{target.schema}\".users VALUES (3, 'b@x.org', 'ANN')",
                f"INSERT INTO \"{target.schema}\".tags VALUES ('RED')"):
        with pytest.raises(asyncpg.UniqueViolationError):
            target.execute(sql)
    notes = json.loads(report.read_text())["notes"]
    assert sum("COLLATE NOCASE in SQLite: created on lower()" in n for n in notes) == 3
