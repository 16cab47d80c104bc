"""Into a Citus cluster: which tables copier creates are distributed (on which column),
which are reference tables, and which foreign keys Citus accepts; a reason for each.

Pure: takes a MigrationPlan and the --distribute / --reference requests, returns the plan
with its distribution (README: Into a Citus cluster). The Citus calls' SQL text is here too.

Citus's rules, as copier applies them:
- a distributed table's primary key and unique indexes must include its distribution
  column: copier widens them with it, and says so;
- a foreign key between distributed tables must join their distribution columns (and the
  tables be co-located: copier co-locates every table distributed on a column of the same
  type, Citus's `colocate_with => 'default'`); to a reference table it is always fine;
  from a reference table to a distributed one, or between a distributed table and a table
  kept local on the coordinator, it is refused: copier skips such a key, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import PlanError
from .ident import qualified, quote_literal
from .planning import ForeignKeyPlan, IndexPlan, MigrationPlan, TablePlan

AUTO = "auto"
# --distribute auto: a table holding at least this share of the largest table's rows is
# big (distributed); smaller ones are small (reference tables, a copy on every node).
BIG_SHARE = 0.1


class Placement(StrEnum):
    DISTRIBUTED = "distributed"
    REFERENCE = "reference"
    LOCAL = "local"  # a plain table on the coordinator


@dataclass(frozen=True, slots=True)
class TablePlacement:
    table: str  # source name
    placement: Placement
    column: str | None = None  # target column name, when distributed
    why: str = ""

    def describe(self) -> str:
        """`distributed on account_id`, `reference table`, `local`: for plan and notes."""
        if self.placement is Placement.DISTRIBUTED:
            return f"distributed on {self.column}"
        return "reference table" if self.placement is Placement.REFERENCE else "local table on the coordinator"


def placement_of(plan: MigrationPlan, table: str) -> TablePlacement | None:
    """The table's placement in a Citus plan; None without a distribution."""
    for placement in plan.distribution:
        if placement.table == table:
            return placement
    return None


def distribute_sql(schema: str, target: str, placement: TablePlacement) -> str | None:
    """The Citus call that distributes a table copier just created (run as its own statement),
    or None for a table kept local. The column is given as its raw name (Citus's convention)."""
    name = quote_literal(qualified(schema, target))
    if placement.placement is Placement.REFERENCE:
        return f"SELECT create_reference_table({name})"
    if placement.placement is Placement.DISTRIBUTED:
        assert placement.column is not None
        return (f"SELECT create_distributed_table({name}, {quote_literal(placement.column)}, "
                "colocate_with => 'default')")
    return None


def distribute(plan: MigrationPlan, distribute: Sequence[str], reference: Sequence[str]) -> MigrationPlan:
    """The plan with each created table placed (distributed, reference or local), its keys
    widened where Citus needs it and the foreign keys Citus refuses left out, each with a
    note. Tables that already exist are loaded into as they are (the app's distribution)."""
    if not distribute and not reference:
        return plan
    auto, named_columns, named_references = _requests(plan, distribute, reference)
    notes = list(plan.notes)
    placements: dict[str, TablePlacement] = _auto(plan) if auto else {}
    for name in named_references:
        placements[name] = TablePlacement(name, Placement.REFERENCE, why="--reference")
    for name, column in named_columns.items():
        table = plan.table(name)
        placements[name] = TablePlacement(name, Placement.DISTRIBUTED, table.target_column(column),
                                          f"--distribute {name}={column}")
    for table in plan.tables:
        if not table.create:
            if table.name in placements and table.name in (*named_columns, *named_references):
                notes.append(f"{table.name}: exists in the target: loaded into as it is "
                             f"(--distribute/--reference apply to tables copier creates)")
            placements.pop(table.name, None)
        elif table.name not in placements:
            placements[table.name] = TablePlacement(
                table.name, Placement.LOCAL, why="not named by --distribute or --reference")
    tables = tuple(_widened_keys(t, placements.get(t.name), notes) for t in plan.tables)
    foreign_keys = []
    for fk in plan.foreign_keys:
        refusal = _refusal(fk, placements.get(fk.table), placements.get(fk.ref_table), plan)
        if refusal is None:
            foreign_keys.append(fk)
        else:
            notes.append(f"{fk.table}: foreign key {fk.name} skipped: {refusal}")
    ordered = tuple(placements[t.name] for t in plan.tables if t.name in placements)
    return replace(plan, tables=tables, foreign_keys=tuple(foreign_keys), notes=tuple(notes), distribution=ordered)


