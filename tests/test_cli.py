"""What a user sees: one clear line and exit code 2 for the errors they will hit,
the summary, the JSON report, and the plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .helpers import corpus_file, invoke, migrate, sqlite_db
from .pg import Target, with_database, with_user


def test_missing_file(tmp_path: Path, target: Target) -> None:
    result = invoke("migrate", tmp_path / "nope.db", "--dsn", target.dsn)
    assert result.exit_code == 2
    assert result.stderr == f"copier: error: {tmp_path / 'nope.db'}: no such file\n"


def test_not_a_sqlite_file(tmp_path: Path, target: Target) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello, I am a text file")
    result = invoke("migrate", path, "--dsn", target.dsn)
    assert result.exit_code == 2
    assert result.stderr == f"copier: error: {path}: not an SQLite database (or encrypted)\n"


def test_postgres_unreachable_names_host_and_hides_password(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path / "a.db", "CREATE TABLE t (x)")
    result = invoke("migrate", db, "--dsn", "postgresql://bob:s3cret-pw@127.0.0.1:1/app")
    assert result.exit_code == 2
    assert result.stderr.startswith("copier: error: cannot reach PostgreSQL at 127.0.0.1:1: ")
    assert len(result.stderr.splitlines()) == 1
    assert "s3cret-pw" not in result.output


def test_database_missing(tmp_path: Path, target: Target) -> None:
    db = sqlite_db(tmp_path / "a.db", "CREATE TABLE t (x)")
    dsn = with_database(target.dsn, "no_such_database_here")
    result = invoke("migrate", db, "--dsn", dsn)
    assert result.exit_code == 2
    assert 'database "no_such_database_here" does not exist' in result.stderr
    assert "createdb" in result.stderr


def test_dsn_from_environment_in_sqlalchemy_form(tmp_path: Path, target: Target, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db = sqlite_db(tmp_path / "a.db", "CREATE TABLE t (x INTEGER)", rows={"t": [(1,), (2,)]})
    monkeypatch.setenv("DATABASE_URL", target.dsn.replace("postgresql://", "postgresql+psycopg://"))
    result = invoke("migrate", db, "--schema", target.schema, "--quiet")
    assert result.exit_code == 0, result.output
    assert target.count("t") == 2


def test_summary_and_report(tmp_path: Path, target: Target) -> None:
    source = corpus_file("pgloader/storage.sqlite", tmp_path)
    report = tmp_path / "report.json"
    result = invoke("migrate", source, "--dsn", with_user(target.dsn, "postgres", "pw-in-dsn"),
                    "--schema", target.schema, "--report", report, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # First, where it writes (user@host:port/db), never the password.
    database = urlsplit(target.dsn).path.lstrip("/")
    assert lines[0].startswith("target: postgres@") and lines[0].endswith(
        f"/{database}, schema {target.schema} (from --dsn)")
    lines = lines[1:]
    assert lines[0].split() == ["table", "rows", "read", "written", "rejected", "errors", "seconds", "rows/s",
                                "status"]
    auth_event = next(line for line in lines if line.startswith("auth_event "))
    assert auth_event.split()[1:5] == ["15", "15", "0", "0"] and auth_event.endswith("done")
    assert lines[-3].split()[:4] == ["TOTAL", "35", "35", "0"]
    assert lines[-1] == "Verified: every table's row count and every row's content match the source."
    document = json.loads(report.read_text())
    assert document["totals"]["rows_written"] == 35 and document["totals"]["tables"] == 9
    assert document["flags"]["batch_size"] == 2
    assert document["verified"] is True
    assert "pw-in-dsn" not in report.read_text() and "pw-in-dsn" not in result.output
    assert {t["table"]: t["rows_written"] for t in document["tables"]}["auth_membership"] == 6


def test_failed_table_rolls_back_dependants_skip_others_land(tmp_path: Path, target: Target) -> None:
    db = sqlite_db(
        tmp_path / "shop.db",
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id), at DATETIME)",
        "CREATE TABLE item (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id))",
        "CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)",
        rows={"customer": [(1, "ann")], "orders": [(1, 1, "2021-01-01"), (2, 1, "not a date")],
              "item": [(1, 1)], "note": [(1, "hello")]},
    )
    result = migrate(target, db, "--on-error", "abort", "--batch-size", "1")
    assert result.exit_code == 1
    assert not target.exists("orders")  # created in the table's transaction: rolled back with it
    assert not target.exists("item")
    assert target.count("customer") == 1 and target.count("note") == 1
    assert "copier: error: item: not loaded: table orders it references failed" in result.stderr


def test_autoincrement_sequence_never_reuses_deleted_ids(tmp_path: Path, target: Target) -> None:
    db = sqlite_db(tmp_path / "seq.db", "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)",
                   rows={"t": [(1, "a"), (2, "b"), (3, "c")]})
    import sqlite3

    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM t WHERE id = 3")  # sqlite_sequence still says 3
    assert migrate(target, db).exit_code == 0
    assert target.fetchval('INSERT INTO t (v) VALUES ($1) RETURNING id', "d") == 4


def test_hostile_identifiers_survive_exactly(tmp_path: Path, target: Target) -> None:
    db = sqlite_db(
        tmp_path / "names.db",
        'CREATE TABLE "select" ("from" INTEGER PRIMARY KEY, "Mixed Case" TEXT, "we""ird.name" TEXT, '
        '"naïve 名前" TEXT, "x; DROP TABLE t; --" TEXT)',
        'CREATE TABLE "a.b" ("id" INTEGER PRIMARY KEY, "sel" INTEGER REFERENCES "select"("from"))',
        'CREATE INDEX "ix ""quoted""" ON "select" ("Mixed Case")',
        rows={"select": [(1, "A", "B", "C", "D")], "a.b": [(1, 1)]},
    )
    assert migrate(target, db).exit_code == 0
    columns = [r[0] for r in target.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum",
        f'"{target.schema}"."select"')]
    assert columns == ["from", "Mixed Case", 'we"ird.name', "naïve 名前", "x; DROP TABLE t; --"]
    assert target.fetch('SELECT * FROM "select"')[0][4] == "D"
    assert target.count("a.b") == 1
    assert target.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = $1", 'ix "quoted"') == 1


