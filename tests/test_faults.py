"""Faults for real: a backend terminated mid-COPY, SIGINT/SIGTERM, server timeouts. Each
ends with zero rows lost or duplicated, shown by `copier verify`."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import pytest

from copier.bench.data import generate
from copier.faults import describe_pg_error
from copier.tableload import STAGING_PREFIX

from .helpers import invoke, migrate
from .pg import Target, run, with_params

ROWS = 150_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("faults") / "big.db", ROWS)


def verify(target: Target, source: Path, *extra: object) -> None:
    result = invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema, *extra)
    assert result.exit_code == 0, result.output
    assert f"transactions: source {ROWS:,} rows, target {ROWS:,}, rejected 0, content equal: ok" in result.stdout


def terminate_copy_once(target: Target, stop: threading.Event, killed: list[int]) -> None:
    """Wait for copier's COPY into the test schema and terminate its backend."""
    async def watch() -> None:
        connection = await asyncpg.connect(target.dsn)
        try:
            while not stop.is_set():
                pids = await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'copier' AND query LIKE 'COPY %' "
                    "AND query LIKE $1 AND state = 'active'", f'%"{target.schema}"%')
                if pids:
                    await connection.execute("SELECT pg_terminate_backend($1)", pids[0][0])
                    killed.append(pids[0][0])
                    return
                await asyncio.sleep(0.005)
        finally:
            await connection.close()

    run(watch())


def migrate_while_terminating(target: Target, source: Path, *extra: object,  # type: ignore[no-untyped-def]
                              quiet: bool = True):
    stop, killed = threading.Event(), []  # type: ignore[var-annotated]
    killer = threading.Thread(target=terminate_copy_once, args=(target, stop, killed))
    killer.start()
    try:
        flags = ("--workers", "1", "--tables", "accounts", "--tables", "transactions", *extra)
        result = (migrate(target, source, *flags) if quiet else
                  invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, *flags))
    finally:
        stop.set()
        killer.join()
    assert killed, "the COPY finished before it could be terminated"
    return result


def test_terminated_backend_is_retried_and_nothing_is_lost(big: Path, target: Target, tmp_path: Path) -> None:
    result = migrate_while_terminating(target, big, "--report", tmp_path / "r.json", quiet=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    retried = {t["table"]: t["retries"] for t in report["tables"]}
    assert sum(retried.values()) == 1 == report["totals"]["retries"]
    (table,) = [name for name, count in retried.items() if count]
    # One line for the retry, no driver traceback; the summary says which table was retried.
    # (Not a terminal: progress comes as lines too; of the retry, there is exactly one.)
    (line,) = [line for line in result.stderr.splitlines() if "attempt" in line]
    assert line.startswith(f"copier: {table}: attempt 1 of 4 failed (") and "Traceback" not in result.stderr
    assert "terminating connection due to administrator command" in line
    assert line.endswith("); retrying from a clean start")
    assert f"Retried after a transient failure: {table} (1 time)" in result.stdout
    assert target.count("transactions") == ROWS
    verify(target, big, "--tables", "accounts", "--tables", "transactions")


def test_without_retries_the_table_fails_cleanly_and_resume_completes(big: Path, target: Target) -> None:
    result = migrate_while_terminating(target, big, "--retries", "0")
    assert result.exit_code == 1
    assert "terminating connection due to administrator command" in result.stderr
    failed = [line for line in result.stderr.splitlines() if "(table rolled back)" in line]
    assert len(failed) == 1
    table = failed[0].split(":")[2].strip()
    assert not target.exists(table)
    status = invoke("status", "--dsn", target.dsn, "--schema", target.schema)
    assert f"{target.schema}  {table}" in status.stdout and "failed" in status.stdout
    resumed = migrate(target, big, "--workers", "1", "--tables", "accounts", "--tables", "transactions",
                      "--resume")
    assert resumed.exit_code == 0, resumed.output
    verify(target, big, "--tables", "accounts", "--tables", "transactions")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_rolls_back_in_flight_tables_and_resume_completes(
        big: Path, target: Target, tmp_path: Path, signum: signal.Signals) -> None:
    command = [sys.executable, "-m", "copier", "migrate", str(big), "--dsn", target.dsn, "--schema", target.schema,
               "--workers", "2", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    # Until rows of the big table stream into PostgreSQL: a worker's COPY into its staging
    # table is active (polled on the server's own view of the sessions, with a deadline).
    while not target.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'copier' AND state = 'active' "
            "AND query LIKE 'COPY %' AND query LIKE $1", f'%"{target.schema}"."{STAGING_PREFIX}%'):
        assert time.monotonic() < deadline and process.poll() is None, "the load never started its COPY"
    sent = time.monotonic()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert process.returncode == 130, stderr
    assert f"copier: interrupted by {signum.name}" in stderr
    assert "copier: error: transactions: interrupted (rolled back)" in stderr
    assert not target.exists("transactions")
    assert target.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '\\_copier%'",
                           target.schema) == 0
    assert target.count("accounts") == 10_000  # finished before the signal, kept
    resumed = migrate(target, big, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert target.count("splits") == ROWS // 10
    verify(target, big)


def test_statement_timeout_names_the_table_and_hints(big: Path, target: Target) -> None:
    result = invoke("migrate", big, "--dsn", with_params(target.dsn, statement_timeout="20"), "--schema", target.schema,
                    "--workers", "1", "--tables", "transactions", "--quiet")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("copier: error: transactions: canceling statement due to statement timeout")
    assert "hint: a statement_timeout (or a cancel) stopped it" in line
    assert not target.exists("transactions")


def test_lock_timeout_names_the_table_and_hints(tmp_path: Path, target: Target) -> None:
    from .helpers import sqlite_db

    db = sqlite_db(tmp_path / "l.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)", rows={"t": [(1,)]})
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute("CREATE TABLE t (id integer PRIMARY KEY)")

    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        async def hold() -> None:
            holder = await asyncpg.connect(target.dsn)
            try:
                await holder.execute("BEGIN")
                await holder.execute(f'LOCK TABLE "{target.schema}".t IN ACCESS EXCLUSIVE MODE')
                locked.set()
                await asyncio.to_thread(release.wait)
            finally:
                await holder.close()

        run(hold())

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        result = invoke("migrate", db, "--dsn", with_params(target.dsn, lock_timeout="200"), "--schema", target.schema,
                        "--quiet", "--if-exists", "append")
    finally:
        release.set()
        holder.join()
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "copier: error: table t: canceling statement due to lock timeout (hint: lock_timeout: another session "
        "holds a lock on the table")


