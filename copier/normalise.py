"""Make SQLite values PostgreSQL-ready: dispatch on the runtime type and the target Kind.

SQLite is dynamically typed, so any column can hold any storage class. A converter
either returns the exact value in the Python type asyncpg's binary codec wants, or
raises ValueRejected with the reason. Lossless conversions happen; lossy ones reject.
Pages are converted column-wise, and a column whose values already have the right
type is left untouched (the common case costs one C-level pass).
"""

from __future__ import annotations

import json
import math
import re
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from itertools import repeat
from operator import attrgetter, methodcaller
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import rules
from .casting import Kind, TargetType
from .errors import UsageError, ValueRejected

Value = object
Convert = Callable[[Value], Value]
Column = Sequence[Value]
Bulk = Callable[[Column, set[type]], Sequence[Value] | None]

UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTEGER_TEXT, _DECIMAL_TEXT = rules.INTEGER_TEXT, rules.DECIMAL_TEXT
_SPECIAL_FLOATS = rules.SPECIAL_FLOATS
_DATE_TEXT, _DATE_WITH_OFFSET, _TIME_TEXT = rules.DATE_TEXT, rules.DATE_WITH_OFFSET, rules.TIME_TEXT
# A fraction of a second finer than PostgreSQL's microseconds (fromisoformat would cut it).
_LONG_FRACTION = re.compile(r"(?<=\d\d:\d\d:\d\d)\.(\d{7,})", re.ASCII)
_INT_RANGES = rules.INT_BOUNDS
# Digits a numeric(p, s) value may need once quantized (p is at most 1000): the default
# context's 28 refused 2^63 - 1 into numeric(50, 20), which PostgreSQL takes.
_NUMERIC_DIGITS = Context(prec=1000)


@dataclass(frozen=True, slots=True)
class Options:
    source_tz: str = "UTC"  # IANA zone that naive timestamps were written in
    strip_nul: bool = False  # remove NUL characters from text instead of rejecting


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r}", hint="use an IANA name like Europe/Paris") from None


class UndecodableText(bytes):
    """TEXT that SQLite holds but that is not valid UTF-8: kept as its bytes, so a bytea
    column takes it as is and a text column rejects it with the offending byte."""


