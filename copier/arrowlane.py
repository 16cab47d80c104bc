"""The columnar lane's pure part: which tables it can take, the guarded SQLite query that
reads them as Arrow batches, and the normalisation of those batches into the Arrow types
whose PostgreSQL binary COPY encoding is the column's.

The contract: a row this lane writes is, value for value, what the exact lane
(normalise.py) writes. The lane only takes values whose storage class and form it can
convert identically; any other value flags its row, and the row goes through the exact
lane (its converters, rejects and bisection) instead. A column whose target this lane
cannot produce identically at all (numeric without a scale, which keeps each value's own
scale; real; json; uuid; time; enums) sends the whole table through the exact lane.
tests/test_lanes.py proves the equality on generated values of every storage class.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc

from . import rules
from .casting import Kind
from .crosscheck import WITNESS, holds_nul, ranged_sql, read_columns
from .ident import quote_sqlite
from .planning import ColumnPlan, TablePlan

_INT_TYPES = {Kind.INT2: pa.int16(), Kind.INT4: pa.int32(), Kind.INT8: pa.int64()}
# numeric(p, s) with p up to 38 fits Arrow's decimal128; _numeric's arithmetic needs 10^s
# exact in a double and below 2^52 (past 15 places, hardly any double would pass it).
_MAX_DECIMAL_PRECISION = 38
_MAX_DECIMAL_SCALE = 15

_FIRST_YEAR = pa.scalar(rules.MIN_SECONDS * 1_000_000, pa.timestamp("us", "UTC"))  # 0001-01-01
_ARROW_ZONES_END = pa.scalar(2114380800_000000, pa.timestamp("us"))  # 2037-01-01
# 9999-12-31 23:59:59.999999
_LAST_INSTANT = pa.scalar(rules.MAX_SECONDS * 1_000_000 + 999_999, pa.timestamp("us", "UTC"))


class Form(StrEnum):
    """How a date or timestamp column's values are written; the lane takes one form per
    column (the dominant one) and flags the others."""

    NAIVE = "naive text"  # 2021-03-04[ 05:06:07[.ffffff]], space or T
    AWARE = "text with offset"  # 2021-03-04 05:06:07Z or +HH:MM
    EPOCH = "Unix seconds"  # an integer
    DATE = "date text"  # 2021-03-04


_NAIVE_TEXT = re.compile(r"\d{4}-\d\d-\d\d([ T]\d\d:\d\d:\d\d(\.\d{1,6})?)?", re.ASCII)
_AWARE_TEXT = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", re.ASCII)
_DATE_TEXT = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


@dataclass(frozen=True, slots=True)
class Route:
    """One column through the columnar lane: what it accepts, and as what Arrow type."""

    column: ColumnPlan
    form: Form | None = None  # for dates and timestamps
    nullable: bool = True  # False where SQLite itself keeps the column free of NULLs
    rowid: bool = False  # the INTEGER PRIMARY KEY: always an integer, never NULL

    @property
    def kind(self) -> Kind:
        return self.column.type.kind

    @property
    def sql(self) -> str:
        return quote_sqlite(self.column.source)

    def read(self) -> str:
        """SQL: the value where its storage class is the one this column is read as, else NULL.
        (The Arrow reader needs one storage class per column; finer checks run on the batch.)"""
        c, kind = self.sql, self.kind
        if kind is Kind.NUMERIC:  # integers a double holds exactly, read as one
            return (f"CASE typeof({c}) WHEN 'real' THEN {c} WHEN 'integer' THEN CASE WHEN {c} "
                    f"BETWEEN {-rules.EXACT_IN_DOUBLE} AND {rules.EXACT_IN_DOUBLE} THEN CAST({c} AS REAL) END END")
        return f"CASE typeof({c}) WHEN '{self.storage_class}' THEN {c} END"

    @property
    def is_rowid(self) -> bool:
        """The INTEGER PRIMARY KEY read as an integer: guarded_sql's key column itself, not
        read a second time (4 % of the read of a table of nine columns)."""
        return self.rowid and self.storage_class == "integer"

    @property
    def storage_class(self) -> str:
        kind = self.kind
        if kind in rules.INT_BOUNDS or kind is Kind.BOOL or self.form is Form.EPOCH:
            return "integer"
        if kind in (Kind.FLOAT8, Kind.NUMERIC):
            return "real"
        if kind is Kind.BYTEA:
            return "blob"
        return "text"

    def witness(self) -> str:
        """SQL: a value of the storage class this column is read as (see guarded_sql)."""
        return WITNESS[self.storage_class]

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type pgpq encodes as the column's PostgreSQL binary format."""
        kind = self.kind
        if kind in _INT_TYPES:
            return _INT_TYPES[kind]
        simple = {Kind.FLOAT8: pa.float64(), Kind.TEXT: pa.string(), Kind.BYTEA: pa.binary(), Kind.BOOL: pa.bool_(),
                  Kind.DATE: pa.date32(), Kind.TIMESTAMP: pa.timestamp("us"),
                  Kind.TIMESTAMPTZ: pa.timestamp("us", "UTC")}
        if kind in simple:
            return simple[kind]
        assert kind is Kind.NUMERIC and self.column.type.precision is not None
        return pa.decimal128(self.column.type.precision, self.column.type.scale or 0)


