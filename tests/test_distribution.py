"""Planning a Citus target (copier/distribution.py): placements, widened keys, the foreign
keys Citus refuses, the --sql calls, and a plain target refused. The migrations into a real
cluster are in test_citus.py."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from copier.distribution import placement_of
from copier.errors import PlanError
from copier.pipeline import make_plan
from copier.planning import MigrationPlan
from copier.settings import Settings

from .helpers import corpus_file, invoke, migrate, sqlite_db
from .pg import Target

FINANCE = (
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)",
    "CREATE TABLE transactions (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts(id), "
    "amount NUMERIC(12,2), ref TEXT UNIQUE)",
    "CREATE TABLE splits (id INTEGER PRIMARY KEY, transaction_id INTEGER NOT NULL REFERENCES transactions(id), "
    "account_id INTEGER NOT NULL REFERENCES accounts(id))",
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, transaction_id INTEGER REFERENCES transactions(id), body TEXT)",
)


def _finance(tmp_path: Path, accounts: int = 10, transactions: int = 200) -> Path:
    return sqlite_db(tmp_path / "finance.db", *FINANCE, rows={
        "accounts": [(i, f"a{i}") for i in range(1, accounts + 1)],
        "transactions": [(i, i % accounts + 1, "1.00", f"r{i}") for i in range(1, transactions + 1)],
        "splits": [(i, i, i % accounts + 1) for i in range(1, transactions + 1)],
        "notes": [(1, 1, "x")],
    })


def _plan(path: Path, *distribute: str, reference: tuple[str, ...] = ()) -> MigrationPlan:
    settings = Settings(dsn="postgresql://", distribute=distribute, reference=reference)
    return anyio.run(make_plan, path, settings, None)


def _placements(plan: MigrationPlan) -> dict[str, tuple[str, str | None]]:
    return {p.table: (str(p.placement), p.column) for p in plan.distribution}


def test_explicit_flags_place_tables_and_skip_the_keys_citus_refuses(tmp_path: Path) -> None:
    plan = _plan(_finance(tmp_path), "transactions=account_id", "splits=account_id", reference=("accounts",))
    assert _placements(plan) == {"accounts": ("reference", None), "transactions": ("distributed", "account_id"),
                                 "splits": ("distributed", "account_id"), "notes": ("local", None)}
    # Citus checks uniqueness shard by shard: the distribution column joins every key.
    assert plan.table("transactions").primary_key == ("id", "account_id")
    assert [(i.columns, i.unique) for i in plan.table("transactions").indexes] == [(("ref", "account_id"), True)]
    assert {fk.name for fk in plan.foreign_keys} == {"transactions_account_id_fkey", "splits_account_id_fkey"}
    assert ("splits: foreign key splits_transaction_id_fkey skipped: Citus needs a foreign key between distributed "
            "tables to join their distribution columns (splits is distributed on account_id, transactions "
            "distributed on account_id)") in plan.notes
    assert ("notes: foreign key notes_transaction_id_fkey skipped: Citus refuses a foreign key from a local table "
            "to a distributed table (notes is local table on the coordinator, transactions distributed on "
            "account_id)") in plan.notes


def test_a_reference_table_may_not_reference_a_distributed_one(tmp_path: Path) -> None:
    plan = _plan(_finance(tmp_path), "accounts=id", reference=("transactions",))
    assert "transactions_account_id_fkey" not in {fk.name for fk in plan.foreign_keys}
    assert any(n.startswith("transactions: foreign key transactions_account_id_fkey skipped: Citus refuses a "
                            "foreign key from a reference table to a distributed table") for n in plan.notes)


def test_auto_distributes_big_tables_on_the_key_they_share_and_makes_small_parents_reference(tmp_path: Path) -> None:
    # 10 accounts (small) referenced by 200 transactions and 200 splits (big): the account id co-locates both.
    plan = _plan(_finance(tmp_path), "auto")
    assert _placements(plan) == {"accounts": ("reference", None), "transactions": ("distributed", "account_id"),
                                 "splits": ("distributed", "account_id"), "notes": ("reference", None)}
    why = {p.table: p.why for p in plan.distribution}
    assert why["accounts"] == ("small (10 rows, under 10% of the largest table's 200); referenced by splits, "
                               "transactions: a copy on every node")
    assert why["splits"] == ("big (200 rows); references accounts.id through account_id: co-located with "
                             "transactions")


def test_auto_can_be_overridden_table_by_table(tmp_path: Path) -> None:
    plan = _plan(_finance(tmp_path), "auto", "notes=transaction_id", reference=("splits",))
    placements = _placements(plan)
    assert placements["notes"] == ("distributed", "transaction_id")
    assert placements["splits"] == ("reference", None)
    assert placements["transactions"] == ("distributed", "account_id")
    placement = placement_of(plan, "notes")
    assert placement is not None and placement.why == "--distribute notes=transaction_id"


def test_auto_on_chinook(tmp_path: Path) -> None:
    plan = _plan(corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path), "auto")
    # Written out: Track's key is what the most rows of the big tables reference.
    distributed = {"Track": "TrackId", "InvoiceLine": "TrackId", "PlaylistTrack": "TrackId"}
    assert {t: c for t, (kind, c) in _placements(plan).items() if kind == "distributed"} == distributed
    assert {t for t, (kind, _c) in _placements(plan).items() if kind == "reference"} == {
        "Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "MediaType", "Playlist"}
    assert len(plan.foreign_keys) == 11  # every one of Chinook's keys is one Citus accepts here
    assert plan.table("InvoiceLine").primary_key == ("InvoiceLineId", "TrackId")


@pytest.mark.parametrize(("distribute", "reference", "message"), [
    (("nosuch=id",), (), "--distribute nosuch: no such table among the tables migrated"),
    (("accounts=nosuch",), (), "--distribute accounts=nosuch: table accounts has no column 'nosuch'"),
    (("accounts",), (), "--distribute 'accounts': expected TABLE=COLUMN or auto"),
    (("accounts=id",), ("accounts",), "table accounts is named by both --distribute and --reference"),
    ((), ("nosuch",), "--reference nosuch: no such table among the tables migrated"),
])
def test_bad_requests_stop_the_plan(tmp_path: Path, distribute: tuple[str, ...], reference: tuple[str, ...],
                                    message: str) -> None:
    with pytest.raises(PlanError) as caught:
        _plan(_finance(tmp_path), *distribute, reference=reference)
    assert caught.value.message.startswith(message)


def test_plan_sql_distributes_each_table_right_after_creating_it(tmp_path: Path) -> None:
    result = invoke("plan", _finance(tmp_path), "--sql", "--distribute", "transactions=account_id",
                    "--reference", "accounts")
    assert result.exit_code == 0
    statements = result.stdout.split(";\n\n")
    create = next(i for i, s in enumerate(statements) if s.startswith('CREATE TABLE "public"."transactions"'))
    assert statements[create + 1] == ("SELECT create_distributed_table('\"public\".\"transactions\"', 'account_id', "
                                      "colocate_with => 'default')")
    assert "SELECT create_reference_table('\"public\".\"accounts\"')" in statements
    assert not any("create_" in s and "splits" in s for s in statements)  # splits stays local


def test_plan_explains_each_placement(tmp_path: Path) -> None:
    result = invoke("plan", _finance(tmp_path), "--distribute", "auto")
    assert result.exit_code == 0
    assert "  citus: distributed on account_id (big (200 rows); references accounts.id through account_id: " \
           "co-located with splits)" in result.stdout


def test_a_plain_postgresql_target_is_refused_before_any_data_moves(tmp_path: Path, target: Target) -> None:
    result = migrate(target, _finance(tmp_path), "--distribute", "auto")
    assert result.exit_code == 2
    assert "--distribute/--reference need a Citus target" in result.stderr
    assert not target.exists("accounts")

