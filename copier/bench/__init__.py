"""`copier bench`: copier against the physical limit and the alternatives, on the same file,
in one run. Every method runs in its own process, in a fresh database, `runs` times; the
table reports medians. Nothing here asserts a speed: it measures and reports."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
import asyncpg

from .. import ddl
from ..errors import UsageError
from ..settings import Settings
from .chart import line_chart
from .data import generate, spoiled_copy

METHODS = ("ceiling", "copier", "copier-verified", "copier-existing", "copier-truncate", "copier-append-rerun",
           "copier-bad-rows", "duckdb", "duckdb+keys", "pgloader")
# Methods that load into a target prepared before the clock starts (issues 21 and 24): what
# each prepares, untimed, is in _prepare; what is timed, in _command.
INTO_PLANNED_SCHEMA = ("copier-existing", "copier-truncate", "copier-bad-rows")
INTO_LOADED_TARGET = ("copier-truncate", "copier-append-rerun")
SWEEPABLE = ("batch_size", "readers", "jobs", "workers")


@dataclass
class Measurement:
    wall: float
    peak_rss_mb: float
    rows: int
    ok: bool
    error: str | None = None
    # From copier's --report (None for the other tools): rows it wrote, of those the columnar
    # lane's, and rows it refused (to the reject file).
    rows_written: int | None = None
    rows_columnar: int | None = None
    rows_rejected: int | None = None
    rows_exact: int | None = None  # when the report counts the exact lane's rows too

    @property
    def columnar_percent(self) -> float | None:
        """Of the rows this run wrote by lane (both lanes' counts when the report has them,
        else all rows written), the columnar lane's share."""
        if self.rows_columnar is None:
            return None
        by_lane = self.rows_written if self.rows_exact is None else self.rows_columnar + self.rows_exact
        return 100 * self.rows_columnar / by_lane if by_lane else None


@dataclass
class Result:
    method: str
    label: str
    params: dict[str, int] = field(default_factory=dict)
    runs: list[Measurement] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        """The highest of the runs: memory is a bound, not an average."""
        return max(r.peak_rss_mb for r in self.runs)

    @property
    def columnar_percent(self) -> float | None:
        shares = [p for p in (r.columnar_percent for r in self.runs) if p is not None]
        return statistics.median(shares) if shares else None


def parse_sweep(text: str | None, name: str) -> list[int]:
    """'1000,5000,20000' -> [1000, 5000, 20000]; one value is no sweep."""
    if not text:
        return []
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--{name.replace('_', '-')} takes whole numbers separated by commas, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"--{name.replace('_', '-')} values must be at least 1, got {text!r}")
    return values


# --- measuring a process -------------------------------------------------------------------


