"""Big tables load in parallel chunks into a staging table renamed into place (columnar
chunks on threads, exact-lane chunks in worker processes): the rows, rejects and
verification are the same as in one process, and a failure leaves no table and no staging
table behind. Each test runs through both lanes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from copier.bench.data import generate
from copier.tableload import STAGING_PREFIX

from .helpers import invoke, migrate, read_jsonl
from .pg import Target

ROWS = 60_000  # above the size at which worker processes take over


@pytest.fixture(scope="module")
def finance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("bench") / "finance.db", ROWS)


def leftovers(target: Target) -> list[str]:
    return [r[0] for r in target.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2",
        target.schema, STAGING_PREFIX + "%")]


LANES = pytest.mark.parametrize("lane", ["auto", "exact"])


@LANES
def test_workers_load_verify_and_leave_no_staging_table(lane: str, finance: Path, target: Target,
                                                        tmp_path: Path) -> None:
    result = migrate(target, finance, "--workers", "2", "--lane", lane, "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert target.count("transactions") == ROWS
    (table,) = [t for t in json.loads((tmp_path / "r.json").read_text())["tables"] if t["table"] == "transactions"]
    assert table["worker_chunks"] > 1
    assert table["rows_columnar"] == (ROWS if lane == "auto" else 0)
    assert leftovers(target) == []
    assert target.fetchval("INSERT INTO transactions (account_id, amount, description, posted_at, created_at, "
                           "pending) VALUES (1, 1, 'x', now(), now(), false) RETURNING id") == ROWS + 1
    assert target.fetchval("SELECT pg_get_serial_sequence($1, 'id')", f'"{target.schema}".transactions') == \
        f"{target.schema}.transactions_id_seq"
    verified = invoke("verify", finance, "--dsn", target.dsn, "--schema", target.schema)
    assert verified.exit_code == 4  # the row inserted above is extra
    assert f"transactions: source {ROWS:,} rows, target {ROWS + 1:,}" in verified.stdout


@LANES
def test_rejects_from_workers_reach_the_reject_file(lane: str, finance: Path, target: Target, tmp_path: Path) -> None:
    dirty = tmp_path / "dirty.db"
    dirty.write_bytes(finance.read_bytes())
    with sqlite3.connect(dirty) as connection:
        connection.execute("UPDATE transactions SET amount = 'abc' WHERE id IN (7, 45000)")
    result = migrate(target, dirty, "--workers", "2", "--lane", lane)
    assert result.exit_code == 3, result.output
    assert target.count("transactions") == ROWS - 2
    rejects = read_jsonl(tmp_path / "dirty.rejects.jsonl")
    assert sorted((r["key"], r["column"]) for r in rejects) == [(7, "amount"), (45000, "amount")]


@LANES
def test_abort_in_a_worker_leaves_no_table(lane: str, finance: Path, target: Target, tmp_path: Path) -> None:
    dirty = tmp_path / "dirty.db"
    dirty.write_bytes(finance.read_bytes())
    with sqlite3.connect(dirty) as connection:
        connection.execute("UPDATE transactions SET posted_at = 'soon' WHERE id = 59000")
    result = migrate(target, dirty, "--workers", "2", "--on-error", "abort", "--lane", lane)
    assert result.exit_code == 1
    assert "transactions: table transactions: row 59000: column posted_at: text 'soon' cannot be a timestamp" \
        in result.stderr
    assert not target.exists("transactions") and leftovers(target) == []
    assert target.count("accounts") == 10_000  # the table it depends on landed
    assert not target.exists("splits")  # the table that depends on it was skipped


def test_workers_under_python_dash_m(finance: Path, target: Target) -> None:
    # Worker processes (the exact lane's) import the parent's __main__; copier/__main__.py
    # must not rerun the CLI.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(finance), "--dsn", target.dsn,
                           "--schema", target.schema, "--workers", "2", "--lane", "exact", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert target.count("transactions") == ROWS
