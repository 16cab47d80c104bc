"""Loading into tables that already exist (an ORM-made schema) as fast as into new ones:
their indexes and constraints are set aside (recorded, dropped), the rows loaded, and the
same definitions created again, with the same names (pg_restore's order: data first).

Pure: which definitions a table has and what stands in the way come from the catalog
(existing.py reads them); here is what is decided from them, and the SQL text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .ident import needs_quotes, qualified, quote_ident


class DefinitionKind(StrEnum):
    PRIMARY_KEY = "primary key"
    UNIQUE = "unique constraint"
    CHECK = "check constraint"
    INDEX = "index"
    FOREIGN_KEY = "foreign key"


# Kinds that can be added NOT VALID, their rows checked by a VALIDATE after.
CHECKED_LATER = (DefinitionKind.CHECK, DefinitionKind.FOREIGN_KEY)

# How pg_get_constraintdef and pg_get_indexdef print a plain list of unique columns (names as
# quote_ident prints them); what follows may only add columns (INCLUDE) or storage, never a
# predicate (WHERE) or NULLS NOT DISTINCT.
_IDENTIFIER = re.compile(r'"(?:[^"]|"")*"|[a-z_][a-z0-9_$]*')
_UNIQUE_CONSTRAINT = re.compile(r"(?:PRIMARY KEY|UNIQUE) \((?P<columns>[^()]*)\)(?: INCLUDE \([^()]*\))?"
                                r"(?: WITH \([^()]*\))?(?: USING INDEX TABLESPACE \S+)?(?: DEFERRABLE)?"
                                r"(?: INITIALLY (?:DEFERRED|IMMEDIATE))?")
_UNIQUE_INDEX = re.compile(r"CREATE UNIQUE INDEX \S+ ON \S+ USING btree \((?P<columns>[^()]*)\)"
                           r"(?: INCLUDE \([^()]*\))?(?: WITH \([^()]*\))?(?: TABLESPACE \S+)?")

# Recreated in this order (and listed so by `copier plan`): keys and indexes (a check scans the
# rows once more), then its foreign keys; those of a table the run does not load, once every
# table is loaded. In the table's load transaction its checks go first (existing.load_then_restore:
# a row a check refuses must not hold a key).
RESTORE_ORDER = (DefinitionKind.PRIMARY_KEY, DefinitionKind.UNIQUE, DefinitionKind.INDEX, DefinitionKind.CHECK,
                 DefinitionKind.FOREIGN_KEY)


@dataclass(frozen=True, slots=True)
class Definition:
    """One index or constraint as PostgreSQL prints it (pg_get_indexdef for an index, the
    statement itself; pg_get_constraintdef for a constraint), names schema-qualified."""

    schema: str
    table: str  # the table it is on (a foreign key: the referencing one)
    name: str
    kind: DefinitionKind
    body: str
    valid: bool = True  # a constraint the user left NOT VALID stays so (its body says it)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name} on {self.schema}.{self.table}"

    def create_sql(self, *, not_valid: bool = False) -> str:
        """The statement that makes it again; `not_valid`: a valid foreign key or check added
        without checking the rows (validate_sql checks them)."""
        if self.kind is DefinitionKind.INDEX:
            return self.body
        later = " NOT VALID" if not_valid and self.valid and self.kind in CHECKED_LATER else ""
        return f"ALTER TABLE {qualified(self.schema, self.table)} ADD CONSTRAINT {quote_ident(self.name)} {self.body}" \
               + later

    @property
    def unique_columns(self) -> tuple[str, ...] | None:
        """The columns a primary key, unique constraint or unique index makes unique, read
        from its body; None for anything else, or where it is not a plain list of columns
        (an expression, a predicate, a collation or operator class, NULLS NOT DISTINCT)."""
        if self.kind is DefinitionKind.INDEX:
            found = _UNIQUE_INDEX.fullmatch(self.body)
        elif self.kind in (DefinitionKind.PRIMARY_KEY, DefinitionKind.UNIQUE):
            found = _UNIQUE_CONSTRAINT.fullmatch(self.body)
        else:
            return None
        if found is None:
            return None
        names = _IDENTIFIER.findall(found["columns"])
        if ", ".join(names) != found["columns"]:
            return None
        return tuple(n[1:-1].replace('""', '"') if n.startswith('"') else n for n in names)

    @property
    def references(self) -> str:
        """A foreign key's referenced table and columns, as its body names them ('' for others)."""
        return self.body.partition(" REFERENCES ")[2] if self.kind is DefinitionKind.FOREIGN_KEY else ""

    def refers_to(self, schema: str, table: str) -> bool:
        """Whether this foreign key references that table, as pg_get_constraintdef names it
        (schema-qualified, quoted only where needed). A name PostgreSQL spells otherwise reads
        as another table: a guess for speed only, never for what is made or kept."""
        def printed(name: str) -> str:
            return quote_ident(name) if needs_quotes(name) or "$" in name else name
        return self.references.startswith(f"{printed(schema)}.{printed(table)}(")

    def validate_sql(self) -> str:
        return f"ALTER TABLE {qualified(self.schema, self.table)} VALIDATE CONSTRAINT {quote_ident(self.name)}"

    def drop_sql(self) -> str:
        if self.kind is DefinitionKind.INDEX:
            return f"DROP INDEX {qualified(self.schema, self.name)}"
        return f"ALTER TABLE {qualified(self.schema, self.table)} DROP CONSTRAINT {quote_ident(self.name)}"


