"""App shapes for `copier bench --shape`: SQLite files as common tools write them, each one big
table of `rows` rows and a small parent it references by a foreign key.

Each generator writes the DDL the tool itself emits for SQLite and stores values the way the
tool stores them (benchmarks/README.md names the documentation each follows):

- sqlalchemy: SQLAlchemy 2.0 models (`Numeric(12, 2)`, `DateTime`, `Boolean`, `String(36)`
  uuid): `NUMERIC(12, 2)` bound as a float, `DATETIME` as 'YYYY-MM-DD HH:MM:SS.ffffff'
  (the dialect's storage format), `BOOLEAN` 0/1, `VARCHAR(36)` str(uuid4()).
- django: Django 5's sqlite3 schema editor (BigAutoField ids): `decimal` stored from str(Decimal),
  `datetime` as str() of a naive UTC datetime, `bool`, `char(32)` uuid hex, JSONField as `text`
  with its `JSON_VALID` CHECK, the FK `DEFERRABLE INITIALLY DEFERRED` with its index.
- numeric: hand-written bare `NUMERIC` columns holding integers and reals (NUMERIC affinity).
- json: SQLAlchemy's `JSON` type, documents from json.dumps.
- without-rowid: a WITHOUT ROWID table keyed by two TEXT columns.
- epoch-ms: Prisma's SQLite connector: TEXT cuid/uuid ids, `DATETIME` holding INTEGER epoch
  milliseconds, `DECIMAL`, `BOOLEAN`.
- mixed-dates: one DATETIME column with four text forms evenly interleaved.
- plain-finance: a hand-written finance schema: `amount NUMERIC`, naive DATETIME text,
  BOOLEAN, BLOB.

Every generator is seeded by the caller's `random.Random`, so the same seed gives the same file.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

PARENT_ROWS = 1_000
_BASE = 1_600_000_000  # 2020-09-13, Unix seconds
_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar "
          "papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu café naïve straße").split()


@dataclass(frozen=True)
class BadRows:
    """Where a shape's big table takes spoiled rows (`copier bench --bad-rows`): `ordinal` is an
    SQL expression numbering its rows 1.., `foreign_key` the column set to `missing_parent`
    (a parent that does not exist), `typed` a column set to text no conversion accepts."""

    table: str
    ordinal: str
    foreign_key: str
    missing_parent: str
    typed: str


@dataclass(frozen=True)
class AppShape:
    write: Callable[[sqlite3.Connection, random.Random, int], None]
    bad_rows: BadRows


def _moment(i: int) -> int:
    """Unix seconds of row i: about one row every 29 s from 2020-09-13."""
    return _BASE + i * 29 + (i * 7919) % 29


def _naive(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _uuid_hex(rng: random.Random) -> str:
    """A random (version 4) uuid as 32 hex digits, without uuid.UUID's per-call cost."""
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:12]}4{digits[13:16]}{'89ab'[int(digits[16], 16) & 3]}{digits[17:]}"


def _uuid_text(rng: random.Random) -> str:
    """str(uuid4()): the 36-character form."""
    h = _uuid_hex(rng)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def _pool(rng: random.Random, make: Callable[[random.Random], str], size: int = 4096) -> list[str]:
    """A few thousand distinct values to draw from: realistic variety without one call per row."""
    return [make(rng) for _ in range(size)]