def decode_text(raw: bytes) -> str | UndecodableText:
    """sqlite3 text_factory for pages that hold invalid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodableText(raw)


def describe(value: Value) -> str:
    """A short, safe rendering of a value for messages and reject files."""
    if isinstance(value, bytes):
        head = value[:32].hex()
        return f"blob of {len(value)} bytes x'{head}{'…' if len(value) > 32 else ''}'"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "…"


def _kind_of(value: Value) -> str:
    return {int: "integer", float: "real", str: "text", bytes: "blob",
            UndecodableText: "text"}.get(type(value), type(value).__name__)


def _reject(value: Value, target: str, why: str = "") -> ValueRejected:
    return ValueRejected(f"{_kind_of(value)} {describe(value)} cannot be {target}{': ' + why if why else ''}")


# --- numbers ---------------------------------------------------------------------------


def _integer(value: Value, kind: Kind) -> int:
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _reject(value, "an integer", "it has a fraction or is not finite")
        result = int(value)
    elif isinstance(value, str):
        if _INTEGER_TEXT.fullmatch(value):
            result = int(value)
        elif _DECIMAL_TEXT.fullmatch(value):
            number = Decimal(value.strip())
            if number != number.to_integral_value():
                raise _reject(value, "an integer", "it has a fraction")
            result = int(number)
        else:
            raise _reject(value, "an integer", "not a number")
    else:
        raise _reject(value, "an integer")
    bound = _INT_RANGES[kind]
    if not -bound <= result < bound:
        raise _reject(value, f"an {kind.value}" if kind is Kind.INT4 else f"a {kind.value}", "out of range")
    return result


def _float(value: Value) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        result = float(value)
        if int(result) != value:
            raise _reject(value, "a double precision", "it would lose digits")
        return result
    if isinstance(value, str):
        special = _SPECIAL_FLOATS.get(value.strip().lower())
        if special is not None:
            return special
        if _DECIMAL_TEXT.fullmatch(value):
            return float(value)
        raise _reject(value, "a number", "not a number")
    raise _reject(value, "a number")


def _float4(value: Value) -> float:
    result = _float(value)
    try:  # as asyncpg's float4 codec rounds it (a C cast); past float4's range it raised mid-COPY
        struct.pack("<f", result)
    except OverflowError:
        raise _reject(value, "a real", "out of range for float4") from None
    return result


def _decimal(value: Value, target: TargetType) -> Decimal:
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # repr() is the shortest text that reads back as the same double: 0.1 -> 0.1,
        # where Decimal(0.1) would be 0.1000000000000000055511151231257827...
        number = Decimal(repr(value)) if math.isfinite(value) else Decimal(str(value).replace("inf", "Infinity"))
    elif isinstance(value, str):
        special = value.strip().lower()
        if special in _SPECIAL_FLOATS:
            number = Decimal(str(_SPECIAL_FLOATS[special]).replace("inf", "Infinity"))
        elif _DECIMAL_TEXT.fullmatch(value):
            number = Decimal(value.strip())
        else:
            raise _reject(value, "a numeric", "not a number")
    else:
        raise _reject(value, "a numeric")
    if target.precision is not None and not number.is_nan():
        scale = target.scale or 0
        if number.is_infinite():
            raise _reject(value, f"a {target.sql}", "infinity does not fit a bounded numeric")
        # As PostgreSQL does on insert: round half away from zero to the declared scale
        # (from the shortest decimal form of a REAL, so 1234.565 -> 1234.57).
        try:
            rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP, context=_NUMERIC_DIGITS)
        except InvalidOperation:
            raise _reject(value, f"a {target.sql}", "out of range") from None
        if rounded.adjusted() >= target.precision - scale:
            raise _reject(value, f"a {target.sql}", "out of range")
        return rounded
    return number


def needs_rounding(value: Value, scale: int) -> bool:
    """Whether a number has more decimal places than `scale`, so that rounding changes it.
    Trailing zeros are no places: 12.0 into numeric(6, 0) loses nothing."""
    if isinstance(value, float) and math.isfinite(value):
        number = Decimal(repr(value))
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        number = Decimal(value.strip())
    else:
        return False
    _sign, digits, exponent = number.as_tuple()
    significant = bytes(digits).rstrip(b"\0")  # digits are 0..9
    return isinstance(exponent, int) and bool(significant) and exponent + len(digits) - len(significant) < -scale


# --- text, bytes, booleans, structured text ---------------------------------------------


def _text(value: Value, target: TargetType, options: Options) -> str:
    if isinstance(value, str):
        result = value
    elif isinstance(value, bool):
        result = "true" if value else "false"
    elif isinstance(value, int):
        result = str(value)
    elif isinstance(value, float):
        result = repr(value)
    elif isinstance(value, bytes):
        try:
            result = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _reject(value, "text", f"not valid UTF-8 at byte {exc.start}") from None
    else:
        raise _reject(value, "text")
    if "\x00" in result:
        if not options.strip_nul:
            raise _reject(value, "text", "PostgreSQL text cannot hold NUL characters (see --strip-nul)")
        result = result.replace("\x00", "")
    if target.max_length is not None and len(result) > target.max_length:
        raise _reject(value, target.sql, f"{len(result)} characters is longer than {target.max_length}")
    return result


def _bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise _reject(value, "bytea", "a number is not binary data")


def _boolean(value: Value) -> bool:
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in rules.TRUE_WORDS:
            return True
        if word in rules.FALSE_WORDS:
            return False
    raise _reject(value, "a boolean", "only 0/1, t/f, true/false, y/n, yes/no, on/off are")


def _json(value: Value, options: Options) -> str:
    text = _text(value, TargetType("json", Kind.JSON), options)
    try:
        json.loads(text, parse_constant=_no_json_constant)
    except ValueError as exc:
        raise _reject(value, "json", str(exc)) from None
    except RecursionError:  # the columnar lane sends such documents here too (arrowlane._is_json)
        raise _reject(value, "json", "nested too deeply to check (deeper than Python's recursion limit)") from None
    return text


def _no_json_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _uuid(value: Value) -> str:
    try:
        if isinstance(value, bytes) and len(value) == 16:
            return str(uuid.UUID(bytes=value))
        if isinstance(value, str):
            return str(uuid.UUID(value.strip()))
    except ValueError:
        pass
    raise _reject(value, "a uuid")


def _enum(value: Value, target: TargetType) -> str:
    if isinstance(value, str) and value in target.labels:
        return value
    raise _reject(value, target.sql, f"not one of {', '.join(target.labels)}")


# --- dates and times --------------------------------------------------------------------


def _in_microseconds(text: str) -> tuple[str, timedelta]:
    """A time text whose fraction has more than 6 digits, as PostgreSQL reads it: rounded
    to microseconds, as rint(fraction * 1e6) on the double the fraction parses to
    (ParseFractionalSecond in its datetime.c). The text without that fraction, and the
    rounded fraction to add (a whole second when it rounds up to 1)."""
    long = _LONG_FRACTION.search(text)
    if long is None:
        return text, timedelta(0)
    micros = round(float("0." + long[1]) * 1_000_000)  # round(): half to even, as rint
    return text[:long.start()] + text[long.end():], timedelta(microseconds=micros)


def timestamp_utc(value: Value, source_zone: ZoneInfo | timezone) -> datetime:
    """An aware UTC datetime from any of SQLite's three date forms.

    Text: ISO 8601 as datetime.fromisoformat reads it (a superset of what SQLite's date
    functions write: space or T, optional seconds and fraction, Z or +-HH:MM, also
    compact forms like 20210304); naive text is wall time in `source_zone`, read as PostgreSQL
    reads it (see wall_time). Integer: Unix seconds, or milliseconds when too large for seconds. Real:
    a Julian day when within rules.JULIAN_DAY_RANGE, else Unix seconds.
    """
    if isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1].rstrip() + "+00:00"
        if _DATE_WITH_OFFSET.fullmatch(text):
            # fromisoformat drops the offset of a date without a time ('2021-01-01+05:00');
            # PostgreSQL reads it as that midnight.
            text = f"{text[:10]}T00:00{text[10:]}"
        text, fraction = _in_microseconds(text)
        try:
            parsed = datetime.fromisoformat(text) + fraction
        except (ValueError, OverflowError):
            raise _reject(value, "a timestamp", "not an ISO 8601 date") from None
        if parsed.tzinfo is None:
            parsed = wall_time(parsed, source_zone)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31 23:00 in New York is year 10000 in UTC
            raise _reject(value, "a timestamp", "in UTC it falls outside years 1-9999") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _reject(value, "a timestamp")
    try:
        return _from_number(value)
    except OverflowError:
        raise _reject(value, "a timestamp", "out of range") from None


def wall_time(naive: datetime, zone: ZoneInfo | timezone) -> datetime:
    """A naive wall time in `zone`, read as PostgreSQL reads it: a time that happens twice
    (DST fall-back) is the later one, a time that never happens (spring-forward gap) takes
    the offset in force before the gap."""
    first = naive.replace(tzinfo=zone)
    later = first.replace(fold=1)
    if first.utcoffset() == later.utcoffset():
        return first
    exists = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive
    return later if exists else first


def _from_number(value: int | float) -> datetime:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OverflowError
        if rules.is_julian_day(value):
            # Julian days carry about millisecond precision; SQLite rounds to ms too.
            millis = round((value - rules.UNIX_EPOCH_JULIAN_DAY) * rules.MILLIS_PER_DAY)
            return _EPOCH + timedelta(milliseconds=millis)
    unit = rules.unix_unit(value)
    if unit is None:
        raise OverflowError
    return _EPOCH + (timedelta(seconds=value) if unit == 1 else timedelta(milliseconds=value))


def _date(value: Value, source_zone: ZoneInfo | timezone) -> date:
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise _reject(value, "a date", str(exc)) from None
    moment = timestamp_utc(value, source_zone)
    if isinstance(value, str) and datetime.fromisoformat(value.strip().rstrip("Zz")).tzinfo is None:
        moment = moment.astimezone(source_zone)  # a naive text's own calendar day
    if moment.time() != time(0):
        raise _reject(value, "a date", "it has a time of day")
    return moment.date()


def _time(value: Value) -> time:
    if isinstance(value, str) and _TIME_TEXT.fullmatch(value.strip()):
        text, fraction = _in_microseconds(value.strip())
        try:
            moment = datetime.combine(date.min, time.fromisoformat(text)) + fraction
        except ValueError as exc:
            raise _reject(value, "a time", str(exc)) from None
        if moment.date() != date.min:
            raise _reject(value, "a time", "it rounds to 24:00:00")
        return moment.time()
    raise _reject(value, "a time", "not HH:MM[:SS[.fff]]")


# --- per-column converters and page conversion -------------------------------------------


@dataclass(frozen=True, slots=True)
class Converter:
    """How one column's values are made ready for one target type."""

    target: TargetType
    # A page whose values all have one of these types needs no conversion at all.
    ready_types: frozenset[type]
    convert: Convert
    # Column-at-once conversion in C-level maps for the common cases; returns None when
    # the column is not such a case, and the values are converted one by one instead.
    bulk: Bulk | None = None

    def __call__(self, value: Value) -> Value:
        return None if value is None else self.convert(value)


