"""Into a real Citus cluster (coordinator + 2 workers, from the kit in ../shared/citus):
Chinook, Northwind and a generated finance file, with --distribute auto and with explicit
flags. Each: every row equal (verify exits 0), shards on both workers, the planned tables
distributed and co-located, joins on the distribution column run inside each shard (no
repartitioning), the foreign keys Citus allows present. The cluster is started once per
test session. Where the kit cannot build or start, these tests fail, saying why."""

from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import asyncpg
import pytest

from copier.bench.data import generate

from .helpers import corpus_file, invoke
from .pg import Target

# The kit beside the checkout (as CI has it), or beside the folder of worktrees holding it.
_HERE = Path(__file__).resolve()
KIT = Path(os.environ.get("COPIER_CITUS_KIT") or next(
    (p for p in (_HERE.parents[2] / "shared" / "citus", _HERE.parents[3] / "shared" / "citus")
     if (p / "start.sh").is_file()), _HERE.parents[2] / "shared" / "citus"))
FIRST_PORT = 9720  # the cluster takes three ports from the first free one here (9700 is for experiments)
FINANCE_ROWS = 20_000


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _claim_ports() -> tuple[int, IO[bytes]] | None:
    """Three free ports, held by a lock file for the session: two test runs at once
    (CI beside a developer) never start, or stop, each other's cluster."""
    for port in range(FIRST_PORT, FIRST_PORT + 60, 3):
        lock = open(Path(tempfile.gettempdir()) / f"copier-citus-test-{port}.lock", "wb")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if all(_free(port + i) for i in range(3)):
            return port, lock
        lock.close()
    return None


