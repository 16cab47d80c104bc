"""The only place that turns names into SQL: every identifier goes through quote_ident."""

from __future__ import annotations

import re

from .errors import PlanError

# PostgreSQL silently truncates longer names (NAMEDATALEN - 1), so two long SQLite
# names could collide: the planner gives such names a shortened unique form instead.
MAX_IDENTIFIER_BYTES = 63


# PostgreSQL's reserved key words (the SQL Key Words appendix: "reserved", and "reserved
# (can be function or type)"): a table or column named so must be quoted in every query.
RESERVED_WORDS = frozenset("""
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
    collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in initially inner intersect into
    is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on
    only or order outer overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using variadic verbose when
    where window with""".split())
_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def clipped(name: str, size: int = MAX_IDENTIFIER_BYTES) -> str:
    """The longest start of `name` within `size` UTF-8 bytes, cut at a character boundary,
    as PostgreSQL cuts names (pg_mbcliplen)."""
    return name.encode("utf-8")[:size].decode("utf-8", "ignore")


def needs_quotes(name: str) -> bool:
    """Whether SQL must double-quote the name to reach it: capitals (PostgreSQL folds an
    unquoted name to lower case), characters outside a-z, 0-9, _ and $, or a reserved word."""
    return not _PLAIN.fullmatch(name) or name in RESERVED_WORDS


def quote_ident(name: str) -> str:
    """Quote a PostgreSQL identifier, preserving case, spaces, quotes and unicode."""
    if "\x00" in name:
        raise PlanError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(text: str) -> str:
    """A standard-conforming SQL string literal."""
    if "\x00" in text:
        raise PlanError(f"literal {text!r} contains a NUL character")
    return "'" + text.replace("'", "''") + "'"


def quote_sqlite(name: str) -> str:
    """Quote an SQLite identifier (same rule, kept separate so the intent is clear)."""
    return '"' + name.replace('"', '""') + '"'