_NONE = type(None)


def converter_for(target: TargetType, options: Options) -> Converter:
    """The converter for values going into a column of `target` type."""
    kind = target.kind
    source_zone: ZoneInfo | timezone = UTC if options.source_tz == "UTC" else zone(options.source_tz)
    ready: frozenset[type] = frozenset()
    convert: Convert
    bulk: Bulk | None = None
    if kind in _INT_RANGES:
        convert = lambda v: _integer(v, kind)  # noqa: E731
        ready = frozenset({int, _NONE}) if kind is Kind.INT8 else frozenset()
    elif kind is Kind.FLOAT8:
        convert, ready = _float, frozenset({float, _NONE})
    elif kind is Kind.FLOAT4:
        convert = _float4
    elif kind is Kind.NUMERIC:
        convert = lambda v: _decimal(v, target)  # noqa: E731
        bulk = lambda column, types: _bulk_decimal(column, types, target)  # noqa: E731
    elif kind is Kind.TEXT:
        convert = lambda v: _text(v, target, options)  # noqa: E731
        bulk = lambda column, types: _bulk_text(column, types, target)  # noqa: E731
    elif kind is Kind.BYTEA:
        convert, ready = _bytes, frozenset({bytes, _NONE})
    elif kind is Kind.BOOL:
        convert, bulk = _boolean, _bulk_boolean
    elif kind in (Kind.JSON, Kind.JSONB):
        convert = lambda v: _json(v, options)  # noqa: E731
    elif kind is Kind.UUID:
        convert = _uuid
    elif kind is Kind.ENUM:
        convert = lambda v: _enum(v, target)  # noqa: E731
    elif kind is Kind.DATE:
        convert = lambda v: _date(v, source_zone)  # noqa: E731
        bulk = _bulk_date
    elif kind is Kind.TIME:
        convert = _time
    elif kind is Kind.TIMESTAMPTZ:
        convert = lambda v: timestamp_utc(v, source_zone)  # noqa: E731
        bulk = lambda column, types: _bulk_timestamp(column, types, source_zone, aware=True)  # noqa: E731
    elif kind is Kind.TIMESTAMP:
        # timestamp without time zone holds UTC wall time.
        convert = lambda v: timestamp_utc(v, source_zone).replace(tzinfo=None)  # noqa: E731
        bulk = lambda column, types: _bulk_timestamp(column, types, source_zone, aware=False)  # noqa: E731
    else:  # pragma: no cover - every Kind is handled above
        raise AssertionError(kind)
    return Converter(target, ready, convert, bulk)


