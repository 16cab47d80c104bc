"""A run killed (SIGKILL of its process group) after the user's indexes and constraints
were set aside, during the load, or while they are made again: `migrate --resume` ends
with the schema as it was and every row loaded. Each phase is reached on an event seen
in the server (the state table, pg_stat_activity), with a deadline; never a sleep."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from .helpers import invoke, migrate, sqlite_db
from .pg import Target
from .test_set_aside import app_schema, recorded, schema_dump

USERS = 100_000

RECORDED = "definitions recorded"  # see _holds
# One of copier's sessions on this database runs (or waits to run) a statement like $1.
COPIER_RUNS = ("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
               "AND application_name = 'copier' AND state = 'active' AND query LIKE $1)")
COPIER_WAITS = COPIER_RUNS.replace("state = 'active'", "state = 'active' AND wait_event_type = 'Lock'")
COPIER_GONE = ("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
               "AND application_name = 'copier')")


@pytest.fixture(scope="module")
def big_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_db(tmp_path_factory.mktemp("kill") / "app.db",
                     "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, age INTEGER, name TEXT)",
                     "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT)",
                     rows={"users": [(i, f"u{i}@x.io", i % 90, f"Name {i}") for i in range(1, USERS + 1)],
                           "posts": [(i, 1 + i % USERS, f"title {i}") for i in range(1, USERS + 1)]})


async def _until(connection: asyncpg.Connection, process: subprocess.Popen[bytes], what: str, sql: str,
                 *args: object) -> None:
    deadline = time.monotonic() + 120
    while not await _holds(connection, sql, *args):
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"


def _kill_at(target: Target, source: Path, workdir: Path, phase: str) -> None:
    """Start a migration in its own process group and SIGKILL the group in `phase`."""
    command = [sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn, "--schema",
               target.schema, "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
                               start_new_session=True)
    try:
        asyncio.run(_watch_and_kill(target, process, phase))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


async def _watch_and_kill(target: Target, process: subprocess.Popen[bytes], phase: str) -> None:
    watcher = await asyncpg.connect(target.dsn)
    holder = await asyncpg.connect(target.dsn)
    try:
        await _until(watcher, process, "the definitions recorded", RECORDED, target.schema)
        if phase == "load":
            await _until(watcher, process, "a COPY", COPIER_RUNS, "COPY %")
        elif phase == "keys":
            # Rows may arrive (ROW EXCLUSIVE does not stop a COPY), but the table's first
            # constraint made again in its load transaction (its check) waits for this lock.
            await holder.execute(f'BEGIN; LOCK TABLE "{target.schema}".users IN ROW EXCLUSIVE MODE')
            await _until(watcher, process, "a constraint made again", COPIER_WAITS, '%"users" ADD CONSTRAINT%')
        elif phase == "foreign keys":
            # audit is not loaded: only the foreign key made again on it waits for this lock.
            await holder.execute(f'BEGIN; LOCK TABLE "{target.schema}".audit IN ROW EXCLUSIVE MODE')
            await _until(watcher, process, "a foreign key made again", COPIER_WAITS, "%audit%ADD CONSTRAINT%")
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        await holder.close()  # lets a waiting backend on, to find its client gone
        await _gone(watcher)
    finally:
        if not holder.is_closed():
            await holder.close()
        await watcher.close()


async def _holds(connection: asyncpg.Connection, sql: str, *args: object) -> bool:
    if sql == RECORDED:  # the table is made by the run: its rows are looked for once it is there
        return bool(await connection.fetchval("SELECT to_regclass('copier.definitions') IS NOT NULL")
                    and await connection.fetchval("SELECT EXISTS (SELECT 1 FROM copier.definitions "
                                                  "WHERE target_schema = $1)", *args))
    return bool(await connection.fetchval(sql, *args))


async def _gone(watcher: asyncpg.Connection) -> None:
    """The killed run's backends end once they see their client gone (a rolled-back transaction)."""
    deadline = time.monotonic() + 60
    while not await watcher.fetchval(COPIER_GONE):
        assert time.monotonic() < deadline, "the killed run's sessions never ended"


@pytest.mark.parametrize("phase", ["dropped", "load", "keys", "foreign keys"])
def test_a_run_killed_in_any_phase_is_finished_by_resume(phase: str, big_app: Path, tmp_path: Path,
                                                         target: Target) -> None:
    app_schema(target)
    before = schema_dump(target)
    _kill_at(target, big_app, tmp_path, phase)
    if phase != "dropped":  # the schema is not whole while the run is away, and status says what is missing
        status = invoke("status", "--dsn", target.dsn, "--schema", target.schema)
        assert f"foreign key audit_user_id_fkey on {target.schema}.audit" in status.stdout
        as_json = json.loads(invoke("status", "--dsn", target.dsn, "--schema", target.schema, "--json").stdout)
        assert any(p["table"] == "audit" and p["schema"] == target.schema and
                   p["definition"].startswith(f"foreign key audit_user_id_fkey on {target.schema}.audit")
                   for p in as_json["set_aside_pending"]), as_json
    resumed = migrate(target, big_app, "--resume")
    assert resumed.exit_code == 0, resumed.output  # every table verified equal to the source
    assert schema_dump(target) == before
    assert recorded(target, "definitions") == 0
    assert target.count("users") == USERS and target.count("posts") == USERS


def test_clean_after_a_killed_run_makes_the_definitions_again_or_removes_nothing(
        big_app: Path, tmp_path: Path, target: Target) -> None:
    app_schema(target)
    before = schema_dump(target)
    _kill_at(target, big_app, tmp_path, "load")
    set_aside = recorded(target, "definitions")
    # While audit's foreign key is set aside, a row breaking it arrives.
    target.execute("INSERT INTO audit (user_id) VALUES (424242)")
    refused = invoke("clean", "--dsn", target.dsn, "--schema", target.schema)
    assert refused.exit_code != 0
    assert f"foreign key audit_user_id_fkey on {target.schema}.audit not made again" in refused.stderr
    assert "no staging table or progress record was removed" in refused.stderr
    # The others were made again, each on its own: only the refused one is still recorded.
    assert set_aside > 1 and recorded(target, "definitions") == 1
    assert recorded(target, "tables") == 2  # the progress records stay too
    target.execute("DELETE FROM audit")
    cleaned = invoke("clean", "--dsn", target.dsn, "--schema", target.schema)
    assert cleaned.exit_code == 0, cleaned.output
    assert schema_dump(target) == before
    assert recorded(target, "definitions") == 0 and recorded(target, "tables") == 0


@pytest.mark.parametrize("if_exists", ["append", "upsert", "truncate"])
def test_a_plain_rerun_after_a_killed_run_ends_with_the_schema_whole(if_exists: str, big_app: Path, tmp_path: Path,
                                                                    target: Target) -> None:
    """Not --resume: the user simply runs the same command again (an upsert needs the
    primary key that the killed run set aside)."""
    app_schema(target)
    before = schema_dump(target)
    _kill_at(target, big_app, tmp_path, "load")
    again = migrate(target, big_app, "--if-exists", if_exists)
    assert again.exit_code == 0, again.output
    assert schema_dump(target) == before
    assert recorded(target, "definitions") == 0
    assert target.count("users") == USERS and target.count("posts") == USERS
