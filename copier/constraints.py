"""What a target table enforces row by row, as data (read from the catalog by screening.py),
and the set queries that find, among rows staged in a constraint-free copy of its columns,
the ones PostgreSQL would refuse, each with its reason worded as PostgreSQL words it.

Modelled: NOT NULL; CHECK constraints (false refuses, NULL passes); foreign keys checked at
the end of each statement (MATCH SIMPLE: a key with a NULL passes; a table referencing
itself finds its parent in the target or among the staged rows that stand); primary keys,
unique constraints and unique indexes without a predicate or an expression (a NULL never
conflicts; of equal keys within the rows, the first stands). Anything else (triggers,
exclusion constraints, deferred keys, partial or expression indexes, NULLS NOT DISTINCT)
is not: the INSERT of the rows that pass is a probe, and the caller falls back to bisection
when it is refused. Rows loaded with a unique key set aside are found by take_duplicates,
whose IndexKey also holds expressions, a predicate and NULLS NOT DISTINCT.

Pure: SQL text only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .ident import qualified, quote_ident, quote_literal

# Columns the staging table has besides the target's: each row's place in its page, and,
# once screened, why it is refused and the column that says so (NOT NULL only).
ROW = "_copier_row"
REFUSED = "_copier_refused"
REFUSED_COLUMN = "_copier_refused_column"
# The generation of a row refused in a table referencing itself (1: its parent is missing).
ROUND = "_copier_round"

# How many rounds a chain of self-references is followed (a row whose parent was refused is
# refused in the next round); a longer chain is left to the probe and bisection.
SELF_REFERENCE_ROUNDS = 50


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expression: str  # pg_get_expr of the constraint: the column names unqualified
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    self_reference: bool  # the table references itself: a parent may be among the staged rows


@dataclass(frozen=True, slots=True)
class Unique:
    name: str  # the constraint's name, or the index's (PostgreSQL names either in its message)
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IndexKey:
    """A unique key as the index behind it is built (take_duplicates): what it makes unique,
    over the table's columns, unqualified (a plain column, or an expression); how PostgreSQL
    names them in its message (pg_get_indexdef's key columns); a partial index's predicate;
    and whether NULLs are distinct (false: NULLS NOT DISTINCT)."""

    name: str
    expressions: tuple[str, ...]
    label: str
    predicate: str | None = None
    nulls_distinct: bool = True

    @classmethod
    def of_columns(cls, name: str, columns: Sequence[str]) -> IndexKey:
        return cls(name, tuple(quote_ident(c) for c in columns), ", ".join(columns))


@dataclass(frozen=True, slots=True)
class Rules:
    """What the table enforces on the columns a load writes (a rule on another column is left
    to PostgreSQL: that column takes its default)."""

    schema: str
    table: str
    not_null: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    uniques: tuple[Unique, ...] = ()


# The catalog rows Rules are made from; $1: the table (regclass).
NOT_NULL_COLUMNS = """
SELECT attname::text FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attnotnull
ORDER BY attnum
"""

_COLUMNS_OF = """ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.num ORDER BY k.pos)"""

# Constraints checked immediately (a deferred one is checked at commit: not modelled).
CONSTRAINTS = f"""
SELECT c.conname::text AS name, c.contype::text AS kind, pg_get_expr(c.conbin, c.conrelid) AS expression,
       {_COLUMNS_OF.format(keys="c.conkey", rel="c.conrelid")} AS columns,
       {_COLUMNS_OF.format(keys="c.confkey", rel="c.confrelid")} AS ref_columns,
       rn.nspname::text AS ref_schema, r.relname::text AS ref_table, c.confrelid = c.conrelid AS self_reference,
       c.confmatchtype::text AS match
FROM pg_constraint c
LEFT JOIN pg_class r ON r.oid = c.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.conrelid = $1::regclass AND c.contype IN ('c', 'f', 'p', 'u') AND NOT c.condeferred
ORDER BY c.conname
"""

# Unique indexes behind no constraint, without a predicate or an expression.
UNIQUE_INDEXES = """
SELECT i.relname::text AS name,
       ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
             WHERE k.pos <= x.indnkeyatts ORDER BY k.pos) AS columns
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1::regclass AND x.indisunique AND x.indimmediate AND x.indpred IS NULL
  AND x.indexprs IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u'))