def takes(column: ColumnPlan) -> bool:
    """Whether the columnar lane can produce this column's values as the exact lane does."""
    target = column.type
    if target.kind is Kind.NUMERIC:  # without a scale PostgreSQL keeps each value's own
        return (target.precision is not None and target.precision <= _MAX_DECIMAL_PRECISION
                and 0 <= (target.scale or 0) <= _MAX_DECIMAL_SCALE)
    return rules.RULES[target.kind].columnar


def exact_only_reason(plan: TablePlan) -> str | None:
    """Why the whole table takes the exact lane (None: the columnar lane takes it)."""
    if plan.source.without_rowid:
        return "WITHOUT ROWID"
    for column in plan.columns:
        if not takes(column):
            kind = column.type.kind
            why = ("keeps each value's own scale" if kind is Kind.NUMERIC and column.type.precision is None
                   else "a scale the columnar lane does not produce" if kind is Kind.NUMERIC
                   else "a type the columnar lane does not produce")
            return f"{column.target} {column.type.sql}: {why}"
    return None if plan.columns else "no columns"


def lane_columns(plan: TablePlan) -> tuple[ColumnPlan, ...] | None:
    """The table's columns if the columnar lane can take the table, else None."""
    if plan.source.without_rowid or not plan.columns or not all(takes(c) for c in plan.columns):
        return None
    return plan.columns


def dated(column: ColumnPlan) -> bool:
    """Whether the column's form must be chosen from its values (dates and timestamps)."""
    return column.type.kind in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ)


# Batches are cut at about this many bytes, and at most MAX_BATCH_ROWS rows: a range holds
# a batch as read, its normalised copy and its COPY bytes at once, two or three deep, so
# rows of 3 KB at 8,192 a batch took 600 MB. 8,192 rows: per-batch costs vanish.
BATCH_BYTES = 2 * 2**20
MAX_BATCH_ROWS = 8_192
_SIZE_SAMPLE = 256


def row_size_sql(table: str, columns: Sequence[str], rowid: str, first: int, last: int) -> str:
    """SQL: the widest row of a sample at the start of a rowid range, in bytes as stored
    (text and blobs; numbers as their text), plus 8 a value (Arrow's fixed widths, offsets)."""
    width = " + ".join(f"coalesce(length(CAST({quote_sqlite(c)} AS BLOB)), 0)" for c in columns) or "0"
    listed = ", ".join(quote_sqlite(c) for c in columns) or "NULL"
    return (f"SELECT max({width}) + {8 * len(columns)} FROM (SELECT {listed} FROM {quote_sqlite(table)} "
            f"WHERE {rowid} BETWEEN {int(first)} AND {int(last)} LIMIT {_SIZE_SAMPLE})")