@dataclass(frozen=True, slots=True)
class Rejection:
    key: object  # the row's rowid, or its primary key tuple
    column: int  # index among the converted columns
    value: Value
    reason: str


@dataclass(slots=True)
class ConvertedPage:
    keys: list[object]  # one per record
    records: list[tuple[Value, ...]]
    rejections: list[Rejection]
    rounded: int = 0  # numeric values rounded to their column's declared scale


def convert_page(
    rows: Sequence[tuple[Value, ...]], converters: Sequence[Converter], key_width: int
) -> ConvertedPage:
    """Convert a page column-wise. Each row starts with `key_width` key values.

    Rows holding a value that cannot convert are left out and described in
    `rejections` (one per row: its first bad column), in row order.
    """
    if not rows:
        return ConvertedPage([], [], [])
    columns = list(zip(*rows))
    keys = _keys(columns[:key_width])
    data: list[Sequence[Value]] = list(columns[key_width:])
    rounded = 0
    bad: dict[int, Rejection] = {}  # row index -> the rejection of its first bad value
    for index, converter in enumerate(converters):
        column = data[index]
        types = set(map(type, column))
        if types <= converter.ready_types:
            continue
        converted = _try_bulk(converter, column, types)
        if converted is None:
            # The fast path declined: a value may be rounded (the fast path rounds none).
            rounded += _rounded_in(column, converter)
            try:
                converted = tuple(map(converter, column))
            except ValueRejected:
                converted = _convert_each(keys, index, column, converter, bad)
        data[index] = converted
    if not bad:
        return ConvertedPage(keys, list(zip(*data)), [], rounded)
    good = [i for i in range(len(keys)) if i not in bad]
    records = list(zip(*data))
    return ConvertedPage([keys[i] for i in good], [records[i] for i in good],
                         [bad[i] for i in sorted(bad)], rounded)


