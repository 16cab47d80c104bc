"""What verify compares the target with: each source value in its raw SQLite form, read into
the target type by PostgreSQL itself. Pure: text forms and SQL expressions, no I/O.

This path shares nothing with the converters in normalise.py (nor with asyncpg's codecs):
a source value travels as its storage class and its plain text (an integer's digits, a
REAL's shortest repr, a blob's hex), and PostgreSQL's own input functions parse it. Only
copier's policies for SQLite's non-text date forms (Unix seconds or milliseconds, Julian
days) are written again here, in SQL, from the README's rules. A converter bug therefore
shows up as a difference, or as a value PostgreSQL cannot read, not as agreement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .casting import Kind, TargetType
from .ident import quote_ident, quote_literal, quote_sqlite

if TYPE_CHECKING:  # pyarrow takes 80 ms to import: imported where a batch is at hand
    import pyarrow as pa

# Storage classes as verify ships them: SQLite's four.
INTEGER, REAL, TEXT, BLOB = "i", "r", "t", "b"

Raw = object  # int | float | str | bytes | None, as sqlite3 returns them


def text_form(value: Raw, *, binary: bool = False) -> tuple[str | None, str | None]:
    """(storage class, plain text) of a raw SQLite value; (None, None) for NULL.

    PostgreSQL text cannot hold NUL: for a bytea column (`binary`) such a text travels
    as its UTF-8 bytes in hex; for any other its NULs are dropped (the row was rejected,
    or --strip-nul dropped them too)."""
    if value is None:
        return None, None
    if isinstance(value, bool):  # never from sqlite3, but an int subclass
        return INTEGER, str(int(value))
    if isinstance(value, int):
        return INTEGER, str(value)
    if isinstance(value, float):
        return REAL, repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            return (BLOB, value.encode("utf-8").hex()) if binary else (TEXT, value.replace("\x00", ""))
        return TEXT, value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return BLOB, bytes(value).hex()
    raise TypeError(f"not an SQLite value: {type(value).__name__}")


# One storage class throughout a column (NULLs aside): its text forms in one C-level map.
_PLAIN_FORMS: dict[type, tuple[str, Callable[[Any], str] | None]] = {
    int: (INTEGER, str), float: (REAL, repr), str: (TEXT, None), bytes: (BLOB, bytes.hex)}


def text_forms(column: Sequence[Raw], *, binary: bool = False) -> tuple[list[str | None], list[str | None]]:
    """(storage classes, texts) of a column of raw values: text_form of each, computed a
    column at a time where the column holds one storage class."""
    kinds = set(map(type, column))
    has_null = type(None) in kinds
    kinds.discard(type(None))
    plain = _PLAIN_FORMS.get(kinds.pop()) if len(kinds) == 1 else None
    if plain is None or (plain[0] == TEXT and "\x00" in "".join(filter(None, column))):  # type: ignore[arg-type]
        pairs = [text_form(value, binary=binary) for value in column]
        return [c for c, _v in pairs], [v for _c, v in pairs]
    storage, render = plain
    if not has_null:
        return [storage] * len(column), list(column if render is None else map(render, column))  # type: ignore[arg-type]
    classes: list[str | None] = [None if v is None else storage for v in column]
    texts: list[str | None] = [None if v is None else v if render is None else render(v)  # type: ignore[misc]
                               for v in column]
    return classes, texts


# --- the same text forms, a batch at a time (Arrow) ----------------------------------------
# The source is read by a C reader as Arrow batches, in key ranges (rowid, or primary key). Each column is read in
# its usual storage class (the commonest in a sample): its text form is then computed in
# Arrow (an integer's digits, a REAL's shortest round-trip decimal as Python's repr gives
# it, a text as is, a blob's hex from SQLite), and its storage class is left out of the
# shipped row (NULL: "the column's usual class"). A row holding a value of another class
# is flagged, read again by its key and shipped through text_form.

_LETTERS = {"integer": INTEGER, "real": REAL, "text": TEXT, "blob": BLOB}
_EXACT_IN_DOUBLE = 2**53


def usual_classes(sample: Sequence[Sequence[str]], kinds: Sequence[Kind]) -> list[str]:
    """Per column, the storage class most of a sample of typeof() rows have (text if none)."""
    usual = []
    for i, kind in enumerate(kinds):
        counts: dict[str, int] = {}
        for row in sample:
            if row[i] != "null":
                counts[row[i]] = counts.get(row[i], 0) + 1
        chosen = max(counts, key=counts.__getitem__) if counts else "text"
        # NUMERIC affinity stores 12.0 as the integer 12: numbers read as REAL (see read_sql).
        usual.append("real" if chosen == "integer" and kind in _NUMBER_KINDS else chosen)
    return usual


_NUMBER_KINDS = (Kind.NUMERIC, Kind.FLOAT8, Kind.FLOAT4)


def _read_expression(column: str, usual: str, kind: Kind) -> str:
    """SQL: the value where it has the column's usual storage class, else NULL."""
    c = quote_sqlite(column)
    if usual == "real" and kind in _NUMBER_KINDS:
        # An integer a double holds exactly has the same text either way: read as REAL.
        return (f"CASE typeof({c}) WHEN 'real' THEN {c} WHEN 'integer' THEN CASE WHEN {c} "
                f"BETWEEN {-_EXACT_IN_DOUBLE} AND {_EXACT_IN_DOUBLE} THEN CAST({c} AS REAL) END END")
    return f"CASE typeof({c}) WHEN '{usual}' THEN {c} END"