def _cents(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


# --- sqlalchemy -----------------------------------------------------------------------------

_SQLALCHEMY = """
CREATE TABLE customers (
\tid INTEGER NOT NULL,
\temail VARCHAR(120) NOT NULL,
\tcreated_at DATETIME NOT NULL,
\tPRIMARY KEY (id),
\tUNIQUE (email)
);
CREATE TABLE orders (
\tid INTEGER NOT NULL,
\tpublic_id VARCHAR(36) NOT NULL,
\tcustomer_id INTEGER NOT NULL,
\ttotal NUMERIC(12, 2) NOT NULL,
\tstatus VARCHAR(20) NOT NULL,
\tcreated_at DATETIME NOT NULL,
\tpaid BOOLEAN NOT NULL,
\tnote VARCHAR(200),
\tPRIMARY KEY (id),
\tUNIQUE (public_id),
\tFOREIGN KEY(customer_id) REFERENCES customers (id)
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
"""


def _sqlalchemy_datetime(seconds: int, micro: int) -> str:
    """SQLAlchemy's SQLite DATETIME storage format: always six digits of microseconds."""
    return f"{_naive(seconds)}.{micro:06d}"


def _write_sqlalchemy(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_SQLALCHEMY)
    connection.executemany("INSERT INTO customers VALUES (?, ?, ?)", (
        (i, f"user{i}@example.com", _sqlalchemy_datetime(_BASE - 86_400 * i, rng.randrange(1_000_000)))
        for i in range(1, PARENT_ROWS + 1)))
    notes = _pool(rng, lambda r: _sentence(r, 3, 12))
    statuses = ("new", "paid", "shipped", "delivered", "cancelled")
    connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (
        (i, _uuid_text(rng), rng.randint(1, PARENT_ROWS), _cents(rng, 1, 5000), statuses[i % 5],
         _sqlalchemy_datetime(_moment(i), rng.randrange(1_000_000)), rng.randint(0, 1),
         notes[i % 4096] if i % 3 else None)
        for i in range(1, rows + 1)))


# --- django ---------------------------------------------------------------------------------

_DJANGO = """
CREATE TABLE "shop_customer" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "name" varchar(100) NOT NULL,
 "email" varchar(254) NOT NULL UNIQUE, "joined" datetime NOT NULL);
CREATE TABLE "shop_order" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "uuid" char(32) NOT NULL UNIQUE,
 "total" decimal NOT NULL, "created" datetime NOT NULL, "paid" bool NOT NULL,
 "metadata" text NOT NULL CHECK ((JSON_VALID("metadata") OR "metadata" IS NULL)),
 "customer_id" bigint NOT NULL REFERENCES "shop_customer" ("id") DEFERRABLE INITIALLY DEFERRED);
CREATE INDEX "shop_order_customer_id_f638df20" ON "shop_order" ("customer_id");
"""


def _django_datetime(seconds: int, micro: int) -> str:
    """str() of the naive UTC datetime Django writes with USE_TZ: microseconds only when not 0."""
    return _naive(seconds) + (f".{micro:06d}" if micro else "")


def _django_metadata(rng: random.Random) -> str:
    document = {"source": rng.choice(["web", "ios", "android", "api"]), "coupon": rng.choice([None, "SPRING", "VIP10"]),
                "items": rng.randint(1, 9), "gift": rng.random() < 0.1}
    return json.dumps(document)


def _write_django(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_DJANGO)
    connection.executemany('INSERT INTO "shop_customer" VALUES (?, ?, ?, ?)', (
        (i, f"Customer {i}", f"c{i}@example.org", _django_datetime(_BASE - 86_400 * i, rng.randrange(1_000_000)))
        for i in range(1, PARENT_ROWS + 1)))
    metadata = _pool(rng, _django_metadata)
    # Django's sqlite3 backend adapts Decimal with str(); the column's NUMERIC affinity then
    # stores '12.50' as the REAL 12.5 and '12.00' as the INTEGER 12.
    connection.executemany('INSERT INTO "shop_order" VALUES (?, ?, ?, ?, ?, ?, ?)', (
        (i, _uuid_hex(rng), str(Decimal(rng.randint(100, 500_000)).scaleb(-2)),
         _django_datetime(_moment(i), rng.randrange(1_000_000)), rng.randint(0, 1), metadata[i % 4096],
         rng.randint(1, PARENT_ROWS))
        for i in range(1, rows + 1)))


# --- numeric --------------------------------------------------------------------------------