def drop_order(definitions: tuple[Definition, ...] | list[Definition]) -> list[Definition]:
    """Foreign keys first (they stand on the other table's unique index), indexes last."""
    return sorted(definitions, key=lambda d: -RESTORE_ORDER.index(d.kind))


def restore_order(definitions: tuple[Definition, ...] | list[Definition]) -> list[Definition]:
    """Keys first, foreign keys last, in the order of the tables they reference: two tables
    adding theirs at once lock the referenced tables in one order, so neither waits for the
    other."""
    return sorted(definitions, key=lambda d: (RESTORE_ORDER.index(d.kind), d.references))


@dataclass(frozen=True, slots=True)
class TableFacts:
    """What the catalog says about one existing table the plan loads into."""

    table: str
    definitions: tuple[Definition, ...]  # its own, its foreign keys, and those referencing it
    blockers: tuple[str, ...]  # why its definitions cannot be dropped and made again exactly
    rows: int  # rows it holds now


@dataclass(frozen=True, slots=True)
class SetAside:
    """The path of one existing table: its definitions set aside during the load, or kept
    (`kept_because` says why)."""

    table: str
    definitions: tuple[Definition, ...] = ()
    kept_because: str | None = None


# With --if-exists append, a table holding at most this fraction of the rows the load
# adds is still set aside: making its indexes again over old and new rows costs less than
# updating them row by row (a sorted build against a B-tree descent per row).
FEW_ROWS_FRACTION = 0.25


def decide(facts: TableFacts, *, if_exists: str, load_rows: int) -> SetAside:
    """Whether the table's definitions are set aside during the load, from the catalog's
    facts, --if-exists and the rows the source has for it."""
    if facts.blockers:
        return SetAside(facts.table, kept_because="; ".join(facts.blockers))
    if not facts.definitions:
        return SetAside(facts.table, kept_because="it has no index or constraint")
    if if_exists == "upsert":
        return SetAside(facts.table, kept_because="--if-exists upsert finds rows through its primary key")
    rows = 0 if if_exists == "truncate" else facts.rows
    if rows > load_rows * FEW_ROWS_FRACTION:
        return SetAside(facts.table, kept_because=f"it holds {rows:,} rows, many against the {load_rows:,} "
                                                   "to load: its indexes are updated as rows arrive")
    return SetAside(facts.table, tuple(restore_order(facts.definitions)))


def dropped(decisions: tuple[SetAside, ...] | list[SetAside]) -> list[Definition]:
    """Every definition the decisions set aside, once (a foreign key between two set-aside
    tables belongs to both), in the order they are dropped."""
    seen: dict[tuple[str, str, str, DefinitionKind], Definition] = {}
    for decision in decisions:
        for definition in decision.definitions:
            seen.setdefault((definition.schema, definition.table, definition.name, definition.kind), definition)
    return drop_order(list(seen.values()))
