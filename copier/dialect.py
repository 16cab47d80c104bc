"""SQLite's SQL dialect into PostgreSQL's, by sqlglot (read="sqlite", write="postgres")
rather than by hand: `[bracket]` and backtick quoting, ifnull, instr, strftime and the rest
of what sqlglot knows. Every name in the SQL takes the name copier gives it, quoted. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ErrorLevel, SqlglotError

# strftime's directives that to_char writes the same way. sqlglot passes others through
# unchanged, which to_char would print as they are (%s, %J, %w), and maps %f to
# microseconds where SQLite's %f is seconds with milliseconds: those are refused instead.
_TO_CHAR_DIRECTIVES = set(Postgres.INVERSE_TIME_MAPPING) - {"%f"}
_DIRECTIVE = re.compile(r"%-?.")


class Untranslatable(ValueError):
    """sqlglot cannot read the SQL as SQLite's, or cannot write some of it as PostgreSQL's."""


def translate_select(sql: str, names: Mapping[str, str], fold: Callable[[str], str]) -> str:
    """PostgreSQL's text of SQLite's query `sql`.

    `names` maps a table's or column's SQLite name, lower-cased, to the name copier created
    (SQLite matches names ignoring case); any other name (an alias) is folded by `fold`, the
    `--identifiers` style, spelled as it first appears, so its references still match it.
    What sqlglot cannot write for PostgreSQL raises Untranslatable with its reason; a
    function it passes through as it is (unixepoch) is left for PostgreSQL to refuse."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except SqlglotError as exc:
        raise Untranslatable(_first_line(exc)) from None
    for call in tree.find_all(exp.TimeToStr):
        form = call.args.get("format")
        if not isinstance(form, exp.Literal):
            raise Untranslatable("strftime with a computed format has no PostgreSQL equivalent")
        unknown = sorted(set(_DIRECTIVE.findall(form.name)) - _TO_CHAR_DIRECTIVES)
        if unknown:
            raise Untranslatable(f"strftime's {', '.join(unknown)} has no to_char equivalent")
    aliases: dict[str, str] = {}
    for identifier in tree.find_all(exp.Identifier):
        key = identifier.name.lower()
        identifier.set("this", names.get(key) or aliases.setdefault(key, fold(identifier.name)))
        identifier.set("quoted", True)
    try:
        return tree.sql(dialect="postgres", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise Untranslatable(_first_line(exc)) from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
