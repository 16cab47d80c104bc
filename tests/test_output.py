"""Output a person and a script can use: --version, -h, short flags, --report (also to
stdout, and when a run fails early), and -q that hides the summary but never a problem."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from copier import __version__

from .helpers import corpus_file, invoke, sqlite_db
from .pg import Target


def test_version_and_short_help() -> None:
    assert invoke("--version").stdout == f"copier {__version__}\n"
    assert "migrate" in invoke("-h").stdout
    result = invoke("migrate", "--help")  # migrate's -h is psql's --host
    assert result.exit_code == 0 and "--jobs" in result.stdout and "-j" in result.stdout


def test_short_flags_and_a_report_on_stdout(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "-q", "-j", "1",
                    "-t", "Artist", "-t", "Album", "-T", "Album", "--report", "-")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["copier_version"] == __version__ and report["exit_code"] == 0
    assert [t["table"] for t in report["tables"]] == ["Artist"]
    assert set(report["phases"]) == {"load", "foreign keys", "verify"}
    assert all(seconds >= 0 for seconds in report["phases"].values())


def test_a_run_that_fails_early_still_writes_its_report(tmp_path: Path, target: Target) -> None:
    report = tmp_path / "r.json"
    missing = tmp_path / "missing.db"
    result = invoke("migrate", missing, "--dsn", target.dsn, "--report", report)
    assert result.exit_code == 2
    document = json.loads(report.read_text())
    assert document["exit_code"] == 2 and document["error"] == f"{missing}: no such file"


def test_quiet_hides_the_summary_but_not_a_problem(tmp_path: Path, target: Target) -> None:
    # An orphan row: the foreign key cannot be added; the data still loads.
    source = sqlite_db(tmp_path / "o.db", "CREATE TABLE p (id INTEGER PRIMARY KEY)",
                       "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id))",
                       rows={"p": [(1,)], "c": [(1, 1), (2, 99)]})
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "-q")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == ("copier: warning: c: foreign key c_p_id_fkey not added: 1 row(s) reference missing p "
                             "rows (SQLite did not enforce it)\n")


def test_plan_verify_and_status_as_json(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    plan = json.loads(invoke("plan", source, "--json").stdout)
    assert plan["waves"][0] == ["Artist", "Employee", "Genre", "MediaType", "Playlist"]
    track = next(t for t in plan["tables"] if t["source"] == "Track")
    assert track["mode"] == "create" and track["rows"] == 3503 and track["after"] == ["Album", "Genre", "MediaType"]
    assert {"source": "Milliseconds", "declared": "INTEGER", "target": "Milliseconds", "type": "bigint",
            "not_null": True, "identity": False, "default": None, "generated": None, "sqlite_generated": None,
            "lane": "bulk", "per_value_because": None} in track["columns"]
    assert track["lane"] == "columnar" and track["exact_because"] is None  # 3,503 rows of types the lane takes
    genre = next(t for t in plan["tables"] if t["source"] == "Genre")  # 25 rows
    assert genre["lane"] == "exact" and genre["exact_because"] == "under 1,000 rows, where the exact lane costs less"
    assert {c["lane"] for c in genre["columns"]} == {"per value"}
    assert invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "-q").exit_code == 0
    verified = invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema, "--json")
    checks = json.loads(verified.stdout)
    assert verified.exit_code == 0 and checks["verified"] == 11 and checks["differ"] == 0
    assert all(t["ok"] and t["content_equal"] for t in checks["tables"])
    status = json.loads(invoke("status", "--dsn", target.dsn, "--schema", target.schema, "--json").stdout)
    assert {r["source_table"]: r["status"] for r in status["tables"]}["Track"] == "done"
    assert len(status["tables"]) == 11 and status["set_aside_pending"] == []


def _schema_shape(target: Target, schema: str) -> tuple[object, ...]:
    columns = target.fetch("SELECT table_name, column_name, data_type, is_nullable, is_identity, column_default "
                           "FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1, 2", schema)
    constraints = target.fetch("SELECT conrelid::regclass::text, conname, contype::text, "
                               "pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = $1::regnamespace "
                               "ORDER BY 2", schema)
    indexes = target.fetch("SELECT tablename, indexname, replace(indexdef, $1, 'S') FROM pg_indexes "
                           "WHERE schemaname = $2 ORDER BY 2", f'"{schema}"', schema)
    return (tuple(map(tuple, columns)), tuple(tuple(str(v).replace(f'"{schema}".', "").replace(f"{schema}.", "")
                                                    for v in row) for row in constraints),
            tuple(tuple(str(v).replace(f"{schema}.", "") for v in row) for row in indexes))


def test_plan_sql_applied_by_hand_gives_the_schema_migrate_makes(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    assert invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "-q").exit_code == 0
    by_hand = target.schema + "_sql"
    sql = invoke("plan", source, "--schema", by_hand, "--sql").stdout
    target.execute(sql)
    assert _schema_shape(target, by_hand) == _schema_shape(target, target.schema)


def test_lower_identifiers_make_the_apps_unquoted_sql_work(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "-q", "--identifiers", "lower")
    assert result.exit_code == 0, result.output
    # What the app ran against SQLite, which ignores the case of names.
    assert target.fetchval("select count(*) from track where albumid = 1") == 10
    assert target.fetchval("select count(*) from invoiceline il join track t on t.trackid = il.trackid") == 2240
    assert invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema).exit_code == 0


def _progress_lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "\n").splitlines() if line.startswith("copier: ")]


def test_not_on_a_terminal_progress_comes_as_lines(tmp_path: Path, target: Target) -> None:
    import subprocess
    import sys

    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn,
                           "--schema", target.schema], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = _progress_lines(done.stderr)
    assert "copier: Artist: 0 of 275 rows (0 %) in 00:00, ? rows/s, ETA ?" in lines
    assert any(re.fullmatch(r"copier: Artist: 275 of 275 rows \(100 %\) in 00:0\d, [\d.]+ rows/s, ETA 00:00", line)
               for line in lines)
    assert any(line.startswith("copier: all tables: 15607 of 15607 rows (100 %)") for line in lines)
    assert "copier: Track keys: 0 of 4 steps (0 %) in 00:00, ? steps/s, ETA ?" in lines  # primary key, 3 indexes
    assert any(line.startswith("copier: foreign keys: 11 of 11 steps (100 %)") for line in lines)
    # Verify runs while the foreign keys are added: its lines come after the load's, in any
    # order with those of the foreign keys.
    started = lines.index("copier: verify: 0 of 11 steps (0 %) in 00:00, ? steps/s, ETA ?")
    assert started > max(i for i, line in enumerate(lines) if "rows (100 %)" in line and "all tables" not in line)
    assert any(line.startswith("copier: verify: 11 of 11 steps (100 %)") for line in lines[started:])


def test_a_terminal_of_width_zero_gets_the_progress_lines(tmp_path: Path, target: Target) -> None:
    """`script` runs the command on a terminal of 0 columns (it has none to copy the size
    from): the bars cannot be drawn there, so the lines come instead."""
    import shlex
    import shutil
    import subprocess
    import sys

    if shutil.which("script") is None:
        pytest.skip("needs script(1) (util-linux)")
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    command = shlex.join([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn,
                          "--schema", target.schema, "-t", "Track"])
    done = subprocess.run(["script", "-q", "-e", "-c", f"stty cols 0; {command}", "/dev/null"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _progress_lines(done.stdout)
    assert "copier: Track: 0 of 3503 rows (0 %) in 00:00, ? rows/s, ETA ?" in lines
    assert any(line.startswith("copier: Track: 3503 of 3503 rows (100 %)") for line in lines)


def test_progress_lines_are_throttled(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal, a line when a bar starts and ends, and in between at most one per
    interval: every update with no interval, none with a long one."""
    from copier import progress

    # With no interval, the last update's line and the closing line both say 300.
    for interval, expected in ((0.0, ["0", "100", "200", "300", "300"]), (3600.0, ["0", "300"])):
        monkeypatch.setattr(progress, "LOG_INTERVAL_SECONDS", interval)
        lines_out = progress.TqdmProgress(300, log=True)
        bar = lines_out.table("t", 300)
        for _ in range(3):
            bar.advance(100)
        bar.close()
        lines_out.close()
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("copier: t: ")]
        assert [line.split()[2] for line in lines] == expected


