"""`copier verify` proves a migration and catches what changed behind the copier's back."""

from __future__ import annotations

from pathlib import Path

from .helpers import corpus_file, invoke, migrate, sqlite_db
from .pg import Target


def verify(target: Target, source: Path, *extra: object):  # type: ignore[no-untyped-def]
    return invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema, *extra)


def test_verify_passes_after_migration_and_catches_tampering(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    assert migrate(target, source).exit_code == 0
    result = verify(target, source)
    assert result.exit_code == 0, result.output
    assert "Track: source 3,503 rows, target 3,503, rejected 0, checksum equal: ok" in result.stdout
    assert result.stdout.endswith("11 of 11 tables verified\n")

    target.execute('ALTER TABLE "InvoiceLine" DROP CONSTRAINT "InvoiceLine_TrackId_fkey"')
    target.execute('ALTER TABLE "PlaylistTrack" DROP CONSTRAINT "PlaylistTrack_TrackId_fkey"')
    target.execute('DELETE FROM "Track" WHERE "TrackId" = 1234')
    target.execute('UPDATE "Invoice" SET "Total" = "Total" + 0.01 WHERE "InvoiceId" = 77')
    target.execute('UPDATE "PlaylistTrack" SET "TrackId" = 2819 WHERE "PlaylistId" = 1 AND "TrackId" = 3402')
    result = verify(target, source)
    assert result.exit_code == 4
    lines = result.stdout.splitlines()
    assert "Track: source 3,503 rows, target 3,502, rejected 0, CONTENT DIFFERS at key(s) 1234: MISMATCH" in lines
    assert "Invoice: source 412 rows, target 412, rejected 0, CONTENT DIFFERS at key(s) 77: MISMATCH" in lines
    assert ("PlaylistTrack: source 8,715 rows, target 8,715, rejected 0, CONTENT DIFFERS at key(s) "
            "(1, 2819), (1, 3402): MISMATCH") in lines
    assert lines[-1] == "8 of 11 tables verified; 3 differ"


def test_rejected_rows_are_accounted_for(tmp_path: Path, target: Target) -> None:
    db = sqlite_db(tmp_path / "r.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)",
                   rows={"t": [(1, 1), (2, "two"), (3, 3)]})
    assert migrate(target, db).exit_code == 3
    result = verify(target, db)
    assert result.exit_code == 0, result.output
    assert "t: source 3 rows, target 2, rejected 1, checksum equal: ok" in result.stdout
    # Without the reject file the missing row is a mismatch.
    (tmp_path / "r.rejects.jsonl").unlink()
    assert verify(target, db).exit_code == 4


def test_table_without_key_still_compared(tmp_path: Path, target: Target) -> None:
    db = sqlite_db(tmp_path / "k.db", "CREATE TABLE log (at DATETIME, msg TEXT)",
                   rows={"log": [("2021-01-01 00:00:00", "a"), ("2021-01-02 00:00:00", "a")]})
    assert migrate(target, db).exit_code == 0
    target.execute("UPDATE log SET msg = 'b' WHERE msg = 'a' AND at > '2021-01-01 12:00+00'")
    result = verify(target, db)
    assert result.exit_code == 4
    assert "log: source 2 rows, target 2, rejected 0, CONTENT DIFFERS (no primary key to name the rows): " \
           "MISMATCH" in result.stdout


def test_rounding_is_counted_never_silent(tmp_path: Path, target: Target) -> None:
    # 1.005 rounds into numeric(10,2) as PostgreSQL rounds it; the summary counts it.
    db = sqlite_db(tmp_path / "n.db", "CREATE TABLE p (id INTEGER PRIMARY KEY, price NUMERIC(10,2))",
                   rows={"p": [(1, 1.005), (2, 2.5)]})
    result = invoke("migrate", db, "--dsn", target.dsn, "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert sorted(r[0] for r in target.fetch("SELECT price::text FROM p")) == ["1.01", "2.50"]
    assert "p: 1 numeric value(s) had more decimal places than their column's declared scale and were rounded" \
        in result.stdout
