"""The SQLite edge: open read-only, read the schema into a Catalog, and read pages of rows."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from .catalog import CHECK_CLAUSE, Catalog, Column, ForeignKey, Index, Skipped, Table, View
from .errors import SourceError
from .ident import quote_sqlite
from .normalise import decode_text
from .settings import BUSY_TIMEOUT

_SQLITE_HEADER = b"SQLite format 3\x00"

_TABLE_LIST = "SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'"
_MASTER = "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'view')"
_COLUMNS = 'SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid'
_FOREIGN_KEYS = (
    'SELECT id, seq, "table", "from", "to", on_update, on_delete '
    "FROM pragma_foreign_key_list(?) ORDER BY id, seq"
)
_INDEXES = 'SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY seq'
_INDEX_SQL = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?"
_INDEX_COLUMNS = "SELECT cid, name, desc, coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno"


def check_file(path: Path) -> None:
    """Fail with one clear line if `path` is not a readable SQLite database."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
    # A 0-byte file is an empty database to SQLite too.
    if header != _SQLITE_HEADER and header:
        raise SourceError(f"{path}: not an SQLite database (or encrypted)")


def read_only_uri(path: Path) -> str:
    """A URI that opens the file read-only, so the source is never modified."""
    return _read_only_uri(path.absolute())


@functools.lru_cache(maxsize=16)  # asked for every table read: resolving a path costs system calls
def _read_only_uri(path: Path) -> str:
    return path.resolve().as_uri() + "?mode=ro"




async def connect(path: Path, busy_timeout: float | None = None) -> aiosqlite.Connection:
    check_file(path)
    timeout = BUSY_TIMEOUT if busy_timeout is None else busy_timeout
    try:
        connection = await aiosqlite.connect(read_only_uri(path), uri=True, timeout=timeout)
    except sqlite3.DatabaseError as exc:
        raise source_error(path, exc, timeout) from None
    try:
        await connection.execute("SELECT count(*) FROM sqlite_master")
    except BaseException as exc:
        # Close it whatever happened: its thread would otherwise keep the process alive.
        await connection.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise source_error(path, exc, timeout) from None
        raise
    return connection


# Two copies of SQLite read the source in one process: Python's (sqlite3, aiosqlite) and
# the one ADBC's driver carries (columnar.py). POSIX locks belong to the process, not to a
# file descriptor: when one copy closes its descriptor of the file, every lock the other
# copy holds on it is gone too (https://sqlite.org/howtocorrupt.html, 2.2.1). An app
# writing the file may then checkpoint over pages that copy is reading ("database disk
# image is malformed"), or truncate the -shm it has mapped (SIGBUS). So while a run holds
# keep_connections(), no connection to the source is closed, of either copy: one not kept
# for reuse is set aside open and idle, and everything is closed when the block ends,
# when no read is under way (tests/test_source.py, the two copies under an app's writes).
@dataclass
class _Kept:
    idle: dict[tuple[str, float], list[aiosqlite.Connection]]
    set_aside: list[aiosqlite.Connection]
    closers: list[Callable[[], None]]  # sync connections' close, either copy's


_kept: _Kept | None = None  # None outside a run (one-off reads): open and close
_KEPT_PER_FILE = 4


@asynccontextmanager
async def keep_connections() -> AsyncIterator[None]:
    """borrowed() keeps its connections for the next borrower until the block ends, and no
    connection to the source is closed before then (see _Kept)."""
    global _kept
    if _kept is not None:  # an enclosing block keeps them already
        yield
        return
    kept = _kept = _Kept({}, [], [])
    try:
        yield
    finally:
        _kept = None
        with anyio.CancelScope(shield=True):
            for close in kept.closers:
                try:
                    close()
                except Exception:  # closing is best effort; the file is open read-only
                    pass
            for connection in itertools.chain(itertools.chain.from_iterable(kept.idle.values()), kept.set_aside):
                await connection.close()


def close_later(close: Callable[[], None]) -> None:
    """Close a connection to the source now, or when the run's keep_connections() block
    ends if one holds (see _Kept). Blocking: called from threads too."""
    kept = _kept
    if kept is not None:
        kept.closers.append(close)
    else:
        close()