def _requests(plan: MigrationPlan, distribute: Sequence[str],
              reference: Sequence[str]) -> tuple[bool, dict[str, str], list[str]]:
    """(auto, {table: column}, [reference tables]), names checked against the plan."""
    auto = False
    columns: dict[str, str] = {}
    for request in distribute:
        if request.strip().lower() == AUTO:
            auto = True
            continue
        table, sep, column = request.partition("=")
        if not sep or not table.strip() or not column.strip():
            raise PlanError(f"--distribute {request!r}: expected TABLE=COLUMN or auto")
        name = _table_named(plan, table.strip(), "--distribute")
        source_columns = [c.source for c in plan.table(name).columns]
        found = _named(column.strip(), source_columns)
        if found is None:
            raise PlanError(f"--distribute {request}: table {name} has no column {column.strip()!r} "
                            f"(its columns: {', '.join(source_columns)})", table=name)
        columns[name] = found
    references = [_table_named(plan, name.strip(), "--reference") for name in reference]
    both = sorted(set(columns) & set(references))
    if both:
        raise PlanError(f"table {both[0]} is named by both --distribute and --reference", table=both[0])
    return auto, columns, references


def _named(wanted: str, names: Sequence[str]) -> str | None:
    """The name itself, else the one name equal ignoring case."""
    if wanted in names:
        return wanted
    folded = [n for n in names if n.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else None


def _table_named(plan: MigrationPlan, wanted: str, flag: str) -> str:
    names = [t.name for t in plan.tables]
    found = _named(wanted, names)
    if found is None:
        raise PlanError(f"{flag} {wanted}: no such table among the tables migrated ({', '.join(names)})")
    return found


def _auto(plan: MigrationPlan) -> dict[str, TablePlacement]:
    """--distribute auto, from the foreign-key graph and the row counts.

    The root is the table whose key the most rows of big tables reference (a tenant or
    account id): the big tables referencing it are distributed on that reference, co-located
    (the root too, if big; a small root is a reference table). Small tables are reference
    tables, unless they reference a distributed table on its distribution column (then
    distributed with it). A big table with no key to the root is distributed on its own key."""
    created = [t for t in plan.tables if t.create]
    if not created:
        return {}
    largest = max(t.source.row_count for t in created)
    threshold = max(1, largest * BIG_SHARE)
    big = {t.name for t in created if t.source.row_count >= threshold}
    rows = {t.name: t.source.row_count for t in created}
    by_name = {t.name: t for t in created}
    single = [fk for fk in plan.foreign_keys
              if len(fk.columns) == 1 and fk.table in by_name and fk.ref_table in by_name and fk.table != fk.ref_table]
    best: tuple[int, int, str] | None = None
    members: dict[str, str] = {}
    root = ""
    for parent in sorted({fk.ref_table for fk in single}):
        key = _single_key(by_name[parent])
        if key is None:
            continue
        candidate = {parent: key} if parent in big else {}
        for fk in single:
            if fk.ref_table == parent and fk.ref_columns == (key,) and fk.table in big:
                candidate.setdefault(fk.table, fk.columns[0])
        score = (sum(rows[n] for n in candidate), len(candidate), parent)
        if len(candidate) > (parent in big) and (best is None or score[:2] > best[:2]):
            best, members, root = score, candidate, parent
    placements: dict[str, TablePlacement] = {}
    share = f"under {BIG_SHARE:.0%} of the largest table's {largest:,}"
    for table in created:
        name, count = table.name, table.source.row_count
        if name in members:
            column = members[name]
            others = ", ".join(sorted(m for m in members if m != name)) or "none"
            why = (f"big ({count:,} rows); its key {column} is what the most rows of big tables reference "
                   f"(co-located with {others})" if name == root else
                   f"big ({count:,} rows); references {root}.{members.get(root, _single_key(by_name[root]))} "
                   f"through {column}: co-located with {others}")
            placements[name] = TablePlacement(name, Placement.DISTRIBUTED, column, why)
        elif name in big:
            key = _single_key(table) or (table.columns[0].target if table.columns else None)
            if key is None:
                placements[name] = TablePlacement(name, Placement.LOCAL, why="big, but has no column to distribute on")
                continue
            reason = f"big ({count:,} rows), with no foreign key to {root}" if root else f"big ({count:,} rows)"
            placements[name] = TablePlacement(name, Placement.DISTRIBUTED, key,
                                              f"{reason}: distributed on its own key {key}")
        else:
            along = next((fk for fk in single if fk.table == name and fk.ref_table in placements
                          and placements[fk.ref_table].placement is Placement.DISTRIBUTED
                          and fk.ref_columns == (placements[fk.ref_table].column,)), None)
            if along is not None:
                placements[name] = TablePlacement(
                    name, Placement.DISTRIBUTED, along.columns[0],
                    f"small ({count:,} rows), but references distributed {along.ref_table} on its distribution "
                    f"column: distributed with it (a reference table may not reference a distributed one)")
                continue
            users = sorted(fk.table for fk in single if fk.ref_table == name)
            why = f"small ({count:,} rows, {share})"
            why += f"; referenced by {', '.join(users)}" if users else ""
            placements[name] = TablePlacement(name, Placement.REFERENCE, why=why + ": a copy on every node")
    return placements


def _single_key(table: TablePlan) -> str | None:
    """The target column of a one-column primary key."""
    return table.target_column(table.primary_key[0]) if len(table.primary_key) == 1 else None


def _widened_keys(table: TablePlan, placement: TablePlacement | None, notes: list[str]) -> TablePlan:
    """A distributed table's primary key and unique indexes with its distribution column
    added (Citus needs it there: it checks uniqueness shard by shard)."""
    if placement is None or placement.placement is not Placement.DISTRIBUTED or not table.create:
        return table
    column = placement.column or ""
    source = next(c.source for c in table.columns if c.target == column)
    primary_key = table.primary_key
    if primary_key and column not in map(table.target_column, primary_key):
        primary_key = (*primary_key, source)
        notes.append(f"{table.name}: primary key ({', '.join(table.primary_key)}) widened to "
                     f"({', '.join(primary_key)}): Citus needs the distribution column in it")
    indexes: list[IndexPlan] = []
    for index in table.indexes:
        if index.unique and source not in index.columns:
            notes.append(f"{table.name}: unique index {index.name} ({', '.join(index.columns)}) widened with "
                         f"{source}: Citus needs the distribution column in it")
            index = replace(index, columns=(*index.columns, source), descending=(*index.descending, False)
                            if index.descending else (), lowered=(*index.lowered, False) if index.lowered else ())
        indexes.append(index)
    return replace(table, primary_key=primary_key, indexes=tuple(indexes))


def _refusal(fk: ForeignKeyPlan, child: TablePlacement | None, parent: TablePlacement | None,
             plan: MigrationPlan) -> str | None:
    """Why Citus would refuse the foreign key, or None. A table the plan does not place
    (one that exists) is left to Citus: a key it refuses is a warning of the run."""
    if child is None or parent is None:
        return None
    kinds = (child.placement, parent.placement)
    if parent.placement is Placement.REFERENCE or kinds == (Placement.LOCAL, Placement.LOCAL):
        return None
    if kinds == (Placement.DISTRIBUTED, Placement.DISTRIBUTED):
        joined = dict(zip(fk.columns, fk.ref_columns))
        if joined.get(child.column or "") != parent.column:
            return (f"Citus needs a foreign key between distributed tables to join their distribution columns "
                    f"({fk.table} is {child.describe()}, {fk.ref_table} {parent.describe()})")
        if _column_type(plan, fk.table, child.column) != _column_type(plan, fk.ref_table, parent.column):
            return "the two distribution columns differ in type, so the tables are not co-located"
        return None
    return (f"Citus refuses a foreign key from a {_kind(child)} to a {_kind(parent)} "
            f"({fk.table} is {child.describe()}, {fk.ref_table} {parent.describe()})")


def _kind(placement: TablePlacement) -> str:
    return {Placement.DISTRIBUTED: "distributed table", Placement.REFERENCE: "reference table",
            Placement.LOCAL: "local table"}[placement.placement]


def _column_type(plan: MigrationPlan, table: str, column: str | None) -> str:
    return next(c.type.sql for c in plan.table(table).columns if c.target == column)


__all__ = ["AUTO", "Placement", "TablePlacement", "distribute", "distribute_sql", "placement_of"]
