"""The benchmark generator is deterministic, sweeps parse, and `copier bench` produces a
report and a chart. No test here asserts a timing: speed lives in benchmarks/."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from copier.bench import copier_command, parse_sweep, pgloader_url
from copier.bench.chart import line_chart
from copier.bench.data import WIDE_COLUMNS, generate
from copier.errors import UsageError

from .helpers import invoke
from .pg import Target, with_database


def digest(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        rows = [repr(r) for t in ("accounts", "transactions", "splits")
                for r in connection.execute(f"SELECT * FROM {t} ORDER BY 1")]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def test_generator_is_deterministic_and_realistic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a.db", 2_000)
    second = generate(tmp_path / "b.db", 2_000)
    assert digest(first) == digest(second)
    assert digest(first) != digest(generate(tmp_path / "c.db", 2_000, seed=7))
    with sqlite3.connect(first) as connection:
        assert connection.execute("SELECT count(*) FROM accounts").fetchone() == (10_000,)
        assert connection.execute("SELECT count(*) FROM transactions").fetchone() == (2_000,)
        assert connection.execute("SELECT count(*) FROM splits").fetchone() == (200,)
        lengths = connection.execute("SELECT min(length(description)), max(length(description)) "
                                     "FROM transactions").fetchone()
        assert 25 <= lengths[0] and lengths[1] <= 60
        raw = connection.execute("SELECT max(length(raw)), sum(raw IS NULL) FROM transactions").fetchone()
        assert raw[0] <= 64 and raw[1] > 0
        assert {r[0] for r in connection.execute("SELECT DISTINCT pending FROM transactions")} == {0, 1}
        assert connection.execute("SELECT typeof(created_at), typeof(posted_at) FROM transactions LIMIT 1"
                                  ).fetchone() == ("integer", "text")


def test_wide_and_text_shapes(tmp_path: Path) -> None:
    path = generate(tmp_path / "w.db", 50, shapes=("wide", "text"))
    with sqlite3.connect(path) as connection:
        columns = connection.execute("SELECT count(*) FROM pragma_table_info('wide')").fetchone()[0]
        assert columns == WIDE_COLUMNS + 1 >= 51
        assert connection.execute("SELECT count(*), min(length(body)) > 500 FROM documents").fetchone() == (50, 1)


def test_many_shape_is_small_tables_of_20_rows(tmp_path: Path) -> None:
    path = generate(tmp_path / "m.db", 100, shapes=("many",))
    with sqlite3.connect(path) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        assert tables == ["t00001", "t00002", "t00003", "t00004", "t00005"]
        assert [connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables] == [20] * 5


def test_sweep_parsing() -> None:
    assert parse_sweep("1000,5000, 20000", "batch_size") == [1000, 5000, 20000]
    assert parse_sweep("4", "readers") == [4]
    assert parse_sweep(None, "jobs") == []
    with pytest.raises(UsageError, match="--batch-size takes whole numbers"):
        parse_sweep("1000,lots", "batch_size")
    with pytest.raises(UsageError, match="at least 1"):
        parse_sweep("0", "workers")


def test_pgloader_url_for_a_unix_socket() -> None:
    assert pgloader_url("postgresql://postgres:@/db?host=/tmp/pg") == "postgresql://postgres@unix:/tmp/pg:5432/db"
    assert pgloader_url("postgresql://u@h:5433/db?sslmode=disable") == "postgresql://u@h:5433/db"


def test_chart_is_svg_with_every_point() -> None:
    svg = line_chart(title="t", x_label="--batch-size", y_label="rows/s",
                     points=[("1000", 10.0), ("5000", 30.0)], references={"ceiling": 50.0})
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<circle") == 2 and ">ceiling 50<" in svg


def test_bench_command_writes_report_and_chart(tmp_path: Path, target: Target) -> None:
    server = with_database(target.dsn, "postgres")
    out = tmp_path / "out"
    result = invoke("bench", "--dsn", server, "--rows", "300", "--runs", "1", "--methods", "ceiling,copier",
                    "--batch-size", "100,1000", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "bench.json").read_text())
    labels = [r["label"] for r in report["results"]]
    assert labels == ["ceiling", "copier", "copier batch_size=100", "copier batch_size=1000"]
    assert all(r["ok"] and r["rows_loaded"] == [10_330] for r in report["results"])
    assert report["data"]["rows_total"] == 10_330
    assert report["results"][0]["ratio_to_ceiling"] == 1.0
    svg = (out / "sweep-batch_size.svg").read_text()
    assert svg.count("<circle") == 2
    assert "ceiling" in result.stdout and "x ceiling" in result.stdout


def test_bench_without_a_dsn_starts_a_throwaway_server(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("bench", "--rows", "100", "--runs", "1", "--methods", "copier", "--out", out)
    assert result.exit_code == 0, result.output
    assert "starting a throwaway PostgreSQL" in result.stderr
    report = json.loads((out / "bench.json").read_text())
    assert report["results"][0]["ok"] and report["results"][0]["rows_loaded"] == [10_110]


def test_bench_measures_the_default_run_with_verification(tmp_path: Path, target: Target) -> None:
    server = with_database(target.dsn, "postgres")
    out = tmp_path / "out"
    result = invoke("bench", "--dsn", server, "--rows", "200", "--runs", "1", "--methods", "copier-verified",
                    "--out", out)
    assert result.exit_code == 0, result.output
    (run,) = json.loads((out / "bench.json").read_text())["results"]
    assert run["label"] == "copier-verified" and run["ok"]
    # The command it measured verifies (exit 4 on a difference would make the run not ok).
    assert "--verify" in copier_command(Path("x.db"), "postgresql://", {}, verify=True)
    assert "--no-verify" in copier_command(Path("x.db"), "postgresql://", {})