@asynccontextmanager
async def borrowed(path: Path, busy_timeout: float | None = None) -> AsyncIterator[aiosqlite.Connection]:
    """A read-only connection for the block: a kept one if keep_connections() holds one,
    returned to it afterwards if the block went well; else opened and closed."""
    kept = _kept
    key = (read_only_uri(path), BUSY_TIMEOUT if busy_timeout is None else busy_timeout)
    idle = kept.idle.get(key) if kept is not None else None
    connection = idle.pop() if idle else await connect(path, busy_timeout)
    keep = False
    try:
        yield connection
        keep = kept is not None and kept is _kept and not connection.in_transaction
    finally:
        if keep and len(spare := kept.idle.setdefault(key, [])) < _KEPT_PER_FILE:  # type: ignore[union-attr]
            connection.text_factory = str  # the block may have read undecodable text as bytes
            spare.append(connection)
        elif kept is not None and kept is _kept:
            kept.set_aside.append(connection)  # open until the block ends (_Kept)
        else:
            with anyio.CancelScope(shield=True):
                await connection.close()


def source_error(path: Path, exc: sqlite3.Error, busy_timeout: float = BUSY_TIMEOUT) -> SourceError:
    """One line for the ways an SQLite file refuses to be read (matched by error code)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return SourceError(f"{path}: locked by another process (waited {busy_timeout:g} s)",
                           hint="let the writer finish, raise --busy-timeout, or migrate from a consistent copy "
                                "with --snapshot (the app may keep writing)")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return SourceError(f"{path}: corrupt or not an SQLite database: {exc}")
    return SourceError(f"{path}: cannot read as SQLite: {exc}")


@contextmanager
def _closed_later(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """contextlib.closing, through close_later."""
    try:
        yield connection
    finally:
        close_later(connection.close)


def integrity_problems(path: Path, busy_timeout: float = BUSY_TIMEOUT) -> list[str]:
    """PRAGMA quick_check: what is wrong with the file (empty when it is sound)."""
    try:
        with _closed_later(sqlite3.connect(read_only_uri(path), uri=True, timeout=busy_timeout)) as connection:
            rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise source_error(path, exc, busy_timeout) from None
        return [str(exc)]
    return [] if rows == [("ok",)] else [str(r[0]) for r in rows]


def snapshot(path: Path, destination: Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
    """A consistent copy through SQLite's online backup API (one read transaction)."""
    with _closed_later(sqlite3.connect(read_only_uri(path), uri=True, timeout=busy_timeout)) as origin, \
            closing(sqlite3.connect(destination)) as copy:
        origin.backup(copy)


def fingerprint(path: Path, catalog: Catalog) -> str:
    """Changes when the source does: the header's change counter and schema cookie, the
    file sizes (and the -wal's), and every table's row count and schema."""
    with path.open("rb") as handle:
        header = handle.read(100)
    parts: list[object] = [header[24:28].hex(), header[40:44].hex(), path.stat().st_size]
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        parts += [wal.stat().st_size, wal.stat().st_mtime_ns]
    parts += [(t.name, t.row_count, [(c.name, c.declared_type) for c in t.columns]) for t in catalog.tables]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


