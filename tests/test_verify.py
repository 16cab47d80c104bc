"""`copier verify` proves a migration and catches what changed behind the copier's back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from copier import arrowlane, load, normalise
from copier.casting import Kind, TargetType
from copier.normalise import Converter, Options

from .helpers import corpus_file, invoke, migrate, sqlite_db
from .pg import Target


def verify(target: Target, source: Path, *extra: object):  # type: ignore[no-untyped-def]
    return invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema, *extra)


def test_verify_passes_after_migration_and_catches_tampering(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    assert migrate(target, source).exit_code == 0
    result = verify(target, source)
    assert result.exit_code == 0, result.output
    assert "Track: source 3,503 rows, target 3,503, rejected 0, content equal: ok" in result.stdout
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


def test_digest_of_a_big_table_sees_swaps_edits_and_rejects(tmp_path: Path, target: Target,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables from 20,000 rows are first compared by digest, read in parallel ranges (each
    digested in chunks as it ships). Values swapped between two rows must not cancel out in
    it; a changed value must show; either way the differing keys are named."""
    from copier import verification

    monkeypatch.setattr(verification, "_DIGEST_CHUNK_ROWS", 4096)
    rows: list[tuple[object, ...]] = [(i, f"name {i}", i % 2, i * 1.25, None if i % 7 else b"\x01\x02")
                                      for i in range(1, 25_001)]
    rows[10] = (11, "odd storage class", "yes", 5, "text in a blob column")  # shipped row by row
    rows[20] = (21, "rejected", "maybe", 1, None)  # not a boolean: in the reject file, left out of the digest
    db = sqlite_db(tmp_path / "big.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, flag BOOLEAN, "
                   "amount NUMERIC(12,2), raw BLOB)", rows={"t": rows})
    assert migrate(target, db).exit_code == 3
    ok = verify(target, db)
    assert ok.exit_code == 0, ok.output
    assert "t: source 25,000 rows, target 24,999, rejected 1, content equal: ok" in ok.stdout

    target.execute("UPDATE t SET flag = NOT flag WHERE id IN (100, 101)")  # a swap: 100 was false, 101 true
    swapped = verify(target, db)
    assert swapped.exit_code == 4
    assert "t: source 25,000 rows, target 24,999, rejected 1, CONTENT DIFFERS at key(s) 100, 101: MISMATCH" \
        in swapped.stdout
    target.execute("UPDATE t SET flag = NOT flag WHERE id IN (100, 101)")
    target.execute("UPDATE t SET amount = amount + 0.01 WHERE id = 20000")
    edited = verify(target, db)
    assert "CONTENT DIFFERS at key(s) 20000: MISMATCH" in edited.stdout
    target.execute("UPDATE t SET amount = amount - 0.01 WHERE id = 20000")
    # The INTEGER PRIMARY KEY is read once, as the rowid: a changed key still shows.
    target.execute("UPDATE t SET id = 30000 WHERE id = 24000")
    rekeyed = verify(target, db)
    assert "CONTENT DIFFERS at key(s) 24000, 30000: MISMATCH" in rekeyed.stdout, rekeyed.stdout


def test_digest_reads_typed_usual_values_into_every_kind(tmp_path: Path, target: Target) -> None:
    """A big table's usual integers and blobs travel typed (int8, bytea), read into the
    target type without text where a shortcut exists (timestamps from Unix seconds and
    milliseconds, booleans, text from UTF-8 blobs), through their text form where not
    (json): each still agrees with the load, and a change in any is seen."""
    rows: list[tuple[object, ...]] = [
        (i, 1_600_000_000 + i if i % 3 else 1_600_000_000_000 + i, i % 2, f"name {i}".encode(), i)
        for i in range(1, 20_001)]
    db = sqlite_db(tmp_path / "typed.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, flag BOOLEAN, "
                   "label TEXT, doc JSON)", rows={"t": rows})
    assert migrate(target, db).exit_code == 0
    ok = verify(target, db)
    assert "t: source 20,000 rows, target 20,000, rejected 0, content equal: ok" in ok.stdout, ok.output
    for change, key in (("at = at + interval '1 second' WHERE id = 7", "7"),
                        ("label = 'other' WHERE id = 8", "8"), ("doc = '9'::jsonb WHERE id = 10", "10")):
        target.execute(f"UPDATE t SET {change}")
        result = verify(target, db)
        assert f"CONTENT DIFFERS at key(s) {key}: MISMATCH" in result.stdout, (change, result.output)
        assert migrate(target, db, "--if-exists", "truncate").exit_code == 0