def _tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (workers count too)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_measured(command: Sequence[str], log: Path) -> tuple[float, float, int]:
    """(wall seconds, peak resident MB of the process tree, exit code).

    The tree is sampled every 100 ms (a scan of /proc, kept rare so as not to slow what it
    measures): wait4's ru_maxrss would count the pages the child
    shared with this process between fork and exec."""
    with log.open("wb") as output:
        started = time.perf_counter()
        # A process group of its own, so that a bench stopped midway kills the whole tree it measures.
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(process.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _pid, status = os.waitpid(process.pid, 0)
        except BaseException:  # Ctrl-C, or SIGTERM through stopped_by_sigterm
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        finally:
            wall = time.perf_counter() - started
            done.set()
            sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    return wall, peak / 2**20, process.returncode


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (a `timeout`, a CI runner) stops the bench as Ctrl-C does, as KeyboardInterrupt:
    the measured process tree is killed and the bench's databases are dropped, not left behind."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signals
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the server and its databases ------------------------------------------------------------


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def pgloader_url(dsn: str) -> str:
    """pgloader spells a unix socket as host unix:/dir; it ignores ?host=."""
    parts = urlsplit(dsn)
    socket_dir = dict(parse_qsl(parts.query)).get("host", "")
    if socket_dir.startswith("/"):
        user = parts.username or "postgres"
        return f"postgresql://{user}@unix:{socket_dir}:{parts.port or 5432}{parts.path}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def execute(dsn: str, sql: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a pool's)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _count_rows(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        total = 0
        for schema, table in await connection.fetch(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'copier', "
                "'information_schema') AND tablename NOT LIKE '\\_copier%'"):
            total += await connection.fetchval(f'SELECT count(*) FROM "{schema}"."{table}"')
        return int(total)
    finally:
        await connection.close()


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"copier_bench_{uuid.uuid4().hex[:8]}"
    anyio.run(execute, server, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server, name)
    finally:
        anyio.run(execute, server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the methods ---------------------------------------------------------------------------


def copier_command(source: Path, dsn: str, params: dict[str, int], *, verify: bool = False,
                   if_exists: str | None = None, files: Path | None = None) -> list[str]:
    """`copier migrate` as measured; `files`: the stem of its --report and --reject-file (kept
    out of the data directory, where the reject file would otherwise go, beside the source)."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in sorted(params.items())]
    if if_exists:
        flags += ["--if-exists", if_exists]
    if files is not None:
        flags += ["--report", f"{files}.report.json", "--reject-file", f"{files}.rejects.jsonl"]
    return [sys.executable, "-m", "copier", "migrate", str(source), "--dsn", dsn, "--quiet",
            "--verify" if verify else "--no-verify", *flags]


@dataclass(frozen=True)
class ReportCounts:
    """What one copier run's --report says it did, summed over its tables; `columnar` and
    `exact` are None when the report does not count that lane's rows."""

    written: int
    rejected: int
    columnar: int | None
    exact: int | None = None


def report_counts(path: Path) -> ReportCounts | None:
    """None when the run wrote no report (another tool, or copier stopped before writing it)."""
    try:
        tables = json.loads(path.read_text())["tables"]
    except (OSError, ValueError, KeyError, TypeError):
        return None

    def total(key: str) -> int:
        return sum(int(t.get(key) or 0) for t in tables)

    def counted(key: str) -> int | None:
        return total(key) if any(key in t for t in tables) else None

    return ReportCounts(total("rows_written"), total("rows_rejected"), counted("rows_columnar"), counted("rows_exact"))


def planned_schema_sql(source: Path) -> str:
    """The DDL `copier plan --sql` prints for the source: the schema an ORM's migrations would
    have made (tables, primary keys, indexes, foreign keys), for the methods that load into one."""
    completed = subprocess.run([sys.executable, "-m", "copier", "plan", str(source), "--sql"],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise UsageError(f"copier plan --sql failed on {source}: {completed.stderr.strip()[-300:]}")
    return completed.stdout


def _prepare(method: str, source: Path, dsn: str, params: dict[str, int], schema_sql: str | None,
             stem: Path) -> str | None:
    """The untimed part of a method (issues 21 and 24), in its fresh database: the schema made by
    `copier plan --sql`, and for a rerun the first full load. Returns an error, or None."""
    if method in INTO_PLANNED_SCHEMA:
        assert schema_sql is not None
        anyio.run(execute, dsn, schema_sql)
    if method in INTO_LOADED_TARGET:
        first = copier_command(source, dsn, params, files=stem.with_name(stem.name + "-first"),
                               if_exists="append" if method in INTO_PLANNED_SCHEMA else None)
        completed = subprocess.run(first, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if completed.returncode not in (0, 3):
            return f"the first load (untimed) exited {completed.returncode}: {completed.stderr.strip()[-300:]}"
    return None


def pgloader_command(source: Path, dsn: str, workdir: Path) -> list[str] | None:
    binary = shutil.which("pgloader")
    if binary is None:
        return None
    load = workdir / "pgloader.load"
    # Without the cast pgloader reads an integer in a DATETIME column as a year and fails
    # the table; with it the rows arrive as copier loads them.
    load.write_text(
        f"LOAD DATABASE\n  FROM sqlite://{source}\n  INTO {pgloader_url(dsn)}\n"
        "  WITH include drop, create tables, create indexes, reset sequences\n"
        "  CAST column transactions.created_at to timestamptz using unix-timestamp-to-timestamptz;\n")
    return [binary, "--quiet", str(load)]


def duckdb_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in
               ("duckdb", "duckdb_extension_sqlite_scanner", "duckdb_extension_postgres_scanner"))


async def _prepare_ceiling(source: Path, server: str, workdir: Path) -> Path:
    """Load once with copier, export each table with binary COPY TO, and write the manifest."""
    from ..pipeline import make_plan, migrate

    manifest = workdir / "ceiling.json"
    name = f"copier_bench_export_{uuid.uuid4().hex[:8]}"
    await execute(server, f'CREATE DATABASE "{name}"')
    try:
        dsn = with_database(server, name)
        settings = Settings(dsn=dsn, quiet=True, verify=False)
        await migrate(source, settings)
        plan = await make_plan(source, Settings(dsn=dsn, schema="ceiling"), None)
        connection = await asyncpg.connect(dsn)
        try:
            tables: list[dict[str, str]] = []
            for table in plan.tables:
                path = workdir / f"{len(tables)}.copy"
                await connection.copy_from_table(table.target, output=str(path), format="binary")
                tables.append({"name": table.target, "ddl": ddl.create_table("ceiling", table), "file": str(path)})
        finally:
            await connection.close()
        manifest.write_text(json.dumps({"schema": "ceiling", "tables": tables}))
        return manifest
    finally:
        await execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def byte_compile() -> None:
    """Compile copier's modules, as installing its wheel does. Else an editable install run
    under PYTHONDONTWRITEBYTECODE compiles them again in every measured process, copier's
    and the other methods' (which import copier.bench): 0.15 s of CPU a run of copier that
    no installed copier pays (benchmarks/README.md)."""
    import compileall

    compileall.compile_dir(Path(__file__).resolve().parents[1], quiet=2)


async def _prepare_keys(source: Path, workdir: Path) -> Path:
    """The primary keys, indexes and foreign keys copier builds for this source, as SQL for
    duckdb+keys to run after DuckDB's load, so that both do the same work."""
    from ..pipeline import plan as make_plan

    plan = await make_plan(source, Settings(dsn=""), against_target=False)
    statements = [ddl.add_primary_key(plan.schema, t) for t in plan.tables if t.primary_key]
    statements += [ddl.create_index(plan.schema, t, i) for t in plan.tables for i in t.indexes]
    statements += [ddl.add_foreign_key(plan.schema, fk) for fk in plan.foreign_keys]
    path = workdir / "keys.json"
    path.write_text(json.dumps(statements))
    return path


# --- the run -------------------------------------------------------------------------------


@dataclass
class BenchPlan:
    rows: int
    shapes: tuple[str, ...]
    runs: int
    methods: tuple[str, ...]
    base: dict[str, int]
    sweeps: dict[str, list[int]]
    out: Path
    data_dir: Path
    bad_rows: int | None = None  # copier-bad-rows' spoiled rows per big table; default 2 % of rows

    @property
    def spoiled_rows(self) -> int:
        return self.bad_rows if self.bad_rows is not None else max(2, self.rows // 50)


def run_bench(plan: BenchPlan, server: str, echo: object = print) -> dict[str, object]:
    say = echo if callable(echo) else print
    plan.out.mkdir(parents=True, exist_ok=True)
    plan.data_dir.mkdir(parents=True, exist_ok=True)
    source = (plan.data_dir / f"{'-'.join(plan.shapes)}-{plan.rows}.db").resolve()
    if not source.exists():
        say(f"generating {source} ({plan.rows:,} rows)...")
        generate(source, plan.rows, plan.shapes)
    spoiled = None
    if "copier-bad-rows" in plan.methods:
        spoiled = source.with_name(f"{source.stem}-bad{plan.spoiled_rows}.db")
        if not spoiled.exists():
            say(f"spoiling {plan.spoiled_rows:,} rows of each big table into {spoiled}...")
            spoiled_copy(source, spoiled, plan.shapes, plan.spoiled_rows)
    workdir = Path(tempfile.mkdtemp(prefix="copier-bench-"))
    results: list[Result] = []
    schema_sql: dict[Path, str] = {}
    try:
        candidates: list[tuple[str, str, dict[str, int]]] = []
        for method in plan.methods:
            if method == "copier":
                candidates.append(("copier", "copier", dict(plan.base)))
                for name, values in plan.sweeps.items():
                    for value in values:
                        params = {**plan.base, name: value}
                        candidates.append(("copier", f"copier {name}={value}", params))
            else:
                candidates.append((method, method, {}))
        manifest = None
        if "ceiling" in plan.methods:
            say("exporting the rows for the ceiling (binary COPY TO)...")
            manifest = anyio.run(_prepare_ceiling, source, server, workdir)
        keys = anyio.run(_prepare_keys, source, workdir) if "duckdb+keys" in plan.methods else None
        byte_compile()
        for method, label, params in candidates:
            result = Result(method, label, params)
            data = spoiled if method == "copier-bad-rows" and spoiled else source
            source_total = source_rows(data)
            if method in INTO_PLANNED_SCHEMA and data not in schema_sql:
                schema_sql[data] = planned_schema_sql(data)
            for run in range(plan.runs):
                with fresh_database(server) as dsn:
                    stem = workdir / f"{label.replace(' ', '_')}-{run}"
                    command = _command(method, data, dsn, params, manifest, workdir, keys, stem)
                    if command is None:
                        break
                    problem = _prepare(method, data, dsn, params, schema_sql.get(data), stem)
                    log = stem.with_suffix(".log")
                    wall, rss, code = (0.0, 0.0, -1) if problem else run_measured(command, log)
                    rows = anyio.run(_count_rows, dsn)
                    counts = report_counts(Path(f"{stem}.report.json"))
                    ok = problem is None and code in (0, 3) and _complete(method, rows, source_total, counts)
                    error = problem or (None if ok else f"exit {code}, {rows:,} rows: "
                                        + log.read_text(errors="replace")[-300:])
                    result.runs.append(Measurement(wall, rss, rows, ok, error) if counts is None else
                                       Measurement(wall, rss, rows, ok, error, counts.written, counts.columnar,
                                                   counts.rejected, counts.exact))
                    share = result.runs[-1].columnar_percent
                    lanes = "" if share is None else f"  {share:.0f} % columnar"
                    say(f"  {label:<28} run {run + 1}: {wall:7.2f} s  {rss:7.1f} MB  {rows:,} rows{lanes}"
                        + ("" if ok else f"  FAILED ({error.splitlines()[0] if error else code})"))
            if result.runs:
                results.append(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = _report(plan, source, results, server)
    (plan.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, values in plan.sweeps.items():
        points = [(v, r) for v in values for r in results if r.label == f"copier {name}={v}" and r.ok]
        if points:
            references = {r.label: report_rows_per_second(r, report) for r in results
                          if r.method in ("ceiling", "duckdb") and r.ok}
            svg = line_chart(title=f"copier rows/s by --{name.replace('_', '-')} ({plan.rows:,} rows)",
                             x_label=f"--{name.replace('_', '-')}", y_label="rows/s",
                             points=[(str(v), report_rows_per_second(r, report)) for v, r in points],
                             references=references)
            (plan.out / f"sweep-{name}.svg").write_text(svg)
    return report


def _complete(method: str, rows: int, source_total: int, counts: ReportCounts | None) -> bool:
    """Whether the target holds what the method should have left there: every source row once;
    for copier-bad-rows, every row that is not refused, with the refused ones in the reject
    file (loaded + rejected = the source, and at least one row refused)."""
    if method == "copier-bad-rows":
        return counts is not None and counts.rejected > 0 and rows + counts.rejected == source_total
    return rows == source_total


def report_rows_per_second(result: Result, report: dict[str, object]) -> float:
    total = int(report["data"]["rows_total"])  # type: ignore[index]
    return total / result.wall


def _command(method: str, source: Path, dsn: str, params: dict[str, int], manifest: Path | None,
             workdir: Path, keys: Path | None = None, files: Path | None = None) -> list[str] | None:
    if method == "copier":
        return copier_command(source, dsn, params, files=files)
    if method == "copier-verified":  # the default run: the load, then verify
        return copier_command(source, dsn, params, verify=True, files=files)
    if method in ("copier-existing", "copier-append-rerun", "copier-bad-rows"):  # into what _prepare made
        return copier_command(source, dsn, params, if_exists="append", files=files)
    if method == "copier-truncate":
        return copier_command(source, dsn, params, if_exists="truncate", files=files)
    if method == "ceiling":
        assert manifest is not None
        return [sys.executable, "-m", "copier.bench.methods", "ceiling", dsn, str(manifest)]
    if method == "duckdb":
        if not duckdb_available():
            return None
        return [sys.executable, "-m", "copier.bench.methods", "duckdb", str(source), dsn]
    if method == "duckdb+keys":  # DuckDB's load, then the keys copier builds: the same work
        if not duckdb_available():
            return None
        assert keys is not None
        return [sys.executable, "-m", "copier.bench.methods", "duckdb+keys", str(source), dsn, str(keys)]
    if method == "pgloader":
        return pgloader_command(source, dsn, workdir)
    raise UsageError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def _tables(source: Path) -> list[str]:
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as connection:
        return [r[0] for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]


def source_rows(source: Path) -> int:
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as connection:
        return sum(connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in _tables(source))


def _report(plan: BenchPlan, source: Path, results: list[Result], server: str) -> dict[str, object]:
    tables = _tables(source)
    rows_total = source_rows(source)
    size_mb = source.stat().st_size / 2**20
    by_label = {r.label: r for r in results}

    def ratio(result: Result, baseline: str) -> float | None:
        """Median wall time over the baseline's median, both measured in this run."""
        reference = by_label.get(baseline)
        return round(result.wall / reference.wall, 2) if reference and reference.ok and result.ok else None

    rows = []
    for result in results:
        columnar = result.columnar_percent
        rows.append({
            "method": result.method, "label": result.label, "params": result.params, "ok": result.ok,
            "wall_seconds_median": round(result.wall, 3), "wall_seconds": [round(r.wall, 3) for r in result.runs],
            "rows_per_second": round(rows_total / result.wall) if result.wall else 0,
            "mb_per_second": round(size_mb / result.wall, 1) if result.wall else 0.0,
            "peak_rss_mb": round(result.peak_rss_mb, 1),
            "rows_loaded": [r.rows for r in result.runs],
            "rows_written": [r.rows_written for r in result.runs],
            "rows_columnar": [r.rows_columnar for r in result.runs],
            "rows_rejected": [r.rows_rejected for r in result.runs],
            "rows_columnar_percent": None if columnar is None else round(columnar, 1),
            "ratio_to_ceiling": ratio(result, "ceiling"),
            "ratio_to_duckdb": ratio(result, "duckdb"),
            "ratio_to_duckdb_keys": ratio(result, "duckdb+keys"),
            "errors": [r.error for r in result.runs if r.error],
        })
    version = anyio.run(_server_version, server)
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": version,
                    "platform": platform.platform()},
        "data": {"shapes": list(plan.shapes), "rows": plan.rows, "rows_total": rows_total,
                 "file_mb": round(size_mb, 1), "tables": tables,
                 "bad_rows": plan.spoiled_rows if "copier-bad-rows" in plan.methods else None},
        "runs": plan.runs, "base_flags": plan.base, "results": rows,
    }


async def _server_version(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def render_table(report: dict[str, object]) -> str:
    header = ("method", "wall s", "rows/s", "peak RSS MB", "rows columnar %", "x ceiling", "x duckdb",
              "x duckdb+keys", "ok")
    lines = [header]

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for r in report["results"]:  # type: ignore[attr-defined]
        lines.append((r["label"], f"{r['wall_seconds_median']:.2f}", f"{r['rows_per_second']:,}",
                      f"{r['peak_rss_mb']:.0f}", number(r.get("rows_columnar_percent"), 0),
                      number(r["ratio_to_ceiling"], 2), number(r["ratio_to_duckdb"], 2),
                      number(r.get("ratio_to_duckdb_keys"), 2), "yes" if r["ok"] else "NO"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = ["  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:]))]) for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


__all__ = ["BenchPlan", "run_bench", "render_table", "parse_sweep", "asdict"]