ORDER BY i.relname
"""


# Whether column $2 of table $1 (regclass) alone has a unique index, checked row by row.
UNIQUE_COLUMN = """
SELECT EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
               WHERE x.indrelid = $1::regclass AND x.indisunique AND x.indimmediate AND x.indnkeyatts = 1
                 AND x.indpred IS NULL AND x.indexprs IS NULL AND a.attname = $2)
"""


def rules_of(schema: str, table: str, loaded: Sequence[str], not_null: Sequence[str],
             constraints: Sequence[dict[str, object]], unique_indexes: Sequence[dict[str, object]]) -> Rules:
    """Rules from the catalog's rows (NOT_NULL_COLUMNS, CONSTRAINTS, UNIQUE_INDEXES), keeping
    those on the `loaded` columns only."""
    written = set(loaded)

    def columns(row: dict[str, object], key: str = "columns") -> tuple[str, ...]:
        return tuple(str(c) for c in row[key] or ())  # type: ignore[attr-defined]

    checks, keys, uniques = [], [], []
    for row in constraints:
        on = columns(row)
        if not on or not set(on) <= written:
            continue
        if row["kind"] == "c" and row["expression"]:
            checks.append(Check(str(row["name"]), str(row["expression"]), on))
        elif row["kind"] == "f" and row["match"] == "s":  # MATCH SIMPLE (FULL is not modelled)
            keys.append(ForeignKey(str(row["name"]), on, str(row["ref_schema"]), str(row["ref_table"]),
                                   columns(row, "ref_columns"), bool(row["self_reference"])))
        elif row["kind"] in ("p", "u"):
            uniques.append(Unique(str(row["name"]), on))
    for row in unique_indexes:
        on = columns(row)
        if on and set(on) <= written:
            uniques.append(Unique(str(row["name"]), on))
    return Rules(schema, table, tuple(c for c in not_null if c in written), tuple(checks), tuple(keys),
                 tuple(uniques))


def create_staging(schema: str, table: str, staging: str, loaded: Sequence[str], row: str = ROW) -> str:
    """A temporary table with the loaded columns' types and none of their constraints, gone
    at commit; emptied for each page. `row`: the column that orders the rows and names them
    (ROW, a column of its own; or a loaded column holding each row's key)."""
    columns = ", ".join(quote_ident(c) for c in loaded)
    ordinal = f"0::bigint AS {ROW}, " if row == ROW else ""
    # No JIT for the table's transaction: the screening queries are costed high (a subquery
    # per rule) and JIT-compiled at each page, which costs a second where they take milliseconds.
    return ("SET LOCAL jit = off;\n"
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote_ident(staging)} ON COMMIT DROP AS "
            f"SELECT {ordinal}NULL::text AS {REFUSED}, NULL::text AS {REFUSED_COLUMN}, {columns} "
            f"FROM {qualified(schema, table)} WITH NO DATA;\n"
            f"TRUNCATE pg_temp.{quote_ident(staging)}")


def _key_text(alias: str, columns: Sequence[str]) -> str:
    """SQL for PostgreSQL's "Key (a, b)=(1, 2)" of a row."""
    names = quote_literal(", ".join(columns))
    values = ", ".join(f"{alias}.{quote_ident(c)}::text" for c in columns)
    return f"'Key (' || {names} || ')=(' || concat_ws(', ', {values}) || ')'"


def _all_set(alias: str, columns: Sequence[str]) -> str:
    return " AND ".join(f"{alias}.{quote_ident(c)} IS NOT NULL" for c in columns)


def _parent_exists(key: ForeignKey, child: str, parents: str) -> str:
    match = " AND ".join(f"p.{quote_ident(r)} = {child}.{quote_ident(c)}" for c, r in zip(key.columns, key.ref_columns))
    return f"EXISTS (SELECT 1 FROM {parents} p WHERE {match})"


def _orphan_reason(rules: Rules, key: ForeignKey, alias: str) -> str:
    message = quote_literal(f'insert or update on table "{rules.table}" violates foreign key constraint '
                            f'"{key.name}" (')
    tail = quote_literal(f' is not present in table "{key.ref_table}".)')
    return f"{message} || {_key_text(alias, key.columns)} || {tail}"