def test_disk_full_has_a_hint() -> None:
    error = asyncpg.exceptions.DiskFullError("could not extend file: No space left on device")
    assert describe_pg_error(error) == ("could not extend file: No space left on device (hint: PostgreSQL's disk "
                                        "is full: free space on the server, then rerun with --resume)")


def test_resume_refuses_a_changed_source_unless_forced(tmp_path: Path, target: Target) -> None:
    from .helpers import sqlite_db

    db = sqlite_db(tmp_path / "r.db", "CREATE TABLE a (id INTEGER PRIMARY KEY)",
                   "CREATE TABLE b (id INTEGER PRIMARY KEY, n INTEGER)", rows={"a": [(1,)], "b": [(1, 1)]})
    # b fails (abort on a bad row); a is done: an interrupted-looking run.
    import sqlite3

    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO b VALUES (2, 'two')")
    assert migrate(target, db, "--on-error", "abort").exit_code == 1
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM b WHERE id = 2")  # the source changes before the resume
    refused = migrate(target, db, "--on-error", "abort", "--resume")
    assert refused.exit_code == 2
    assert refused.stderr == ("copier: error: cannot resume: the SQLite file changed since the interrupted run "
                              "(hint: start over with --if-exists truncate, or add --force to resume anyway)\n")
    forced = migrate(target, db, "--on-error", "abort", "--resume", "--force")
    assert forced.exit_code == 0, forced.output
    assert target.count("a") == 1 and target.count("b") == 1
    status = invoke("status", "--dsn", target.dsn, "--schema", target.schema).stdout
    assert status.splitlines()[0].startswith("target: ")  # first, where it reads from
    assert [line.split()[2] for line in status.splitlines()[2:]] == ["done", "done"]


def test_plain_rerun_after_an_interruption_points_to_resume(tmp_path: Path, target: Target) -> None:
    from .helpers import sqlite_db

    db = sqlite_db(tmp_path / "p.db", "CREATE TABLE a (id INTEGER PRIMARY KEY)", rows={"a": [(1,)]})
    assert migrate(target, db).exit_code == 0
    target.execute("UPDATE copier.tables SET status = 'loading' WHERE target_schema = $1", target.schema)
    again = migrate(target, db)
    assert again.exit_code == 2
    assert again.stderr.endswith("(hint: an earlier run was interrupted here: rerun with --resume)\n")


def test_resume_keeps_the_rejects_and_counts_of_tables_already_loaded(tmp_path: Path, target: Target) -> None:
    from .helpers import read_jsonl, sqlite_db

    db = sqlite_db(tmp_path / "k.db", "CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER)",
                   "CREATE TABLE b (id INTEGER PRIMARY KEY)", rows={"a": [(1, 1), (2, "two")], "b": [(1,), (2,)]})
    assert migrate(target, db).exit_code == 3
    # As if the run had been killed while loading b.
    target.execute("DROP TABLE b")
    target.execute("UPDATE copier.tables SET status = 'loading' WHERE target_schema = $1 AND source_table = 'b'",
                   target.schema)
    resumed = migrate(target, db, "--resume", "--report", tmp_path / "r.json")
    assert resumed.exit_code == 3, resumed.output  # a's rejected row is still accounted for
    assert [r["key"] for r in read_jsonl(tmp_path / "k.rejects.jsonl")] == [2]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verified"] is True
    assert {t["table"]: (t["rows_written"], t["rows_rejected"]) for t in report["tables"]} == {
        "a": (1, 1), "b": (2, 0)}