def _rounded_in(column: Column, converter: Converter) -> int:
    """How many values of the column its numeric(p, s) converter rounds."""
    target = converter.target
    if target.kind is not Kind.NUMERIC or target.precision is None:
        return 0
    return sum(needs_rounding(v, target.scale or 0) for v in column)


def _try_bulk(converter: Converter, column: Column, types: set[type]) -> Sequence[Value] | None:
    if converter.bulk is None:
        return None
    try:
        return converter.bulk(column, types)
    except (ValueError, TypeError, OverflowError, ArithmeticError, KeyError):
        return None  # some value is not the common case: convert one by one, with reasons


def _keys(key_columns: Sequence[tuple[Value, ...]]) -> list[object]:
    if len(key_columns) == 1:
        return list(key_columns[0])
    return list(zip(*key_columns))


def _convert_each(keys: list[object], index: int, column: Column, converter: Converter,
                  bad: dict[int, Rejection]) -> list[Value]:
    """The slow path, for a column holding a bad value: its values one by one, each row's first
    bad value (columns go in order) added to `bad`. A row already there is not converted
    further (None in its place: it is left out), as a row converted value by value stops at
    its first bad value. Only this column goes value by value: its other columns keep their
    column-at-once conversion, so a page with a bad value costs about what a clean one does."""
    converted: list[Value] = []
    for row, value in enumerate(column):
        if row in bad:
            converted.append(None)
            continue
        try:
            converted.append(converter(value))
        except ValueRejected as exc:
            bad[row] = Rejection(keys[row], index, value, exc.reason)
            converted.append(None)
    return converted


# --- column-at-once fast paths ------------------------------------------------------------
# Each handles the common, all-valid case of a column with C-level maps and must give
# exactly what the per-value converter gives; on anything unusual it raises or returns
# None and the page is converted value by value (tests/test_normalise.py checks both agree).

_BOOLEANS: dict[object, object] = {0: False, 1: True, None: None}
_TZINFO = attrgetter("tzinfo")


def _without_nulls(column: Column, types: set[type], convert: Callable[[list[Value]], list[Value]]) -> list[Value]:
    """Apply a list-to-list conversion to the non-NULL values, keeping NULLs in place."""
    if _NONE not in types:
        return convert(list(column))
    converted = iter(convert([v for v in column if v is not None]))
    return [None if v is None else next(converted) for v in column]