def screen_each_row(rules: Rules, staging: str) -> str | None:
    """One UPDATE marking the rows refused on their own: NOT NULL (column order), then
    CHECK constraints (by name, as PostgreSQL checks them), then foreign keys to other tables;
    each row's first reason. None when the table has no such rule."""
    cases: list[tuple[str, str, str | None]] = []  # (condition, reason SQL, column)
    for column in rules.not_null:
        cases.append((f"s.{quote_ident(column)} IS NULL",
                      quote_literal(f'null value in column "{column}" of relation "{rules.table}" violates '
                                    "not-null constraint"), column))
    for check in rules.checks:
        cases.append((f"({check.expression}) IS FALSE",
                      quote_literal(f'new row for relation "{rules.table}" violates check constraint "{check.name}"'),
                      None))
    for key in rules.foreign_keys:
        if not key.self_reference:
            parents = qualified(key.ref_schema, key.ref_table)
            cases.append((f"{_all_set('s', key.columns)} AND NOT {_parent_exists(key, 's', parents)}",
                          _orphan_reason(rules, key, "s"), None))
    if not cases:
        return None
    reason = "CASE " + " ".join(f"WHEN {when} THEN {why}" for when, why, _column in cases) + " END"
    column = "CASE " + " ".join(f"WHEN {when} THEN {quote_literal(c) if c else 'NULL'}"
                                for when, _why, c in cases) + " END"
    # The CASEs are evaluated against the row as staged (alias s), the FROM exposes it so.
    return (f"UPDATE pg_temp.{quote_ident(staging)} AS s SET {REFUSED} = v.reason, {REFUSED_COLUMN} = v.column_name "
            f"FROM (SELECT s.ctid AS copier_tid, {reason} AS reason, {column} AS column_name "
            f"FROM pg_temp.{quote_ident(staging)} AS s) AS v "
            f"WHERE s.ctid = v.copier_tid AND v.reason IS NOT NULL")


def screen_unique(rules: Rules, unique: Unique, staging: str, row: str = ROW) -> str:
    """Mark the standing rows whose key is already in the target, or taken by an earlier
    standing row of the page (the first of equal keys stands, as in a COPY row by row)."""
    table, target = f"pg_temp.{quote_ident(staging)}", qualified(rules.schema, rules.table)
    match = " AND ".join(f"t.{quote_ident(c)} = d.{quote_ident(c)}" for c in unique.columns)
    message = quote_literal(f'duplicate key value violates unique constraint "{unique.name}" (')
    reason = f"{message} || {_key_text('d', unique.columns)} || ' already exists.)'"
    if tuple(unique.columns) == (row,):
        # The key naming the rows (a whole table's rowids) differs from row to row: only the
        # target can hold it already, and a semi-join finds those (an append rerun: all of them).
        return (f"UPDATE {table} AS d SET {REFUSED} = {reason} WHERE d.{REFUSED} IS NULL "
                f"AND {_all_set('d', unique.columns)} AND EXISTS (SELECT 1 FROM {target} t WHERE {match})")
    cols = ", ".join(f"s.{quote_ident(c)}" for c in unique.columns)
    # Only the key's columns, the row and its place through the window's sort, not whole rows.
    keys = ", ".join(f"s.{quote_ident(c)}" for c in dict.fromkeys(unique.columns))
    return (f"UPDATE {table} AS s SET {REFUSED} = v.reason "
            f"FROM (SELECT d.copier_tid, {reason} AS reason FROM ("
            f"SELECT {keys}, s.ctid AS copier_tid, "
            f"row_number() OVER (PARTITION BY {cols} ORDER BY s.{quote_ident(row)}) AS copier_nth "
            f"FROM {table} AS s WHERE s.{REFUSED} IS NULL AND {_all_set('s', unique.columns)}"
            f") AS d WHERE d.copier_nth > 1 OR EXISTS (SELECT 1 FROM {target} t "
            f"WHERE {match})) AS v WHERE s.ctid = v.copier_tid")


def screen_self_reference(rules: Rules, key: ForeignKey, staging: str) -> str:
    """Mark the standing rows whose parent is neither in the target nor a standing row of the
    page (run again while it marks rows: a refused parent's children go next)."""
    target = qualified(rules.schema, rules.table)
    standing = f"(SELECT * FROM pg_temp.{quote_ident(staging)} WHERE {REFUSED} IS NULL)"
    return (f"UPDATE pg_temp.{quote_ident(staging)} AS s SET {REFUSED} = {_orphan_reason(rules, key, 's')} "
            f"WHERE s.{REFUSED} IS NULL AND {_all_set('s', key.columns)} "
            f"AND NOT {_parent_exists(key, 's', target)} AND NOT {_parent_exists(key, 's', standing)}")


