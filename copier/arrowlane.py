"""The columnar lane's pure part: which tables it can take, the guarded SQLite query that
reads them as Arrow batches, and the normalisation of those batches into the Arrow types
whose PostgreSQL binary COPY encoding is the column's.

The contract: a row this lane writes is, value for value, what the exact lane
(normalise.py) writes, both reading the rule book (rules.py). The lane only takes values
whose storage class and form it can convert identically; any other value flags its row,
and the row goes through the exact lane (its converters, rejects and bisection) instead.
A column is read once per storage class its Kind takes in bulk (a DATETIME column as text,
integers and reals), so every form is converted in bulk, not only the most common one.
tests/test_lanes.py proves the equality on generated values of every storage class.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from . import rules
from .casting import Kind
from .crosscheck import WITNESS, holds_nul, ranged_sql, read_columns
from .ident import quote_literal, quote_sqlite
from .planning import ColumnPlan, TablePlan
from .rules import Storage

_INT_TYPES = {Kind.INT2: pa.int16(), Kind.INT4: pa.int32(), Kind.INT8: pa.int64()}
# numeric(p, s) with p up to 38 fits Arrow's decimal128; _numeric's arithmetic needs 10^s
# exact in a double and below 2^52 (past 15 places, hardly any double would pass it).
_MAX_DECIMAL_PRECISION = 38
_MAX_DECIMAL_SCALE = 15

_FIRST_YEAR = pa.scalar(rules.MIN_SECONDS * 1_000_000, pa.timestamp("us", "UTC"))  # 0001-01-01
_ARROW_ZONES_END = pa.scalar(2114380800_000000, pa.timestamp("us"))  # 2037-01-01
# 9999-12-31 23:59:59.999999
_LAST_INSTANT = pa.scalar(rules.MAX_SECONDS * 1_000_000 + 999_999, pa.timestamp("us", "UTC"))


@dataclass(frozen=True, slots=True)
class Route:
    """One column through the columnar lane: what it reads, and as what Arrow type it leaves."""

    column: ColumnPlan
    nullable: bool = True  # False where SQLite itself keeps the column free of NULLs
    rowid: bool = False  # the INTEGER PRIMARY KEY: always an integer, never NULL
    # Read in its first storage class only (see lean): its range holds none of the others.
    lean: bool = False

    @property
    def kind(self) -> Kind:
        return self.column.type.kind

    @property
    def sql(self) -> str:
        return quote_sqlite(self.column.source)

    @property
    def reads(self) -> tuple[Storage, ...]:
        """The storage classes the column is read in, one SQL column each (the Arrow reader
        needs one storage class per column); the first is its own, the others follow the
        table's columns (see guarded_sql). A value of any other class flags its row."""
        return self.bulk[:1] if self.lean else self.bulk

    @property
    def bulk(self) -> tuple[Storage, ...]:
        """The storage classes the lane converts in bulk, its own first (rules.KindRule.bulk)."""
        if self.kind is Kind.NUMERIC and in_decimal128(self.column):  # integers read as reals (read)
            return (Storage.REAL,)
        return rules.RULES[self.kind].bulk

    def read(self, storage: Storage) -> str:
        """SQL: the value where its storage class is `storage`, else NULL."""
        c = self.sql
        if storage is Storage.REAL and self.kind is Kind.NUMERIC and in_decimal128(self.column):
            # integers a double holds exactly, read as one
            return (f"CASE typeof({c}) WHEN 'real' THEN {c} WHEN 'integer' THEN CASE WHEN {c} "
                    f"BETWEEN {-rules.EXACT_IN_DOUBLE} AND {rules.EXACT_IN_DOUBLE} THEN CAST({c} AS REAL) END END")
        return f"CASE typeof({c}) WHEN '{storage}' THEN {c} END"

    @property
    def is_rowid(self) -> bool:
        """The INTEGER PRIMARY KEY read as an integer: guarded_sql's key column itself, not
        read a second time (4 % of the read of a table of nine columns)."""
        return self.rowid and self.reads == (Storage.INTEGER,)

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type pgpq encodes as the column's PostgreSQL binary format (for jsonb,
        with the encoder columnar.encoder_for declares)."""
        kind = self.kind
        if kind in _INT_TYPES:
            return _INT_TYPES[kind]
        if kind is Kind.NUMERIC:
            target = self.column.type
            if in_decimal128(self.column):
                assert target.precision is not None
                return pa.decimal128(target.precision, target.scale or 0)
            return pa.binary()  # PostgreSQL's own numeric wire bytes (numeric_wire)
        return _ARROW_TYPES[kind]


_ARROW_TYPES = {Kind.FLOAT8: pa.float64(), Kind.FLOAT4: pa.float32(), Kind.TEXT: pa.string(), Kind.BYTEA: pa.binary(),
                Kind.BOOL: pa.bool_(), Kind.DATE: pa.date32(), Kind.TIMESTAMP: pa.timestamp("us"),
                Kind.TIMESTAMPTZ: pa.timestamp("us", "UTC"), Kind.TIME: pa.time64("us"), Kind.JSON: pa.string(),
                Kind.JSONB: pa.string(), Kind.ENUM: pa.string(), Kind.UUID: pa.binary(16)}


def in_decimal128(column: ColumnPlan) -> bool:
    """numeric(p, s) that Arrow's decimal128 holds and _numeric's arithmetic takes; other
    numerics travel as PostgreSQL's numeric wire bytes."""
    target = column.type
    return (target.precision is not None and target.precision <= _MAX_DECIMAL_PRECISION
            and 0 <= (target.scale or 0) <= _MAX_DECIMAL_SCALE)


