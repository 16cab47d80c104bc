"""A deterministic generator of realistic SQLite databases for benchmarks, at any size.

Shapes: `finance` (accounts, transactions, splits referencing both), `wide` (60
columns of mixed types), `text` (a text-heavy documents table) and `many` (small tables
of 20 rows: `rows` / 20 of them, where per-table costs dominate), and the app shapes of
apps.py (files as SQLAlchemy, Django, Prisma and hand-written schemas store them). The same
seed and sizes always give the same rows.
"""

from __future__ import annotations

import random
import sqlite3
import string
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from ..errors import UsageError
from .apps import APP_SHAPES, BadRows, spoil

SHAPES = ("finance", "wide", "text", "many", *APP_SHAPES)
SMALL_TABLE_ROWS = 20
ACCOUNTS = 10_000
_CATEGORIES = ["groceries", "rent", "salary", "transport", "utilities", "dining", "travel", "health",
               "insurance", "gifts", "education", "fees"]
_WORDS = ("payment card transfer refund invoice monthly store online market coffee fuel ticket "
          "subscription cash deposit withdrawal fee interest bonus rent").split()

FINANCE_SCHEMA = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    currency CHAR(3) NOT NULL,
    opened_at DATETIME NOT NULL,
    active BOOLEAN NOT NULL
);
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    amount NUMERIC(12,2) NOT NULL,
    description TEXT NOT NULL,
    category TEXT,
    posted_at DATETIME NOT NULL,
    created_at DATETIME NOT NULL,
    pending BOOLEAN NOT NULL,
    raw BLOB
);
CREATE INDEX transactions_account ON transactions(account_id);
CREATE TABLE splits (
    id INTEGER PRIMARY KEY,
    transaction_id INTEGER NOT NULL REFERENCES transactions(id),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    share NUMERIC(12,2) NOT NULL
);
"""


def _description(rng: random.Random) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < rng.randint(30, 60):
        words.append(rng.choice(_WORDS))
    return " ".join(words)[:60]


def _accounts(rng: random.Random) -> Iterator[tuple[object, ...]]:
    for i in range(1, ACCOUNTS + 1):
        yield (i, f"Account {i:05d}", rng.choice(["EUR", "USD", "GBP"]),
               f"20{rng.randint(10, 23)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} 09:00:00",
               rng.randint(0, 1))


def _transactions(rng: random.Random, rows: int) -> Iterator[tuple[object, ...]]:
    base = 1_600_000_000
    descriptions = [_description(rng) for _ in range(4096)]
    for i in range(1, rows + 1):
        moment = base + i * 29 + rng.randint(0, 28)
        # posted_at: naive local wall time as text, created_at: Unix seconds.
        posted = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment - 3600))
        raw = rng.randbytes(rng.randint(0, 64)) if rng.random() < 0.7 else None
        yield (i, rng.randint(1, ACCOUNTS), round(rng.uniform(-2000, 5000), 2), rng.choice(descriptions),
               rng.choice(_CATEGORIES) if rng.random() < 0.9 else None, posted, moment, rng.randint(0, 1), raw)


def _splits(rng: random.Random, transactions: int) -> Iterator[tuple[object, ...]]:
    for i in range(1, transactions // 10 + 1):
        yield (i, rng.randint(1, transactions), rng.randint(1, ACCOUNTS), round(rng.uniform(0, 500), 2))


WIDE_COLUMNS = 60


def _wide_schema() -> str:
    kinds = ["INTEGER", "REAL", "TEXT", "DATETIME", "BOOLEAN", "NUMERIC(10,2)"]
    columns = ", ".join(f"c{i:02d} {kinds[i % len(kinds)]}" for i in range(WIDE_COLUMNS))
    return f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {columns});"


def _wide(rng: random.Random, rows: int) -> Iterator[tuple[object, ...]]:
    for i in range(1, rows + 1):
        values: list[object] = [i]
        for c in range(WIDE_COLUMNS):
            kind = c % 6
            if kind == 0:
                values.append(rng.randint(-10**6, 10**6))
            elif kind == 1:
                values.append(rng.random() * 1000)
            elif kind == 2:
                values.append("".join(rng.choices(string.ascii_letters, k=12)))
            elif kind == 3:
                values.append(f"2022-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} 12:{rng.randint(0, 59):02d}:00")
            elif kind == 4:
                values.append(rng.randint(0, 1))
            else:
                values.append(round(rng.uniform(0, 9999), 2))
        yield tuple(values)


def _documents(rng: random.Random, rows: int) -> Iterator[tuple[object, ...]]:
    for i in range(1, rows + 1):
        body = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(150, 600)))
        yield (i, f"Document {i}", body, f"2021-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")


def _small_rows(rng: random.Random) -> Iterator[tuple[object, ...]]:
    for _ in range(SMALL_TABLE_ROWS):
        yield (rng.choice(_WORDS), rng.randint(-99_999, 99_999) / 100,
               f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00:00",
               rng.randint(0, 1))


def generate(path: Path, rows: int, shapes: tuple[str, ...] = ("finance",), seed: int = 42) -> Path:
    """Write a fresh database at `path`: `rows` transactions (and wide/text rows)."""
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        raise ValueError(f"unknown shape(s): {', '.join(sorted(unknown))}")
    path.unlink(missing_ok=True)
    rng = random.Random(seed)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("PRAGMA cache_size = -262144")  # 256 MB: random-key indexes (uuids) stay in memory
    if "finance" in shapes:
        connection.executescript(FINANCE_SCHEMA)
        connection.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?)", _accounts(rng))
        connection.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               _transactions(rng, rows))
        connection.executemany("INSERT INTO splits VALUES (?, ?, ?, ?)", _splits(rng, rows))
    if "wide" in shapes:
        connection.executescript(_wide_schema())
        marks = ", ".join("?" * (WIDE_COLUMNS + 1))
        connection.executemany(f"INSERT INTO wide VALUES ({marks})", _wide(rng, rows))
    if "text" in shapes:
        connection.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, title TEXT, body TEXT, written DATE)")
        connection.executemany("INSERT INTO documents VALUES (?, ?, ?, ?)", _documents(rng, rows))
    if "many" in shapes:
        for number in range(1, max(1, rows // SMALL_TABLE_ROWS) + 1):
            connection.execute(f"CREATE TABLE t{number:05d} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                               "amount NUMERIC(10,2), at DATETIME, flag BOOLEAN)")
            connection.executemany(f"INSERT INTO t{number:05d} (name, amount, at, flag) VALUES (?, ?, ?, ?)",
                                   _small_rows(rng))
    for name, shape in APP_SHAPES.items():
        if name in shapes:
            shape.write(connection, rng, rows)
    connection.commit()
    connection.close()
    return path


# The finance shape's big table, for --bad-rows (the app shapes declare their own).
FINANCE_BAD_ROWS = BadRows("transactions", "id", "account_id", "-id", "posted_at")


def spoiled_copy(clean: Path, path: Path, shapes: tuple[str, ...], bad_rows: int) -> Path:
    """A copy of `clean` with `bad_rows` rows of each shape's big table made bad (half refused by
    their foreign key, half unconvertible; apps.spoil), for `copier bench --bad-rows`."""
    places = {"finance": FINANCE_BAD_ROWS, **{n: s.bad_rows for n, s in APP_SHAPES.items()}}
    without = [s for s in shapes if s not in places]
    if without:
        raise UsageError(f"copier-bad-rows needs shapes with a foreign key to refuse rows; "
                         f"{', '.join(without)} has none", hint="use finance or an app shape")
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(f"file:{clean}?mode=ro", uri=True)) as source, \
            closing(sqlite3.connect(path)) as copy:
        source.backup(copy)
        for shape in shapes:
            spoil(copy, places[shape], bad_rows)
        copy.commit()
    return path