def insert_standing(rules: Rules, staging: str, loaded: Sequence[str], row: str = ROW, *,
                    into: str | None = None) -> str:
    """The rows that stand, into the target (or the table `into`, SQL), in their order."""
    columns = ", ".join(quote_ident(c) for c in loaded)
    return (f"INSERT INTO {into or qualified(rules.schema, rules.table)} ({columns}) SELECT {columns} "
            f"FROM pg_temp.{quote_ident(staging)} WHERE {REFUSED} IS NULL ORDER BY {quote_ident(row)}")


# A row the table's load transaction wrote (in any of its savepoints): its xmin is that
# transaction's id or a later one (a savepoint's), so its age, counted from the transaction's
# own id, is 0 or less; a row there before the load (an append) is older, or frozen.
def _written_here(alias: str) -> str:
    return f"age({alias}.xmin) <= 0"


def take_orphans(rules: Rules, key: ForeignKey, row: str, into: str) -> str:
    """Delete the rows of the table itself whose parent `key` does not find (added NOT VALID
    over rows loaded with it set aside), keeping (row, reason, generation) of each in the
    temporary table `into` (create_orphans; a cursor may not hold a DELETE ... RETURNING).
    A table referencing itself: the children of those rows too, and theirs, up to
    SELF_REFERENCE_ROUNDS generations (a longer chain fails the key's VALIDATE), all in one
    statement: the key, NOT VALID, still refuses deleting a parent whose child stays. A row
    there before the load is never deleted (one of them refused fails the key's VALIDATE)."""
    return (f"{_doomed(rules, key, row)}, gone AS (DELETE FROM {qualified(rules.schema, rules.table)} AS c "
            f"WHERE c.{quote_ident(row)} IN (SELECT {ROW} FROM doomed) AND {_written_here('c')}) "
            f"INSERT INTO pg_temp.{quote_ident(into)} SELECT {ROW}, reason, {ROUND} FROM doomed")


def take_failing(rules: Rules, check: Check, row: str, into: str) -> str:
    """Delete the rows this load wrote that check constraint `check` (added NOT VALID)
    refuses (its expression false; NULL passes, as in PostgreSQL), keeping (row, reason) of
    each in `into` (create_orphans)."""
    reason = quote_literal(f'new row for relation "{rules.table}" violates check constraint "{check.name}"')
    return _take(rules, into, f"SELECT c.ctid AS copier_tid, c.{quote_ident(row)} AS {ROW}, {reason} AS reason "
                              f"FROM {qualified(rules.schema, rules.table)} AS c "
                              f"WHERE ({check.expression}) IS FALSE AND {_written_here('c')}")


def take_duplicates(rules: Rules, key: IndexKey, row: str, into: str) -> str:
    """Delete the rows this load wrote whose key `key` (about to be made again) is taken
    by a row there before the load, or by a row of the load with a lower `row`: the first
    of equal keys stands, as in a COPY row by row. (row, reason) of each into `into`
    (create_orphans). Only the keys found twice (a hash aggregate) go through the sort,
    but where NULLs are equal (NULLS NOT DISTINCT: a row value with a NULL matches no IN)."""
    target = qualified(rules.schema, rules.table)
    exprs = ", ".join(f"({e})" for e in key.expressions)
    message = quote_literal(f'duplicate key value violates unique constraint "{key.name}" (')
    values = ", ".join(f"coalesce(({e})::text, 'null')" for e in key.expressions)  # PostgreSQL's word for NULL
    label = quote_literal(f"Key ({key.label})=(")
    reason = f"{message} || {label} || concat_ws(', ', {values}) || ') already exists.)'"
    # The rows the key holds: a partial index's, and where NULLs are distinct, those with none.
    held = [f"({key.predicate})"] if key.predicate else []
    if key.nulls_distinct:
        held += [f"({e}) IS NOT NULL" for e in key.expressions]
    where = " AND ".join(held) or "true"
    if key.nulls_distinct:
        where += f" AND ({exprs}) IN (SELECT {exprs} FROM {target} AS c WHERE {where} GROUP BY {exprs} " \
                 "HAVING count(*) > 1)"
    ranked = (f"SELECT c.ctid AS copier_tid, c.{quote_ident(row)} AS {ROW}, {reason} AS reason, "
              f"{_written_here('c')} AS copier_new, "
              # Rows there before the load first (false sorts before true), then by row.
              f"row_number() OVER (PARTITION BY {exprs} ORDER BY {_written_here('c')}, c.{quote_ident(row)}) "
              f"AS copier_nth FROM {target} AS c WHERE {where}")
    return _take(rules, into, f"SELECT copier_tid, {ROW}, reason FROM ({ranked}) AS d "
                              "WHERE d.copier_nth > 1 AND d.copier_new")


