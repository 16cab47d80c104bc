"""A source-independent model of the SQLite schema. Names stay raw; nothing here quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A CHECK constraint in a CREATE TABLE statement: a cheap test before sqlglot parses it.
CHECK_CLAUSE = re.compile(r"\bCHECK\s*\(", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    declared_type: str
    not_null: bool = False
    default: str | None = None  # SQL text as SQLite stores it
    pk_position: int = 0  # 1-based position in the primary key, 0 if not part of it
    # For a column with no declared type only: how many values of each storage class it
    # holds (typeof -> count) and the range of its integers, to choose its type by.
    census: tuple[tuple[str, int], ...] = ()
    integer_range: tuple[int, int] | None = None
    # For a NUMERIC/DECIMAL column: the largest absolute INTEGER or REAL value it holds.
    largest: int | float | None = None
    # A generated column: "virtual" or "stored" (PRAGMA table_xinfo's hidden 2 or 3); its
    # expression is in the table's create_sql, read by the plan.
    generated: str = ""


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]  # empty: the referenced table's primary key
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool
    descending: tuple[bool, ...] = ()
    nocase: tuple[bool, ...] = ()  # per column: compared with COLLATE NOCASE
    partial_sql: str | None = None  # a partial index: SQLite's CREATE INDEX (its WHERE is translated)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    without_rowid: bool = False
    row_count: int = 0
    # sqlite_sequence.seq for AUTOINCREMENT tables: ids at or below it are never reused.
    autoincrement_seq: int | None = None
    notes: tuple[str, ...] = ()  # what could not be carried over (partial indexes, ...)
    virtual_module: str | None = None  # a virtual table's module (fts5, rtree): copied as a plain table
    # SQLite's CREATE TABLE, when it has CHECK constraints or generated columns (their SQL is
    # translated by the plan).
    create_sql: str | None = None
    # ORDER BY the primary key's columns walks the key's own index (SQLite's query plan has
    # no sort): the key's collations are its columns', so no two rows compare equal and
    # ranges of it hold every row once (source.key_order_walkable).
    key_in_order: bool = False

    @property
    def check_sql(self) -> str | None:
        """SQLite's CREATE TABLE, when it has CHECK constraints."""
        return self.create_sql if self.create_sql and CHECK_CLAUSE.search(self.create_sql) else None

    @property
    def rowid_alias(self) -> str | None:
        """The INTEGER PRIMARY KEY column that is SQLite's rowid, if any."""
        if self.without_rowid or len(self.primary_key) != 1:
            return None
        column = self.column(self.primary_key[0])
        return column.name if column.declared_type.strip().upper() == "INTEGER" else None

    @property
    def rowid_name(self) -> str | None:
        """A name that reaches the rowid although a column may be called 'rowid': the first
        of rowid, _rowid_ and oid no column shadows, else the INTEGER PRIMARY KEY (which is
        the rowid), else None (SQL cannot reach the rowid)."""
        if self.without_rowid:
            return None
        taken = {c.name.lower() for c in self.columns}
        for candidate in ("rowid", "_rowid_", "oid"):
            if candidate not in taken:
                return candidate
        return self.rowid_alias

    @property
    def range_key(self) -> tuple[str, ...]:
        """What the table is read in ranges of, each range in the key's order: its rowid
        (rowid_name), else its primary key where SQLite keeps it in order and free of NULLs
        (a WITHOUT ROWID table's always is NOT NULL); empty: no key, the table is read in one scan."""
        if self.rowid_name is not None:
            return (self.rowid_name,)
        if self.primary_key and self.key_in_order and (
                self.without_rowid or all(self.column(k).not_null for k in self.primary_key)):
            return self.primary_key
        return ()

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Skipped:
    name: str
    kind: str  # view, virtual table, internal
    reason: str


@dataclass(frozen=True, slots=True)
class View:
    name: str
    select: str  # the query after AS, as SQLite stores it
    columns: tuple[str, ...] = ()  # CREATE VIEW v (a, b) AS ...: the names given


@dataclass(frozen=True, slots=True)
class Catalog:
    tables: tuple[Table, ...]
    skipped: tuple[Skipped, ...] = field(default=())
    views: tuple[View, ...] = field(default=())