# A value of each storage class, for the witness row that fixes the Arrow reader's column types.
WITNESS = {"integer": "0", "real": "0.0", "text": "''", "blob": "x''"}


# Whether each nullable column's value is not NULL, as the bits of an integer (63 columns
# an integer) rather than a column each: the reader then appends one value a row, not one
# a column (10 % of the read of a table with two such columns).
_PRESENCE_BITS = 63


def presence_sql(columns: Sequence[str]) -> list[str]:
    """SQL: integers; bit i % 63 of the (i // 63)-th says whether columns[i] is not NULL."""
    return [" + ".join(f"({quote_sqlite(c)} IS NOT NULL) * {1 << bit}"
                       for bit, c in enumerate(columns[start:start + _PRESENCE_BITS]))
            for start in range(0, len(columns), _PRESENCE_BITS)]


def present(masks: Sequence[pa.Array], count: int) -> list[pa.Array]:
    """For each of the `count` columns of presence_sql, whether its value is not NULL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # Typed scalars: an untyped Python int makes pyarrow try to import dateutil, 0.2 ms a call.
    bits = [pa.scalar(1 << bit, pa.int64()) for bit in range(min(count, _PRESENCE_BITS))]
    zero = pa.scalar(0, pa.int64())
    return [pc.not_equal(pc.bit_wise_and(masks[i // _PRESENCE_BITS], bits[i % _PRESENCE_BITS]), zero)
            for i in range(count)]


def census_sql(table: str, columns: Sequence[str], sample: int = 256) -> str:
    select = ", ".join(f"typeof({quote_sqlite(c)})" for c in columns)
    return f"SELECT {select} FROM {quote_sqlite(table)} LIMIT {int(sample)}"


def rowid_column(columns: Sequence[str], usual: Sequence[str], alias: str | None) -> int | None:
    """Which column is the rowid itself: the INTEGER PRIMARY KEY (`alias`), an integer,
    never NULL. read_sql reads it once, as the rowid."""
    return next((i for i, (c, u) in enumerate(zip(columns, usual)) if c == alias and u == "integer"), None)


def read_sql(table: str, columns: Sequence[str], usual: Sequence[str], kinds: Sequence[Kind],
             nullable: Sequence[bool], key: str, where: str, alias: str | None = None) -> str:
    """ranged_sql reading each column in its usual class (else NULL), of the rows `where`
    holds, each named by `key` (source.key_sql: the rowid, or the primary key)."""
    rowid = rowid_column(columns, usual, alias)
    reads = [None if i == rowid else (_read_expression(c, u, k), WITNESS[u])
             for i, (c, u, k) in enumerate(zip(columns, usual, kinds))]
    return ranged_sql(table, key, where, reads, [c for c, n in zip(columns, nullable) if n])


def ranged_sql(table: str, key: str, where: str, reads: Sequence[tuple[str, str] | None],
               nullable: Sequence[str]) -> str:
    """SQL reading the rows `where` holds (a key range) for the Arrow reader: the row's key
    (`key`: the rowid, or source.key_sql's primary key); each column's read expression
    (`reads`: SQL and a witness value; None for the column that is the rowid itself, not
    read again); then whether each `nullable` column's value is not NULL, as bits
    (presence_sql), so that a value left out can be told from a NULL.

    The reader takes each column's type from its first batch (and fails when a later batch
    differs), so the first row is a witness: a NULL key and a value of the right storage
    class in every column. The reader drops it (arrowlane.drop_witness); read_columns
    takes the batch apart."""
    expressions = [read for read in reads if read is not None]
    presence = presence_sql(nullable)
    # Named, so that the batch's column names are distinct.
    witness = ", ".join(f"{value} AS c{i}" for i, value in enumerate(
        ["NULL", *(w for _sql, w in expressions), *("0" for _ in presence)]))
    selected = ", ".join([key, *(sql for sql, _w in expressions), *presence])
    return f"SELECT {witness} UNION ALL SELECT {selected} FROM {quote_sqlite(table)} WHERE {where}"


def read_columns(batch: pa.RecordBatch, rowid: Sequence[bool],
                 nullable: Sequence[bool]) -> list[tuple[pa.Array, pa.Array]]:
    """Per column of a batch of ranged_sql (witness dropped): its values (the rowid's, for
    the column that is the rowid), and which of them were left out (read as NULL, though the
    value is not NULL)."""
    import pyarrow.compute as pc

    keys = batch.column(0)
    read = iter(batch.columns[1:])
    arrays = [keys if is_rowid else next(read) for is_rowid in rowid]
    presence = iter(present(list(read), sum(nullable)))
    return [(array, pc.and_(pc.is_null(array), next(presence)) if can_be_null else pc.is_null(array))
            for array, can_be_null in zip(arrays, nullable)]


@dataclass(frozen=True, slots=True)
class FormedBatch:
    values: list[pa.Array]  # per column: n<i> for TYPED classes, else v<i> text forms (NULL: NULL)
    odd_keys: list[int | str]  # keys (source.key_sql: rowids, or primary keys) of rows to ship through text_form


def batch_text_forms(batch: pa.RecordBatch, usual: Sequence[str], binary: Sequence[bool],
                     nullable: Sequence[bool], key_column: int | None = None) -> FormedBatch:
    """The text forms of a batch of read_sql (witness dropped; `key_column` as rowid_column
    says). A row with a value left out (another storage class), with text holding NUL, or
    a batch whose text is not UTF-8, is left to text_form (odd rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = batch.column(0)
    read = read_columns(batch, [i == key_column for i in range(len(usual))], nullable)
    odd = None
    values: list[pa.Array] = []
    for storage, (array, left_out) in zip(usual, read):
        if storage == "text":
            try:
                array.validate(full=True)
            except pa.ArrowInvalid:
                return FormedBatch([], keys.to_pylist())
            if holds_nul(array):
                left_out = pc.or_(left_out, pc.fill_null(pc.match_substring(array, "\x00"),
                                                          pa.scalar(False, pa.bool_())))
            values.append(array)
        else:  # an integer as int8, a blob as bytea (TYPED), a REAL as its shortest decimal text
            values.append(array if storage in TYPED else array.cast(pa.string()))
        odd = left_out if odd is None else pc.or_(odd, left_out)
    assert odd is not None, "a table has columns"
    if not pc.any(odd).as_py():  # the usual batch: no copy of it without its odd rows
        return FormedBatch(values, [])
    keep = pc.invert(odd)
    return FormedBatch([v.filter(keep) for v in values], keys.filter(odd).to_pylist())


def holds_nul(array: pa.Array) -> bool:
    """Whether any text of the array holds NUL: one scan of its bytes (NUL is rare)."""
    data = array.buffers()[2]
    return data is not None and data.to_pybytes().find(b"\x00") >= 0


def digest_sql(expressions: Sequence[str], table: str) -> str:
    """One side's rows, counted and digested: the sum of a 64-bit hash of each row. A
    multiset digest: order does not count, duplicates do. The row's hash is its values'
    hashes by their types' own hash functions (hash_record_extended, PostgreSQL 14+), mixed
    once more (hashint8extended): the record hash combines its fields linearly, and summed
    as it is, values swapped between rows would cancel out. Equal sums say the sides are
    equal but for a 2**-64 chance; unequal sums are followed by differences_sql, which
    names the rows."""
    row = f"hashint8extended(hash_record_extended(ROW({', '.join(expressions)}), 0), 1)"
    # sum(bigint) is exact (a numeric result, an int128 accumulator) and 12 % faster than
    # summing numerics.
    return f"SELECT count(*), coalesce(sum({row}), 0) FROM {table}"


def source_columns(count: int) -> list[str]:
    """Columns of the temporary table the source rows are shipped into."""
    return [name for i in range(count) for name in (f"c{i}", f"v{i}")]


# Unix seconds that are years 1-9999, as in the README: beyond, an integer is milliseconds.
# Text that names its offset: a date (and time), then Z or +-HH[[:]MM].
_AWARE_TEXT = r"'^\d{4}-\d\d-\d\d([T ].*)?([zZ]|[+-]\d\d(:?\d\d)?)$'"
_SECONDS = "BETWEEN -62135596800 AND 253402300799"
_JULIAN = "BETWEEN 1721425.5 AND 5373484.5"


def _moment(c: str, v: str) -> str:
    """timestamptz from any of SQLite's date forms (text read in the session's time zone)."""
    return (f"CASE {c} "
            f"WHEN 'i' THEN CASE WHEN {v}::int8 {_SECONDS} "
            f"THEN timestamptz 'epoch' + {v}::bigint * interval '1 second' "
            f"ELSE timestamptz 'epoch' + {v}::bigint * interval '1 millisecond' END "
            f"WHEN 'r' THEN CASE WHEN {v}::float8 {_JULIAN} "
            f"THEN timestamptz 'epoch' + round(({v}::float8 - 2440587.5) * 86400000) * interval '1 millisecond' "
            f"WHEN {v}::float8 {_SECONDS} THEN timestamptz 'epoch' + make_interval(secs => {v}::float8) "
            f"ELSE timestamptz 'epoch' + make_interval(secs => {v}::float8 / 1000) END "
            f"ELSE btrim({v})::timestamptz END")


def _text(c: str, v: str) -> str:
    return f"CASE {c} WHEN 'b' THEN convert_from(decode({v}, 'hex'), 'UTF8') ELSE {v} END"


def expected_sql(target: TargetType, index: int, usual: str = "text", text: str | None = None) -> str:
    """The value PostgreSQL makes of source column `index` for a column of `target` type.
    A shipped row names the storage class of a value (c<index>), or leaves it NULL when it
    is the column's usual one (see batch_text_forms); its text (v<index>, or the `text`
    expression) is NULL for NULL."""
    c, v = f"coalesce(c{index}, '{_LETTERS[usual]}')", text or f"v{index}"
    kind, sql = target.kind, target.sql
    if kind in (Kind.INT2, Kind.INT4, Kind.INT8):
        # An integer's digits straight into the type; text (' 12 ', '12.0') through numeric.
        value = f"CASE {c} WHEN 'i' THEN {v}::{sql} ELSE CAST(btrim({v})::numeric AS {sql}) END"
    elif kind in (Kind.FLOAT8, Kind.FLOAT4):
        value = f"btrim({v})::float8"
    elif kind is Kind.NUMERIC:
        value = f"btrim({v})"
    elif kind is Kind.TEXT:
        value = _text(c, v)
    elif kind is Kind.BYTEA:
        value = f"CASE {c} WHEN 'b' THEN decode({v}, 'hex') ELSE convert_to({v}, 'UTF8') END"
    elif kind is Kind.BOOL:
        value = f"CASE {c} WHEN 'i' THEN {v}::int8 <> 0 WHEN 'r' THEN {v}::float8 <> 0 ELSE btrim({v})::boolean END"
    elif kind is Kind.DATE:
        # A naive text's own calendar day; an aware text's or a number's day in UTC.
        value = (f"CASE WHEN {c} = 't' AND btrim({v}) !~ {_AWARE_TEXT} "
                 f"THEN btrim({v})::timestamp::date ELSE ({_moment(c, v)} AT TIME ZONE 'UTC')::date END")
    elif kind is Kind.TIMESTAMPTZ:
        value = _moment(c, v)
    elif kind is Kind.TIMESTAMP:
        value = f"({_moment(c, v)} AT TIME ZONE 'UTC')"
    elif kind is Kind.TIME:
        value = f"btrim({v})::time"
    elif kind in (Kind.JSON, Kind.JSONB):
        return f"CASE WHEN {v} IS NULL THEN NULL ELSE ({_text(c, v)})::jsonb END"
    elif kind is Kind.UUID:
        value = f"btrim({v})::uuid"
    elif kind is Kind.ENUM:
        return f"CASE WHEN {v} IS NULL THEN NULL ELSE {v} END"
    else:  # pragma: no cover - every Kind is handled above
        raise AssertionError(kind)
    return f"CASE WHEN {v} IS NULL THEN NULL ELSE CAST({value} AS {sql}) END"


# Usual storage classes shipped as themselves, not as text: an integer as int8, a blob as
# bytea, into column n<index> (see batch_text_forms); PostgreSQL then skips parsing them.
TYPED = {"integer": "int8", "blob": "bytea"}


def _from_integer(target: TargetType, n: str) -> str | None:
    """The target value of an SQLite integer `n` (int8), where it needs no text."""
    kind, sql = target.kind, target.sql
    if kind in (Kind.INT2, Kind.INT4, Kind.INT8, Kind.FLOAT8, Kind.FLOAT4, Kind.NUMERIC):
        return f"CAST({n} AS {sql})"
    if kind is Kind.BOOL:
        return f"{n} <> 0"
    if kind in (Kind.TIMESTAMPTZ, Kind.TIMESTAMP, Kind.DATE):
        moment = (f"CASE WHEN {n} {_SECONDS} THEN timestamptz 'epoch' + {n} * interval '1 second' "
                  f"ELSE timestamptz 'epoch' + {n} * interval '1 millisecond' END")
        if kind is Kind.TIMESTAMPTZ:
            return moment
        return f"CAST(({moment}) AT TIME ZONE 'UTC' AS {sql})"
    return None


def _from_blob(target: TargetType, n: str) -> str | None:
    if target.kind is Kind.BYTEA:
        return n
    if target.kind is Kind.TEXT:
        return f"CAST(convert_from({n}, 'UTF8') AS {target.sql})"
    return None


def expected_typed_sql(target: TargetType, index: int, usual: str) -> str:
    """expected_sql for a column whose usual values travel typed (TYPED): the value from
    n<index> where it is there, else from the text form of a value of another class."""
    if usual not in TYPED:
        return expected_sql(target, index, usual)
    n = f"n{index}"
    typed = _from_integer(target, n) if usual == "integer" else _from_blob(target, n)
    if typed is None:  # no shortcut for this type: the usual values' text form, made by PostgreSQL
        text = f"{n}::text" if usual == "integer" else f"encode({n}, 'hex')"
        return expected_sql(target, index, usual, text=f"coalesce(v{index}, {text})")
    return f"CASE WHEN {n} IS NOT NULL THEN {typed} ELSE {expected_sql(target, index, usual)} END"


def source_table_columns(count: int, usual: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """Columns (name, type) of the temporary table the source rows are shipped into."""
    columns = []
    for i in range(count):
        columns += [(f"c{i}", "text"), (f"v{i}", "text")]
        if usual is not None and usual[i] in TYPED:
            columns.append((f"n{i}", TYPED[usual[i]]))
    return columns


def found_sql(target: TargetType, column: str) -> str:
    """The target column as it is compared (json has no equality: as jsonb; enums as text)."""
    if target.kind in (Kind.JSON, Kind.JSONB):
        return f"{quote_ident(column)}::jsonb"
    if target.kind is Kind.ENUM:
        return f"{quote_ident(column)}::text"
    return quote_ident(column)


def set_time_zone(zone: str, *, local: bool = True) -> str:
    """Naive source text is wall time in --source-tz, as PostgreSQL reads it in that zone
    (for the transaction, or with local=False the session)."""
    return f"SET {'LOCAL ' if local else ''}TIME ZONE {quote_literal(zone)}"


def differences_sql(expected: Sequence[str], source_table: str, found: Sequence[str], target_table: str) -> str:
    """The rows whose count differs between the two sides (a multiset comparison:
    duplicates count), each with `surplus`: how many more the source has (negative: the
    target has more). One hash aggregate over both sides, which spills to disk when big."""
    columns = ", ".join(f"x{i}" for i in range(len(expected)))
    source_side = ", ".join(f"{sql} AS x{i}" for i, sql in enumerate(expected))
    target_side = ", ".join(f"{sql} AS x{i}" for i, sql in enumerate(found))
    return (f"SELECT {columns}, sum(side) AS surplus FROM ("
            f"SELECT {source_side}, 1 AS side FROM {source_table} "
            f"UNION ALL SELECT {target_side}, -1 AS side FROM {target_table}) AS both_sides "
            f"GROUP BY {columns} HAVING sum(side) <> 0")