def routes_for(plan: TablePlan, columns: Sequence[ColumnPlan]) -> tuple[Route, ...]:
    not_null = {c.name for c in plan.source.columns if c.not_null}
    alias = plan.source.rowid_alias
    return tuple(Route(c, c.source not in not_null and c.source != alias, c.source == alias) for c in columns)


def further_sql(plan: TablePlan, routes: Sequence[Route], where: str) -> str | None:
    """SQL: a row if any value of the range `where` holds is in one of its column's further
    bulk classes (an integer or a real in a DATETIME column, an integer in a bare NUMERIC
    one); None where no column has any. Without such a row, lean() routes read each column
    once: two fewer guarded columns a date column (0.12 s of 0.47-0.66 s of the read of
    200,000 rows of the json and without-rowid shapes), for one scan of the range (0.03-0.06 s)."""
    tests = [f"typeof({r.sql}) IN ({', '.join(quote_literal(s) for s in r.bulk[1:])})"
             for r in routes if len(r.bulk) > 1]
    if not tests:
        return None
    return f"SELECT 1 FROM {quote_sqlite(plan.source.name)} WHERE ({where}) AND ({' OR '.join(tests)}) LIMIT 1"


def lean(routes: Sequence[Route]) -> tuple[Route, ...]:
    """The routes reading each column in its first storage class only (further_sql found no
    value of the others). A value of another class is still left out, and flags its row:
    the per-value path takes it, so a value never changes with the read."""
    return tuple(replace(r, lean=True) for r in routes)


def guarded_sql(plan: TablePlan, routes: Sequence[Route], key: str, where: str) -> str:
    """crosscheck.ranged_sql reading a key range for the lane (`key`: source.key_sql, `where`:
    source.range_condition): each column's value where
    its storage class is its first read's, else NULL; then the columns' further reads."""
    reads: list[tuple[str, str] | None] = [None if r.is_rowid else (r.read(r.reads[0]), WITNESS[r.reads[0]])
                                           for r in routes]
    further: list[tuple[str, str] | None] = [(r.read(storage), WITNESS[storage]) for r in routes
                                             for storage in r.reads[1:]]
    return ranged_sql(plan.source.name, key, where, reads + further,
                      [r.column.source for r in routes if r.nullable])