def test_rejected_rows_are_accounted_for(tmp_path: Path, target: Target) -> None:
    db = sqlite_db(tmp_path / "r.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)",
                   rows={"t": [(1, 1), (2, "two"), (3, 3)]})
    assert migrate(target, db).exit_code == 3
    result = verify(target, db)
    assert result.exit_code == 0, result.output
    assert "t: source 3 rows, target 2, rejected 1, content equal: ok" in result.stdout
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


Mistake = Callable[[object, Callable[[object], object]], object]  # (raw value, right converter) -> value


def _wrong(convert_for: Callable[..., Converter], kind: Kind, mistake: Mistake) -> Callable[..., Converter]:
    """converter_for, except that values for `kind` columns are converted by `mistake`."""
    def converter(target: TargetType, options: Options) -> Converter:
        right = convert_for(target, options)
        if target.kind is not kind:
            return right
        return Converter(target, frozenset(), lambda value: mistake(value, right))
    return converter


@pytest.mark.parametrize(("declared", "values", "kind", "mistake"), [
    ("DATE", ["2021-03-04", "2021-03-05"], Kind.DATE, lambda v, right: right(v) + timedelta(days=1)),
    # A zone applied twice: naive text read as UTC, then shifted again.
    ("DATETIME", ["2021-03-04 10:00:00", 1700000000], Kind.TIMESTAMPTZ,
     lambda v, right: right(v) + timedelta(hours=1)),
    # Banker's rounding where PostgreSQL rounds half away from zero.
    ("NUMERIC(10,2)", [0.125, 1.5], Kind.NUMERIC,
     lambda v, right: Decimal(repr(v)).quantize(Decimal("0.01"), ROUND_HALF_EVEN)),
    ("BOOLEAN", [1, 0], Kind.BOOL, lambda v, right: not right(v)),
])
@pytest.mark.parametrize("inline", [True, False], ids=["small-tables-together", "alone"])
def test_verify_sees_a_wrong_converter(declared: str, values: list[object], kind: Kind,
                                       mistake: Mistake, inline: bool, tmp_path: Path, target: Target,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Small tables are compared together in one query, others alone: either way a
    converter made wrong is seen."""
    from copier import verification

    if not inline:
        monkeypatch.setattr(verification, "_INLINE_MAX_ROWS", 0)
    db = sqlite_db(tmp_path / "w.db", f"CREATE TABLE w (id INTEGER PRIMARY KEY, v {declared})",
                   rows={"w": list(enumerate(values, 1))})
    # Every converter of the run is wrong: the load's, and any other that asks for one.
    wrong = _wrong(normalise.converter_for, kind, mistake)
    monkeypatch.setattr(normalise, "converter_for", wrong)
    monkeypatch.setattr(load, "converter_for", wrong)
    assert invoke("migrate", db, "--dsn", target.dsn, "--schema", target.schema, "--workers", "1", "--lane", "exact",
                  "--quiet").exit_code == 4  # verify, in the same run
    result = verify(target, db)
    assert result.exit_code == 4, result.output
    assert "w: source 2 rows, target 2, rejected 0, CONTENT DIFFERS" in result.stdout
    assert "MISMATCH" in result.stdout


ArrowMistake = Callable[[pa.Array], pa.Array]


@pytest.mark.parametrize(("declared", "values", "kind", "mistake"), [
    ("DATE", ["2021-03-04", "2021-03-05"], Kind.DATE,
     lambda a: pc.add(a.view(pa.int32()), pa.scalar(1, pa.int32())).view(pa.date32())),
    ("DATETIME", ["2021-03-04 10:00:00", "2021-03-05 11:00:00"], Kind.TIMESTAMPTZ,
     lambda a: pc.add(a, pa.scalar(timedelta(hours=1)))),
    ("BOOLEAN", [1, 0], Kind.BOOL, pc.invert),
    ("TEXT", ["ann", "bob"], Kind.TEXT, pc.utf8_upper),
    ("INTEGER", [5, 6], Kind.INT8, lambda a: pc.add(a, 1)),
])
@pytest.mark.parametrize("inline", [True, False], ids=["small-tables-together", "alone"])
def test_verify_sees_a_wrong_columnar_lane(declared: str, values: list[object], kind: Kind, mistake: ArrowMistake,
                                          inline: bool, tmp_path: Path, target: Target,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from copier import verification

    if not inline:
        monkeypatch.setattr(verification, "_INLINE_MAX_ROWS", 0)
    db = sqlite_db(tmp_path / "w.db", f"CREATE TABLE w (id INTEGER PRIMARY KEY, v {declared})",
                   rows={"w": list(enumerate(values, 1))})
    right = arrowlane._normalise

    def wrong(route: arrowlane.Route, array: pa.Array, source_tz: str,
              *others: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        converted, flagged = right(route, array, source_tz, *others)
        return (mistake(converted) if route.kind is kind and route.column.source == "v" else converted), flagged

    monkeypatch.setattr(arrowlane, "_normalise", wrong)
    assert invoke("migrate", db, "--dsn", target.dsn, "--schema", target.schema, "--workers", "1", "--lane", "columnar",
                  "--quiet").exit_code == 4  # verify, in the same run
    result = verify(target, db)
    assert result.exit_code == 4, result.output
    assert "w: source 2 rows, target 2, rejected 0, CONTENT DIFFERS" in result.stdout


def test_verify_agrees_with_the_load_on_every_date_form(tmp_path: Path, target: Target) -> None:
    # Naive text around both DST edges, aware text, Unix seconds and milliseconds, Julian
    # days, fractional seconds: the load's converters and PostgreSQL's own reading agree.
    values: list[object] = ["2021-11-07 01:30", "2021-03-14 02:30", "2021-06-01T10:20:30.123456+05:30",
                            "2021-01-01Z", 1700000000, 1700000000123, 2459215.5, 1727078780.5, "20210304"]
    db = sqlite_db(tmp_path / "d.db", "CREATE TABLE d (id INTEGER PRIMARY KEY, at DATETIME, day DATE, t TEXT)",
                   rows={"d": [(i, v, v, v) for i, v in enumerate(values, 1)]})
    result = invoke("migrate", db, "--dsn", target.dsn, "--schema", target.schema, "--source-tz", "America/New_York",
                    "--cast", "d.t=timestamp without time zone")
    assert result.exit_code in (0, 3), result.output  # dates with a time of day are rejected from `day`
    assert "d: source 9 rows" in verify(target, db, "--source-tz", "America/New_York",
                                        "--cast", "d.t=timestamp without time zone").stdout
    assert verify(target, db, "--source-tz", "America/New_York",
                  "--cast", "d.t=timestamp without time zone").exit_code == 0


def test_verify_runs_in_one_process_and_prints_nothing_on_stderr(tmp_path: Path, target: Target) -> None:
    # An earlier verify digested in worker processes and once in four runs printed
    # "Unknown child process pid N, will report returncode 255"; it starts none now.
    import subprocess
    import sys

    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    assert migrate(target, source, "--no-verify").exit_code == 0
    for _run in range(4):
        done = subprocess.run([sys.executable, "-m", "copier", "verify", str(source), "--dsn", target.dsn,
                               "--schema", target.schema], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "to_process" not in (Path(__file__).parents[1] / "copier" / "verification.py").read_text()


def test_reject_keys_are_read_as_the_file_grows(tmp_path: Path) -> None:
    """During a run, each table is verified once loaded, while later tables still append
    their rejects: a line is read once it is whole."""
    from copier.verification import RejectKeys

    path = tmp_path / "r.jsonl"
    keys = RejectKeys(path)
    assert keys.of("a") == set()  # no file yet
    path.write_text('{"table": "a", "key": 1}\n{"table": "b", "key": [2, "x"]}\n{"table": "a", "ke')
    assert keys.of("a") == {1} and keys.of("b") == {(2, "x")}
    with path.open("a") as handle:
        handle.write('y": 3}\n')
    assert keys.of("a") == {1, 3}


def test_small_tables_checked_together_each_get_their_own_verdict(tmp_path: Path, target: Target,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Small tables are compared several in one query. A changed row is named in its own
    table only; a value PostgreSQL cannot read (a converter let 'soon' into a timestamp
    column) is that table's problem, and the others are still compared."""
    tables = [f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY, at DATETIME, name TEXT)" for n in range(6)]
    rows = {f"t{n}": [(k, f"2024-01-0{k} 10:00:00", f"row {k}") for k in range(1, 4)] for n in range(6)}
    rows["t4"][1] = (2, "soon", "row 2")
    db = sqlite_db(tmp_path / "six.db", *tables, rows=rows)

    def wrong(value: object, right: Callable[[object], object]) -> object:
        return right("2024-01-02 10:00:00") if value == "soon" else right(value)

    converter = _wrong(normalise.converter_for, Kind.TIMESTAMPTZ, wrong)
    monkeypatch.setattr(normalise, "converter_for", converter)
    monkeypatch.setattr(load, "converter_for", converter)
    assert invoke("migrate", db, "--dsn", target.dsn, "--schema", target.schema, "--quiet").exit_code == 4
    target.execute("UPDATE t1 SET name = 'changed' WHERE id = 3")
    result = verify(target, db)
    assert result.exit_code == 4, result.output
    lines = result.stdout.splitlines()
    assert "t1: source 3 rows, target 3, rejected 0, CONTENT DIFFERS at key(s) 3: MISMATCH" in lines
    assert any(line.startswith("t4: source 3 rows, target 3, rejected 0, CONTENT DIFFERS (PostgreSQL cannot read "
                               "a source value as loaded: invalid input syntax for type timestamp") for line in lines)
    assert [line for line in lines if line.endswith(": ok")] == [
        f"t{n}: source 3 rows, target 3, rejected 0, content equal: ok" for n in (0, 2, 3, 5)]


def test_small_tables_of_big_values_are_checked_streaming(tmp_path: Path, target: Target,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The source text held for one query of small tables is bounded: past the budget, a
    table is checked through a temporary table instead, and still gets its own verdict."""
    from copier import verification

    monkeypatch.setattr(verification, "_TOGETHER_MAX_BYTES", 100)
    blob = bytes(range(256)) * 4  # 2,048 hex characters: over the budget alone
    db = sqlite_db(tmp_path / "big.db", "CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT)",
                   "CREATE TABLE heavy (id INTEGER PRIMARY KEY, v BLOB)",
                   "CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)",
                   rows={"small": [(1, "a"), (2, "b")], "heavy": [(1, blob), (2, blob[::-1])],
                         "other": [(1, "c")]})
    held: list[str] = []
    real = verification._source_text_rows

    async def spying(path: Path, table: Any, *args: Any) -> Any:
        result = await real(path, table, *args)
        held.append(f"{table.name}: {'held' if result is not None else 'streamed'}")
        return result

    monkeypatch.setattr(verification, "_source_text_rows", spying)
    assert migrate(target, db).exit_code == 0
    target.execute("UPDATE heavy SET v = 'x'::bytea WHERE id = 2")
    result = verify(target, db)
    assert result.exit_code == 4, result.output
    assert "heavy: source 2 rows, target 2, rejected 0, CONTENT DIFFERS at key(s) 2: MISMATCH" in result.stdout
    assert "small: source 2 rows, target 2, rejected 0, content equal: ok" in result.stdout
    assert "other: source 1 rows, target 1, rejected 0, content equal: ok" in result.stdout
    assert "heavy: streamed" in held and "small: held" in held


@pytest.mark.parametrize("digest_from", [20_000, 10])
def test_a_table_of_a_thousand_columns_is_verified(digest_from: int, tmp_path: Path, target: Target,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL allows 1,600 columns a table and 1,664 in a query's result: a table of
    1,000 columns (3,000 shipped) is compared in groups of columns, each with the key, and
    a changed value in its last column is still named by its key (rows compared directly,
    and, from `digest_from` rows, by digest first)."""
    from copier import verification

    monkeypatch.setattr(verification, "_DIGEST_MIN_ROWS", digest_from)
    names = [f"c{i}" for i in range(1000)]
    db = sqlite_db(tmp_path / "wide.db",
                   f"CREATE TABLE w (id INTEGER PRIMARY KEY, {', '.join(f'{n} INTEGER' for n in names)})",
                   rows={"w": [(r, *(r * i for i in range(1000))) for r in range(1, 31)]})
    assert migrate(target, db).exit_code == 0
    ok = verify(target, db)
    assert ok.exit_code == 0, ok.output
    assert "w: source 30 rows, target 30, rejected 0, content equal: ok" in ok.stdout
    target.execute("UPDATE w SET c999 = -1 WHERE id = 17")
    changed = verify(target, db)
    assert changed.exit_code == 4, changed.output
    assert "w: source 30 rows, target 30, rejected 0, CONTENT DIFFERS at key(s) 17: MISMATCH" in changed.stdout


def test_fractions_finer_than_microseconds_are_rounded_as_postgresql_does(tmp_path: Path, target: Target) -> None:
    """PostgreSQL keeps microseconds and rounds a longer fraction as rint(fraction * 1e6)
    (half to even, on the double): the load stores that value, and verify agrees with it."""
    texts = ["2021-01-01 12:00:00.123456789+00:00", "2021-01-01 12:00:00.9999995", "2021-01-01T12:00:00.0000015Z",
             "2021-01-01 12:00:00.0000005"]
    times = ["12:00:00.123456789", "12:00:00.9999995", "12:00:00.0000015", "12:00:00.0000005"]
    db = sqlite_db(tmp_path / "ns.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, naive TIMESTAMP, "
                   "tod TIME)", rows={"t": [(i, text, text, t) for i, (text, t) in enumerate(zip(texts, times), 1)]})
    result = migrate(target, db, "--cast", "t.naive=timestamp without time zone")
    assert result.exit_code == 0, result.output
    # Written out: what PostgreSQL 15 makes of each text ('...'::timestamptz in UTC).
    assert [tuple(r) for r in target.fetch(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), naive::text, tod::text FROM t ORDER BY id")
    ] == [("2021-01-01 12:00:00.123457", "2021-01-01 12:00:00.123457", "12:00:00.123457"),
          ("2021-01-01 12:00:01.000000", "2021-01-01 12:00:01", "12:00:01"),
          ("2021-01-01 12:00:00.000002", "2021-01-01 12:00:00.000002", "12:00:00.000002"),
          ("2021-01-01 12:00:00.000000", "2021-01-01 12:00:00", "12:00:00")]
    checked = verify(target, db, "--cast", "t.naive=timestamp without time zone")
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize(("digest_from", "chunk"), [(20_000, 0), (10, 0), (10, 100)],
                         ids=["rows", "digest-first", "digest-in-chunks"])
def test_verify_names_every_kind_of_difference(digest_from: int, chunk: int, tmp_path: Path, target: Target,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A table checked alone (its rows compared in PostgreSQL, or its digests first from
    `digest_from` rows; with `chunk`, the source's digest made 100 rows at a time as they
    ship): a value changed in any column (each kind), a row missing, a row added, a row
    duplicated, each is seen and named by its key."""
    from copier import verification

    monkeypatch.setattr(verification, "_DIGEST_MIN_ROWS", digest_from)
    row_by_row: list[str] = []
    if chunk:
        monkeypatch.setattr(verification, "_VERIFY_BATCH_ROWS", chunk)
        monkeypatch.setattr(verification, "_DIGEST_CHUNK_ROWS", chunk)
        ship_all = verification._ship_all

        async def shipping_all(path: Path, connection: Any, table: Any, *args: Any) -> Any:
            row_by_row.append(table.name)
            return await ship_all(path, connection, table, *args)

        monkeypatch.setattr(verification, "_ship_all", shipping_all)
    rows = [(i, i * 7, i / 8, i * 1.25, f"name {i}\n\"quoted\", {i}", bytes([i % 256, 0]), i % 2,
             f"2021-03-{1 + i % 28:02d}", f"2021-03-04 10:{i % 60:02d}:00", 1_600_000_000 + i,
             f"2021-03-04T10:00:{i % 60:02d}.5", f"a0eebc99-9c0b-4ef8-bb6d-{i:012d}", f'{{"n": {i}}}', 2.5 * i)
            for i in range(1, 1501)]
    db = sqlite_db(tmp_path / "kinds.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, f REAL, "
                   "amount NUMERIC(12,2), label TEXT, raw BLOB, flag BOOLEAN, day DATE, at DATETIME, "
                   "unix DATETIME, naive TIMESTAMP, u UUID, doc JSON, plain NUMERIC)", rows={"t": rows})
    casts = ("--cast", "t.naive=timestamp without time zone")
    assert migrate(target, db, *casts).exit_code == 0
    ok = verify(target, db, *casts)
    assert ok.exit_code == 0, ok.output
    assert "t: source 1,500 rows, target 1,500, rejected 0, content equal: ok" in ok.stdout
    assert row_by_row == []  # with chunks, the digests agreed: no row-by-row comparison was needed
    changes = [("n", "n + 1"), ("f", "f * 2"), ("amount", "amount + 0.01"), ("label", "label || ' '"),
               ("raw", "raw || '\\x00'::bytea"), ("flag", "NOT flag"), ("day", "day + 1"),
               ("at", "at + interval '1 microsecond'"), ("unix", "unix - interval '1 second'"),
               ("naive", "naive + interval '1 hour'"), ("u", "'a0eebc99-9c0b-4ef8-bb6d-999999999999'"),
               ("doc", "'{\"n\": -1}'"), ("plain", "plain + 0.001")]
    for n, (column, changed) in enumerate(changes, 2):
        key = 100 * n + 7
        target.execute(f"UPDATE t SET {column} = {changed} WHERE id = {key}")
        result = verify(target, db, *casts)
        assert f"CONTENT DIFFERS at key(s) {key}: MISMATCH" in result.stdout, (column, result.output)
        assert migrate(target, db, *casts, "--if-exists", "truncate").exit_code == 0
    target.execute("DELETE FROM t WHERE id = 42")
    target.execute("INSERT INTO t (id, n) VALUES (5000, 1)")
    both = verify(target, db, *casts)
    assert "t: source 1,500 rows, target 1,500, rejected 0, CONTENT DIFFERS at key(s) 42, 5000: MISMATCH" \
        in both.stdout, both.output
    assert migrate(target, db, *casts, "--if-exists", "truncate").exit_code == 0
    constraint = target.fetchval("SELECT conname FROM pg_constraint WHERE contype = 'p' AND "
                                 "conrelid = (SELECT oid FROM pg_class WHERE relname = 't' AND "
                                 "relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1))", target.schema)
    target.execute(f'ALTER TABLE t DROP CONSTRAINT "{constraint}"')
    target.execute("INSERT INTO t SELECT * FROM t WHERE id = 777")
    duplicated = verify(target, db, *casts)
    assert "t: source 1,500 rows, target 1,501, rejected 0, CONTENT DIFFERS at key(s) 777: MISMATCH" \
        in duplicated.stdout, duplicated.output


def test_digest_of_a_without_rowid_table_reads_it_by_its_primary_key(tmp_path: Path, target: Target,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A WITHOUT ROWID table is digested like any other, read in ranges of its primary key:
    a value of an odd storage class is read again by that key (as SQLite quotes it); a
    changed value is seen and named by its composite key. With rejected rows (whose keys
    the batches cannot name) it is compared row by row, the rejects left out."""
    from copier import verification

    monkeypatch.setattr(verification, "_DIGEST_MIN_ROWS", 10)
    odd: list[list[object]] = []
    ship_odd_rows = verification._ship_odd_rows

    async def spying(path: Path, connection: Any, table: Any, keys: list[object], busy_timeout: float) -> None:
        odd.append(list(keys))
        await ship_odd_rows(path, connection, table, keys, busy_timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(verification, "_ship_odd_rows", spying)
    rows: list[tuple[object, ...]] = [(f"o{i // 3}", str(i % 3), i, i * 1.25, f"2021-03-04 10:{i % 60:02d}:00")
                                      for i in range(3, 3003)]
    rows[100] = ("o it's", "1", 12, 0.5, 1_614_852_000)  # Unix seconds among texts: an odd row
    ddl = ("CREATE TABLE t (order_code TEXT NOT NULL, line TEXT NOT NULL, quantity INTEGER NOT NULL, "
           "price NUMERIC(10,2), added_at DATETIME, PRIMARY KEY (order_code, line)) WITHOUT ROWID")
    db = sqlite_db(tmp_path / "wr.db", ddl, rows={"t": rows})
    assert migrate(target, db).exit_code == 0
    assert odd == [["'o it''s','1'"]]
    ok = verify(target, db)
    assert ok.exit_code == 0, ok.output
    assert "t: source 3,000 rows, target 3,000, rejected 0, content equal: ok" in ok.stdout
    target.execute("UPDATE t SET quantity = quantity + 1 WHERE order_code = 'o500' AND line = '1'")
    target.execute("UPDATE t SET quantity = 13 WHERE order_code = 'o it''s'")
    changed = verify(target, db)
    assert "t: source 3,000 rows, target 3,000, rejected 0, CONTENT DIFFERS at key(s) (o it's, 1), (o500, 1): " \
        "MISMATCH" in changed.stdout, changed.output

    rows[200] = ("o67", "x", "not a number", 1, None)  # rejected by the load
    rejecting = sqlite_db(tmp_path / "rejecting.db", ddl, rows={"t": rows})
    target.execute("DROP TABLE t")
    assert migrate(target, rejecting).exit_code == 3
    checked = verify(target, rejecting)
    assert "t: source 3,000 rows, target 2,999, rejected 1, content equal: ok" in checked.stdout, checked.output


def _source_digests_made(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every source digest verify makes from here on, in order (verification._source_digest
    still does the work)."""
    from copier import verification

    digests: list[object] = []
    source_digest = verification._source_digest

    async def counting(*args: Any, **kwargs: Any) -> Any:
        digest = await source_digest(*args, **kwargs)
        digests.append(digest)
        return digest

    monkeypatch.setattr(verification, "_source_digest", counting)
    return digests


def test_the_early_source_digest_is_redone_when_the_load_retries_after_the_source_changed(
        tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big table's source digest is computed while it loads (EarlyDigests). The first
    attempt's digest is made from the file as it was; then the app writes and the attempt
    fails (the file changed under it); the retry reads the new rows, and its own digest is
    the one verify compares with: the run ends verified, and the target holds the new rows."""
    import sqlite3

    from copier import tableload, verification
    from copier.load import load_rows

    rows = [(i, f"name {i}") for i in range(1, 25_001)]
    db = sqlite_db(tmp_path / "big.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", rows={"t": rows})
    early: list[verification.EarlyDigests] = []
    start = verification.EarlyDigests.start

    def spying_start(self: verification.EarlyDigests, table: Any, attempt: int | None) -> None:
        early.append(self)
        start(self, table, attempt)

    digests = _source_digests_made(monkeypatch)

    writes = 0

    async def load_then_app_writes(*args: Any, **kwargs: Any) -> Any:
        nonlocal writes
        counts = await load_rows(*args, **kwargs)
        if not writes:  # once the first attempt's early digest has read the file as it was
            await early[0].digests["t"].done.wait()
            with sqlite3.connect(db) as connection:
                connection.execute("UPDATE t SET name = 'changed' WHERE id = 7")
                connection.execute("INSERT INTO t VALUES (25001, 'added')")
            writes += 1
        return counts

    monkeypatch.setattr(verification.EarlyDigests, "start", spying_start)
    monkeypatch.setattr(tableload, "load_rows", load_then_app_writes)
    result = migrate(target, db, "--workers", "1", "--retries", "1", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["verified"] is True
    assert target.fetchval("SELECT name FROM t WHERE id = 7") == "changed"
    assert target.count("t") == 25_001
    assert len(digests) == 2  # one per attempt, the second used by verify: no third read of the source
    assert digests[0] != digests[1]


@pytest.mark.parametrize(("versions", "rejected", "used"), [
    ([5, 5], set(), True),  # the file as the attempt read it, from before the digest's read to after
    ([6, 6], set(), False),  # written to between the attempt's start and the digest's read
    ([5, 6], set(), False),  # written to while the digest read it
    ([5, 5], {7}, False),  # the load rejected a row, which the digest counts
])
def test_an_early_source_digest_counts_only_for_the_source_the_load_read(
        versions: list[int], rejected: set[object], used: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import anyio

    from copier import verification

    async def digest(*_args: object, **_kwargs: object) -> tuple[int, object]:
        return 25_000, 1234

    monkeypatch.setattr(verification, "_source_digest", digest)
    table = SimpleNamespace(name="t", create=True, source=SimpleNamespace(row_count=25_000), columns=[object()],
                            generated=())
    read = iter(versions)

    async def main() -> tuple[int, object] | None:
        async with anyio.create_task_group() as group:
            early = verification.EarlyDigests(Path("unused.db"), Any, group, lambda: next(read))  # type: ignore[arg-type]
            early.start(table, 5)  # type: ignore[arg-type]
            taken = await early.take("t", rejected)
        return taken

    assert anyio.run(main) == ((25_000, 1234) if used else None)


def test_the_early_source_digest_covers_generated_columns(tmp_path: Path, target: Target,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify compares the columns PostgreSQL generates too: the digest made during the load
    covers them, so it is the one verify uses, and it agrees with the target's (no read of
    the source for a digest after the load, no row-by-row comparison)."""
    from copier import verification

    digests = _source_digests_made(monkeypatch)

    row_by_row: list[str] = []
    ship_all = verification._ship_all

    async def shipping_all(path: Path, connection: Any, table: Any, *args: Any) -> Any:
        row_by_row.append(table.name)
        return await ship_all(path, connection, table, *args)

    monkeypatch.setattr(verification, "_ship_all", shipping_all)
    db = sqlite_db(tmp_path / "generated.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, price REAL, qty INTEGER, "
                   "total REAL GENERATED ALWAYS AS (price * qty) STORED)",
                   rows={})
    with sqlite3.connect(db) as connection:
        connection.executemany("INSERT INTO t (id, price, qty) VALUES (?, ?, ?)",
                               [(i, i / 4, i % 7) for i in range(1, 25_001)])
    result = migrate(target, db, "--workers", "1", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["verified"] is True
    assert target.fetchval("SELECT total FROM t WHERE id = 10") == 7.5  # 2.5 * 3, by PostgreSQL
    assert len(digests) == 1 and digests[0] is not None
    assert row_by_row == []  # the digests agreed


def test_the_target_digest_is_made_while_the_early_source_digest_finishes(
        tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a big table is keyed, verify digests the target at once, while the source digest
    the load started is still shipping (json's ended 1-3 s after the table's keys:
    benchmarks/README), not after it. Here the source digest, made, waits (20 s at most)
    for the target's before it returns: the run is verified by the two digests, and the
    target's was made first."""
    import anyio

    from copier import verification

    events: dict[str, anyio.Event] = {}
    seen: dict[str, bool] = {}

    def target_digested() -> anyio.Event:  # made in the run's event loop, by whichever asks first
        return events.setdefault("target", anyio.Event())

    digest = verification._digest

    async def digesting(connection: Any, sql: str) -> Any:
        made = await digest(connection, sql)
        if verification._SOURCE_COPY not in sql:
            target_digested().set()
        return made

    source_digest = verification._source_digest

    async def source_side(*args: Any, **kwargs: Any) -> Any:
        made = await source_digest(*args, **kwargs)
        with anyio.move_on_after(20):
            await target_digested().wait()
        seen["target first"] = target_digested().is_set()
        return made

    row_by_row: list[str] = []
    ship_all = verification._ship_all

    async def shipping_all(path: Path, connection: Any, table: Any, *args: Any) -> Any:
        row_by_row.append(table.name)
        return await ship_all(path, connection, table, *args)

    monkeypatch.setattr(verification, "_digest", digesting)
    monkeypatch.setattr(verification, "_source_digest", source_side)
    monkeypatch.setattr(verification, "_ship_all", shipping_all)
    db = sqlite_db(tmp_path / "big.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, at DATETIME)",
                   rows={"t": [(i, f"name {i}", f"2020-01-01 00:00:{i % 60:02d}") for i in range(1, 25_001)]})
    result = migrate(target, db, "--workers", "1", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["verified"] is True
    assert seen["target first"] is True
    assert row_by_row == []  # the digests agreed


def test_verify_does_not_wait_for_an_early_digest_whose_task_never_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """An early digest scheduled in a task group that never runs it (the group gone): verify
    gives up waiting for it to start, and reads the source itself (take says None)."""
    from types import SimpleNamespace

    import anyio

    from copier import verification

    monkeypatch.setattr(verification, "_EARLY_START_SECONDS", 0.2)
    table = SimpleNamespace(name="t", create=True, source=SimpleNamespace(row_count=25_000), columns=[object()],
                            generated=())
    never_runs = SimpleNamespace(start_soon=lambda *_args: None)

    async def main() -> tuple[int, object] | None:
        early = verification.EarlyDigests(Path("unused.db"), Any, never_runs, lambda: 5)  # type: ignore[arg-type]
        early.start(table, 5)  # type: ignore[arg-type]
        with anyio.fail_after(10):
            return await early.take("t", set())

    assert anyio.run(main) is None


def test_verify_does_not_wait_for_an_early_digest_cancelled_with_its_task_group(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The load's task group cancelled while an early digest reads: the digest's task ends,
    and verify, waiting for it elsewhere, reads the source itself (take says None)."""
    from types import SimpleNamespace

    import anyio

    from copier import verification

    reading = anyio.Event()

    async def digest(*_args: object, **_kwargs: object) -> tuple[int, object]:
        reading.set()
        await anyio.sleep_forever()
        raise AssertionError("cancelled")

    monkeypatch.setattr(verification, "_source_digest", digest)
    table = SimpleNamespace(name="t", create=True, source=SimpleNamespace(row_count=25_000), columns=[object()],
                            generated=())

    async def main() -> tuple[int, object] | None:
        async with anyio.create_task_group() as load:
            early = verification.EarlyDigests(Path("unused.db"), Any, load, lambda: 5)  # type: ignore[arg-type]
            early.start(table, 5)  # type: ignore[arg-type]
            await reading.wait()
            load.cancel_scope.cancel()
        with anyio.fail_after(10):
            return await early.take("t", set())

    assert anyio.run(main) is None