class ChangeWatch:
    """Tells whether any other connection committed to the file since the last look
    (PRAGMA data_version), so a table read while the app wrote can be read again."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False)

    def version(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        close_later(self._connection.close)


async def _rows(connection: aiosqlite.Connection, sql: str, *args: object) -> list[sqlite3.Row]:
    async with connection.execute(sql, args) as cursor:
        return list(await cursor.fetchall())


def _all(connection: sqlite3.Connection, sql: str, *args: object) -> list[tuple[Any, ...]]:
    return connection.execute(sql, args).fetchall()


def catalog_of(path: Path, busy_timeout: float | None = None) -> Catalog:
    """The catalog of the file; blocking (some 15 queries per table: a thread, not the event loop)."""
    check_file(path)
    timeout = BUSY_TIMEOUT if busy_timeout is None else busy_timeout
    try:
        with _closed_later(sqlite3.connect(read_only_uri(path), uri=True, timeout=timeout)) as connection:
            return read_catalog(connection)
    except sqlite3.DatabaseError as exc:
        raise source_error(path, exc, timeout) from None


def read_catalog(connection: sqlite3.Connection) -> Catalog:
    """Tables, columns, keys, indexes and row counts; views and virtual tables listed as skipped."""
    sql_by_name = {name: sql or "" for name, sql in _all(connection, _MASTER)}
    sequences = _autoincrement_sequences(connection, sql_by_name)
    tables: list[Table] = []
    skipped: list[Skipped] = []
    views: list[View] = []
    for name, kind, without_rowid in _all(connection, _TABLE_LIST):
        if name.startswith("sqlite_"):
            continue  # SQLite's own bookkeeping (sqlite_sequence, sqlite_stat1, ...)
        if kind == "view":
            view = _view(name, sql_by_name.get(name, ""))
            if view is None:
                skipped.append(Skipped(name, "view", "its CREATE VIEW statement could not be read"))
            else:
                views.append(view)
        elif kind == "virtual":
            module = _module(sql_by_name.get(name, ""))
            try:
                tables.append(_read_table(connection, name, False, sequences, module=module))
            except sqlite3.OperationalError as exc:
                skipped.append(Skipped(name, "virtual table", f"module {module} cannot be loaded by this SQLite "
                                                              f"library ({exc}): its rows were NOT copied"))
        elif kind == "shadow":
            skipped.append(Skipped(name, "shadow table", "belongs to a virtual table"))
        elif kind == "table":
            tables.append(_read_table(connection, name, bool(without_rowid), sequences,
                                      create_sql=sql_by_name.get(name, "")))
    return Catalog(tuple(sorted(tables, key=lambda t: t.name)), tuple(sorted(skipped, key=lambda s: s.name)),
                   tuple(sorted(views, key=lambda v: v.name)))


def _autoincrement_sequences(connection: sqlite3.Connection, sql_by_name: dict[str, str]) -> dict[str, int]:
    if "sqlite_sequence" not in sql_by_name:
        return {}
    return {name: int(seq) for name, seq in _all(connection, "SELECT name, seq FROM sqlite_sequence")
            if isinstance(seq, int)}


def _read_table(
    connection: sqlite3.Connection,
    name: str,
    without_rowid: bool,
    sequences: dict[str, int],
    module: str | None = None,
    create_sql: str = "",
) -> Table:
    notes: list[str] = [_VIRTUAL_NOTES.get(module, f"{module} virtual table copied as a plain table")] if module else []
    columns: list[Column] = []
    primary_key: list[tuple[int, str]] = []
    for col_name, declared, not_null, default, pk, hidden in _all(connection, _COLUMNS, name):
        if hidden == 1:
            continue  # hidden columns of virtual tables
        if module in _FULL_TEXT_MODULES:
            declared = "TEXT"  # FTS columns are untyped and hold text
        columns.append(Column(col_name, declared or "", bool(not_null), default, pk,
                              generated=_GENERATED.get(hidden, "")))
        if pk:
            primary_key.append((pk, col_name))
    foreign_keys = _group_foreign_keys(_all(connection, _FOREIGN_KEYS, name))
    indexes = []
    for index_name, unique, origin, partial in _all(connection, _INDEXES, name):
        index_columns = _all(connection, _INDEX_COLUMNS, index_name)
        if origin == "pk" and not any(str(coll).lower() == "nocase" for *_rest, coll in index_columns):
            continue  # the primary key itself, added by the planner
        # (A NOCASE primary key also gets a unique index of its own, case-insensitive.)
        if any(cid < 0 for cid, _n, _d, _coll in index_columns):
            notes.append(f"{'partial ' if partial else ''}index {index_name!r} on an expression or rowid is not copied")
        else:
            indexes.append(Index(index_name, tuple(n for _c, n, _d, _coll in index_columns), bool(unique),
                                 tuple(bool(d) for _c, _n, d, _coll in index_columns),
                                 tuple(str(coll).lower() == "nocase" for _c, _n, _d, coll in index_columns),
                                 partial_sql=_all(connection, _INDEX_SQL, index_name)[0][0] if partial else None))
    count_rows = _all(connection, f"SELECT count(*) FROM {quote_sqlite(name)}")
    columns = _census(connection, name, columns)
    keys = tuple(n for _p, n in sorted(primary_key))
    return Table(
        name=name,
        columns=tuple(columns),
        primary_key=keys,
        foreign_keys=foreign_keys,
        indexes=tuple(indexes),
        without_rowid=without_rowid,
        row_count=int(count_rows[0][0]),
        autoincrement_seq=sequences.get(name),
        notes=tuple(notes),
        virtual_module=module,
        # A cheap test first: parsing the statement (sqlglot) is for tables that need it.
        create_sql=create_sql if CHECK_CLAUSE.search(create_sql) or any(c.generated for c in columns) else None,
        key_in_order=bool(keys) and not module and key_order_walkable(connection, name, keys),
    )


# PRAGMA table_xinfo's hidden: 2 a VIRTUAL generated column, 3 a STORED one.
_GENERATED = {2: "virtual", 3: "stored"}


def key_order_walkable(connection: sqlite3.Connection, table: str, keys: Sequence[str]) -> bool:
    """Whether SQLite reads the table ORDER BY these columns from an index, with no sort:
    then that index (the primary key's) compares with the columns' own collations, and
    keyset pagination on the key, with the same comparisons, reads every row once."""
    order = ", ".join(quote_sqlite(k) for k in keys)
    plan = _all(connection, f"EXPLAIN QUERY PLAN SELECT {order} FROM {quote_sqlite(table)} ORDER BY {order}")
    return not any("TEMP B-TREE" in str(detail) for *_ids, detail in plan)


# CREATE [TEMP] VIEW [IF NOT EXISTS] name [(columns)] AS select
_CREATE_VIEW = re.compile(
    r"^\s*CREATE\s+(?:TEMP(?:ORARY)?\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?:\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|`[^`]*`|[^\s(]+)\s*(?:\((?P<columns>[^)]*)\))?\s*AS\s+(?P<select>.*)$",
    re.IGNORECASE | re.DOTALL)


def _view(name: str, sql: str) -> View | None:
    match = _CREATE_VIEW.match(sql)
    if match is None:
        return None
    listed = match.group("columns")
    columns = tuple(c.strip().strip('"[]`') for c in listed.split(",")) if listed else ()
    return View(name, match.group("select").strip().rstrip(";"), columns)


_STORAGE_CLASSES = ("integer", "real", "text", "blob")
_NUMERIC_DECLARED = re.compile(r"\s*(NUMERIC|DECIMAL)\s*\(", re.IGNORECASE)


def _census(connection: sqlite3.Connection, table: str, columns: list[Column]) -> list[Column]:
    """Columns with no declared type, with what they hold: one scan of the table for all of them."""
    untyped = [c for c in columns if not c.declared_type.strip()]
    numeric = [c for c in columns if _NUMERIC_DECLARED.match(c.declared_type)]
    if not untyped and not numeric:
        return columns
    parts = []
    for column in untyped:
        quoted = quote_sqlite(column.name)
        parts += [f"sum(typeof({quoted}) = '{kind}')" for kind in _STORAGE_CLASSES]
        parts += [f"min(CASE WHEN typeof({quoted}) = 'integer' THEN {quoted} END)",
                  f"max(CASE WHEN typeof({quoted}) = 'integer' THEN {quoted} END)"]
    for column in numeric:
        quoted = quote_sqlite(column.name)
        # min and max, not max(abs()): abs(-2**63) overflows in SQLite.
        parts += [f"min(CASE WHEN typeof({quoted}) IN ('integer', 'real') THEN {quoted} END)",
                  f"max(CASE WHEN typeof({quoted}) IN ('integer', 'real') THEN {quoted} END)"]
    (row,) = _all(connection, f"SELECT {', '.join(parts)} FROM {quote_sqlite(table)}")
    extremes = row[len(row) - 2 * len(numeric):]
    found = {c.name: replace(c, largest=_largest(extremes[2 * n], extremes[2 * n + 1]))
             for n, c in enumerate(numeric)}
    width = len(_STORAGE_CLASSES) + 2
    for n, column in enumerate(untyped):
        counts = row[n * width: n * width + len(_STORAGE_CLASSES)]
        low, high = row[n * width + len(_STORAGE_CLASSES): (n + 1) * width]
        census = tuple((kind, int(count)) for kind, count in zip(_STORAGE_CLASSES, counts) if count)
        found[column.name] = replace(found.get(column.name, column), census=census,
                                     integer_range=None if low is None else (int(low), int(high)))
    return [found.get(c.name, c) for c in columns]


def _largest(low: int | float | None, high: int | float | None) -> int | float | None:
    return None if low is None or high is None else max(abs(low), abs(high))


_USING = re.compile(r"\bUSING\s+\"?(\w+)", re.IGNORECASE)
_FULL_TEXT_MODULES = {"fts3", "fts4", "fts5"}
_VIRTUAL_NOTES = {
    **{m: f"{m.upper()} virtual table copied as a plain table with its rows; its full-text index is not "
          "recreated (in PostgreSQL: a tsvector column with a GIN index)" for m in _FULL_TEXT_MODULES},
    **{m: "R*Tree virtual table copied as a plain table with its rows; its spatial index is not recreated "
          "(in PostgreSQL: a GiST index on a box, or PostGIS)" for m in ("rtree", "rtree_i32")},
}


def _module(sql: str) -> str:
    match = _USING.search(sql)
    return match.group(1).lower() if match else "unknown"


def _group_foreign_keys(rows: Sequence[tuple[Any, ...]]) -> tuple[ForeignKey, ...]:
    grouped: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row)
    keys = []
    for parts in grouped.values():
        _id, _seq, ref_table, _from, _to, on_update, on_delete = parts[0]
        to_columns = tuple(p[4] for p in parts)
        keys.append(ForeignKey(
            columns=tuple(p[3] for p in parts),
            ref_table=ref_table,
            ref_columns=() if any(c is None for c in to_columns) else to_columns,
            on_delete=on_delete or "NO ACTION",
            on_update=on_update or "NO ACTION",
        ))
    return tuple(keys)


# --- reading rows ------------------------------------------------------------------------


def rowid_sql(table: Table) -> str | None:
    """SQL for the table's rowid (catalog.Table.rowid_name), or None where SQL cannot reach it."""
    name = table.rowid_name
    if name is None or name == table.rowid_alias:
        return quote_sqlite(name) if name else None
    return name


# A primary-key bound: the key's values as SQL literals, comma-separated, as SQLite's quote()
# writes them from the data itself (storage class kept: 1, 1.0, '1' and X'01' differ), so
# SQLite compares a bound as it compares the stored key: with the column's affinity and
# collation, and its own order of mixed storage classes. Python never orders keys.
KeyBound = str


@dataclass(frozen=True, slots=True)
class KeyRange:
    """Rows whose key (Table.range_key) lies from `first` to `last`, both included; None:
    no bound on that side. A rowid bound is an integer, a primary key's a KeyBound."""

    first: int | KeyBound | None
    last: int | KeyBound | None


WHOLE = KeyRange(None, None)


def key_columns(table: Table) -> tuple[str, ...]:
    """SQL for what pages and ranges are ordered by (Table.range_key): the rowid, or the
    primary key; empty when no key can be reached (the table is then read in one scan)."""
    if table.rowid_name is not None:
        rowid = rowid_sql(table)
        assert rowid is not None
        return (rowid,)
    return tuple(quote_sqlite(k) for k in table.range_key)


def key_sql(table: Table) -> str:
    """One SQL value naming a row: the rowid, or the primary key as a KeyBound (which
    range_condition and rows_by_key_sql take back as is)."""
    keys = key_columns(table)
    assert keys, "a table read in ranges has a key"
    if table.rowid_name is not None:
        return keys[0]
    return " || ',' || ".join(f"quote({k})" for k in keys)


def range_condition(table: Table, key_range: KeyRange) -> str:
    """SQL: whether a row lies in the range (bounds inlined: integers, or KeyBounds). A row
    value compares as ORDER BY on its columns sorts (Table.key_in_order)."""
    keys = key_columns(table)
    key = f"({', '.join(keys)})"
    conditions = [f"{key} {op} ({bound if isinstance(bound, str) else int(bound)})"
                  for op, bound in ((">=", key_range.first), ("<=", key_range.last)) if bound is not None]
    return " AND ".join(conditions) or "1"


def page_sql(table: Table, columns: Sequence[str], key_range: KeyRange | None, *, first: bool) -> str:
    """Keyset pagination of a range: each row starts with its key columns, then `columns`.

    Parameters: on later pages the previous page's last key (exclusive); then the limit.
    No key (key_range None): one scan, in the table's own order, no parameters.
    """
    if key_range is None:
        return f"SELECT {', '.join(quote_sqlite(c) for c in columns)} FROM {quote_sqlite(table.name)}"
    keys = key_columns(table)
    key_list = ", ".join(keys)
    select = ", ".join([key_list, *(quote_sqlite(c) for c in columns)])
    where = [range_condition(table, key_range)]
    if not first:
        where.append(f"({key_list}) > ({', '.join('?' * len(keys))})")
    return f"SELECT {select} FROM {quote_sqlite(table.name)} WHERE {' AND '.join(where)} ORDER BY {key_list} LIMIT ?"


def range_cut_sql(table: Table, after: KeyRange, rows: int) -> str:
    """SQL: the keys (key_sql) of the `rows`-th and the next row, in key order, of the rows
    `after` holds: the last key of a range of that many rows and the first of the next.
    SQLite walks the key's index from `after`'s first bound and steps over the rows before
    them, so that the cuts of a whole table take one walk of its index."""
    keys = ", ".join(key_columns(table))
    return (f"SELECT {key_sql(table)} FROM {quote_sqlite(table.name)} WHERE {range_condition(table, after)} "
            f"ORDER BY {keys} LIMIT 2 OFFSET {int(rows) - 1}")


async def key_ranges(connection: aiosqlite.Connection, table: Table, rows: int) -> list[KeyRange]:
    """A primary-keyed table cut into ranges of `rows` rows (the last may hold fewer),
    their bounds read by a walk of its key's index, range after range; the first and last
    open-ended. One range (WHOLE) where the keys cannot be read as text (TEXT that is not
    UTF-8). (Numbering every row with row_number() and quoting every key, as this did,
    took 0.47-0.62 s for 200,000 rows of a two-column TEXT key; the walk takes 0.01 s.)"""
    rows = max(2, rows)
    firsts: list[KeyBound] = []
    lasts: list[KeyBound] = []
    try:
        while True:
            rest = KeyRange(firsts[-1] if firsts else None, None)
            cut = await _rows(connection, range_cut_sql(table, rest, rows))
            if len(cut) < 2:
                break
            lasts.append(str(cut[0][0]))
            firsts.append(str(cut[1][0]))
    except sqlite3.OperationalError:
        return [WHOLE]
    return [KeyRange(first, last) for first, last in zip([None, *firsts], [*lasts, None], strict=True)]


def rows_by_key_sql(table: Table, columns: Sequence[str],
                    keys: Sequence[int | KeyBound]) -> tuple[str, tuple[object, ...]]:
    """SQL and parameters for the rows with these keys (key_sql's values), each row starting
    with its key columns. Rowids travel as a JSON array; primary keys, SQL literals written
    by SQLite itself, as the rows of a VALUES list joined on the key's columns (SQLite
    then looks each up in the key's index; a row-value IN would scan the table)."""
    select = ", ".join([*(f"t.{k}" for k in key_columns(table)), *(f"t.{quote_sqlite(c)}" for c in columns)])
    if table.rowid_name is not None:
        rowid = key_columns(table)[0]
        rowids = json.dumps([int(k) for k in keys])
        return (f"SELECT {select} FROM {quote_sqlite(table.name)} AS t "
                f"WHERE t.{rowid} IN (SELECT value FROM json_each(?)) ORDER BY t.{rowid}"), (rowids,)
    on = " AND ".join(f"t.{k} = wanted.column{i}" for i, k in enumerate(key_columns(table), 1))
    values = ", ".join(f"({k})" for k in keys)
    return f"SELECT {select} FROM (VALUES {values}) AS wanted JOIN {quote_sqlite(table.name)} AS t ON {on}", ()


async def rows_by_key(path: Path, table: Table, columns: Sequence[str], keys: Sequence[int | KeyBound],
                      busy_timeout: float | None = None) -> list[tuple[object, ...]]:
    """The rows with these keys (rows_by_key_sql); TEXT that is not UTF-8 as bytes."""
    if not keys:
        return []
    sql, parameters = rows_by_key_sql(table, columns, keys)
    async with borrowed(path, busy_timeout) as connection:
        try:
            rows = await _rows(connection, sql, *parameters)
        except sqlite3.OperationalError:  # Python's sqlite3 cannot decode such TEXT: as bytes
            connection.text_factory = decode_text
            rows = await _rows(connection, sql, *parameters)
    return rows  # type: ignore[return-value]


async def first_rows(path: Path, table: Table, columns: Sequence[str], limit: int,
                     busy_timeout: float | None = None) -> list[tuple[object, ...]]:
    """Up to `limit` rows of these columns, the first SQLite's scan reads; TEXT that is not
    UTF-8 as bytes."""
    sql = (f"SELECT {', '.join(quote_sqlite(c) for c in columns)} FROM {quote_sqlite(table.name)} "
           f"LIMIT {int(limit)}")
    async with borrowed(path, busy_timeout) as connection:
        try:
            rows = await _rows(connection, sql)
        except sqlite3.OperationalError:  # Python's sqlite3 cannot decode such TEXT: as bytes
            connection.text_factory = decode_text
            rows = await _rows(connection, sql)
    return rows  # type: ignore[return-value]


async def rowid_bounds(connection: aiosqlite.Connection, table: Table) -> tuple[int, int] | None:
    rowid = rowid_sql(table)
    if rowid is None:
        return None
    rows = await _rows(connection, f"SELECT min({rowid}), max({rowid}) FROM {quote_sqlite(table.name)}")
    low, high = rows[0]
    return None if low is None else (int(low), int(high))
