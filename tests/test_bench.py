"""The benchmark generator is deterministic, sweeps parse, and `copier bench` produces a
report and a chart. No test here asserts a timing: speed lives in benchmarks/."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from copier import bench
from copier.bench import (
    Measurement,
    ReportCounts,
    copier_command,
    parse_sweep,
    pgloader_url,
    report_counts,
    run_measured,
)
from copier.bench.apps import APP_SHAPES, UNCONVERTIBLE
from copier.bench.chart import line_chart
from copier.bench.data import WIDE_COLUMNS, generate, spoiled_copy
from copier.errors import UsageError

from .helpers import invoke, migrate
from .pg import Target, with_database


def digest(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        rows = [repr(r) for t in ("accounts", "transactions", "splits")
                for r in connection.execute(f"SELECT * FROM {t} ORDER BY 1")]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def test_generator_is_deterministic_and_realistic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a.db", 2_000)
    second = generate(tmp_path / "b.db", 2_000)
    assert digest(first) == digest(second)
    assert digest(first) != digest(generate(tmp_path / "c.db", 2_000, seed=7))
    with sqlite3.connect(first) as connection:
        assert connection.execute("SELECT count(*) FROM accounts").fetchone() == (10_000,)
        assert connection.execute("SELECT count(*) FROM transactions").fetchone() == (2_000,)
        assert connection.execute("SELECT count(*) FROM splits").fetchone() == (200,)
        lengths = connection.execute("SELECT min(length(description)), max(length(description)) "
                                     "FROM transactions").fetchone()
        assert 25 <= lengths[0] and lengths[1] <= 60
        raw = connection.execute("SELECT max(length(raw)), sum(raw IS NULL) FROM transactions").fetchone()
        assert raw[0] <= 64 and raw[1] > 0
        assert {r[0] for r in connection.execute("SELECT DISTINCT pending FROM transactions")} == {0, 1}
        assert connection.execute("SELECT typeof(created_at), typeof(posted_at) FROM transactions LIMIT 1"
                                  ).fetchone() == ("integer", "text")


def test_wide_and_text_shapes(tmp_path: Path) -> None:
    path = generate(tmp_path / "w.db", 50, shapes=("wide", "text"))
    with sqlite3.connect(path) as connection:
        columns = connection.execute("SELECT count(*) FROM pragma_table_info('wide')").fetchone()[0]
        assert columns == WIDE_COLUMNS + 1 >= 51
        assert connection.execute("SELECT count(*), min(length(body)) > 500 FROM documents").fetchone() == (50, 1)


def test_many_shape_is_small_tables_of_20_rows(tmp_path: Path) -> None:
    path = generate(tmp_path / "m.db", 100, shapes=("many",))
    with sqlite3.connect(path) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        assert tables == ["t00001", "t00002", "t00003", "t00004", "t00005"]
        assert [connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables] == [20] * 5


def test_sweep_parsing() -> None:
    assert parse_sweep("1000,5000, 20000", "batch_size") == [1000, 5000, 20000]
    assert parse_sweep("4", "readers") == [4]
    assert parse_sweep(None, "jobs") == []
    with pytest.raises(UsageError, match="--batch-size takes whole numbers"):
        parse_sweep("1000,lots", "batch_size")
    with pytest.raises(UsageError, match="at least 1"):
        parse_sweep("0", "workers")


def test_pgloader_url_for_a_unix_socket() -> None:
    assert pgloader_url("postgresql://postgres:@/db?host=/tmp/pg") == "postgresql://postgres@unix:/tmp/pg:5432/db"
    assert pgloader_url("postgresql://u@h:5433/db?sslmode=disable") == "postgresql://u@h:5433/db"


def test_chart_is_svg_with_every_point() -> None:
    svg = line_chart(title="t", x_label="--batch-size", y_label="rows/s",
                     points=[("1000", 10.0), ("5000", 30.0)], references={"ceiling": 50.0})
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<circle") == 2 and ">ceiling 50<" in svg


def test_bench_command_writes_report_and_chart(tmp_path: Path, target: Target) -> None:
    server = with_database(target.dsn, "postgres")
    out = tmp_path / "out"
    result = invoke("bench", "--dsn", server, "--rows", "300", "--runs", "1", "--methods", "ceiling,copier",
                    "--batch-size", "100,1000", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "bench.json").read_text())
    labels = [r["label"] for r in report["results"]]
    assert labels == ["ceiling", "copier", "copier batch_size=100", "copier batch_size=1000"]
    assert all(r["ok"] and r["rows_loaded"] == [10_330] for r in report["results"])
    assert report["data"]["rows_total"] == 10_330
    assert report["results"][0]["ratio_to_ceiling"] == 1.0
    svg = (out / "sweep-batch_size.svg").read_text()
    assert svg.count("<circle") == 2
    assert "ceiling" in result.stdout and "x ceiling" in result.stdout


def test_bench_without_a_dsn_starts_a_throwaway_server(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("bench", "--rows", "100", "--runs", "1", "--methods", "copier", "--out", out)
    assert result.exit_code == 0, result.output
    assert "starting a throwaway PostgreSQL" in result.stderr
    report = json.loads((out / "bench.json").read_text())
    assert report["results"][0]["ok"] and report["results"][0]["rows_loaded"] == [10_110]


def test_bench_measures_the_default_run_with_verification(tmp_path: Path, target: Target) -> None:
    server = with_database(target.dsn, "postgres")
    out = tmp_path / "out"
    result = invoke("bench", "--dsn", server, "--rows", "200", "--runs", "1", "--methods", "copier-verified",
                    "--out", out)
    assert result.exit_code == 0, result.output
    (run,) = json.loads((out / "bench.json").read_text())["results"]
    assert run["label"] == "copier-verified" and run["ok"]
    # The command it measured verifies (exit 4 on a difference would make the run not ok).
    assert "--verify" in copier_command(Path("x.db"), "postgresql://", {}, verify=True)
    assert "--no-verify" in copier_command(Path("x.db"), "postgresql://", {})


# --- the app shapes ---------------------------------------------------------------------------

APP_ROWS = 1_500  # above the 1,000 rows under which copier takes the exact lane anyway


def _declared(path: Path, table: str) -> dict[str, str]:
    with sqlite3.connect(path) as connection:
        return {r[1]: r[2] for r in connection.execute(f"SELECT * FROM pragma_table_info('{table}')")}


def _storage(path: Path, table: str, column: str) -> dict[str, int]:
    """How many values of a column SQLite stores as each storage class."""
    with sqlite3.connect(path) as connection:
        return dict(connection.execute(f'SELECT typeof("{column}"), count(*) FROM "{table}" GROUP BY 1'))


def _dump(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        return "\n".join(repr(r) for t in tables for r in connection.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2'))


@pytest.mark.parametrize("shape", sorted(APP_SHAPES))
def test_app_shape_is_deterministic_one_big_table_and_its_parent(shape: str, tmp_path: Path) -> None:
    first = generate(tmp_path / "a.db", 300, (shape,))
    assert _dump(first) == _dump(generate(tmp_path / "b.db", 300, (shape,)))
    assert _dump(first) != _dump(generate(tmp_path / "c.db", 300, (shape,), seed=7))
    big = APP_SHAPES[shape].bad_rows.table.strip('"')
    with sqlite3.connect(first) as connection:
        tables = {r[0]: connection.execute(f'SELECT count(*) FROM "{r[0]}"').fetchone()[0]
                  for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                  "AND name NOT LIKE 'sqlite_%'")}
        references = connection.execute(f"SELECT DISTINCT \"table\" FROM pragma_foreign_key_list('{big}')").fetchall()
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []  # every reference resolves
    assert tables.pop(big) == 300
    assert list(tables.values()) == [1_000] and references == [(next(iter(tables)),)]


def test_app_shapes_store_what_the_tools_store(tmp_path: Path) -> None:
    """The declared types and storage classes the tools' documentation gives (benchmarks/README.md)."""
    path = generate(tmp_path / "apps.db", 400, tuple(APP_SHAPES))
    with sqlite3.connect(path) as connection:
        def all_match(sql: str, pattern: str) -> bool:
            return all(re.fullmatch(pattern, str(v)) for (v,) in connection.execute(sql))

        # SQLAlchemy: NUMERIC(12, 2) bound as a float, DATETIME text with six fraction digits, uuid text.
        assert _declared(path, "orders") == {"id": "INTEGER", "public_id": "VARCHAR(36)", "customer_id": "INTEGER",
                                             "total": "NUMERIC(12, 2)", "status": "VARCHAR(20)",
                                             "created_at": "DATETIME", "paid": "BOOLEAN", "note": "VARCHAR(200)"}
        assert all_match("SELECT created_at FROM orders", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
        assert all_match("SELECT public_id FROM orders",
                         r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
        # Django: decimal (no precision) from str(Decimal), uuid hex char(32), JSON text with its CHECK.
        # (pragma_table_info spells the types it knows, integer and text, in capitals)
        django = {k: v.lower() for k, v in _declared(path, "shop_order").items()}
        assert django == {"id": "integer", "uuid": "char(32)", "total": "decimal", "created": "datetime",
                          "paid": "bool", "metadata": "text", "customer_id": "bigint"}
        ddl = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'shop_order'").fetchone()[0]
        assert 'CHECK ((JSON_VALID("metadata") OR "metadata" IS NULL))' in ddl
        assert all_match("SELECT uuid FROM shop_order", r"[0-9a-f]{12}4[0-9a-f]{19}")
        assert all_match("SELECT json_valid(metadata) FROM shop_order", "1")
        # bare NUMERIC: integers and reals both, about half each in `value`.
        value = _storage(path, "readings", "value")
        assert set(value) == {"integer", "real"} and 150 <= value["integer"] <= 250
        # JSON declared, every document valid and distinct.
        assert _declared(path, "events")["payload"] == "JSON"
        assert connection.execute("SELECT count(DISTINCT payload), min(json_valid(payload)) FROM events").fetchone() \
            == (400, 1)
        # WITHOUT ROWID, keyed by two TEXT columns.
        sql = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'order_lines'").fetchone()[0]
        assert sql.rstrip().endswith("WITHOUT ROWID") and "PRIMARY KEY (order_code, line)" in sql
        assert [r[1] for r in connection.execute("SELECT * FROM pragma_table_info('order_lines') WHERE pk > 0 "
                                                 "ORDER BY pk")] == ["order_code", "line"]
        # Prisma: DATETIME columns holding integer epoch milliseconds, TEXT ids.
        assert _storage(path, "Post", "createdAt") == {"integer": 400}
        assert connection.execute('SELECT min("createdAt") > 1.5e12, max("updatedAt") < 1.7e12 FROM "Post"'
                                  ).fetchone() == (1, 1)
        assert all_match('SELECT id FROM "User"', r"c[0-9a-z]{24}")
        # Four date forms, evenly interleaved.
        forms = [r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                 r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00", r"\d{4}-\d\d-\d\d"]
        for form, pattern in enumerate(forms):
            assert all_match(f"SELECT at FROM logins WHERE id % 4 = {form}", pattern)
        # The hand-written finance file: bare NUMERIC amount, naive DATETIME text, BOOLEAN, BLOB.
        assert _declared(path, "payments") == {"id": "INTEGER", "wallet_id": "INTEGER", "amount": "NUMERIC",
                                               "memo": "TEXT", "booked_at": "DATETIME", "settled": "BOOLEAN",
                                               "receipt": "BLOB"}
        assert set(_storage(path, "payments", "receipt")) == {"blob", "null"}


@pytest.mark.parametrize("shape", sorted(APP_SHAPES))
def test_app_shape_migrates_and_verifies(shape: str, tmp_path: Path, target: Target) -> None:
    source = generate(tmp_path / f"{shape}.db", APP_ROWS, (shape,))
    report = tmp_path / "report.json"
    result = migrate(target, source, "--verify", "--report", report)
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    assert document["verified"] is True
    with sqlite3.connect(source) as connection:
        counts = {r[0]: connection.execute(f'SELECT count(*) FROM "{r[0]}"').fetchone()[0]
                  for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                  "AND name NOT LIKE 'sqlite_%'")}
    assert {t["table"]: t["rows_written"] for t in document["tables"]} == counts
    assert {t["table"]: target.count(t["target"]) for t in document["tables"]} == counts


def test_prisma_milliseconds_and_mixed_date_forms_arrive_as_postgresql_reads_them(tmp_path: Path,
                                                                                  target: Target) -> None:
    """The instants in the target equal PostgreSQL's own reading of the source values:
    to_timestamp(ms / 1000) for Prisma's integers, a timestamptz cast (UTC) of each date form."""
    source = generate(tmp_path / "dates.db", APP_ROWS, ("epoch-ms", "mixed-dates"))
    assert migrate(target, source, "--no-verify").exit_code == 0
    with sqlite3.connect(source) as connection:
        prisma = connection.execute('SELECT id, "createdAt" FROM "Post"').fetchall()
        mixed = connection.execute("SELECT id, at FROM logins").fetchall()
    wrong = target.fetchval(
        'SELECT count(*) FROM unnest($1::text[], $2::bigint[]) AS s(id, ms) JOIN "Post" p USING (id) '
        'WHERE p."createdAt" IS DISTINCT FROM to_timestamp(s.ms / 1000.0)',
        [r[0] for r in prisma], [r[1] for r in prisma])
    assert wrong == 0
    wrong = target.fetchval(
        "SELECT count(*) FROM unnest($1::bigint[], $2::text[]) AS s(id, at) JOIN logins l USING (id) "
        "WHERE l.at IS DISTINCT FROM (s.at::timestamp AT TIME ZONE 'UTC')",
        [r[0] for r in mixed], [r[1] for r in mixed])
    assert wrong == 0 and target.count("logins") == APP_ROWS


def test_bad_rows_copy_spoils_half_by_foreign_key_half_by_value(tmp_path: Path) -> None:
    clean = generate(tmp_path / "clean.db", 2_000, ("sqlalchemy", "without-rowid"))
    before = _dump(clean)
    bad = spoiled_copy(clean, tmp_path / "bad.db", ("sqlalchemy", "without-rowid"), 40)
    assert _dump(clean) == before  # the clean file is left as it was
    with sqlite3.connect(bad) as connection:
        refused = connection.execute("PRAGMA foreign_key_check").fetchall()
        assert sorted({r[0] for r in refused}) == ["order_lines", "orders"] and len(refused) == 40
        assert connection.execute("SELECT count(*) FROM orders WHERE created_at = ?", (UNCONVERTIBLE,)
                                  ).fetchone() == (20,)
        assert connection.execute("SELECT count(*) FROM order_lines WHERE added_at = ?", (UNCONVERTIBLE,)
                                  ).fetchone() == (20,)
        assert connection.execute("SELECT count(*) FROM orders").fetchone() == (2_000,)
    with pytest.raises(UsageError, match="wide has none"):
        spoiled_copy(clean, tmp_path / "w.db", ("wide",), 10)


def test_bench_methods_into_existing_schemas_reruns_and_bad_rows(tmp_path: Path, target: Target) -> None:
    server = with_database(target.dsn, "postgres")
    out = tmp_path / "out"
    methods = "copier,copier-existing,copier-truncate,copier-append-rerun,copier-bad-rows"
    result = invoke("bench", "--dsn", server, "--shape", "plain-finance", "--rows", "1500", "--runs", "1",
                    "--methods", methods, "--bad-rows", "40", "--out", out, "--data-dir", tmp_path / "data")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "bench.json").read_text())
    by = {r["label"]: r for r in report["results"]}
    assert list(by) == methods.split(",") and all(r["ok"] for r in by.values()), by
    assert report["data"]["bad_rows"] == 40 and report["data"]["rows_total"] == 2_500  # 1,500 payments, 1,000 wallets
    for label in ("copier", "copier-existing", "copier-truncate"):
        assert by[label]["rows_loaded"] == [2_500] and by[label]["rows_written"] == [2_500], label
    # The rerun found every row already there: nothing written, nothing doubled.
    assert by["copier-append-rerun"]["rows_loaded"] == [2_500] and by["copier-append-rerun"]["rows_written"] == [0]
    # 40 payments spoiled (a leaf table): 20 refused by the foreign key, 20 unconvertible.
    assert by["copier-bad-rows"]["rows_loaded"] == [2_460] and by["copier-bad-rows"]["rows_rejected"] == [40]
    assert by["copier"]["rows_columnar"][0] is not None and by["copier"]["rows_columnar_percent"] is not None
    assert "rows columnar %" in result.stdout and "x duckdb+keys" in result.stdout


