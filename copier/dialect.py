"""SQLite's SQL dialect into PostgreSQL's, by sqlglot (read="sqlite", write="postgres")
rather than by hand: `[bracket]` and backtick quoting, ifnull, instr, strftime and the rest
of what sqlglot knows. Every name in the SQL takes the name copier gives it, quoted. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Check:
    """A CHECK constraint of SQLite's CREATE TABLE: its name (None when unnamed), the column
    it is declared on (None for a table constraint) and its expression, still SQLite's."""
    name: str | None
    column: str | None
    expression: exp.Expr


def translate_select(sql: str, names: Mapping[str, str], fold: Callable[[str], str]) -> str:
    """PostgreSQL's text of SQLite's query `sql`.

    `names` maps a table's or column's SQLite name, lower-cased, to the name copier created
    (SQLite matches names ignoring case); any other name (an alias) is folded by `fold`, the
    `--identifiers` style, spelled as it first appears, so its references still match it.
    What sqlglot cannot write for PostgreSQL raises Untranslatable with its reason; a
    function it passes through as it is (unixepoch) is left for PostgreSQL to refuse."""
    return translate_tree(_parse(sql), names, fold)


def translate_expression(sql: str, names: Mapping[str, str], fold: Callable[[str], str]) -> str:
    """PostgreSQL's text of one SQLite expression (a column DEFAULT), names as translate_select.
    A bare 'now' cast would be read once, when PostgreSQL stores the expression (a fixed
    time where SQLite's is the time of each insert): refused."""
    tree = _parse(sql)
    if any(isinstance(literal, exp.Literal) and literal.is_string and literal.name.strip().lower() == "now"
           for literal in tree.find_all(exp.Literal)):
        raise Untranslatable("'now' would be fixed when PostgreSQL stores the expression, not read per insert")
    return translate_tree(tree, names, fold)


def table_checks(create_table: str) -> tuple[Check, ...]:
    """The CHECK constraints of SQLite's CREATE TABLE statement, in their order."""
    tree = _parse(create_table)
    checks: list[Check] = []
    schema = tree.this if isinstance(tree, exp.Create) else None
    for element in schema.expressions if isinstance(schema, exp.Schema) else ():
        if isinstance(element, exp.ColumnDef):
            for constraint in element.args.get("constraints") or ():
                if isinstance(constraint.kind, exp.CheckColumnConstraint):
                    name = constraint.args.get("this")
                    checks.append(Check(name.name if name else None, element.name, constraint.kind.this))
        elif isinstance(element, exp.Constraint):
            for kind in element.expressions:
                if isinstance(kind, exp.CheckColumnConstraint):
                    checks.append(Check(element.name or None, None, kind.this))
        elif isinstance(element, exp.CheckColumnConstraint):
            checks.append(Check(None, None, element.this))
    return tuple(checks)


def generated_expressions(create_table: str) -> dict[str, exp.Expr]:
    """The expression of each generated column of SQLite's CREATE TABLE statement
    (`AS (...)`, VIRTUAL or STORED), by column name."""
    tree = _parse(create_table)
    schema = tree.this if isinstance(tree, exp.Create) else None
    found: dict[str, exp.Expr] = {}
    for element in schema.expressions if isinstance(schema, exp.Schema) else ():
        if isinstance(element, exp.ColumnDef):
            for constraint in element.args.get("constraints") or ():
                if isinstance(constraint.kind, exp.ComputedColumnConstraint):
                    expression: exp.Expr = constraint.kind.this
                    found[element.name] = expression.this if isinstance(expression, exp.Paren) else expression
    return found


def column_names(expression: exp.Expr) -> set[str]:
    """The names of the columns an expression reads, lower-cased (SQLite ignores their case)."""
    return {column.name.lower() for column in expression.find_all(exp.Column)}


def index_where(create_index: str) -> exp.Expr:
    """The WHERE clause of SQLite's CREATE INDEX statement of a partial index."""
    tree = _parse(create_index)
    params = tree.this.args.get("params") if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Index) else None
    where = params.args.get("where") if params is not None else None
    if where is None:
        raise Untranslatable("its WHERE clause could not be read")
    condition: exp.Expr = where.this
    return condition


def sqlite_text(expression: exp.Expr) -> str:
    """An expression as SQLite's SQL, for messages."""
    return expression.sql(dialect="sqlite")


def translate_tree(tree: exp.Expr, names: Mapping[str, str], fold: Callable[[str], str]) -> str:
    """PostgreSQL's text of a parsed SQLite query or expression (names as translate_select)."""
    tree = tree.copy()
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


def _parse(sql: str) -> exp.Expr:
    try:
        return sqlglot.parse_one(sql, read="sqlite")
    except SqlglotError as exc:
        raise Untranslatable(_first_line(exc)) from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
