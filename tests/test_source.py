"""The SQLite source: never modified (WAL files included), read consistently while an
application writes to it, and refused in one line when it is corrupt, truncated or locked."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from .helpers import corpus_file, invoke, migrate, sqlite_db
from .pg import Target, with_params, with_user


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_corpus_copies_are_byte_identical_after_migration(tmp_path: Path, target: Target) -> None:
    source = corpus_file("pgloader/storage.sqlite", tmp_path)
    before = digest(source)
    assert migrate(target, source).exit_code == 0
    assert invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema).exit_code == 0
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["storage.sqlite"]  # no journal, no -shm


def wal_database_with_uncheckpointed_log(directory: Path) -> Path:
    """A WAL-mode database whose last rows are only in its -wal, as an app leaves it."""
    live = directory / "live"
    live.mkdir()
    writer = sqlite3.connect(live / "app.db")
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    writer.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(1, 1001)])
    writer.commit()
    # Copy while the writer is open: the copy's rows live in app.db-wal, not yet in app.db.
    copy = directory / "app.db"
    shutil.copyfile(live / "app.db", copy)
    shutil.copyfile(live / "app.db-wal", directory / "app.db-wal")
    writer.close()
    return copy


def test_wal_database_is_read_with_its_log_and_left_byte_identical(tmp_path: Path, target: Target) -> None:
    source = wal_database_with_uncheckpointed_log(tmp_path)
    wal = source.with_name("app.db-wal")
    before = (digest(source), digest(wal))
    assert wal.stat().st_size > 0
    result = migrate(target, source)
    assert result.exit_code == 0, result.output
    assert target.count("t") == 1000  # the rows that were only in the -wal arrived
    assert (digest(source), digest(wal)) == before
    # SQLite may create the -shm index beside a WAL database; nothing else appears.
    assert {p.name for p in tmp_path.iterdir()} <= {"app.db", "app.db-wal", "app.db-shm", "live"}


def writer_thread(path: Path, stop: threading.Event) -> threading.Thread:
    def write() -> None:
        connection = sqlite3.connect(path, timeout=10)
        n = 10_000_000
        while not stop.is_set():
            connection.execute("INSERT INTO t (id, v) VALUES (?, 'late')", (n,))
            connection.commit()
            n += 1
            time.sleep(0.002)
        connection.close()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def busy_source(tmp_path: Path) -> Path:
    path = tmp_path / "busy.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    connection.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 50) for i in range(1, 200_001)])
    connection.commit()
    connection.close()
    return path


def test_a_table_read_while_the_app_writes_is_not_loaded_inconsistently(tmp_path: Path, target: Target) -> None:
    source = busy_source(tmp_path)
    stop = threading.Event()
    thread = writer_thread(source, stop)
    try:
        result = migrate(target, source, "--retries", "1", "--workers", "1", "--batch-size", "1000")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 1
    assert ("copier: error: t: table t: the SQLite file was written to while it was read (hint: stop the "
            "application writing to it, or use --snapshot") in result.stderr
    assert not target.exists("t")


def test_snapshot_migrates_a_consistent_copy_while_the_app_writes(tmp_path: Path, target: Target) -> None:
    source = busy_source(tmp_path)
    stop = threading.Event()
    thread = writer_thread(source, stop)
    try:
        result = migrate(target, source, "--snapshot", "--workers", "1", "--report", tmp_path / "r.json")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verified"] is True  # against the snapshot that was migrated
    assert any(note.startswith(f"migrated from a snapshot of {source}") for note in report["notes"])
    rows = target.count("t")
    assert rows >= 200_000
    assert target.fetchval("SELECT count(*) FROM t WHERE id < 10000000") == 200_000


def test_truncated_file(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"copier: error: {source}: failed SQLite's integrity check: ")
    assert len(result.stderr.splitlines()) == 1


def test_corrupt_pages(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    data = bytearray(source.read_bytes())
    data[200_000:260_000] = bytes(range(256)) * 234 + bytes(96)
    source.write_bytes(bytes(data))
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema)
    assert result.exit_code == 2
    assert "failed SQLite's integrity check" in result.stderr and "--skip-integrity-check" in result.stderr


def test_encrypted_or_foreign_file(tmp_path: Path, target: Target) -> None:
    source = tmp_path / "secret.db"
    source.write_bytes(bytes(range(256)) * 64)  # what SQLCipher's header looks like: no magic string
    result = invoke("migrate", source, "--dsn", target.dsn)
    assert result.exit_code == 2
    assert result.stderr == f"copier: error: {source}: not an SQLite database (or encrypted)\n"


def test_locked_beyond_busy_timeout(tmp_path: Path, target: Target) -> None:
    source = sqlite_db(tmp_path / "locked.db", "CREATE TABLE t (x)", rows={"t": [(1,)]})
    holder = sqlite3.connect(source, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--busy-timeout", "0.3")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 2
    assert result.stderr.startswith(f"copier: error: {source}: ")
    assert "locked by another process (waited 0.3 s)" in result.stderr
    assert "--snapshot" in result.stderr


def test_an_empty_source_fails_unless_allowed(tmp_path: Path, target: Target) -> None:
    """A mistyped path opens as an empty database: nothing moved must not read as success."""
    import subprocess
    import sys

    zero_bytes = tmp_path / "zero.db"
    zero_bytes.touch()  # SQLite reads a 0-byte file as an empty database
    no_tables = tmp_path / "empty.db"
    with sqlite3.connect(no_tables) as connection:
        connection.execute("PRAGMA user_version = 3")
    for source, why in ((zero_bytes, " (an empty, 0-byte file)"), (no_tables, "")):
        command = [sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn,
                   "--schema", target.schema]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.splitlines()[-1] == (f"copier: error: {source} has no tables to migrate{why} "
                                                "(hint: check the path; --allow-empty if an empty source is expected)")
        allowed = subprocess.run([*command, "--allow-empty"], capture_output=True, text=True, timeout=120,
                                 cwd=tmp_path)
        assert allowed.returncode == 0, allowed.stderr
        assert f"{source} has no tables to migrate" in allowed.stdout
    assert not target.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", target.schema)


def test_password_never_appears_even_with_debug(tmp_path: Path, target: Target) -> None:
    secret = "pw-Zq81-never-show"
    dsn = with_params(with_user(target.dsn, "postgres", secret), sslmode="disable", application_name="copier-test")
    db = sqlite_db(tmp_path / "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)",
                   "CREATE TABLE u (id INTEGER PRIMARY KEY)", rows={"t": [(1, "bad")], "u": [(1,)]})
    report = tmp_path / "r.json"
    result = invoke("migrate", db, "--dsn", dsn, "--schema", target.schema, "--debug", "--on-error", "abort",
                    "--report", report)
    assert result.exit_code == 1  # t aborted, u loaded: sslmode and application_name were accepted
    assert target.count("u") == 1
    unreachable = invoke("migrate", db, "--dsn", f"postgresql://bob:{secret}@127.0.0.1:1/x", "--debug")
    for text in (result.output, report.read_text(), unreachable.output):
        assert secret not in text
    assert "postgres:***@" in report.read_text()



def _descriptors_of(path: Path) -> int:
    """How many file descriptors of this process are open on `path` (Linux's /proc)."""
    target = str(path.resolve())
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd) == target
        except OSError:  # closed while listed
            pass
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors through Linux's /proc")
def test_no_source_descriptor_is_closed_while_a_run_reads(tmp_path: Path) -> None:
    """Python's SQLite and ADBC's both read the source in one process, and POSIX locks
    belong to the process: a descriptor one library closes drops every lock the other
    holds on the file, and an app writing it may then checkpoint under the other's reads.
    So within a run (keep_connections) neither library closes a connection to the
    source, even one it does not keep for reuse; all close when the run ends."""
    import anyio

    from copier import columnar, source

    path = sqlite_db(tmp_path / "s.db", "CREATE TABLE t (a INTEGER)", rows={"t": [(1,), (2,)]})

    async def run() -> tuple[int, int, int]:
        async with source.keep_connections():
            # More C-reader queries and Python connections at once than either keeps
            # idle for reuse: the extra ones are let go.
            queries = [columnar.ArrowQuery(path, 10.0) for _ in range(columnar._IDLE_PER_FILE + 2)]
            for query in queries:
                assert query.rows("SELECT count(*) FROM t") == [(2,)]
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(source._KEPT_PER_FILE + 2):
                    connection = await stack.enter_async_context(source.borrowed(path))
                    assert await (await connection.execute("SELECT count(*) FROM t")).fetchone() == (2,)
                reading = _descriptors_of(path)
            for query in queries:
                query.close()
            source.close_later(sqlite3.connect(source.read_only_uri(path), uri=True).close)
            after = _descriptors_of(path)
        columnar.release_idle()
        return reading, after, _descriptors_of(path)

    reading, after_letting_go, after_the_run = anyio.run(run)
    assert reading >= columnar._IDLE_PER_FILE + source._KEPT_PER_FILE + 4
    assert after_letting_go >= reading  # nothing closed while the run reads
    assert after_the_run == 0