def test_peak_rss_sums_the_process_tree(tmp_path: Path) -> None:
    """A parent holding 60 MB while its child holds 100 MB peaks at their sum, not at either."""
    child = "import time; held = b'x' * (100 * 2**20); time.sleep(1.5)"
    parent = ("import subprocess, sys; held = b'x' * (60 * 2**20); "
              f"subprocess.run([sys.executable, '-c', {child!r}], timeout=60, check=True)")
    wall, peak, code = run_measured([sys.executable, "-c", parent], tmp_path / "log")
    assert code == 0
    assert 160 <= peak < 400, peak


def _statements(path: Path, *tables: str) -> set[str]:
    """The CREATE statements SQLite keeps for these tables (and their indexes), spacing folded."""
    with sqlite3.connect(path) as connection:
        marks = ", ".join("?" * len(tables))
        return {re.sub(r"\s+", " ", sql).strip() for (sql,) in connection.execute(
            f"SELECT sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND sql IS NOT NULL", tables)}


def test_sqlalchemy_and_json_shapes_are_what_sqlalchemy_writes(tmp_path: Path) -> None:
    """SQLAlchemy itself as the oracle: its DDL for the equivalent models, and the forms it stores."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    metadata = sa.MetaData()
    customers = sa.Table("customers", metadata, sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("email", sa.String(120), nullable=False, unique=True),
                         sa.Column("created_at", sa.DateTime, nullable=False))
    orders = sa.Table("orders", metadata, sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("public_id", sa.String(36), nullable=False, unique=True),
                      sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False, index=True),
                      sa.Column("total", sa.Numeric(12, 2), nullable=False),
                      sa.Column("status", sa.String(20), nullable=False),
                      sa.Column("created_at", sa.DateTime, nullable=False),
                      sa.Column("paid", sa.Boolean, nullable=False), sa.Column("note", sa.String(200)))
    sources = sa.Table("sources", metadata, sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("name", sa.String(50), nullable=False))
    events = sa.Table("events", metadata, sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
                      sa.Column("kind", sa.String(30), nullable=False), sa.Column("payload", sa.JSON, nullable=False),
                      sa.Column("created_at", sa.DateTime, nullable=False))
    dialect = sqlite.dialect()
    statements: list[CreateTable | CreateIndex] = []
    for table in (customers, orders, sources, events):
        statements += [CreateTable(table), *(CreateIndex(index) for index in table.indexes)]
    expected = {re.sub(r"\s+", " ", str(statement.compile(dialect=dialect))).strip() for statement in statements}
    generated = generate(tmp_path / "g.db", 300, ("sqlalchemy", "json"))
    assert _statements(generated, "customers", "orders", "sources", "events") == expected

    # What SQLAlchemy stores: write through it, then read SQLite's raw values.
    written = tmp_path / "sqlalchemy.db"
    engine = sa.create_engine(f"sqlite:///{written}")
    metadata.create_all(engine)
    with engine.begin() as session:
        session.execute(customers.insert(), [{"id": 1, "email": "a@b", "created_at": datetime(2024, 1, 2, 3, 4, 5)}])
        session.execute(orders.insert(), [
            {"id": n, "public_id": str(uuid.uuid4()), "customer_id": 1, "total": Decimal(total), "status": "new",
             "created_at": datetime(2024, 1, 2, 3, 4, 5, n), "paid": n % 2 == 0}
            for n, total in ((1, "12.50"), (2, "12.00"))])
        session.execute(sources.insert(), [{"id": 1, "name": "s"}])
        session.execute(events.insert(), [{"id": 1, "source_id": 1, "kind": "k", "payload": {"a": [1, None], "é": 1},
                                              "created_at": datetime(2024, 1, 2)}])
    engine.dispose()

    def forms(path: Path) -> tuple[set[str], set[str]]:
        with sqlite3.connect(path) as connection:
            return ({r[0] for r in connection.execute("SELECT DISTINCT typeof(total) FROM orders")},
                    {re.sub(r"\d", "9", r[0]) for r in connection.execute("SELECT created_at FROM orders")})

    stored, ours = forms(written), forms(generated)
    assert stored[0] == ours[0] == {"real", "integer"}
    assert stored[1] == ours[1] == {"9999-99-99 99:99:99.999999"}
    with sqlite3.connect(written) as raw:  # json.dumps' defaults: ", " and ": ", non-ASCII escaped
        assert raw.execute("SELECT payload FROM events").fetchone() == ('{"a": [1, null], "\\u00e9": 1}',)
    with sqlite3.connect(generated) as raw:
        assert raw.execute("SELECT count(*) FROM events WHERE payload LIKE '{\"seq\": %, \"user\": {\"id\": %'"
                           ).fetchone() == (300,)


DJANGO_MODELS = '''
import json, sys, uuid
from datetime import datetime, timezone
from decimal import Decimal
import django
from django.conf import settings
settings.configure(DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
                   INSTALLED_APPS=[], USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
django.setup()
from django.db import connection, models

class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    joined = models.DateTimeField()
    class Meta:
        app_label = "shop"

class Order(models.Model):
    uuid = models.UUIDField(unique=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    created = models.DateTimeField()
    paid = models.BooleanField()
    metadata = models.JSONField()
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    class Meta:
        app_label = "shop"

with connection.schema_editor() as editor:
    editor.create_model(Customer)
    editor.create_model(Order)
customer = Customer.objects.create(name="n", email="e@x", joined=datetime(2024, 1, 2, tzinfo=timezone.utc))
for micro, total in ((0, "12.00"), (123, "12.50")):
    Order.objects.create(uuid=uuid.uuid4(), total=Decimal(total), paid=True, metadata={"a": [1, None]},
                         created=datetime(2024, 1, 2, 3, 4, 5, micro, tzinfo=timezone.utc), customer=customer)
'''


def test_django_shape_is_what_django_writes(tmp_path: Path) -> None:
    """Django 5 itself as the oracle (in a process of its own: settings are global): its schema
    editor's DDL for the equivalent models and the forms it stores."""
    written = tmp_path / "django.db"
    completed = subprocess.run([sys.executable, "-c", DJANGO_MODELS, str(written)], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    generated = generate(tmp_path / "g.db", 300, ("django",))
    assert _statements(generated, "shop_customer", "shop_order") == _statements(written, "shop_customer", "shop_order")

    def forms(path: Path) -> tuple[set[str], set[str], set[int]]:
        with sqlite3.connect(path) as connection:
            return ({r[0] for r in connection.execute("SELECT DISTINCT typeof(total) FROM shop_order")},
                    {re.sub(r"\d", "9", r[0]) for r in connection.execute("SELECT created FROM shop_order")},
                    {len(r[0]) for r in connection.execute("SELECT uuid FROM shop_order")})

    stored, ours = forms(written), forms(generated)
    assert stored[0] == ours[0] == {"real", "integer"}
    assert stored[1] == {"9999-99-99 99:99:99", "9999-99-99 99:99:99.999999"} and stored[1] >= ours[1]
    assert stored[2] == ours[2] == {32}


def test_report_counts_sum_the_tables_and_say_when_lanes_are_not_counted(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"tables": [
        {"rows_written": 10, "rows_rejected": 1, "rows_columnar": 8}, {"rows_written": 5, "rows_rejected": 0,
                                                                     "rows_columnar": 0}]}))
    assert report_counts(report) == ReportCounts(written=15, rejected=1, columnar=8)
    report.write_text(json.dumps({"tables": [{"rows_written": 10, "rows_rejected": 0}]}))
    assert report_counts(report) == ReportCounts(written=10, rejected=0, columnar=None)
    assert report_counts(tmp_path / "none.json") is None
    # A report that counts both lanes: the share is of the rows written by lane.
    report.write_text(json.dumps({"tables": [{"rows_written": 10, "rows_rejected": 0, "rows_columnar": 3,
                                              "rows_exact": 1}]}))
    counts = report_counts(report)
    assert counts == ReportCounts(written=10, rejected=0, columnar=3, exact=1)
    assert Measurement(1.0, 1.0, 10, True, None, 10, 3, 0, 1).columnar_percent == 75.0
    assert Measurement(1.0, 1.0, 10, True, None, 10, 3, 0).columnar_percent == 30.0


def test_a_bench_stopped_by_sigterm_kills_the_process_it_measures(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    measured = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    bench = ("import sys\nfrom pathlib import Path\nfrom copier.bench import run_measured, stopped_by_sigterm\n"
             "with stopped_by_sigterm():\n"
             f"    run_measured([sys.executable, '-c', {measured!r}], Path({str(tmp_path / 'log')!r}))")
    process = subprocess.Popen([sys.executable, "-c", bench], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and process.poll() is None, "the measured process never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0 and b"KeyboardInterrupt" in stderr
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left sleeping
        os.kill(child, 0)


def test_bench_byte_compiles_copier_as_an_install_does() -> None:
    """The measured processes read compiled modules, as an installed copier does, even
    under PYTHONDONTWRITEBYTECODE (which only stops Python writing them)."""
    import importlib.util

    package = Path(bench.__file__).resolve().parents[1]
    bench.byte_compile()
    for module in ("cli.py", "arrowlane.py", "bench/methods.py"):
        compiled = Path(importlib.util.cache_from_source(str(package / module)))
        assert compiled.exists() and compiled.stat().st_mtime >= (package / module).stat().st_mtime, compiled