def test_migrate_json_puts_the_report_alone_on_stdout(tmp_path: Path, target: Target) -> None:
    """`copier migrate … --json | jq` and `--report - | jq` work: the target line, the
    summary and the rejected-rows line a person reads go to stderr."""
    import subprocess
    import sys

    source = sqlite_db(tmp_path / "j.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)",
                       rows={"t": [(1, 1), (2, "not a number")]})
    for flag in (["--json"], ["--report", "-"]):
        schema = f"{target.schema}_{flag[-1].strip('-') or 'dash'}"
        done = subprocess.run([sys.executable, "-m", "copier", "migrate", str(source), "--dsn", target.dsn,
                               "--schema", schema, *flag], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
        assert done.returncode == 3, done.stderr  # a row rejected
        report = json.loads(done.stdout)
        assert report["exit_code"] == 3 and report["tables"][0]["rows_written"] == 1
        assert done.stderr.startswith("target: ")
        assert "TOTAL" in done.stderr and "1 rejected row(s) written to " in done.stderr


def _cli(*args: object) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "copier", *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def test_names_that_need_quotes_are_noted_and_verify_takes_identifiers(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    planned = _cli("plan", source)
    assert planned.returncode == 0
    assert ('  50 created name(s) must be double-quoted in SQL: "Address", "Album", "AlbumId", "Artist", "ArtistId" '
            "and 45 more; --identifiers lower creates them in lower case, which unquoted SQL reaches"
            ) in planned.stdout.splitlines()
    assert "double-quoted" not in _cli("plan", source, "--identifiers", "lower").stdout
    migrated = _cli("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--identifiers", "snake")
    assert migrated.returncode == 0, migrated.stderr
    assert target.count("invoice_line") == 2240
    snake = _cli("verify", source, "--dsn", target.dsn, "--schema", target.schema, "--identifiers", "snake")
    assert snake.returncode == 0, snake.stdout + snake.stderr
    assert "11 of 11 tables verified" in snake.stdout
    # Without the flag verify looks for "InvoiceLine", which is not there.
    assert _cli("verify", source, "--dsn", target.dsn, "--schema", target.schema).returncode != 0


def test_a_long_name_is_cut_as_postgresql_cuts_it(tmp_path: Path, target: Target) -> None:
    """A name over 63 bytes: PostgreSQL's own truncation, so SQL spelling the whole name finds
    the table; a second name with the same first 63 bytes gets a suffix, and a note says so."""
    long_a, long_b = "orders_" + "x" * 60 + "_archive", "orders_" + "x" * 60 + "_current"
    source = sqlite_db(tmp_path / "long.db", f"CREATE TABLE {long_a} (id INTEGER PRIMARY KEY)",
                       f"CREATE TABLE {long_b} (id INTEGER PRIMARY KEY)", rows={long_a: [(1,)], long_b: [(1,), (2,)]})
    done = _cli("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--json")
    assert done.returncode == 0, done.stderr
    notes = json.loads(done.stdout)["notes"]
    truncated = long_a[:63]
    assert (f"{long_a}: created as {truncated} (longer than 63 bytes: cut as PostgreSQL cuts it, so SQL spelling "
            "the whole name finds it)") in notes
    assert any(n.startswith(f"{long_b}: created as {long_b[:54]}_") and n.endswith(
        "(longer than 63 bytes, and its first 63 bytes name another: a suffix tells them apart)") for n in notes)
    # The app's SQL, spelling the whole long name: PostgreSQL truncates it and finds the table.
    assert target.fetchval(f'SELECT count(*) FROM "{target.schema}".{long_a}') == 1
    assert _cli("verify", source, "--dsn", target.dsn, "--schema", target.schema).returncode == 0
