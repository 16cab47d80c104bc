"""Build examples/shop.sqlite, the small sample database the README migrates.

A shop as an app that grew up on SQLite would have it: AUTOINCREMENT keys, a
self-referencing category tree, naive local timestamps, 0/1 booleans, prices in REAL.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path

SCHEMA = """
CREATE TABLE customer (id INTEGER PRIMARY KEY AUTOINCREMENT, email VARCHAR(120) NOT NULL UNIQUE,
                       name TEXT NOT NULL, active BOOLEAN NOT NULL DEFAULT 1,
                       created_at DATETIME DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE category (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES category(id), name TEXT);
CREATE TABLE product (id INTEGER PRIMARY KEY, category_id INTEGER REFERENCES category(id),
                      name TEXT NOT NULL, price NUMERIC(10,2), attributes JSON, image BLOB);
CREATE TABLE "order" (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customer(id),
                      placed_at DATETIME NOT NULL, paid BOOLEAN);
CREATE TABLE order_line (order_id INTEGER REFERENCES "order"(id), product_id INTEGER REFERENCES product(id),
                         quantity INTEGER NOT NULL, PRIMARY KEY (order_id, product_id)) WITHOUT ROWID;
CREATE INDEX order_customer ON "order"(customer_id);
CREATE VIEW big_orders AS SELECT order_id, sum(quantity) AS n FROM order_line GROUP BY order_id;
"""


def build(path: Path, seed: int = 7) -> None:
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO customer VALUES (?, ?, ?, ?, ?)", [
        (i, f"user{i}@example.com", f"Customer {i}", rng.choice([0, 1]),
         f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00")
        for i in range(1, 201)])
    db.executemany("INSERT INTO category VALUES (?, ?, ?)",
                   [(1, None, "All"), (2, 1, "Books"), (3, 1, "Music"), (4, 2, "Novels")])
    db.executemany("INSERT INTO product VALUES (?, ?, ?, ?, ?, ?)", [
        (i, rng.randint(1, 4), f"Product {i}", round(rng.uniform(1, 100), 2), '{"colour": "red"}' if i % 3 else None,
         bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 32))) or None) for i in range(1, 101)])
    db.executemany('INSERT INTO "order" VALUES (?, ?, ?, ?)', [
        (i, rng.randint(1, 199), 1_700_000_000 + i * 3600, rng.choice([0, 1, None])) for i in range(1, 501)])
    db.executemany("INSERT OR IGNORE INTO order_line VALUES (?, ?, ?)", [
        (rng.randint(1, 500), rng.randint(1, 100), rng.randint(1, 5)) for _ in range(1500)])
    db.execute("DELETE FROM customer WHERE id = 200")  # AUTOINCREMENT never hands 200 out again
    db.commit()
    db.close()


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("shop.sqlite"))