def test_plan_prints_waves_and_mapping_touching_nothing(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    result = invoke("plan", source, "--dsn", target.dsn, "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert "Wave 1: Artist, Employee, Genre, MediaType, Playlist" in result.stdout
    assert "Wave 4: InvoiceLine, PlaylistTrack" in result.stdout
    assert "  Total                    NUMERIC(10,2)      -> Total numeric(10,2) not null" in result.stdout
    assert "  InvoiceDate              DATETIME           -> InvoiceDate timestamptz not null" in result.stdout
    assert not target.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", target.schema)


def test_both_console_scripts_and_module_run() -> None:
    for command in (["copier", "--help"], ["sqlite2pg", "--help"], [sys.executable, "-m", "copier", "--help"]):
        executable = command if command[0] == sys.executable else [str(Path(sys.executable).parent / command[0]),
                                                                    *command[1:]]
        done = subprocess.run(executable, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "migrate" in done.stdout


def test_permission_denied_is_one_line_before_any_data_moves(tmp_path: Path, target: Target) -> None:
    role = f"copier_limited_{target.schema}"
    target.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        db = sqlite_db(tmp_path / "a.db", "CREATE TABLE t (x INTEGER)", rows={"t": [(1,)]})
        limited = with_user(target.dsn, role)
        result = invoke("migrate", db, "--dsn", limited, "--schema", "public")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"copier: error: permission denied: user {role} cannot create tables "
                                        "in schema 'public'")
        result = invoke("migrate", db, "--dsn", limited, "--schema", target.schema)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"copier: error: cannot create schema '{target.schema}'")
    finally:
        target.execute(f'DROP ROLE "{role}"')


def test_progress_bars_on_a_terminal(tmp_path: Path, target: Target) -> None:
    import os
    import pty

    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120x40 terminal
    copier = str(Path(sys.executable).parent / "copier")
    done = subprocess.run([copier, "migrate", str(source), "--dsn", target.dsn, "--schema", target.schema],
                          stderr=follower, stdout=subprocess.PIPE, text=True, timeout=120)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert done.returncode == 0
    text = screen.decode(errors="replace")
    assert "all tables" in text and "15.6k/15.6k" in text  # the overall bar, finished
    assert "PlaylistTrack" in text  # a per-table bar
    # Bars after the load too (they clear when done, so their last state is not on screen).
    assert "\rforeign keys:" in text and "\rverify:" in text and "\rTrack keys:" in text
    assert "TOTAL" in done.stdout


@pytest.mark.parametrize(("command", "function"), [("plan", "plan"), ("verify", "verify"), ("status", "status")])
def test_an_unexpected_error_is_one_line_in_every_command(command: str, function: str, tmp_path: Path,
                                                           target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    from copier import pipeline

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, function, broken)
    source = sqlite_db(tmp_path / "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    args = [] if command == "status" else [source]
    result = invoke(command, *args, "--dsn", target.dsn)
    assert result.exit_code == 1
    assert result.stderr == "copier: internal error: RuntimeError: a bug (rerun with --debug for details)\n"


def test_migrate_help_is_grouped_in_panels_without_type_placeholders() -> None:
    import os

    done = subprocess.run([sys.executable, "-m", "copier", "migrate", "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0
    titles = [line.split("─")[1].strip() for line in done.stdout.splitlines() if line.startswith("╭─ ")]
    assert titles == ["Arguments", "Source", "Target", "Tables", "Safety", "Speed", "Output"]
    assert "<bool>" not in done.stdout and "list[" not in done.stdout
    assert any(line.split()[1:4] == ["--tables", "-t", "GLOB"] for line in done.stdout.splitlines())
    assert len(done.stdout.splitlines()) < 200  # 250 lines before the panels, at 80 columns


def test_tables_matching_nothing_lists_the_tables_there_are(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn,
                           "--schema", target.schema, "--tables", "track*"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "copier: error: no table matches --tables track* (hint: the source's tables: Album, Artist, Customer, "
        "Employee, Genre, Invoice, InvoiceLine, MediaType, Playlist, PlaylistTrack, Track)")


def test_the_process_ends_without_teardown_yet_says_everything(tmp_path: Path, target: Target) -> None:
    """cli.end_process skips the interpreter's teardown: the output, the report and the exit
    code must still be whole (a large plan through a pipe, a migrate's report, a refusal's code)."""
    tables = [f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT, at DATETIME)" for i in range(300)]
    source = sqlite_db(tmp_path / "many.db", *tables)
    done = subprocess.run([sys.executable, "-m", "copier", "plan", str(source), "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["tables"]) == 300
    small = sqlite_db(tmp_path / "small.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                      rows={"t": [(1, "a"), (2, "b")]})
    report = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(small), "--dsn", target.dsn, "--schema",
                           target.schema, "--quiet", "--report", str(report)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["totals"]["rows_written"] == 2
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(tmp_path / "missing.db"), "--dsn",
                           target.dsn], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "missing.db" in done.stderr
