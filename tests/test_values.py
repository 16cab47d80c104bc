"""Every nasty value real SQLite files hold: it arrives exactly, or it is rejected with a reason."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from .helpers import migrate, read_jsonl, sqlite_db
from .pg import Target

UTC = UTC


def one_column(tmp_path: Path, declared: str, values: list[object]) -> Path:
    return sqlite_db(tmp_path / "v.db", f"CREATE TABLE v (id INTEGER PRIMARY KEY, x {declared})",
                     rows={"v": list(enumerate(values, 1))})


def loaded(target: Target) -> dict[int, object]:
    return {r[0]: r[1] for r in target.fetch("SELECT id, x FROM v")}


def rejected(tmp_path: Path) -> dict[int, str]:
    path = tmp_path / "v.rejects.jsonl"
    return {r["key"]: r["reason"] for r in read_jsonl(path)} if path.exists() else {}


def test_dynamic_typing_into_integer(tmp_path: Path, target: Target) -> None:
    migrate(target, one_column(tmp_path, "INTEGER", ["12", " 7 ", "1e3", "abc", "", 3.0, 3.5, 2**62, None]))
    assert loaded(target) == {1: 12, 2: 7, 3: 1000, 6: 3, 8: 2**62, 9: None}
    assert rejected(tmp_path) == {
        4: "text 'abc' cannot be an integer: not a number",
        5: "text '' cannot be an integer: not a number",
        7: "real 3.5 cannot be an integer: it has a fraction or is not finite",
    }


def test_dynamic_typing_into_real_and_numeric(tmp_path: Path, target: Target) -> None:
    migrate(target, one_column(tmp_path, "NUMERIC", [0.1, "12.50", 7, "NaN", float("inf"), "x", 1e300]))
    values = loaded(target)
    assert values[1] == Decimal("0.1") and values[2] == Decimal("12.50") and values[3] == Decimal(7)
    assert values[4].is_nan()  # type: ignore[attr-defined]
    assert values[5] == Decimal("Infinity")
    assert values[7] == Decimal("1E+300")
    assert list(rejected(tmp_path)) == [6]


def test_text_cases(tmp_path: Path, target: Target) -> None:
    long_text = "ü" * 1_000_000
    astral = "emoji 😀 music 𝄞 cjk 𠀋"
    db = one_column(tmp_path, "TEXT", [12, 1.5, b"utf8 \xc3\xa9", long_text, astral, "nul\x00inside"])
    with sqlite3.connect(db) as connection:  # TEXT that is not UTF-8, as some apps wrote it
        connection.execute("INSERT INTO v VALUES (7, CAST(X'6869FF' AS TEXT))")
    migrate(target, db)
    assert loaded(target) == {1: "12", 2: "1.5", 3: "utf8 é", 4: long_text, 5: astral}
    reasons = rejected(tmp_path)
    assert reasons[6] == ("text 'nul\\x00inside' cannot be text: PostgreSQL text cannot hold NUL characters "
                          "(see --strip-nul)")
    assert reasons[7] == "text blob of 3 bytes x'6869ff' cannot be text: not valid UTF-8 at byte 2"


def test_strip_nul(tmp_path: Path, target: Target) -> None:
    result = migrate(target, one_column(tmp_path, "TEXT", ["a\x00b"]), "--strip-nul")
    assert result.exit_code == 0
    assert loaded(target) == {1: "ab"}


def test_blobs_of_every_size(tmp_path: Path, target: Target) -> None:
    blobs = [b"", b"\x00", bytes(range(256)), bytes(7_000_000)]
    migrate(target, one_column(tmp_path, "BLOB", [*blobs, "text in a blob column", 5]))
    assert loaded(target) == {1: b"", 2: b"\x00", 3: bytes(range(256)), 4: bytes(7_000_000),
                              5: b"text in a blob column"}
    assert rejected(tmp_path) == {6: "integer 5 cannot be bytea: a number is not binary data"}


def test_timestamps_into_timestamptz(tmp_path: Path, target: Target) -> None:
    values = ["2021-03-04 05:06", "2021-03-04T05:06:07.123456Z", "2021-03-04 05:06:07+02:00",
              1_614_834_367, 1_614_834_367_500, 2459277.5, "not a date", "2021-07-01 12:00"]
    migrate(target, one_column(tmp_path, "DATETIME", values), "--source-tz", "Europe/Paris")
    assert loaded(target) == {
        1: datetime(2021, 3, 4, 4, 6, tzinfo=UTC),  # naive: Paris wall time (CET, +1)
        2: datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        3: datetime(2021, 3, 4, 3, 6, 7, tzinfo=UTC),
        4: datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC),
        5: datetime(2021, 3, 4, 5, 6, 7, 500000, tzinfo=UTC),
        6: datetime(2021, 3, 4, tzinfo=UTC),
        8: datetime(2021, 7, 1, 10, tzinfo=UTC),  # CEST, +2
    }
    assert rejected(tmp_path) == {7: "text 'not a date' cannot be a timestamp: not an ISO 8601 date"}


def test_booleans(tmp_path: Path, target: Target) -> None:
    values = [0, 1, "0", "1", "t", "F", "true", "FALSE", "yes", "No", 2, "maybe"]
    migrate(target, one_column(tmp_path, "BOOLEAN", values))
    assert loaded(target) == {1: False, 2: True, 3: False, 4: True, 5: True, 6: False, 7: True, 8: False,
                              9: True, 10: False}
    assert sorted(rejected(tmp_path)) == [11, 12]


def test_existing_schema_types(tmp_path: Path, target: Target) -> None:
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    target.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    target.execute("CREATE TABLE e (id integer PRIMARY KEY, small integer, naive timestamp, day date, "
                   "doc jsonb, ref uuid, feeling mood, code varchar(3), n numeric)")
    db = sqlite_db(tmp_path / "e.db", "CREATE TABLE e (id INTEGER PRIMARY KEY, small INTEGER, naive DATETIME, "
                   "day DATE, doc JSON, ref TEXT, feeling TEXT, code TEXT, n REAL)", rows={"e": [
                       (1, 2**31 - 1, "2021-01-01 10:00:00+02:00", "2021-01-01", '{"b": 1, "a": [1, 2]}',
                        "12345678-1234-5678-1234-567812345678", "ok", "abc", "NaN"),
                       (2, 2**31, None, None, None, None, None, None, None),
                       (3, None, None, "2021-01-01 10:00:00", None, None, None, None, None),
                       (4, None, None, None, "{bad json", None, None, None, None),
                       (5, None, None, None, None, "nope", None, None, None),
                       (6, None, None, None, None, None, "angry", None, None),
                       (7, None, None, None, None, None, None, "abcd", None),
                       (8, float("inf"), None, None, None, None, None, None, None),
                   ]})
    assert migrate(target, db).exit_code == 3
    row = target.fetch("SELECT * FROM e")[0]
    assert dict(row) | {"n": None} == {
        "id": 1, "small": 2**31 - 1, "naive": datetime(2021, 1, 1, 8), "day": date(2021, 1, 1),
        "doc": '{"a": [1, 2], "b": 1}', "ref": UUID("12345678-1234-5678-1234-567812345678"), "feeling": "ok",
        "code": "abc", "n": None}
    assert row["n"].is_nan()  # SQLite stores a NaN REAL as NULL, so it came as text
    reasons = {r["key"]: r["reason"] for r in read_jsonl(tmp_path / "e.rejects.jsonl")}
    assert reasons == {
        2: "integer 2147483648 cannot be an integer: out of range",
        3: "text '2021-01-01 10:00:00' cannot be a date: it has a time of day",
        4: "text '{bad json' cannot be json: Expecting property name enclosed in double quotes: line 1 column 2 "
           "(char 1)",
        5: "text 'nope' cannot be a uuid",
        6: f"text 'angry' cannot be {target.schema}.mood: not one of sad, ok, happy",
        7: "text 'abcd' cannot be character varying(3): 4 characters is longer than 3",
        8: "real inf cannot be an integer: it has a fraction or is not finite",
    }


def test_duplicates_that_sqlite_allowed_keep_the_rows_and_report_the_constraint(
        tmp_path: Path, target: Target) -> None:
    # In an untyped column 1 and '1' are distinct to SQLite but equal as bigint: the
    # rows load, the unique index cannot be built, and the summary says so (exit 1).
    db = sqlite_db(tmp_path / "d.db", "CREATE TABLE d (code UNIQUE, parent REFERENCES d(code))",
                   rows={"d": [(1, None), ("1", 5)]})
    result = migrate(target, db, "--report", tmp_path / "r.json", "--cast", "d.code=bigint",
                     "--cast", "d.parent=bigint")
    assert result.exit_code == 1
    assert target.count("d") == 2
    import json

    warnings = json.loads((tmp_path / "r.json").read_text())["tables"][0]["warnings"]
    assert warnings[0].startswith('index d_code_key not added: could not create unique index "d_code_key"')
    assert warnings[1] == ("foreign key d_parent_fkey not added: there is no unique constraint matching given "
                           'keys for referenced table "d"')