def _bulk_boolean(column: Column, types: set[type]) -> list[Value]:
    return list(map(_BOOLEANS.__getitem__, column))


def _bulk_text(column: Column, types: set[type], target: TargetType) -> Column | None:
    if not types <= {str, _NONE}:
        return None
    values = [v for v in column if v is not None] if _NONE in types else column
    if "\x00" in "".join(values):  # type: ignore[arg-type]
        return None
    if target.max_length is not None and max(map(len, values), default=0) > target.max_length:  # type: ignore[arg-type]
        return None
    return column


def _bulk_decimal(column: Column, types: set[type], target: TargetType) -> list[Value] | None:
    # NUMERIC affinity stores 12.0 as the integer 12, so ints and floats mix; repr() is
    # the shortest exact text for both.
    if not types - {_NONE} <= {float, int}:
        return None
    make: Callable[[list[Value]], list[Value]] = lambda vs: list(map(Decimal, map(repr, vs)))  # noqa: E731
    result = _without_nulls(column, types, make)
    if target.precision is not None:
        numbers = [v for v in result if v is not None]
        step = Decimal(1).scaleb(-(target.scale or 0))
        if list(map(methodcaller("quantize", step), numbers)) != numbers:
            return None  # some value is rounded: one by one
        largest = max(map(abs, numbers), default=Decimal(0))  # type: ignore[arg-type]
        if not largest.is_finite() or largest.adjusted() >= target.precision - (target.scale or 0):
            return None
    return result


def _bulk_date(column: Column, types: set[type]) -> list[Value] | None:
    if not types <= {str, _NONE}:
        return None
    return _without_nulls(column, types, lambda vs: list(map(date.fromisoformat, vs)))  # type: ignore[arg-type]


def _bulk_timestamp(column: Column, types: set[type], source_zone: ZoneInfo | timezone,
                    *, aware: bool) -> list[Value] | None:
    kinds = types - {_NONE}
    if kinds == {str}:
        convert = lambda vs: _parse_timestamps(vs, source_zone, aware)  # noqa: E731
    elif kinds == {int}:
        convert = lambda vs: _epoch_seconds(vs, aware)  # noqa: E731
    else:
        return None
    return _without_nulls(column, types, convert)


def _parse_timestamps(values: list[Value], source_zone: ZoneInfo | timezone, aware: bool) -> list[Value]:
    if any(len(v) in rules.DATE_WITH_OFFSET_LENGTHS for v in values):  # type: ignore[arg-type]
        raise ValueError("maybe a date with an offset, which fromisoformat misreads: one by one")
    if _LONG_FRACTION.search("\n".join(values)):  # type: ignore[arg-type]
        raise ValueError("a fraction finer than microseconds, which fromisoformat cuts: one by one")
    parsed = list(map(datetime.fromisoformat, values))  # type: ignore[arg-type]
    zones = set(map(_TZINFO, parsed))
    if zones == {None}:
        parsed = (list(map(methodcaller("replace", tzinfo=source_zone), parsed)) if source_zone is UTC
                  else [wall_time(p, source_zone) for p in parsed])
    elif None in zones:
        raise ValueError("naive and aware values mixed")
    if not aware or zones - {UTC, None} or source_zone is not UTC:
        parsed = list(map(methodcaller("astimezone", UTC), parsed))
    if not aware:
        parsed = list(map(methodcaller("replace", tzinfo=None), parsed))
    return parsed  # type: ignore[return-value]


def _epoch_seconds(values: list[Value], aware: bool) -> list[Value]:
    if min(values) < rules.MIN_SECONDS or max(values) > rules.MAX_SECONDS:  # type: ignore[type-var, operator]
        raise ValueError("outside Unix seconds")
    moments: list[Value] = list(map(datetime.fromtimestamp, values, repeat(UTC)))  # type: ignore[arg-type]
    return moments if aware else list(map(methodcaller("replace", tzinfo=None), moments))
