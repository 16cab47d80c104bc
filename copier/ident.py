"""The only place that turns names into SQL: every identifier goes through quote_ident."""

from __future__ import annotations

from .errors import PlanError

# PostgreSQL silently truncates longer names (NAMEDATALEN - 1), so two long SQLite
# names could collide: the planner gives such names a shortened unique form instead.
MAX_IDENTIFIER_BYTES = 63


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
