"""--batch-size has one meaning, in every lane: rows read, converted and sent at a time
(batching.py). Observable in the columnar lane's report: a batch Arrow cannot convert at
all (here, an invalid calendar date) goes wholly to the per-value path, so the rows the
report counts per value are the rows of that one batch, as --batch-size cut it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from copier import batching

from .helpers import migrate, read_jsonl, sqlite_db
from .pg import Target


@pytest.mark.parametrize(("batch_size", "per_value"), [
    # The reader's first batch starts with the query's witness row (dropped): it holds
    # batch_size - 1 rows, the later ones batch_size. Row 1050 lies in rows 1000-1099 at
    # 100 a batch, in rows 900-1199 at 300, in the first batch (rows 1-8191) at 8,192.
    ("100", 99), ("300", 299), (None, 2_999),
])
def test_the_columnar_lane_cuts_batches_of_batch_size_rows(batch_size: str | None, per_value: int,
                                                          tmp_path: Path, target: Target) -> None:
    rows = [(i, "2024-02-30" if i == 1050 else f"2024-03-{i % 28 + 1:02d}") for i in range(1, 3_001)]
    db = sqlite_db(tmp_path / "days.db", "CREATE TABLE days (id INTEGER PRIMARY KEY, day DATE)", rows={"days": rows})
    report = tmp_path / "report.json"
    flags = ["--batch-size", batch_size] if batch_size else []
    result = migrate(target, db, "--report", report, "--reject-file", tmp_path / "rejects.jsonl", *flags)
    assert result.exit_code == 3, result.output  # 2024-02-30 rejected, the rest loaded and verified
    (table,) = json.loads(report.read_text())["tables"]
    assert (table["lane"], table["rows_columnar"], table["rows_exact"], table["rows_rejected"]) == (
        "columnar", 2_999 - per_value, per_value, 1)
    assert [r["key"] for r in read_jsonl(tmp_path / "rejects.jsonl")] == [1050]
    assert target.count("days") == 2_999


def test_the_width_of_a_row_of_1200_columns_is_measured() -> None:
    """The widest-row probe sums every column: as a balanced tree, under SQLite's limit of
    1,000 on an expression's depth. Widths as stored, plus 8 a value."""
    columns = [f"c{i}" for i in range(1_200)]
    connection = sqlite3.connect(":memory:")
    connection.execute(f"CREATE TABLE w ({', '.join(f'{c} INTEGER' for c in columns)})")
    connection.execute("INSERT INTO w (c0, c1199) VALUES (12345, 'abc')")
    connection.execute("INSERT INTO w (c7) VALUES (x'00112233445566778899')")
    (widest,), = connection.execute(batching.row_size_sql("w", columns, "1")).fetchall()
    assert widest == 10 + 8 * 1_200  # the blob's row (the other holds 5 + 3 bytes)
    assert batching.batch_rows(8_192, widest) == batching.BATCH_BYTES // widest == 218