@dataclass(frozen=True, slots=True)
class Split:
    """One batch, split between the lanes."""

    columnar: pa.RecordBatch | None  # rows for the columnar lane, in their target types
    exact_keys: list[int] | list[str]  # keys (source.key_sql) of the rows the exact lane takes


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
    further = sum(len(r.reads) - 1 for r in routes)
    read = read_columns(batch, [r.is_rowid for r in routes] + [False] * further,
                        [r.nullable for r in routes] + [False] * further)
    others = iter(array for array, _left_out in read[len(routes):])
    exact = None
    arrays = []
    try:
        for route, (array, left_out) in zip(routes, read):
            more = [next(others) for _ in route.reads[1:]]
            # A lean read's further classes: none of its values (all NULL), as a full read gives them
            more += [pa.nulls(batch.num_rows, _STORAGE_TYPES[s]) for s in route.bulk[len(route.reads):]]
            for other in more:  # left out: in none of the column's reads
                left_out = pc.and_(left_out, pc.is_null(other))
            converted, unusual = _normalise(route, array, source_tz, *more)
            if unusual is not None:
                left_out = pc.or_(left_out, pc.fill_null(unusual, _NO))  # NULL values are never unusual
            exact = left_out if exact is None else pc.or_kleene(exact, left_out)
            arrays.append(converted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
        return Split(None, keys.to_pylist())
    assert exact is not None
    columnar = pa.RecordBatch.from_arrays(arrays, schema=batch_schema(routes))
    if not pc.any(exact).as_py():  # the usual batch: no copy of it without its flagged rows
        return Split(columnar, [])
    return Split(columnar.filter(pc.invert(exact)), keys.filter(exact).to_pylist())


# The Arrow type the reader gives each storage class.
_STORAGE_TYPES = {Storage.INTEGER: pa.int64(), Storage.REAL: pa.float64(), Storage.TEXT: pa.string(),
                  Storage.BLOB: pa.binary()}
_INT_LIMITS = {kind: (-bound, bound - 1) for kind, bound in rules.INT_BOUNDS.items() if kind is not Kind.INT8}


def _normalise(route: Route, array: pa.Array, source_tz: str, *others: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """The column in its target's Arrow type, and which of its values need the exact lane.
    `array` holds the values of the column's first read, `others` those of its further reads."""
    kind = route.kind
    if kind is Kind.INT8:
        return array, None
    if kind in _INT_LIMITS:
        low, high = _INT_LIMITS[kind]
        outside = pc.or_kleene(pc.less(array, _int(low)), pc.greater(array, _int(high)))
        return pc.if_else(outside, pa.scalar(None, array.type), array).cast(_INT_TYPES[kind]), outside
    if kind in (Kind.FLOAT8, Kind.BYTEA):
        return array, None
    if kind is Kind.FLOAT4:  # as a C cast rounds it; past float4's range the exact lane refuses it
        narrow = array.cast(pa.float32(), safe=False)
        outside = pc.and_(pc.is_inf(narrow), pc.invert(pc.is_inf(array)))
        return pc.if_else(outside, pa.scalar(None, pa.float32()), narrow), outside
    if kind is Kind.BOOL:
        return pc.not_equal(array, _int(0)), pc.and_(pc.not_equal(array, _int(0)), pc.not_equal(array, _int(1)))
    if kind in (Kind.TEXT, Kind.JSON, Kind.JSONB, Kind.ENUM):
        array, flagged = _text(route, array)
        if kind is Kind.ENUM:
            labelled = pc.is_in(array, pa.array(route.column.type.labels, pa.string()))
            flagged = _or(flagged, pc.and_(array.is_valid(), pc.invert(labelled)))  # NULL is no label, and fine
        elif kind is not Kind.TEXT:
            # \u0000 and lone surrogates are JSON to Python but not to PostgreSQL: the exact
            # lane's, whose bisection rejects them, not a COPY the whole table would be undone for
            escapes = pc.match_substring_regex(array, r"\\u(0000|[dD][89a-fA-F])")
            flagged = _or(_or(flagged, escapes), _not_json(array))
        return array, flagged
    if kind is Kind.NUMERIC:
        if in_decimal128(route.column):
            return _numeric(route, array)
        return numeric_wire(route, array, *others)
    if kind is Kind.UUID:
        return _uuid(array, *others)
    if kind is Kind.TIME:
        return _time(array)
    return _dated(route, array, others[0], others[1], source_tz)


def _or(first: pa.Array | None, second: pa.Array) -> pa.Array:
    return second if first is None else pc.or_kleene(first, second)


def _text(route: Route, array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    array.validate(full=True)  # raises on invalid UTF-8, which the exact lane rejects
    # NUL: rejected, or stripped (--strip-nul). One scan of the batch's bytes first: NUL is rare.
    flagged = pc.match_substring(array, "\x00") if holds_nul(array) else None
    limit = route.column.type.max_length
    if limit is not None:
        flagged = _or(flagged, pc.greater(pc.utf8_length(array), pa.scalar(limit, pa.int32())))
    return array, flagged


_JSON = json.JSONDecoder(parse_constant=lambda name: _refuse(name))
# msgspec's validating scan (decoding to Raw builds no objects): 0.6 us a document of 300
# bytes where json.loads takes 5 (benchmarks/README.md). It refuses more than json.loads does
# (lone surrogate escapes), never less (tests/test_arrowlane.py): what it accepts is JSON to
# the exact lane; what it refuses is asked of json.loads, as the exact lane would.
_SCAN = msgspec.json.Decoder(msgspec.Raw).decode
# Both parsers refuse a document nested past the recursion limit, at depths a few levels
# apart: one with this many brackets or more (its depth can be no more) goes to json.loads
# alone. A document of fewer than twice as many characters cannot reach it.
_DEEP_BRACKETS = 256


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _not_json(array: pa.Array) -> pa.Array:
    """Which texts are not JSON as the exact lane reads it (json.loads, NaN and Infinity
    refused). No Arrow kernel parses JSON: the one per-value step of the lane, in C."""
    deep = _deep(array)
    try:
        if deep is None and array.type == pa.string():
            # Each text's UTF-8 bytes, a view of the array's data: msgspec reads a str through
            # its UTF-8 bytes too, and no Python str is made per document (the json shape's
            # 200,000 documents: 0.14 -> 0.11 s of CPU).
            data = memoryview(array.buffers()[2] or b"")
            ends = _offsets_of(array)
            for start, end, present in zip(ends, ends[1:], _presence(array)):
                if present:
                    _SCAN(data[start:end])
        else:
            for value, nested in zip(array.to_pylist(), deep or itertools.repeat(False)):
                if value is not None:
                    _JSON.decode(value) if nested else _SCAN(value)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return pa.array([value is not None and not _is_json(value) for value in array.to_pylist()], pa.bool_())
    return pa.nulls(len(array), pa.bool_())


def _offsets_of(array: pa.Array) -> list[int]:
    """Where each text of a string array starts in its data buffer, and where the last ends."""
    ends: list[int] = pa.Array.from_buffers(pa.int32(), len(array) + 1, [None, array.buffers()[1]],
                                            offset=array.offset).to_pylist()
    return ends


def _presence(array: pa.Array) -> Iterable[bool]:
    return array.is_valid().to_pylist() if array.null_count else itertools.repeat(True, len(array))


def _deep(array: pa.Array) -> list[bool] | None:
    """Per text, whether it holds _DEEP_BRACKETS brackets or more; None: none is long enough."""
    long = pc.greater_equal(pc.binary_length(array), pa.scalar(2 * _DEEP_BRACKETS, pa.int32()))
    if not pc.any(long).as_py():
        return None
    brackets = pc.count_substring_regex(pc.if_else(long, array, pa.scalar(None, pa.string())), r"[\[{]")
    deep: list[bool] = pc.fill_null(pc.greater_equal(brackets, pa.scalar(_DEEP_BRACKETS, brackets.type)),
                                    _NO).to_pylist()
    return deep


def _is_json(text: str) -> bool:
    try:
        _JSON.decode(text)
    except (ValueError, RecursionError):
        return False
    return True


_UUID_TEXT = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def _uuid(text: pa.Array, blobs: pa.Array) -> tuple[pa.Array, pa.Array]:
    """16 bytes from a blob of 16, or from a UUID's hex text (hyphens as Python's uuid takes
    them); the hex of a whole batch is decoded at once."""
    fits = pc.fill_null(pc.match_substring_regex(text, _UUID_TEXT), _NO)
    hexes = pc.if_else(fits, pc.replace_substring(text, "-", ""), _str("0" * 32))
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(hexes)], pa.int32()), hexes), _str(""))
    raw = pa.py_buffer(bytes.fromhex(joined[0].as_py()))
    decoded = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(hexes), [None, raw])
    sixteen = pc.fill_null(pc.equal(pc.binary_length(blobs), pa.scalar(16, pa.int32())), _NO)
    from_blobs = pc.if_else(sixteen, blobs, pa.scalar(None, pa.binary())).cast(pa.binary(16))
    converted = pc.if_else(fits, decoded, from_blobs)
    odd = pc.or_(pc.and_(text.is_valid(), pc.invert(fits)), pc.and_(blobs.is_valid(), pc.invert(sixteen)))
    return converted, odd


_TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$"


def _time(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """HH:MM[:SS[.ffffff]] as a time of day, read as the wall time of a day by Arrow's parser."""
    fits = pc.match_substring_regex(text, _TIME_PATTERN)
    taken = pc.if_else(fits, text, pa.scalar(None, pa.string()))
    moments = pc.binary_join_element_wise(pa.scalar("1970-01-01 "), taken, "").cast(pa.timestamp("us"))
    return moments.cast(pa.time64("us")), pc.invert(fits)


_MICROS_PER_DAY = rules.MILLIS_PER_DAY * 1000


def _dated(route: Route, text: pa.Array, integers: pa.Array, reals: pa.Array,
           source_tz: str) -> tuple[pa.Array, pa.Array]:
    """A date or timestamp from each of SQLite's forms (rules.RULES): ISO text, Unix time,
    Julian day; each form of a batch converted in bulk."""
    numbers, odd = _unix_micros(integers, reals)
    if route.kind is Kind.DATE:
        fits = pc.match_substring_regex(text, rules.DATE_PATTERN)
        from_text = pc.if_else(fits, text, pa.scalar(None, pa.string())).cast(pa.date32())
        days = pc.divide(numbers, _int(_MICROS_PER_DAY))
        midnight = pc.equal(pc.multiply(days, _int(_MICROS_PER_DAY)), numbers)  # only a midnight is a date
        from_numbers = pc.if_else(midnight, days, pa.scalar(None, pa.int64())).cast(pa.int32()).view(pa.date32())
        return (pc.coalesce(from_text, from_numbers),
                pc.or_kleene(pc.or_kleene(pc.invert(fits), odd), pc.invert(midnight)))
    naive_fits = pc.match_substring_regex(text, rules.NAIVE_PATTERN)
    naive = pc.if_else(naive_fits, text, pa.scalar(None, pa.string())).cast(pa.timestamp("us"))
    flagged = pc.or_kleene(odd, pc.invert(naive_fits))
    if source_tz == "UTC":
        moments = naive.cast(pa.timestamp("us", "UTC"))
    else:
        # As PostgreSQL (and the exact lane) read a wall time that happens twice: the later
        # one. A time in a spring-forward gap raises: the exact lane takes the batch.
        moments = pc.assume_timezone(naive, source_tz, ambiguous="latest",
                                     nonexistent="raise").cast(pa.timestamp("us", "UTC"))
        # Arrow knows a zone's transitions up to 2037 only; Python, like PostgreSQL, goes on
        # with the zone's rule after that. Such wall times are the exact lane's.
        flagged = pc.or_kleene(flagged, pc.greater_equal(naive, _ARROW_ZONES_END))
    unread = pc.and_(text.is_valid(), pc.invert(pc.fill_null(naive_fits, _NO)))
    if pc.any(unread).as_py():  # text with an offset: rarer, its pattern run only when needed
        aware_fits = pc.match_substring_regex(text, rules.AWARE_PATTERN)
        aware = pc.if_else(aware_fits, text, pa.scalar(None, pa.string())).cast(pa.timestamp("us", "UTC"))
        moments = pc.coalesce(moments, aware)
        flagged = pc.and_kleene(flagged, pc.invert(pc.fill_null(aware_fits, _NO)))
    moments = pc.coalesce(moments, numbers.cast(pa.timestamp("us", "UTC")))
    return _timestamp(route, moments, flagged)


def _unix_micros(integers: pa.Array, reals: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Microseconds since 1970 (UTC) of the numbers in a date column, as the exact lane reads
    them (rules.unix_unit, rules.is_julian_day; Python's timedelta rounds a float's
    microseconds half to even), and which numbers it does not read (NULL: no number)."""
    seconds = _within(integers, _int(rules.MIN_SECONDS), _int(rules.MAX_SECONDS))
    millis = _within(integers, _int(rules.MIN_MILLIS), _int(rules.MAX_MILLIS))
    from_integers = pc.if_else(seconds, pc.multiply(integers, _int(1_000_000)),
                               pc.if_else(millis, pc.multiply(integers, _int(1000)), pa.scalar(None, pa.int64())))
    odd = pc.invert(pc.or_(seconds, millis))
    if reals.null_count == len(reals):
        return from_integers, odd
    first_day, last_day = rules.JULIAN_DAY_RANGE
    julian = _within(reals, _float(first_day), _float(last_day))
    days = pc.if_else(julian, reals, pa.scalar(None, pa.float64()))
    millis_of_days = pc.multiply(pc.subtract(days, _float(rules.UNIX_EPOCH_JULIAN_DAY)), _float(rules.MILLIS_PER_DAY))
    from_days = pc.multiply(pc.round(millis_of_days, 0, round_mode="half_to_even").cast(pa.int64()), _int(1000))
    other = pc.invert(julian)
    real_seconds = pc.and_(other, _within(reals, _float(rules.MIN_SECONDS), _float(rules.MAX_SECONDS)))
    real_millis = pc.and_(other, _within(reals, _float(rules.MIN_MILLIS), _float(rules.MAX_MILLIS)))
    from_seconds = _float_micros(pc.if_else(real_seconds, reals, pa.scalar(None, pa.float64())), 1_000_000)
    from_millis = _float_micros(pc.if_else(pc.and_(real_millis, pc.invert(real_seconds)), reals,
                                           pa.scalar(None, pa.float64())), 1000)
    from_reals = pc.coalesce(from_days, from_seconds, from_millis)
    odd_reals = pc.invert(pc.or_(julian, pc.or_(real_seconds, real_millis)))
    return pc.coalesce(from_integers, from_reals), pc.or_kleene(odd, odd_reals)


def _within(values: pa.Array, low: pa.Scalar, high: pa.Scalar) -> pa.Array:
    return pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high))


def _float_micros(values: pa.Array, per_unit: int) -> pa.Array:
    """timedelta(seconds=x) (per_unit 10^6) or timedelta(milliseconds=x) (10^3), in
    microseconds: the whole units exactly, the fraction's microseconds rounded half to even."""
    whole = pc.trunc(values)
    fraction = pc.round(pc.multiply(pc.subtract(values, whole), _float(per_unit)), 0, round_mode="half_to_even")
    return pc.add(pc.multiply(whole.cast(pa.int64()), _int(per_unit)), fraction.cast(pa.int64()))


_NEGATIVE = 0x4000
# Places tried in arithmetic before a double's text is read (_shortest): most values have few.
_SEARCH_PLACES = 4


def numeric_wire(route: Route, reals: pa.Array, integers: pa.Array) -> tuple[pa.Array, pa.Array]:
    """PostgreSQL's numeric binary form of each value, as the exact lane writes it:
    Decimal(repr(x)). An integer is itself, at scale 0. A real is its shortest decimal text
    (Arrow's cast writes the digits repr writes), at its own places, and at least one place
    where repr writes a point (12.0; not 1e+16). Into numeric(p, s), at scale s where no
    rounding is needed and the value fits; other values need the exact lane.

    The wire form: ndigits, weight, sign, dscale (int16 each, big-endian), then ndigits
    base-10000 digits, most significant first; PostgreSQL strips leading and trailing zero
    digits itself, so every value is written as 8 digits, 24 bytes."""
    target = route.column.type
    finite = pc.and_(pc.is_finite(reals), pc.less(pc.abs(reals), _float(1e18)))  # digits·10^-places in int64
    digits, places = _shortest(pc.if_else(finite, reals, pa.scalar(None, pa.float64())))
    lowest = pc.equal(integers, _int(-2**63))  # no magnitude in int64: the exact lane's
    integers = pc.if_else(lowest, pa.scalar(None, pa.int64()), integers)
    unscaled = pc.coalesce(digits, integers)
    places = pc.coalesce(places, pc.if_else(integers.is_valid(), _int(0), pa.scalar(None, pa.int64())))
    odd = pc.or_kleene(lowest, pc.and_(reals.is_valid(), pc.invert(finite)))
    if target.precision is None:
        # repr writes a point, so at least one place, below 10^16 (past it, 1e+16: none)
        pointed = pc.less(pc.abs(reals), _float(1e16))
        dscale = pc.if_else(pointed, pc.max_element_wise(places, _int(1)), places)
        dscale = pc.coalesce(dscale, places)
    else:
        scale = target.scale or 0
        dscale = pc.if_else(places.is_valid(), _int(scale), pa.scalar(None, pa.int64()))
        whole_digits = target.precision - scale
        limit = float(10 ** whole_digits) if whole_digits <= 308 else float("inf")
        too_big = pc.greater_equal(pc.abs(reals), _float(limit))
        if whole_digits <= 18:  # past 18 digits, every int64 fits
            too_big = pc.or_kleene(too_big, pc.greater_equal(pc.abs(integers), _int(10 ** whole_digits)))
        odd = pc.or_kleene(odd, pc.or_kleene(too_big, pc.greater(places, _int(scale))))
        unscaled = pc.if_else(pc.fill_null(odd, _NO), pa.scalar(None, pa.int64()), unscaled)
    return _numeric_bytes(unscaled, places, dscale), odd


def _shortest(reals: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each double (finite, below 10^18) as digits·10^-places, its shortest decimal, which is
    what Python's repr writes. First in arithmetic, for up to _SEARCH_PLACES places: x is
    k·10^-s when round(x·10^s) = k, k / 10^s = x (IEEE division: the double nearest
    k·10^-s) and |k| < 2^52 (then the spacing of doubles near x is below 10^-s: no other
    decimal of s places, and none shorter, reads back as x; see _numeric). Tried once, at
    s = _SEARCH_PLACES: k·10^-s less its trailing zeros is then the shortest decimal (a
    shorter one would also read back as x, and be equal to it). The values left: from
    Arrow's cast to text, which writes the same shortest digits (double-conversion's
    shortest, as Python's repr), 3 ms a batch."""
    unit = _float(float(10 ** _SEARCH_PLACES))
    scaled = pc.round(pc.multiply(reals, unit), 0, round_mode="half_to_even")
    fits = pc.fill_null(pc.and_(pc.equal(pc.divide(scaled, unit), reals),
                                pc.less(pc.abs(scaled), _float(2.0 ** 52))), _NO)
    k = pc.if_else(fits, scaled, pa.scalar(None, pa.float64()))
    places = pc.if_else(fits, _int(_SEARCH_PLACES), pa.scalar(None, pa.int64()))
    ten = _float(10.0)
    for _ in range(_SEARCH_PLACES):  # trailing zeros: k / 10 is whole exactly when 10 divides k (|k| < 2^52)
        tenth = pc.divide(k, ten)
        whole = pc.fill_null(pc.equal(pc.floor(tenth), tenth), _NO)
        k = pc.if_else(whole, tenth, k)
        places = pc.if_else(whole, pc.subtract(places, _int(1)), places)
    found = pc.or_(fits, pc.is_null(reals))
    if pc.all(found).as_py():
        return k.cast(pa.int64()), places
    # "1.5e-7", "1e+16", "-0.25": the mantissa's digits, its places less the exponent
    text = pc.binary_join_element_wise(pc.if_else(found, pa.scalar(None, pa.float64()), reals).cast(pa.string()),
                                       _str("e0"), _str(""))  # every text has an exponent then
    split = pc.split_pattern(text, "e")
    mantissa = pc.list_element(split, _int(0))
    exponent = pc.replace_substring(pc.list_element(split, _int(1)), "+", "").cast(pa.int64())
    point = pc.find_substring(mantissa, ".").cast(pa.int64())
    fraction = pc.if_else(pc.less(point, _int(0)), _int(0),
                          pc.subtract(pc.subtract(pc.utf8_length(mantissa).cast(pa.int64()), point), _int(1)))
    digits = pc.replace_substring(mantissa, ".", "").cast(pa.int64())
    read = pc.subtract(fraction, exponent)
    digits = pc.multiply(digits, pc.power(_int(10), pc.max_element_wise(pc.negate(read), _int(0))))  # 1e+16
    return pc.coalesce(k.cast(pa.int64()), digits), pc.coalesce(places, pc.max_element_wise(read, _int(0)))


def _numeric_bytes(unscaled: pa.Array, places: pa.Array, dscale: pa.Array) -> pa.Array:
    """The wire form of unscaled·10^-places at dscale (NULL where unscaled is NULL): the
    digits in groups of four aligned on the decimal point, the lowest group padded with
    `pad` zeros, so that no step leaves 64 bits (|unscaled| < 2^63). Every value of a batch
    has as many groups as its largest needs, 4 or 8 (one or two words of 64 bits after the
    header's): PostgreSQL strips leading and trailing zero groups itself. Values under a
    NULL are whatever the kernels leave there: the result is NULL there."""
    pad = pc.subtract(pc.multiply(pc.divide(pc.add(places, _int(3)), _int(4)), _int(4)), places)
    aligned = pc.add(places, pad)
    magnitude = pc.abs(unscaled).cast(pa.uint64())
    low = pc.power(_int(10), pc.subtract(_int(4), pad)).cast(pa.uint64())
    rest = pc.divide(magnitude, low)
    groups = [pc.multiply(pc.subtract(magnitude, pc.multiply(rest, low)), pc.power(_int(10), pad).cast(pa.uint64()))]
    largest = pc.max(rest).as_py() or 0
    count = 4 if largest < 10_000 ** 3 else 8  # |rest| < 2^64 < 10^4 · 10000^5: 6 groups at most
    for _ in range(2 if count == 4 else 4):
        next_rest = pc.divide(rest, _U(10_000))
        groups.append(pc.subtract(rest, pc.multiply(next_rest, _U(10_000))))
        rest = next_rest
    groups.append(rest)  # the highest group: below 10,000
    groups += [_U(0)] * (count - len(groups))
    weight = pc.bit_wise_and(pc.subtract(_int(count - 1), pc.divide(aligned, _int(4))), _int(0xFFFF))  # int16
    sign = pc.if_else(pc.less(unscaled, _int(0)), _U(_NEGATIVE), _U(0))
    # Each word holds four int16 fields, the first in its lowest bits: in a little-endian
    # uint64's memory, in order; _big_endian then swaps each field's two bytes.
    words = [_fields(_U(count), weight.cast(pa.uint64()), sign, dscale.cast(pa.uint64()))]
    digits = groups[::-1]  # most significant first
    words += [_fields(*digits[i:i + 4]) for i in range(0, count, 4)]
    width = 8 * len(words)
    n = len(unscaled)
    data = pc.take(pa.concat_arrays([_big_endian(w) for w in words]), _interleaving(n, len(words)))
    valid = unscaled if unscaled.offset == 0 else pa.concat_arrays([unscaled])
    return pa.Array.from_buffers(pa.binary(), n, [valid.buffers()[0], _offsets(n, width), data.buffers()[1]],
                                 valid.null_count)


def _fields(*fields: pa.Array | pa.Scalar) -> pa.Array:
    word = fields[0]
    for index, field in enumerate(fields[1:], 1):
        if not (isinstance(field, pa.Scalar) and field.as_py() == 0):
            word = pc.bit_wise_or(word, pc.shift_left(field, _U(16 * index)))
    if isinstance(word, pa.Scalar):
        raise AssertionError("a word of the wire form holds an array")
    return word


@functools.lru_cache(maxsize=8)
def _interleaving(rows: int, words: int) -> pa.Array:
    """Indices taking row r's word w, for each row then word, from the words one after the other."""
    return pa.array([w * rows + r for r in range(rows) for w in range(words)], pa.int64())


@functools.lru_cache(maxsize=8)
def _offsets(rows: int, width: int) -> pa.Buffer:
    return pa.array(range(0, width * (rows + 1), width), pa.int32()).buffers()[1]


_LOW_BYTES = 0x00FF00FF00FF00FF
_NO = pa.scalar(False, pa.bool_())


def _big_endian(word: pa.Array) -> pa.Array:
    """Swap the two bytes of each of a uint64's four 16-bit fields."""
    return pc.bit_wise_or(pc.shift_left(pc.bit_wise_and(word, _U(_LOW_BYTES)), _U(8)),
                          pc.bit_wise_and(pc.shift_right(word, _U(8)), _U(_LOW_BYTES)))


# Typed scalars: an untyped Python number makes pyarrow try to import dateutil, which is not
# installed, on every call (0.5 ms each; 20 ms a batch for numeric_wire). Each made once: a
# scalar costs 15 us to make, and numeric_wire asks for 50 a column and batch (the numeric
# shape's 200,000 rows: 4,000 of them, 0.06 of its 1.06 s of normalisation, profiled on a busy
# machine). They are constants of the code and of the plan: a few dozen in a run.
@functools.lru_cache(maxsize=256)
def _int(value: int) -> pa.Scalar:
    return pa.scalar(value, pa.int64())


def _float(value: float) -> pa.Scalar:
    return _float_of(float(value).hex())  # by its bits: 0.0 and -0.0 are equal keys otherwise


@functools.lru_cache(maxsize=256)
def _float_of(bits: str) -> pa.Scalar:
    return pa.scalar(float.fromhex(bits), pa.float64())


@functools.lru_cache(maxsize=256)
def _str(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.string())


@functools.lru_cache(maxsize=256)
def _U(value: int) -> pa.Scalar:
    return pa.scalar(value, pa.uint64())


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
    unit = _float(10 ** scale)
    scaled = pc.round(pc.multiply(array, unit), 0, round_mode="half_to_even")
    fits = pc.and_(pc.equal(pc.divide(scaled, unit), array),
                   pc.less(pc.abs(scaled), _float(min(10 ** precision, 2 ** 52))))
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


__all__ = ["Route", "Split", "batch_schema", "drop_witness", "further_sql", "guarded_sql", "in_decimal128", "lean",
           "numeric_wire", "routes_for", "split_batch"]