_NUMERIC = """
CREATE TABLE sensors (id INTEGER PRIMARY KEY, label TEXT NOT NULL, unit TEXT NOT NULL);
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    sensor_id INTEGER NOT NULL REFERENCES sensors(id),
    taken_at DATETIME NOT NULL,
    value NUMERIC NOT NULL,
    quantity NUMERIC,
    ratio NUMERIC
);
CREATE INDEX readings_sensor ON readings(sensor_id);
"""


def _write_numeric(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_NUMERIC)
    units = ("C", "kPa", "%", "lux", "ppm")
    connection.executemany("INSERT INTO sensors VALUES (?, ?, ?)", (
        (i, f"sensor-{i:04d}", units[i % 5]) for i in range(1, PARENT_ROWS + 1)))
    # value: integers and reals of 1 to 4 decimals evenly; quantity: mostly integers;
    # ratio: reals of many digits, some NULL.
    connection.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)", (
        (i, rng.randint(1, PARENT_ROWS), _naive(_moment(i)),
         rng.randint(-500, 5000) if i % 2 else round(rng.uniform(-500, 5000), 1 + i % 4),
         rng.randint(0, 10_000) if i % 10 else rng.uniform(0, 100),
         rng.random() if i % 7 else None)
        for i in range(1, rows + 1)))


# --- json -----------------------------------------------------------------------------------

_JSON = """
CREATE TABLE sources (
\tid INTEGER NOT NULL,
\tname VARCHAR(50) NOT NULL,
\tPRIMARY KEY (id)
);
CREATE TABLE events (
\tid INTEGER NOT NULL,
\tsource_id INTEGER NOT NULL,
\tkind VARCHAR(30) NOT NULL,
\tpayload JSON NOT NULL,
\tcreated_at DATETIME NOT NULL,
\tPRIMARY KEY (id),
\tFOREIGN KEY(source_id) REFERENCES sources (id)
);
"""
_KINDS = ("page_view", "click", "signup", "purchase", "error", "search")


def _event_document(rng: random.Random) -> str:
    """An analytics event as an app logs it: nested objects, arrays, numbers, booleans, null,
    non-ASCII text. json.dumps with its default separators, as SQLAlchemy's JSON type writes."""
    document: dict[str, object] = {
        "user": {"id": rng.randint(1, 10**6), "name": _sentence(rng, 1, 2).title(),
                 "roles": rng.sample(["admin", "editor", "viewer", "billing"], rng.randint(0, 3))},
        "action": rng.choice(_KINDS),
        "context": {"ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    "agent": rng.choice(["Mozilla/5.0 (X11; Linux x86_64)", "okhttp/4.12", "curl/8.5"]),
                    "locale": rng.choice(["en-GB", "de-DE", "fr-FR", "ja-JP"])},
        "tags": [rng.choice(_WORDS) for _ in range(rng.randint(0, 5))],
        "amount": round(rng.uniform(0, 999), 2) if rng.random() < 0.4 else None,
        "ok": rng.random() < 0.9,
    }
    if rng.random() < 0.3:
        document["items"] = [{"sku": f"SKU-{rng.randint(1, 9999):04d}", "qty": rng.randint(1, 4),
                              "price": round(rng.uniform(1, 200), 2)} for _ in range(rng.randint(1, 4))]
    return json.dumps(document)


def _write_json(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_JSON)
    connection.executemany("INSERT INTO sources VALUES (?, ?)", (
        (i, f"app-{i:04d}") for i in range(1, PARENT_ROWS + 1)))
    documents = _pool(rng, _event_document)
    connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (
        (i, rng.randint(1, PARENT_ROWS), _KINDS[i % 6],
         f'{{"seq": {i}, ' + documents[i % 4096][1:],  # each document distinct
         _sqlalchemy_datetime(_moment(i), rng.randrange(1_000_000)))
        for i in range(1, rows + 1)))


# --- without-rowid --------------------------------------------------------------------------

_WITHOUT_ROWID = """
CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10,2) NOT NULL);
CREATE TABLE order_lines (
    order_code TEXT NOT NULL,
    line TEXT NOT NULL,
    sku TEXT NOT NULL REFERENCES products(sku),
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(10,2) NOT NULL,
    added_at DATETIME NOT NULL,
    PRIMARY KEY (order_code, line)
) WITHOUT ROWID;
"""
LINES_PER_ORDER = 4