def _kit(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(KIT / script), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def _why(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[tuple[str, int]]:
    """The coordinator's DSN and the base port, for the session; stopped and removed after."""
    if not (KIT / "start.sh").is_file():
        pytest.fail(f"the Citus kit is not at {KIT} (set COPIER_CITUS_KIT)")
    built = _kit("build.sh", timeout=900)  # under a second once built; 3-4 minutes the first time
    if built.returncode != 0:
        pytest.fail(f"the Citus kit could not build Citus: {_why(built)}")
    claimed = _claim_ports()
    if claimed is None:
        pytest.fail(f"no three free ports from {FIRST_PORT} to {FIRST_PORT + 62} for the Citus cluster")
    port, lock = claimed
    with lock:
        started = _kit("start.sh", str(port), timeout=180)
        try:
            if started.returncode != 0:
                pytest.fail(f"the Citus kit could not start a cluster on port {port}: {_why(started)}")
            yield started.stdout.strip().splitlines()[-1], port
        finally:
            _kit("stop.sh", str(port), timeout=120)


@pytest.fixture
def citus(cluster: tuple[str, int]) -> Target:
    """A schema of its own in the cluster's postgres database (Citus lives there only)."""
    return Target(cluster[0], f"t_{uuid.uuid4().hex[:8]}")


def _migrate(target: Target, source: Path, *flags: str) -> str:
    """Migrate (verify included), then verify again on its own; both must exit 0. The summary."""
    result = invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, *flags)
    assert result.exit_code == 0, result.output
    assert re.match(r"target: .*, Citus 13\.2-\d+, 2 workers \(from --dsn\)", result.stdout.splitlines()[0])
    checked = invoke("verify", source, "--dsn", target.dsn, "--schema", target.schema)
    assert checked.exit_code == 0, checked.output
    return str(result.stdout)


def _distribution(target: Target) -> dict[str, tuple[str, str | None, int]]:
    """Per table of the schema that Citus knows: its type (distributed, reference, or
    local: a coordinator table Citus added because of a foreign key to a reference table),
    its distribution column and its co-location group."""
    rows = target.fetch("SELECT c.relname, t.citus_table_type, t.distribution_column, t.colocation_id "
                        "FROM public.citus_tables t JOIN pg_class c ON c.oid = t.table_name "
                        "WHERE c.relnamespace = $1::regnamespace", target.schema)
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _assert_placed(target: Target, distributed: dict[str, str], reference: set[str], port: int) -> None:
    """Exactly these tables distributed (on these columns, one co-location group) and
    reference tables; each distributed table's 32 shards on both workers."""
    placed = _distribution(target)
    assert {t: col for t, (method, col, _g) in placed.items() if method == "distributed"} == distributed
    assert {t for t, (method, _c, _g) in placed.items() if method == "reference"} == reference
    assert len({placed[t][2] for t in distributed}) == 1, "the distributed tables are not co-located"
    for table in distributed:
        shards = target.fetch("SELECT nodeport, count(*) FROM citus_shards WHERE table_name = $1::regclass "
                              "GROUP BY 1 ORDER BY 1", f'"{target.schema}"."{table}"')
        assert [(r[0], r[1]) for r in shards] == [(port + 1, 16), (port + 2, 16)]


def _foreign_keys(target: Target) -> set[str]:
    """The validated foreign keys of the schema's tables as the coordinator has them (not
    the copies on the shards of reference tables, which the coordinator holds too)."""
    rows = target.fetch("SELECT conname FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid "
                        "WHERE f.contype = 'f' AND f.convalidated AND c.relnamespace = $1::regnamespace "
                        "AND c.oid IN (SELECT table_name FROM public.citus_tables)", target.schema)
    return {r[0] for r in rows}


def _explain(target: Target, sql: str) -> str:
    return "\n".join(r[0] for r in target.fetch(f"EXPLAIN {sql}"))


def _assert_co_located_join(target: Target, sql: str, router_sql: str) -> None:
    """The join runs inside every shard's task (no repartition); filtered on one distribution
    value, the router sends it to a single shard."""
    plan = _explain(target, sql)
    assert "Custom Scan (Citus Adaptive)" in plan and "Task Count: 32" in plan, plan
    inside = plan.split("->  Task", 1)[1]
    assert re.search(r"Hash Join|Merge Join|Nested Loop", inside), plan
    assert not re.search(r"repartition|MapMergeJob|Distributed Subplan", plan, re.IGNORECASE), plan
    router = _explain(target, router_sql)
    assert "Task Count: 1" in router, router


def test_chinook_auto(citus: Target, cluster: tuple[str, int], tmp_path: Path) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    summary = _migrate(citus, source, "--distribute", "auto")
    _assert_placed(citus, {"Track": "TrackId", "InvoiceLine": "TrackId", "PlaylistTrack": "TrackId"},
                   {"Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "MediaType", "Playlist"},
                   cluster[1])
    assert _foreign_keys(citus) == {
        "Album_ArtistId_fkey", "Customer_SupportRepId_fkey", "Employee_ReportsTo_fkey", "Invoice_CustomerId_fkey",
        "InvoiceLine_InvoiceId_fkey", "InvoiceLine_TrackId_fkey", "PlaylistTrack_PlaylistId_fkey",
        "PlaylistTrack_TrackId_fkey", "Track_AlbumId_fkey", "Track_GenreId_fkey", "Track_MediaTypeId_fkey"}
    assert "InvoiceLine: primary key (InvoiceLineId) widened to (InvoiceLineId, TrackId)" in summary
    s = citus.schema
    _assert_co_located_join(
        citus, f'SELECT t."Name", sum(l."Quantity") FROM "{s}"."Track" t JOIN "{s}"."InvoiceLine" l '
               f'ON l."TrackId" = t."TrackId" GROUP BY 1',
        f'SELECT * FROM "{s}"."Track" t JOIN "{s}"."PlaylistTrack" p ON p."TrackId" = t."TrackId" '
        f'WHERE t."TrackId" = 7')


def test_chinook_explicit(citus: Target, cluster: tuple[str, int], tmp_path: Path) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    references = ["Album", "Artist", "Customer", "Employee", "Genre", "MediaType", "Playlist", "PlaylistTrack", "Track"]
    _migrate(citus, source, "--distribute", "Invoice=InvoiceId", "--distribute", "InvoiceLine=InvoiceId",
             *[f for name in references for f in ("--reference", name)])
    _assert_placed(citus, {"Invoice": "InvoiceId", "InvoiceLine": "InvoiceId"}, set(references), cluster[1])
    assert len(_foreign_keys(citus)) == 11  # each is to a reference table, or joins the two on InvoiceId
    s = citus.schema
    _assert_co_located_join(
        citus, f'SELECT i."BillingCountry", sum(l."UnitPrice" * l."Quantity") FROM "{s}"."Invoice" i '
               f'JOIN "{s}"."InvoiceLine" l ON l."InvoiceId" = i."InvoiceId" GROUP BY 1',
        f'SELECT * FROM "{s}"."Invoice" i JOIN "{s}"."InvoiceLine" l ON l."InvoiceId" = i."InvoiceId" '
        f'WHERE i."InvoiceId" = 98')


def test_northwind_explicit(citus: Target, cluster: tuple[str, int], tmp_path: Path) -> None:
    source = corpus_file("northwind/Northwind_small.sqlite", tmp_path)
    summary = _migrate(citus, source, "--distribute", "Orders=Id", "--distribute", "OrderDetails=OrderId",
                       "--reference", "Products", "--reference", "Customers", "--reference", "Employees")
    _assert_placed(citus, {"Orders": "Id", "OrderDetails": "OrderId"}, {"Products", "Customers", "Employees"},
                   cluster[1])
    assert "OrderDetails: primary key (Id) widened to (Id, OrderId)" in summary
    s = citus.schema
    _assert_co_located_join(
        citus, f'SELECT o."ShipCountry", sum(d."Quantity") FROM "{s}"."Orders" o JOIN "{s}"."OrderDetails" d '
               f'ON d."OrderId" = o."Id" GROUP BY 1',
        f'SELECT * FROM "{s}"."Orders" o JOIN "{s}"."OrderDetails" d ON d."OrderId" = o."Id" WHERE o."Id" = 10248')


def test_northwind_auto(citus: Target, cluster: tuple[str, int], tmp_path: Path) -> None:
    """Northwind_small declares no foreign keys: auto has no graph to co-locate by, so its two
    big tables are each distributed on their own key, the others are reference tables."""
    source = corpus_file("northwind/Northwind_small.sqlite", tmp_path)
    _migrate(citus, source, "--distribute", "auto")
    placed = _distribution(citus)
    assert {t: col for t, (method, col, _g) in placed.items() if method == "distributed"} == {"Orders": "Id",
                                                                                    "OrderDetails": "Id"}
    assert {t for t, (method, _c, _g) in placed.items() if method == "reference"} == {
        "Categories", "CustomerCustomerDemo", "CustomerDemographics", "Customers", "EmployeeTerritories",
        "Employees", "Products", "Regions", "Shippers", "Suppliers", "Territories"}
    for table in ("Orders", "OrderDetails"):
        ports = citus.fetch("SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = $1::regclass ORDER BY 1",
                            f'"{citus.schema}"."{table}"')
        assert [r[0] for r in ports] == [cluster[1] + 1, cluster[1] + 2]


@pytest.fixture(scope="session")
def finance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("finance") / "finance.db", FINANCE_ROWS)


def _assert_finance_joins(target: Target) -> None:
    s = target.schema
    _assert_co_located_join(
        target, f'SELECT t.account_id, count(*) FROM "{s}".transactions t JOIN "{s}".splits p '
                f'ON p.account_id = t.account_id AND p.transaction_id = t.id GROUP BY 1',
        f'SELECT * FROM "{s}".transactions t JOIN "{s}".splits p ON p.account_id = t.account_id '
        f'WHERE t.account_id = 42')
    # The control: a join off the distribution column is one Citus cannot run shard by shard.
    with pytest.raises(asyncpg.PostgresError, match="repartition"):
        _explain(target, f'SELECT count(*) FROM "{s}".transactions t JOIN "{s}".splits p '
                         f'ON p.transaction_id = t.id')


def test_finance_auto(citus: Target, cluster: tuple[str, int], finance: Path) -> None:
    summary = _migrate(citus, finance, "--distribute", "auto")
    # 10,000 accounts against 20,000 transactions: big too, so distributed on their key.
    _assert_placed(citus, {"accounts": "id", "transactions": "account_id", "splits": "account_id"}, set(),
                   cluster[1])
    assert _foreign_keys(citus) == {"transactions_account_id_fkey", "splits_account_id_fkey"}
    assert "splits: foreign key splits_transaction_id_fkey skipped: Citus needs a foreign key between distributed " \
           "tables to join their distribution columns" in summary
    _assert_finance_joins(citus)


def test_finance_explicit(citus: Target, cluster: tuple[str, int], finance: Path) -> None:
    _migrate(citus, finance, "--distribute", "transactions=account_id", "--distribute", "splits=account_id",
             "--reference", "accounts", "--workers", "2")
    _assert_placed(citus, {"transactions": "account_id", "splits": "account_id"}, {"accounts"}, cluster[1])
    assert _foreign_keys(citus) == {"transactions_account_id_fkey", "splits_account_id_fkey"}
    _assert_finance_joins(citus)


def test_an_existing_distributed_schema_is_loaded_into_as_it_is(citus: Target, cluster: tuple[str, int],
                                                                 finance: Path) -> None:
    """The app's own migrations made and distributed the tables: copier loads into them."""
    s = citus.schema
    citus.execute(f'CREATE SCHEMA "{s}"')
    for statement in (
            "CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL, currency text NOT NULL, "
            "opened_at timestamptz NOT NULL, active boolean NOT NULL)",
            "SELECT create_reference_table('accounts')",
            "CREATE TABLE transactions (id bigint, account_id bigint NOT NULL REFERENCES accounts, amount numeric, "
            "description text, category text, posted_at timestamptz, created_at timestamptz, pending boolean, "
            "raw bytea, PRIMARY KEY (account_id, id))",
            "SELECT create_distributed_table('transactions', 'account_id')",
            "CREATE TABLE splits (id bigint, transaction_id bigint, account_id bigint, share numeric, "
            "PRIMARY KEY (account_id, id))",
            "SELECT create_distributed_table('splits', 'account_id', colocate_with => 'transactions')"):
        citus.execute(statement)
    result = invoke("plan", finance, "--dsn", citus.dsn, "--schema", s)
    assert result.exit_code == 0 and result.stdout.count("(load into existing,") == 3
    _migrate(citus, finance)
    _assert_placed(citus, {"transactions": "account_id", "splits": "account_id"}, {"accounts"}, cluster[1])
    assert citus.count("transactions") == FINANCE_ROWS