def _take(rules: Rules, into: str, doomed: str) -> str:
    """Delete the rows `doomed` selects (copier_tid, ROW, reason), keeping (ROW, reason) in
    `into`. By their ctid: a row there before the load may share the `row` value of one
    deleted."""
    return (f"WITH doomed AS ({doomed}), gone AS (DELETE FROM {qualified(rules.schema, rules.table)} AS c "
            f"WHERE c.ctid IN (SELECT copier_tid FROM doomed)) "
            f"INSERT INTO pg_temp.{quote_ident(into)} SELECT {ROW}, reason, 1 FROM doomed")


def create_orphans(into: str) -> str:
    """The temporary table take_orphans (and take_failing, take_duplicates) fills, empty,
    gone at commit. Emptied by a DELETE: the cursor that read the last rows is open until
    commit (asyncpg's cursors have no close), and would refuse a TRUNCATE."""
    return (f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote_ident(into)} ({ROW} bigint, reason text, {ROUND} integer) "
            f"ON COMMIT DROP;\nDELETE FROM pg_temp.{quote_ident(into)}")


def orphans_taken(into: str) -> str:
    """(row, reason) of the rows take_orphans deleted, generation by generation, in row order."""
    return f"SELECT {ROW}, reason FROM pg_temp.{quote_ident(into)} ORDER BY {ROUND}, {ROW}"


def _doomed(rules: Rules, key: ForeignKey, row: str) -> str:
    target = qualified(rules.schema, rules.table)
    parents = qualified(key.ref_schema, key.ref_table)
    # NOT EXISTS in WHERE: an anti-join (hashed over the parent), not a probe per row.
    first = (f"SELECT c.{quote_ident(row)} AS {ROW}, {_orphan_reason(rules, key, 'c')} AS reason, 1 AS {ROUND}"
             + "".join(f", c.{quote_ident(r)} AS p{i}" for i, r in enumerate(key.ref_columns) if key.self_reference)
             + f" FROM {target} AS c WHERE {_all_set('c', key.columns)} AND NOT {_parent_exists(key, 'c', parents)}")
    if not key.self_reference:
        return f"WITH doomed AS ({first})"
    match = " AND ".join(f"c.{quote_ident(col)} = d.p{i}" for i, col in enumerate(key.columns))
    children = (f"SELECT c.{quote_ident(row)}, {_orphan_reason(rules, key, 'c')}, d.{ROUND} + 1"
                + "".join(f", c.{quote_ident(r)}" for r in key.ref_columns)
                + f" FROM {target} AS c JOIN doomed AS d ON {match} WHERE d.{ROUND} < {SELF_REFERENCE_ROUNDS}")
    return f"WITH RECURSIVE doomed AS ({first} UNION ALL {children})"


def refused_rows(staging: str, row: str = ROW) -> str:
    """(row, reason, column) of the refused rows, in their order."""
    return (f"SELECT {quote_ident(row)}, {REFUSED}, {REFUSED_COLUMN} FROM pg_temp.{quote_ident(staging)} "
            f"WHERE {REFUSED} IS NOT NULL ORDER BY {quote_ident(row)}")


__all__ = ["CONSTRAINTS", "NOT_NULL_COLUMNS", "ROW", "UNIQUE_COLUMN", "UNIQUE_INDEXES", "Check", "ForeignKey",
           "IndexKey", "Rules", "Unique", "create_orphans", "create_staging", "insert_standing", "orphans_taken",
           "refused_rows", "rules_of", "screen_each_row", "screen_self_reference", "screen_unique", "take_duplicates",
           "take_failing", "take_orphans"]