def _sku(i: int) -> str:
    return f"SKU-{i:05d}"


def _write_without_rowid(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_WITHOUT_ROWID)
    connection.executemany("INSERT INTO products VALUES (?, ?, ?)", (
        (_sku(i), _sentence(rng, 1, 3), _cents(rng, 1, 900)) for i in range(1, PARENT_ROWS + 1)))
    # Row i (from 0) is line i % 4 + 1 of order i // 4: inserted in key order, as an app appends.
    connection.executemany("INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?)", (
        (f"ORD-{i // LINES_PER_ORDER:08d}", f"L{i % LINES_PER_ORDER + 1}", _sku(rng.randint(1, PARENT_ROWS)),
         rng.randint(1, 12), _cents(rng, 1, 900), _naive(_moment(i)))
        for i in range(rows)))


# --- epoch-ms (Prisma) ----------------------------------------------------------------------

_PRISMA = """
CREATE TABLE "User" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE "Post" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "title" TEXT NOT NULL,
    "published" BOOLEAN NOT NULL DEFAULT false,
    "views" INTEGER NOT NULL DEFAULT 0,
    "price" DECIMAL NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "authorId" TEXT NOT NULL,
    CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User" ("id")
        ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
"""
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    digits = []
    for _ in range(width):
        n, digit = divmod(n, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


def cuid(i: int, milliseconds: int, rng: random.Random) -> str:
    """A cuid (Prisma's @default(cuid())): 'c', time, counter, fingerprint, random; 25 chars."""
    return f"c{_base36(milliseconds, 8)}{_base36(i, 4)}k3x9{_base36(rng.getrandbits(41), 8)}"


def _write_epoch_ms(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_PRISMA)
    users = [cuid(i, (_BASE - 86_400 * i) * 1000, rng) for i in range(1, PARENT_ROWS + 1)]
    connection.executemany('INSERT INTO "User" VALUES (?, ?, ?, ?)', (
        (user, f"u{i}@example.dev", _sentence(rng, 1, 2) if i % 4 else None, (_BASE - 86_400 * i) * 1000)
        for i, user in enumerate(users, 1)))
    titles = _pool(rng, lambda r: _sentence(r, 2, 8))

    def posts() -> Iterator[tuple[object, ...]]:
        for i in range(1, rows + 1):
            created = _moment(i) * 1000 + i % 1000  # epoch milliseconds, as Prisma writes a DateTime
            yield (_uuid_text(rng), titles[i % 4096], rng.randint(0, 1), rng.randint(0, 100_000),
                   _cents(rng, 0, 300), created, created + rng.randint(0, 10**7), rng.choice(users))

    connection.executemany('INSERT INTO "Post" VALUES (?, ?, ?, ?, ?, ?, ?, ?)', posts())


# --- mixed-dates ----------------------------------------------------------------------------

_MIXED_DATES = """
CREATE TABLE members (id INTEGER PRIMARY KEY, handle TEXT NOT NULL);
CREATE TABLE logins (
    id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id),
    at DATETIME NOT NULL,
    ip TEXT NOT NULL,
    ok BOOLEAN NOT NULL
);
"""


def mixed_date(i: int, micro: int) -> str:
    """Row i's moment in one of four forms, by i % 4: SQLite's own 'YYYY-MM-DD HH:MM:SS',
    ISO with 'T' and 'Z', Python's str() of an aware datetime (fraction and offset), a date."""
    seconds = _moment(i)
    form = i % 4
    if form == 0:
        return _naive(seconds)
    if form == 1:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    if form == 2:
        return f"{_naive(seconds)}.{micro:06d}+00:00"
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


def _write_mixed_dates(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_MIXED_DATES)
    connection.executemany("INSERT INTO members VALUES (?, ?)", (
        (i, f"member{i}") for i in range(1, PARENT_ROWS + 1)))
    connection.executemany("INSERT INTO logins VALUES (?, ?, ?, ?, ?)", (
        (i, rng.randint(1, PARENT_ROWS), mixed_date(i, rng.randrange(1, 1_000_000)),
         f"192.0.2.{rng.randint(1, 254)}", int(rng.random() < 0.95))
        for i in range(1, rows + 1)))


# --- plain-finance --------------------------------------------------------------------------

_PLAIN_FINANCE = """
CREATE TABLE wallets (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    opened DATETIME NOT NULL
);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    wallet_id INTEGER NOT NULL REFERENCES wallets(id),
    amount NUMERIC NOT NULL,
    memo TEXT,
    booked_at DATETIME NOT NULL,
    settled BOOLEAN NOT NULL,
    receipt BLOB
);
CREATE INDEX payments_wallet ON payments(wallet_id);
"""


def _write_plain_finance(connection: sqlite3.Connection, rng: random.Random, rows: int) -> None:
    connection.executescript(_PLAIN_FINANCE)
    connection.executemany("INSERT INTO wallets VALUES (?, ?, ?, ?)", (
        (i, f"Owner {i}", rng.choice(["EUR", "USD", "GBP"]), _naive(_BASE - 86_400 * i))
        for i in range(1, PARENT_ROWS + 1)))
    memos = _pool(rng, lambda r: _sentence(r, 2, 7))
    connection.executemany("INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?)", (
        (i, rng.randint(1, PARENT_ROWS), _cents(rng, -2000, 5000), memos[i % 4096] if i % 5 else None,
         _naive(_moment(i)), rng.randint(0, 1), rng.randbytes(rng.randint(8, 64)) if i % 3 == 0 else None)
        for i in range(1, rows + 1)))


APP_SHAPES: dict[str, AppShape] = {
    "sqlalchemy": AppShape(_write_sqlalchemy, BadRows("orders", "id", "customer_id", "-id", "created_at")),
    "django": AppShape(_write_django, BadRows("shop_order", "id", "customer_id", "-id", "created")),
    "numeric": AppShape(_write_numeric, BadRows("readings", "id", "sensor_id", "-id", "value")),
    "json": AppShape(_write_json, BadRows("events", "id", "source_id", "-id", "created_at")),
    "without-rowid": AppShape(_write_without_rowid, BadRows(
        "order_lines", f"CAST(substr(order_code, 5) AS INTEGER) * {LINES_PER_ORDER} + CAST(substr(line, 2) AS INTEGER)",
        "sku", "'missing-' || order_code || line", "added_at")),
    "epoch-ms": AppShape(_write_epoch_ms, BadRows('"Post"', "rowid", '"authorId"', "'missing-' || id", '"updatedAt"')),
    "mixed-dates": AppShape(_write_mixed_dates, BadRows("logins", "id", "member_id", "-id", "at")),
    "plain-finance": AppShape(_write_plain_finance, BadRows("payments", "id", "wallet_id", "-id", "booked_at")),
}

UNCONVERTIBLE = "not a value"  # no date, number or boolean reads this


def spoil(connection: sqlite3.Connection, bad: BadRows, count: int) -> int:
    """Turn `count` rows of the big table bad, spread evenly: half point at a parent that does
    not exist, half hold UNCONVERTIBLE in a typed column. Returns how many rows changed."""
    total = connection.execute(f"SELECT count(*) FROM {bad.table}").fetchone()[0]
    if count < 1 or total < 2:
        return 0
    every = max(2, (2 * total) // count)
    changed = connection.execute(
        f"UPDATE {bad.table} SET {bad.foreign_key} = {bad.missing_parent} WHERE ({bad.ordinal}) % ? = 0",
        (every,)).rowcount
    changed += connection.execute(
        f"UPDATE {bad.table} SET {bad.typed} = ? WHERE ({bad.ordinal}) % ? = ?",
        (UNCONVERTIBLE, every, every // 2)).rowcount
    return int(changed)
