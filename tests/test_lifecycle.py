"""A table's life in the cases no other test reaches: WITHOUT ROWID tables over many pages,
resuming a table left `loaded`, foreign keys validated at once or left unvalidated by an
interrupted run, a foreign key to a table that already exists, the source
changing under worker processes, non-default --jobs/--queue-depth, and proof that worker
processes did the loading."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from .helpers import corpus_file, invoke, migrate, read_jsonl, sqlite_db
from .pg import Target


def verify(target: Target, source: Path) -> None:
    result = invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema)
    assert result.exit_code == 0, result.output


def test_without_rowid_table_over_many_pages_with_a_reject(tmp_path: Path, target: Target) -> None:
    rows = [(f"k{i:05d}", i % 7, "2021-03-04" if i != 1234 else "not a date") for i in range(2500)]
    source = sqlite_db(tmp_path / "wr.db",
                       "CREATE TABLE w (name TEXT, part INTEGER, day DATE, PRIMARY KEY (name, part)) WITHOUT ROWID",
                       rows={"w": rows})
    result = migrate(target, source, "--batch-size", "100")
    assert result.exit_code == 3, result.output
    assert target.count("w") == 2499
    (reject,) = read_jsonl(tmp_path / "wr.rejects.jsonl")
    assert reject["key"] == ["k01234", 1234 % 7] and reject["column"] == "day"
    assert target.fetchval("SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = $1::regclass",
                           f'"{target.schema}".w') == 1
    verify(target, source)


def test_resume_finishes_the_keys_of_a_table_left_loaded(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    assert migrate(target, source, "--no-verify").exit_code == 0
    # As if the run stopped after Track's data committed, before its keys and indexes.
    target.execute('ALTER TABLE "InvoiceLine" DROP CONSTRAINT "InvoiceLine_TrackId_fkey"')
    target.execute('ALTER TABLE "PlaylistTrack" DROP CONSTRAINT "PlaylistTrack_TrackId_fkey"')
    target.execute('ALTER TABLE "Track" DROP CONSTRAINT "Track_pkey"')
    target.execute('DROP INDEX "IFK_TrackAlbumId"')
    target.execute("UPDATE copier.tables SET status = 'loaded' WHERE target_schema = $1 AND source_table = 'Track'",
                   target.schema)
    report = tmp_path / "r.json"
    # Not --quiet: the summary a person reads.
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--resume", "--report", report)
    assert result.exit_code == 0, result.output
    assert target.count("Track") == 3503  # kept, not loaded again
    # Its rows were loaded by the earlier run: no rate made up from this run's time (once 525,541,339 rows/s).
    (track,) = [line.split() for line in result.stdout.splitlines() if line.startswith("Track ")]
    assert track[-2:] == ["-", "done"]
    (recorded,) = [t for t in json.loads(report.read_text())["tables"] if t["table"] == "Track"]
    assert (recorded["resumed"], recorded["rows_per_second"]) == (True, None)
    constraints = {r[0] for r in target.fetch("SELECT conname FROM pg_constraint WHERE connamespace = "
                                              "$1::regnamespace", target.schema)}
    assert {"Track_pkey", "InvoiceLine_TrackId_fkey", "PlaylistTrack_TrackId_fkey"} <= constraints
    assert target.fetchval("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = "
                           "'IFK_TrackAlbumId'", target.schema) == 1
    notes = json.loads(report.read_text())["notes"]
    assert "Track: already loaded by the interrupted run" in notes
    assert target.fetchval("SELECT status FROM copier.tables WHERE target_schema = $1 AND source_table = 'Track'",
                           target.schema) == "done"


def _foreign_keys(target: Target) -> dict[str, bool]:
    """Each foreign key of the schema, and whether PostgreSQL has validated it."""
    return {r[0]: r[1] for r in target.fetch("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
                                             "AND connamespace = $1::regnamespace", target.schema)}


def test_foreign_keys_of_several_tables_validated_at_once_orphans_refused(tmp_path: Path, target: Target) -> None:
    """Keys are added NOT VALID, then validated a table at a time in parallel: the refused
    ones (orphans in two tables, and one of a table's two keys) are dropped and named, the
    others end validated, and no key is left unvalidated."""
    source = sqlite_db(tmp_path / "fk.db", "CREATE TABLE p (id INTEGER PRIMARY KEY)",
                       "CREATE TABLE q (id INTEGER PRIMARY KEY)",
                       "CREATE TABLE a (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id), "
                       "q_id INTEGER REFERENCES q(id))",
                       "CREATE TABLE b (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id))",
                       "CREATE TABLE c (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id))",
                       rows={"p": [(1,), (2,)], "q": [(1,)], "a": [(1, 1, 1), (2, 2, 7)], "b": [(1, 1), (2, 9), (3, 8)],
                             "c": [(1, 1), (2, 2)]})
    report = tmp_path / "r.json"
    result = migrate(target, source, "--report", report)
    assert result.exit_code == 1, result.output
    assert _foreign_keys(target) == {"a_p_id_fkey": True, "c_a_id_fkey": True}
    warnings = {t["table"]: t["warnings"] for t in json.loads(report.read_text())["tables"]}
    assert warnings["a"] == ["foreign key a_q_id_fkey not added: 1 row(s) reference missing q rows "
                             "(SQLite did not enforce it)"]
    assert warnings["b"] == ["foreign key b_p_id_fkey not added: 2 row(s) reference missing p rows "
                             "(SQLite did not enforce it)"]
    assert warnings["c"] == [] and warnings["p"] == []
    # Nothing is written to a table whose key was refused: a NOT VALID key would refuse it.
    target.execute(f'INSERT INTO "{target.schema}".b VALUES (4, 42)')


def test_resume_validates_a_foreign_key_an_interrupted_run_left_not_valid(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "fk.db", "CREATE TABLE p (id INTEGER PRIMARY KEY)",
                       "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id))",
                       rows={"p": [(1,)], "c": [(1, 1)]})
    assert migrate(target, source).exit_code == 0
    # As if the run stopped between adding the key (NOT VALID) and validating it.
    target.execute(f'ALTER TABLE "{target.schema}".c DROP CONSTRAINT c_p_id_fkey')
    target.execute(f'ALTER TABLE "{target.schema}".c ADD CONSTRAINT c_p_id_fkey FOREIGN KEY (p_id) '
                   f'REFERENCES "{target.schema}".p (id) NOT VALID')
    assert _foreign_keys(target) == {"c_p_id_fkey": False}
    result = migrate(target, source, "--resume")
    assert result.exit_code == 0, result.output
    assert _foreign_keys(target) == {"c_p_id_fkey": True}


def test_a_foreign_key_to_a_table_that_already_exists(tmp_path: Path, target: Target) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute(f'CREATE TABLE "{target.schema}".customer (id bigint PRIMARY KEY, name text)')
    target.execute(f"INSERT INTO \"{target.schema}\".customer VALUES (1, 'ann')")
    source = sqlite_db(tmp_path / "fk.db", "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)",
                       "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id))",
                       rows={"customer": [(1, "ann")], "orders": [(10, 1), (11, 1)]})
    result = migrate(target, source, "--exclude", "customer")
    assert result.exit_code == 0, result.output
    assert target.fetchval("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = $1::regclass "
                           "AND confrelid = $2::regclass", f'"{target.schema}".orders',
                           f'"{target.schema}".customer') == 1


def test_the_source_changing_under_worker_processes_is_caught(tmp_path: Path, target: Target) -> None:
    source = tmp_path / "busy.db"
    with sqlite3.connect(source) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 50) for i in range(1, 120_001)])
    connection.close()
    stop, started = threading.Event(), threading.Event()

    def write() -> None:
        writer = sqlite3.connect(source, timeout=10)
        n = 10_000_000
        while not stop.is_set():
            writer.execute("INSERT INTO t (id, v) VALUES (?, 'late')", (n,))
            writer.commit()
            started.set()
            n += 1
            stop.wait(0.002)  # paces the writer; the test waits on events, not on time
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert started.wait(30)
        result = migrate(target, source, "--retries", "0", "--workers", "2")
    finally:
        stop.set()
        thread.join(30)
    assert result.exit_code == 1
    assert "copier: error: t: table t: the SQLite file was written to while it was read" in result.stderr
    assert not target.exists("t")


@pytest.mark.parametrize(("jobs", "queue_depth"), [("1", "1"), ("4", "16")])
def test_jobs_and_queue_depth_other_than_the_defaults(jobs: str, queue_depth: str, tmp_path: Path,
                                                      target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    result = migrate(target, source, "--jobs", jobs, "--queue-depth", queue_depth, "--batch-size", "500")
    assert result.exit_code == 0, result.output
    assert target.count("PlaylistTrack") == 8715 and target.count("InvoiceLine") == 2240


def test_worker_processes_did_the_loading(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "big.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)",
                       rows={"t": [(i, i) for i in range(1, 60_001)]})
    report = tmp_path / "r.json"
    result = migrate(target, source, "--workers", "2", "--batch-size", "5000", "--report", report)
    assert result.exit_code == 0, result.output
    (table,) = json.loads(report.read_text())["tables"]
    assert table["worker_chunks"] >= 2  # loaded in rowid chunks by worker processes
    one_process = tmp_path / "r1.json"
    other = Target(target.dsn, target.schema + "_1")
    assert migrate(other, source, "--workers", "1", "--report", one_process).exit_code == 0
    assert json.loads(one_process.read_text())["tables"][0]["worker_chunks"] == 0


def test_max_rejects_fails_the_table_past_the_limit(tmp_path: Path, target: Target) -> None:
    rows = [(i, "2021-03-04" if i % 10 else "bad") for i in range(1, 101)]  # 10 bad dates
    source = sqlite_db(tmp_path / "r.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE)", rows={"t": rows})
    within = migrate(target, source, "--max-rejects", "10")
    assert within.exit_code == 3 and target.count("t") == 90
    other = Target(target.dsn, target.schema + "_x")
    over = migrate(other, source, "--max-rejects", "9")
    assert over.exit_code == 1
    assert "copier: error: t: table t: more than 9 rows rejected (--max-rejects)" in over.stderr
    assert not other.exists("t")


def test_clean_removes_what_copier_left_and_nothing_else(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "c.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)", rows={"t": [(1,)]})
    assert migrate(target, source).exit_code == 0
    target.execute(f'CREATE TABLE "{target.schema}"."_copier_load_0123456789abcdef" (id int)')  # as after a SIGKILL
    result = invoke("clean", "--dsn", target.dsn, "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert f"removed staging table {target.schema}._copier_load_0123456789abcdef" in result.stdout
    assert f"removed 1 progress record(s) of schema {target.schema} in copier.tables" in result.stdout
    assert target.count("t") == 1  # the user's table stays
    assert not target.exists("_copier_load_0123456789abcdef")
    # Other schemas' records (other tests) may keep copier.tables; none of this schema's remain.
    if target.fetchval("SELECT to_regclass('copier.tables') IS NOT NULL"):
        assert target.fetchval("SELECT count(*) FROM copier.tables WHERE target_schema = $1", target.schema) == 0
    assert "nothing to remove" in invoke("clean", "--dsn", target.dsn, "--schema", target.schema).stdout


def test_progress_recorded_in_a_state_schema_of_ones_choice(tmp_path: Path, target: Target) -> None:
    state_schema = f"state_{target.schema}"
    source = sqlite_db(tmp_path / "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)", rows={"t": [(1,)]})
    assert migrate(target, source, "--state-schema", state_schema).exit_code == 0
    status = invoke("status", "--dsn", target.dsn, "--schema", target.schema, "--state-schema", state_schema,
                    "--json")
    assert [r["status"] for r in json.loads(status.stdout)["tables"]] == ["done"]
    if target.fetchval("SELECT to_regclass('copier.tables') IS NOT NULL"):
        assert target.fetchval("SELECT count(*) FROM copier.tables WHERE target_schema = $1", target.schema) == 0
    cleaned = invoke("clean", "--dsn", target.dsn, "--schema", target.schema, "--state-schema", state_schema)
    assert f"removed 1 progress record(s) of schema {target.schema} in {state_schema}.tables" in cleaned.stdout
    assert target.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", state_schema) == 0


def test_verify_reads_the_reject_file_the_run_recorded_not_a_stale_one(tmp_path: Path, target: Target,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    source = sqlite_db(tmp_path / "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE)",
                       rows={"t": [(1, "2021-01-01"), (2, "bad")]})
    recorded = tmp_path / "run.rejects.jsonl"
    assert migrate(target, source, "--reject-file", recorded).exit_code == 3
    # Elsewhere, a default-named reject file of some other run (every row "rejected" there).
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "s.rejects.jsonl").write_text('{"table": "t", "key": 1, "column": "d", "value": null, "reason": "x"}\n')
    monkeypatch.chdir(other)
    result = invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert "t: source 2 rows, target 1, rejected 1, content equal: ok" in result.stdout


def test_a_state_table_made_by_an_earlier_copier_is_read_and_upgraded(tmp_path: Path, target: Target) -> None:
    old = f"old_{target.schema}"
    target.execute(f'CREATE SCHEMA "{old}"')
    target.execute(f'CREATE TABLE "{old}".tables (target_schema text NOT NULL, source_table text NOT NULL, '
                   "target_table text NOT NULL, status text NOT NULL, created boolean NOT NULL, rows_source bigint, "
                   "rows_written bigint, rows_rejected bigint, source_path text, source_fingerprint text NOT NULL, "
                   "plan_fingerprint text NOT NULL, error text, updated_at timestamptz NOT NULL DEFAULT now(), "
                   "PRIMARY KEY (target_schema, source_table))")  # as the first release made it: no reject_file
    target.execute(f"INSERT INTO \"{old}\".tables VALUES ('elsewhere', 't', 't', 'done', true, 1, 1, 0, 'a.db', "
                   "'s', 'p', NULL, now())")
    status = invoke("status", "--dsn", target.dsn, "--state-schema", old, "--json")
    assert status.exit_code == 0, status.output
    assert [r["reject_file"] for r in json.loads(status.stdout)["tables"]] == [None]
    source = sqlite_db(tmp_path / "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)", rows={"t": [(1,)]})
    assert migrate(target, source, "--state-schema", old).exit_code == 0
    assert target.fetchval(f"SELECT reject_file FROM \"{old}\".tables WHERE target_schema = $1",
                           target.schema).endswith("s.rejects.jsonl")