def batch_rows(widest: int | None) -> int:
    """Rows per batch for rows up to `widest` bytes (None: an empty range)."""
    return MAX_BATCH_ROWS if not widest else max(1, min(MAX_BATCH_ROWS, BATCH_BYTES // widest))


def census_sql(plan: TablePlan, rowid: str, columns: Sequence[ColumnPlan], first: int, last: int,
               sample: int = 256) -> str:
    """SQL: a sample at the start of a rowid range of the dated columns: per column its
    storage class, and its text as bytes (the Arrow reader would turn numbers into text when
    a column mixes them, and text that is not UTF-8 cannot become a Python str)."""
    select = ", ".join(f"typeof({quote_sqlite(c.source)}), CASE typeof({quote_sqlite(c.source)}) WHEN 'text' "
                       f"THEN CAST({quote_sqlite(c.source)} AS BLOB) END" for c in columns)
    return (f"SELECT {select} FROM {quote_sqlite(plan.source.name)} "
            f"WHERE {rowid} BETWEEN {int(first)} AND {int(last)} LIMIT {int(sample)}")


def dominant_form(column: ColumnPlan, sample: Iterable[tuple[str, bytes | None]]) -> Form:
    """The form most of a date or timestamp column's sampled values (storage class, text)
    are written in."""
    if column.type.kind is Kind.DATE:
        return Form.DATE
    forms: Counter[Form] = Counter()
    for storage_class, raw in sample:
        text = raw.decode("utf-8", "replace") if raw is not None else None
        if storage_class == "integer":
            forms[Form.EPOCH] += 1
        elif text is not None and _AWARE_TEXT.fullmatch(text):
            forms[Form.AWARE] += 1
        elif text is not None and _NAIVE_TEXT.fullmatch(text):
            forms[Form.NAIVE] += 1
    return forms.most_common(1)[0][0] if forms else Form.NAIVE


def routes_for(plan: TablePlan, columns: Sequence[ColumnPlan], forms: dict[str, Form]) -> tuple[Route, ...]:
    not_null = {c.name for c in plan.source.columns if c.not_null}
    alias = plan.source.rowid_alias
    return tuple(Route(c, forms.get(c.source), c.source not in not_null and c.source != alias, c.source == alias)
                 for c in columns)


def guarded_sql(plan: TablePlan, routes: Sequence[Route], rowid: str, first: int, last: int) -> str:
    """crosscheck.ranged_sql reading a rowid range for the lane: each column's value where
    its storage class is the expected one, else NULL."""
    return ranged_sql(plan.source.name, rowid, first, last,
                      [None if r.is_rowid else (r.read(), r.witness()) for r in routes],
                      [r.column.source for r in routes if r.nullable])


@dataclass(frozen=True, slots=True)
class Split:
    """One batch, split between the lanes."""

    columnar: pa.RecordBatch | None  # rows for the columnar lane, in their target types
    exact_keys: list[int]  # rowids of the rows the exact lane takes


def drop_witness(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The first batch starts with the witness row of crosscheck.ranged_sql: checked and dropped."""
    if batch.num_rows == 0 or batch.column(0)[0].is_valid:
        raise AssertionError("the columnar reader lost the witness row of its query")
    return batch.slice(1)


def batch_schema(routes: Sequence[Route]) -> pa.Schema:
    """The columnar rows' Arrow schema: the target's columns in the types pgpq encodes as theirs."""
    return pa.schema([pa.field(r.column.target, r.arrow_type) for r in routes])


def split_batch(batch: pa.RecordBatch, routes: Sequence[Route], source_tz: str) -> Split:
    """Normalise a batch of guarded_sql, flagging rows whose values need the exact lane:
    a value left out for its storage class, or one the checks here find unusual. A batch
    whose normalisation fails (an invalid calendar date, invalid UTF-8, a wall time in a
    daylight-saving gap) goes wholly to the exact lane, which finds the bad values."""
    keys = batch.column(0)
    read = read_columns(batch, [r.is_rowid for r in routes], [r.nullable for r in routes])
    exact = None
    arrays = []
    try:
        for route, (array, left_out) in zip(routes, read):
            converted, unusual = _normalise(route, array, source_tz)
            if unusual is not None:
                left_out = pc.or_(left_out, pc.fill_null(unusual, False))  # NULL values are never unusual
            exact = left_out if exact is None else pc.or_kleene(exact, left_out)
            arrays.append(converted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
        return Split(None, keys.to_pylist())
    assert exact is not None
    columnar = pa.RecordBatch.from_arrays(arrays, schema=batch_schema(routes))
    if not pc.any(exact).as_py():  # the usual batch: no copy of it without its flagged rows
        return Split(columnar, [])
    return Split(columnar.filter(pc.invert(exact)), keys.filter(exact).to_pylist())


_INT_LIMITS = {kind: (-bound, bound - 1) for kind, bound in rules.INT_BOUNDS.items() if kind is not Kind.INT8}
# Forms as regular expressions (RE2, run on the batch): what the exact lane reads the same way.
# A date alone is that day's midnight, for Python as for Arrow.
_FORM_PATTERNS = {Form.DATE: rules.DATE_PATTERN, Form.NAIVE: rules.NAIVE_PATTERN, Form.AWARE: rules.AWARE_PATTERN}


def _normalise(route: Route, array: pa.Array, source_tz: str) -> tuple[pa.Array, pa.Array | None]:
    """The column in its target's Arrow type, and which of its values need the exact lane."""
    kind = route.kind
    if kind is Kind.INT8:
        return array, None
    if kind in _INT_LIMITS:
        low, high = _INT_LIMITS[kind]
        outside = pc.or_kleene(pc.less(array, low), pc.greater(array, high))
        return pc.if_else(outside, pa.scalar(None, array.type), array).cast(_INT_TYPES[kind]), outside
    if kind in (Kind.FLOAT8, Kind.BYTEA):
        return array, None
    if kind is Kind.BOOL:
        return pc.not_equal(array, 0), pc.and_(pc.not_equal(array, 0), pc.not_equal(array, 1))
    if kind is Kind.TEXT:
        array.validate(full=True)  # raises on invalid UTF-8, which the exact lane rejects
        # NUL: rejected, or stripped (--strip-nul). One scan of the batch's bytes first: NUL is rare.
        flagged = pc.match_substring(array, "\x00") if holds_nul(array) else None
        limit = route.column.type.max_length
        if limit is not None:
            longer = pc.greater(pc.utf8_length(array), limit)
            flagged = longer if flagged is None else pc.or_kleene(flagged, longer)
        return array, flagged
    if kind is Kind.NUMERIC:
        return _numeric(route, array)
    if route.form is Form.EPOCH:
        outside = pc.or_kleene(pc.less(array, rules.MIN_SECONDS), pc.greater(array, rules.MAX_SECONDS))
        seconds = pc.if_else(outside, pa.scalar(None, pa.int64()), array)
        return _timestamp(route, pc.multiply(seconds, 1_000_000).cast(pa.timestamp("us", "UTC")), outside)
    assert route.form is not None
    fits = pc.match_substring_regex(array, _FORM_PATTERNS[route.form])
    taken = pc.if_else(fits, array, pa.scalar(None, pa.string()))
    if kind is Kind.DATE:
        return taken.cast(pa.date32()), pc.invert(fits)
    if route.form is Form.AWARE:
        moments = taken.cast(pa.timestamp("us", "UTC"))
    elif source_tz == "UTC":
        moments = taken.cast(pa.timestamp("us")).cast(pa.timestamp("us", "UTC"))
    else:
        # As PostgreSQL (and the exact lane) read a wall time that happens twice: the later
        # one. A time in a spring-forward gap raises: the exact lane takes the batch.
        naive = taken.cast(pa.timestamp("us"))
        moments = pc.assume_timezone(naive, source_tz, ambiguous="latest",
                                     nonexistent="raise").cast(pa.timestamp("us", "UTC"))
        # Arrow knows a zone's transitions up to 2037 only; Python, like PostgreSQL, goes on
        # with the zone's rule after that. Such wall times are the exact lane's.
        return _timestamp(route, moments, pc.or_kleene(pc.invert(fits), pc.greater_equal(naive, _ARROW_ZONES_END)))
    return _timestamp(route, moments, pc.invert(fits))


def _numeric(route: Route, array: pa.Array) -> tuple[pa.Array, pa.Array]:
    """numeric(p, s) from a double x, as the exact lane reads it (its shortest decimal text),
    taken only when that needs no rounding and fits; rounded values go the exact way, which
    rounds them as PostgreSQL does and counts them. In arithmetic, 5x faster than through text:

    k = round(x * 10^s), and x is taken when k / 10^s (IEEE division: the double nearest to
    the decimal k·10^-s) is x again, |k| < 10^p, and |k| < 2^52. Then k·10^-s is a decimal of
    at most s places that reads back as x; as x's spacing is below 10^-s, it is the only one,
    and no shorter text of x can have more places: it is x's shortest text. NaN and ±inf
    never pass (NaN differs from itself; |inf| is not below anything)."""
    target = route.column.type
    precision, scale = target.precision or 0, target.scale or 0
    unit = float(10 ** scale)
    scaled = pc.round(pc.multiply(array, unit), 0, round_mode="half_to_even")
    fits = pc.and_(pc.equal(pc.divide(scaled, unit), array),
                   pc.less(pc.abs(scaled), float(min(10 ** precision, 2 ** 52))))
    whole = pc.if_else(fits, scaled, pa.scalar(None, pa.float64())).cast(pa.int64())
    # The unscaled integer k, read as k·10^-s: decimal128 stores the unscaled value.
    return whole.cast(pa.decimal128(38, 0)).view(pa.decimal128(precision, scale)), pc.invert(fits)


def _timestamp(route: Route, moments: pa.Array, flagged: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Years 1..9999 in UTC, which the exact lane (Python's datetime) can hold; it rejects the rest."""
    outside = pc.or_kleene(pc.less(moments, _FIRST_YEAR), pc.greater(moments, _LAST_INSTANT))
    flagged = pc.or_kleene(flagged, outside)
    if route.kind is Kind.TIMESTAMP:  # UTC wall time: the same microseconds
        return moments.view(pa.timestamp("us")), flagged
    return moments, flagged


__all__ = ["BATCH_BYTES", "MAX_BATCH_ROWS", "Form", "Route", "Split", "batch_rows", "batch_schema", "census_sql",
           "dated", "dominant_form", "drop_witness", "exact_only_reason", "guarded_sql", "lane_columns", "routes_for",
           "row_size_sql", "split_batch", "takes"]
