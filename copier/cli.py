"""The command line: flags -> Settings -> pipeline; errors -> one line and an exit code."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import typer
import typer.core

from . import __version__
from .distribution import placement_of
from .dsn import describe, with_endpoint
from .errors import CopierError, ExitCode, UsageError
from .lanes import Lane
from .planning import MigrationPlan, TablePlan
from .settings import (
    Generated,
    Identifiers,
    IfExists,
    OnError,
    Settings,
    dsn_given,
    dsn_source,
    parse_casts,
    redact,
    redact_text,
)

# Every flag's default is the Settings field's: stated once, there.
_DEFAULTS = Settings(dsn="")

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Move a whole SQLite database into PostgreSQL, fast, and prove nothing was lost.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"copier {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", "-V", help="Print copier's version and exit.", callback=_print_version,
        is_eager=True)] = False) -> None:
    """Move a whole SQLite database into PostgreSQL, fast, and prove nothing was lost."""

Source = Annotated[Path | None, typer.Argument(help="The SQLite database file (opened read-only).",
                                               show_default=False)]
Sqlite = Annotated[Path | None, typer.Option(
    "--sqlite", help="The SQLite database file, as a flag (the playbook's --sqlite FILE) instead of the argument.",
    show_default=False)]
Dsn = Annotated[str | None, typer.Option(
    "--dsn", help="Target PostgreSQL: a URL, an SQLAlchemy URL or a libpq key=value string. Default: the "
                  "first variable set of those below, else the PG* variables as psql reads them. "
                  "[env var: COPIER_DSN, DATABASE_URL, SQLALCHEMY_DATABASE_URI; PGHOST, PGPORT, PGUSER, "
                  "PGDATABASE, PGSERVICE]",
    show_default=False)]
# psql's own connection flags, on top of the DSN (as psql lets them override a connection string's).
Host = Annotated[str | None, typer.Option(
    "--host", "-h", help="Server host or socket directory, as psql's -h (default: the DSN's, $PGHOST, the local "
                         "socket).", show_default=False)]
Port = Annotated[int | None, typer.Option(
    "--port", "-p", help="Server port, as psql's -p (default: the DSN's, $PGPORT, 5432).", min=1, max=65535,
    show_default=False)]
Username = Annotated[str | None, typer.Option(
    "--username", "-U", help="User name, as psql's -U (default: the DSN's, $PGUSER, $USER).", show_default=False)]
Dbname = Annotated[str | None, typer.Option(
    "--dbname", "-d", help="Database name, or a whole connection string, as psql's -d (default: the DSN's, "
                           "$PGDATABASE, the user name).", show_default=False)]
Schema = Annotated[str, typer.Option(help="Target schema (created if missing).")]
Tables = Annotated[list[str] | None, typer.Option(
    "--tables", "-t", help="Only tables matching this glob; repeat for more.", metavar="GLOB", show_default=False)]
Exclude = Annotated[list[str] | None, typer.Option(
    "--exclude", "-T", help="Skip tables matching this glob; repeat for more.", metavar="GLOB", show_default=False)]
Casts = Annotated[list[str] | None, typer.Option(
    "--cast", help="Override the type mapping: TABLE.COLUMN=TYPE or DECLARED=TYPE, e.g. "
                   "--cast 'intege=text'. Repeatable.", metavar="KEY=TYPE", show_default=False)]
Distribute = Annotated[list[str] | None, typer.Option(
    "--distribute", help="Into a Citus cluster: create TABLE distributed on COLUMN (TABLE=COLUMN), co-located with "
                         "the tables distributed on a column of the same type; or auto: decide from the foreign "
                         "keys and row counts (plan explains each choice). Repeatable; a named table overrides "
                         "auto.", metavar="TABLE=COLUMN|auto", show_default=False)]
Reference = Annotated[list[str] | None, typer.Option(
    "--reference", help="Into a Citus cluster: create TABLE as a reference table (a copy on every node). "
                        "Repeatable.", metavar="TABLE", show_default=False)]
LaneOption = Annotated[Lane, typer.Option(
    "--lane", help="auto: Arrow batches (C reader, Rust encoder) for every row whose values the columnar lane "
                   "converts exactly as the per-value converters do, those converters for the rest and for "
                   "tables under 1,000 rows (cheaper there); columnar: as auto, small tables too; exact: the "
                   "per-value converters for every row.")]
SourceTz = Annotated[str, typer.Option(help="IANA time zone of naive timestamps in the source.")]
Idents = Annotated[Identifiers, typer.Option(
    "--identifiers", help="Names of the tables and columns copier creates: keep them as SQLite has them, lower "
                          "them (select ... from track works unquoted), or snake_case them (InvoiceId -> "
                          "invoice_id). Two names that fold to one stop the run before any data moves.")]
class ViewsMode(StrEnum):
    CREATE = "create"
    SKIP = "skip"


Views = Annotated[ViewsMode, typer.Option(
    "--views", help="create: each SQLite view, its SQL translated to PostgreSQL's, after the tables (those that "
                    "cannot be translated or that PostgreSQL refuses are listed with the reason); skip: none.")]
GeneratedOption = Annotated[Generated, typer.Option(
    "--generated", help="translate: each SQLite generated column of a created table becomes GENERATED ALWAYS AS "
                        "(...) STORED, left out of the load, where PostgreSQL accepts its translated expression and "
                        "computes SQLite's values for the first rows (else a plain column, with the reason); "
                        "plain: all plain columns holding SQLite's values.")]
StateSchema = Annotated[str, typer.Option(
    "--state-schema", help="Schema where copier records its progress (for --resume, status, clean), for a login "
                           "that cannot create one named copier.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text (for scripts).")]


# `--help` in panels, by what a flag is about; a flag not listed here stays under "Options".
_PANELS = {
    "Source": ("sqlite", "source_tz", "strip_nul", "snapshot", "skip_integrity_check", "busy_timeout",
               "allow_empty"),
    "Target": ("dsn", "host", "port", "username", "dbname", "embedded", "schema", "state_schema", "identifiers",
               "views", "generated", "if_exists", "truncate_cascade", "distribute", "reference", "lock_timeout"),
    "Tables": ("tables", "exclude", "cast"),
    "Speed": ("lane", "batch_size", "readers", "workers", "queue_depth", "jobs"),
    "Safety": ("on_error", "max_rejects", "reject_file", "verify", "resume", "force", "retries"),
    "Output": ("report", "as_json", "quiet", "debug", "help"),
}
_PANEL_OF = {name: panel for panel, names in _PANELS.items() for name in names}


class _Command(typer.core.TyperCommand):
    """A command whose --help groups its flags in panels (_PANELS) and shows no type
    placeholder for a flag that takes no value (typer would show <bool>)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
            if getattr(param, "rich_help_panel", None) is None and param.name in _PANEL_OF:
                param.rich_help_panel = _PANEL_OF[param.name]
        return params


def _settings(dsn: str, **values: object) -> Settings:
    return Settings(dsn=dsn, **values)  # type: ignore[arg-type]


def _fail(exc: CopierError, debug: bool, dsn: str | None) -> None:
    message = str(exc)
    if dsn:
        message = redact_text(message, dsn)
    if debug:
        import traceback

        text = "".join(traceback.format_exception(exc))
        typer.echo(redact_text(text, dsn) if dsn else text, err=True)
    typer.echo(f"copier: error: {message}", err=True)
    raise typer.Exit(int(exc.exit_code))


def _connection(dsn: str | None, host: str | None, port: int | None, username: str | None,
                dbname: str | None) -> tuple[str, str]:
    """The target's URL and where it came from: --dsn, a variable or libpq's defaults, with
    psql's -h/-p/-U/-d on top. A -d holding a connection string stands for --dsn, as in psql."""
    origin = "--dsn"
    if dbname is not None and ("=" in dbname or "://" in dbname):
        if dsn:
            raise UsageError("-d holds a connection string, and --dsn another", hint="give one")
        dsn, dbname, origin = dbname, None, "-d"
    url, found_in = dsn_source(dsn)
    flags = [flag for flag, value in (("-h", host), ("-p", port), ("-U", username), ("-d", dbname)) if value]
    if flags:
        url = with_endpoint(url, host=host, port=port, user=username, dbname=dbname)
        found_in = " ".join(flags) if found_in == "libpq's defaults" else f"{found_in} with {' '.join(flags)}"
    return url, found_in.replace("--dsn", origin)


def _say_target(url: str, origin: str, schema: str | None, quiet: bool = False, err: bool = False,
                probe: bool = False) -> None:
    """The first line of a command that touches PostgreSQL: where, and where that came from
    (on stderr when stdout carries JSON); with `probe`, whether it is a Citus cluster.
    Never the password."""
    if not quiet:
        where = describe(url, os.environ)
        cluster = _citus_of(url) if probe else None
        typer.echo(f"target: {where}" + (f", schema {schema}" if schema else "") + (f", {cluster}" if cluster else "")
                   + f" (from {origin})", err=err)


def _citus_of(dsn: str) -> str | None:
    """`Citus 13.2-1, 2 workers` for a Citus target; None when it is not one, or cannot be
    reached within 5 s (the command itself then says why)."""
    from . import target

    async def probe() -> str | None:
        with anyio.move_on_after(5):
            async with target.connected(dsn) as connection:
                return await target.citus(connection)
        return None

    try:
        return anyio.run(probe)
    except Exception:  # unreachable, refused: the command's own connection reports it
        return None


def _one_source(argument: Path | None, flag: Path | None) -> Path:
    """SOURCE as the argument or as --sqlite, exactly one of them."""
    if argument is not None and flag is not None and argument != flag:
        raise UsageError(f"two SQLite files given: {argument} and --sqlite {flag}", hint="give one")
    chosen = argument or flag
    if chosen is None:
        raise UsageError("no SQLite file given", hint="copier migrate FILE.db (or --sqlite FILE.db)")
    return chosen


def _internal(exc: Exception, debug: bool, dsn: str | None) -> None:
    if debug:
        import traceback

        text = "".join(traceback.format_exception(exc))
        typer.echo(redact_text(text, dsn) if dsn else text, err=True)
    from .faults import out_of_memory

    memory = out_of_memory(exc)
    if memory:  # not a bug: what ran out, and what to lower
        typer.echo(f"copier: error: {memory}", err=True)
        raise typer.Exit(int(ExitCode.FAILED))
    message = f"{type(exc).__name__}: {exc}"
    typer.echo(f"copier: internal error: {redact_text(message, dsn) if dsn else message} "
               "(rerun with --debug for details)", err=True)
    raise typer.Exit(int(ExitCode.FAILED))


@app.command(cls=_Command)
def migrate(
    source: Source = None,
    sqlite: Sqlite = None,
    dsn: Dsn = None,
    host: Host = None,
    port: Port = None,
    username: Username = None,
    dbname: Dbname = None,
    schema: Schema = _DEFAULTS.schema,
    identifiers: Idents = _DEFAULTS.identifiers,
    views: Views = ViewsMode.CREATE,
    generated: GeneratedOption = _DEFAULTS.generated,
    state_schema: StateSchema = _DEFAULTS.state_schema,
    embedded: Annotated[bool, typer.Option(
        "--embedded", help="Migrate into a local PostgreSQL copier starts (no server needed; kept between runs; "
                           "see copier embedded). Needs pip install 'sqlite2pg-copier\\[embedded]'.")] = False,
    tables: Tables = None,
    exclude: Exclude = None,
    if_exists: Annotated[IfExists, typer.Option(
        help="When a target table that already exists holds rows: fail; truncate every table loaded into (one "
             "TRUNCATE); append; or upsert (rows whose primary key is there are updated, the others inserted).")]
    = _DEFAULTS.if_exists,
    truncate_cascade: Annotated[bool, typer.Option(
        "--truncate-cascade", help="With --if-exists truncate: also empty the tables outside this migration that "
                                   "reference the ones it loads (TRUNCATE ... CASCADE).")] = False,
    on_error: Annotated[OnError, typer.Option(
        help="A row that cannot be loaded: reject it to the reject file and go on, or abort its table.")]
    = _DEFAULTS.on_error,
    max_rejects: Annotated[int | None, typer.Option(
        help="Fail a table (rolled back) once more than N of its rows are rejected.", min=0,
        show_default=False)] = None,
    reject_file: Annotated[Path | None, typer.Option(
        help="Where rejected rows go (JSON lines). Default: ./<source name>.rejects.jsonl",
        show_default=False)] = None,
    cast: Casts = None,
    distribute: Distribute = None,
    reference: Reference = None,
    batch_size: Annotated[int, typer.Option(
        help="Rows read, converted and sent to PostgreSQL at a time, in every lane: a page of the exact "
             "lane, an Arrow batch of the columnar lane, each one chunk of the table's COPY; fewer where "
             "rows are long (about 2 MB a batch).", min=1)] = _DEFAULTS.batch_size,
    lane: LaneOption = _DEFAULTS.lane,
    readers: Annotated[int, typer.Option(
        help="Concurrent SQLite readers feeding one COPY, for tables loaded in one process (a big table "
             "that already exists, in the columnar lane: at least --workers).",
        min=1)] = _DEFAULTS.readers,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes for a big table copier creates, each its own reader, converter and COPY "
             "stream. Default: the number of CPUs (at most 8).", min=1, show_default=False)] = None,
    queue_depth: Annotated[int, typer.Option(
        help="Pages buffered between readers and writer.", min=1)] = _DEFAULTS.queue_depth,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", help="Tables (or groups of small tables) loaded at once, and tables verified at once "
                             "(PostgreSQL connections each).", min=1)] = _DEFAULTS.jobs,
    source_tz: SourceTz = _DEFAULTS.source_tz,
    strip_nul: Annotated[bool, typer.Option(
        "--strip-nul", help="Remove NUL characters from text (PostgreSQL cannot store them) instead of "
                            "rejecting the row.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify",
        help="Compare row counts and every row's content with the source after the load.")] = True,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted run: tables it finished are kept, the others reloaded.")]
    = False,
    force: Annotated[bool, typer.Option(
        "--force", help="With --resume: resume even though the source or the plan changed since.")] = False,
    retries: Annotated[int, typer.Option(
        help="Retries of a table (from a clean start) after a transient failure: lost connection, server restart, "
             "deadlock, too many connections, the source written to while read.", min=0)] = _DEFAULTS.retries,
    snapshot: Annotated[bool, typer.Option(
        "--snapshot", help="First copy the source with SQLite's online backup API into a temporary file and "
                           "migrate from the copy (the app may keep writing).")] = False,
    skip_integrity_check: Annotated[bool, typer.Option(
        "--skip-integrity-check", help="Do not run PRAGMA quick_check on the source first.")] = False,
    allow_empty: Annotated[bool, typer.Option(
        "--allow-empty", help="A source without tables (or an empty, 0-byte file) migrates to nothing and exits 0, "
                              "instead of failing (a mistyped path opens as an empty database).")] = False,
    busy_timeout: Annotated[float, typer.Option(
        help="Seconds to wait for another process's lock on the source.", min=0)] = _DEFAULTS.busy_timeout,
    lock_timeout: Annotated[str | None, typer.Option(
        help="How long to wait for another session's lock on a target table (e.g. 5s, 500ms) before that "
             "table fails; by default copier waits, and names the session holding the lock.",
        show_default=False)] = None,
    report: Annotated[Path | None, typer.Option(
        help="Also write the summary, flags and totals as JSON here (- for stdout, as --json).",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report (summary, flags, totals) as JSON on stdout, and everything else on "
                       "stderr, for scripts.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars and no summary.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (passwords still redacted).")] = False,
) -> None:
    """Copy every table of SOURCE into PostgreSQL, then add keys, indexes, foreign keys and sequences."""
    from .pipeline import exit_code
    from .pipeline import migrate as run_migrate
    from .stats import render_summary
    from .worker import tune_gc

    # Stdout carries the JSON report alone (--json, --report -): every line for a person goes to stderr.
    reports = list(dict.fromkeys(r for r in (report, Path("-") if as_json else None) if r is not None))
    to_stdout = any(str(r) == "-" for r in reports)
    resolved: str | None = None
    try:
        source = _one_source(source, sqlite)
        if embedded:
            if dsn or host or port or username or dbname:
                raise UsageError("--embedded and --dsn (or -h/-p/-U/-d) both name a target", hint="give one")
            from .embedded import start

            dsn = start()
        resolved, origin = _connection(dsn, host, port, username, dbname)
        _say_target(resolved, "the embedded PostgreSQL; copier embedded psql" if embedded else origin, schema,
                    quiet, err=to_stdout, probe=True)
        settings = _settings(
            resolved, schema=schema, state_schema=state_schema, identifiers=identifiers,
            views=views is ViewsMode.CREATE, generated=generated,
            tables=tuple(tables or ()),
            exclude=tuple(exclude or ()), if_exists=if_exists, truncate_cascade=truncate_cascade, on_error=on_error,
            reject_file=reject_file, max_rejects=max_rejects, casts=parse_casts(cast or []),
            distribute=tuple(distribute or ()), reference=tuple(reference or ()),
            batch_size=batch_size, lane=lane, readers=readers, queue_depth=queue_depth, jobs=jobs, source_tz=source_tz,
            **({"workers": workers} if workers else {}),
            strip_nul=strip_nul, verify=verify, report=report, quiet=quiet, resume=resume, force=force,
            retries=retries, snapshot=snapshot, integrity_check=not skip_integrity_check, allow_empty=allow_empty,
            busy_timeout=busy_timeout, lock_timeout=lock_timeout)
        from .normalise import zone

        zone(source_tz)
        tune_gc()  # the command's own process; a library caller keeps its GC settings
        stats = anyio.run(run_migrate, source, settings)
    except CopierError as exc:
        _early_report(reports, source, resolved, exc.exit_code, str(exc))
        _fail(exc, debug, resolved)
        return
    except Exception as exc:  # a bug: still one line, traceback only with --debug
        _early_report(reports, source, resolved, ExitCode.FAILED, f"internal error: {type(exc).__name__}: {exc}")
        _internal(exc, debug, resolved)
        return
    # Failures reach stderr even with --quiet: a script must be able to tell what went wrong.
    for table in stats.tables.values():
        if table.error:
            typer.echo(f"copier: error: {table.name}: {table.error}", err=True)
    if quiet:  # without the summary, the problems it would list go to stderr
        for table in stats.tables.values():
            for warning in table.warnings:
                typer.echo(f"copier: warning: {table.name}: {warning}", err=True)
        for warning in stats.warnings:
            typer.echo(f"copier: warning: {warning}", err=True)
    if stats.interrupted:
        typer.echo(f"copier: interrupted by {stats.interrupted}: tables in flight were rolled back; "
                   "rerun with --resume to finish", err=True)
    if not quiet:
        typer.echo(render_summary(stats), err=to_stdout)
        rejected = sum(t.rejected for t in stats.tables.values())
        if rejected:
            typer.echo(f"\n{rejected:,} rejected row(s) written to {stats.reject_file}", err=to_stdout)
    code = exit_code(stats)
    for path in reports:
        _write_report(path, {
            "copier_version": __version__, "exit_code": int(code), "source": str(source),
            "target": redact(resolved), "flags": settings.public(),
            "tables": [t.as_dict() for t in stats.tables.values()], "totals": stats.totals(),
            "phases": {name: round(seconds, 3) for name, seconds in stats.phases.items()},
            "verified": stats.verified, "warnings": stats.warnings, "notes": stats.notes})
    raise typer.Exit(code)


def _write_report(report: Path, document: dict[str, object]) -> None:
    """--report FILE, or --report - for stdout."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if str(report) == "-":
        typer.echo(text, nl=False)
    else:
        report.write_text(text, encoding="utf-8")


def _early_report(reports: list[Path], source: Path | None, dsn: str | None, code: int, error: str) -> None:
    """A run that stops before any table loads still leaves its report: what stopped it."""
    for report in reports:
        _write_report(report, {"copier_version": __version__, "exit_code": int(code),
                               "source": str(source) if source else None,
                               "target": redact(dsn) if dsn else None,
                               "error": redact_text(error, dsn) if dsn else error})


@app.command(cls=_Command)
def plan(
    source: Source = None,
    sqlite: Sqlite = None,
    dsn: Dsn = None,
    host: Host = None,
    port: Port = None,
    username: Username = None,
    dbname: Dbname = None,
    schema: Schema = _DEFAULTS.schema,
    identifiers: Idents = _DEFAULTS.identifiers,
    views: Views = ViewsMode.CREATE,
    generated: GeneratedOption = _DEFAULTS.generated,
    tables: Tables = None,
    exclude: Exclude = None,
    cast: Casts = None,
    distribute: Distribute = None,
    reference: Reference = None,
    source_tz: SourceTz = _DEFAULTS.source_tz,
    lane: LaneOption = _DEFAULTS.lane,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    as_json: AsJson = False,
    as_sql: Annotated[bool, typer.Option(
        "--sql", help="Print the DDL migrate would run (tables, keys, indexes, foreign keys), to read or apply.")]
    = False,
) -> None:
    """Print the load waves and each table's column mapping; touches nothing.

    With a DSN, tables that already exist in the target are matched (load into them);
    without one, every table is planned as created.
    """

    resolved: str | None = None
    try:
        source = _one_source(source, sqlite)
        if dsn_given(dsn) or host or port or username or dbname:  # else planned offline, every table created
            resolved = _connection(dsn, host, port, username, dbname)[0]
        settings = _settings(resolved or "postgresql://", schema=schema, identifiers=identifiers,
                             views=views is ViewsMode.CREATE, generated=generated,
                             tables=tuple(tables or ()), exclude=tuple(exclude or ()), casts=parse_casts(cast or []),
                             distribute=tuple(distribute or ()), reference=tuple(reference or ()),
                             source_tz=source_tz, lane=lane)
        from .pipeline import plan as make_the_plan

        the_plan = anyio.run(partial(make_the_plan, source, settings, against_target=resolved is not None))
    except CopierError as exc:
        _fail(exc, debug, resolved)
        return
    except Exception as exc:  # a bug: still one line, traceback only with --debug
        _internal(exc, debug, resolved)
        return
    if as_json:
        from .planning import plan_document

        typer.echo(json.dumps(plan_document(the_plan), indent=2, ensure_ascii=False))
        return
    if as_sql:
        from .ddl import plan_sql

        typer.echo(plan_sql(the_plan), nl=False)
        return
    typer.echo(render_plan(the_plan))


def _set_aside_lines(the_plan: MigrationPlan, table: TablePlan) -> list[str]:
    """An existing table's indexes and constraints: dropped for the load and made again, or kept, and why."""
    for decision in the_plan.set_aside:
        if decision.table == table.target:
            if decision.kept_because:
                return [f"  indexes and constraints kept during the load: {decision.kept_because}"]
            return ["  dropped for the load and made again after it, same names:"] + [
                f"    {d.kind} {d.name}" + (f" on {d.schema}.{d.table}" if d.table != table.target else "")
                for d in decision.definitions]
    return []


def render_plan(the_plan: MigrationPlan) -> str:
    lines = [f"Target schema: {the_plan.schema}", ""]
    for number, wave in enumerate(the_plan.waves, 1):
        lines.append(f"Wave {number}: {', '.join(wave)}")
    for table in the_plan.tables:
        mode = "create" if table.create else "load into existing"
        after = f", after {', '.join(table.depends_on)}" if table.depends_on else ""
        lines += ["", f"{table.name} -> {the_plan.schema}.{table.target} ({mode}, "
                      f"{table.source.row_count:,} rows{after})"]
        for column in table.all_columns:
            extra = " identity" if column.identity else ""
            extra += " not null" if column.not_null and table.create else ""
            extra += f" default {column.default_sql}" if column.default_sql else ""
            extra += f" generated always as ({column.generated}) stored, computed by PostgreSQL" \
                if column.generated else ""
            lines.append(f"  {column.source:<24} {column.declared or '(none)':<18} -> "
                         f"{column.target} {column.type.sql}{extra}")
        if table.primary_key:
            name = f" {table.primary_key_name}" if table.primary_key_name else ""
            lines.append(f"  primary key{name} ({', '.join(table.primary_key)}) added after the data")
        for index in table.indexes:
            lines.append(f"  {'unique ' if index.unique else ''}index {index.name} ({', '.join(index.columns)})")
        lines.append(f"  lane: {table.lane.describe()}")
        lines += _set_aside_lines(the_plan, table)
        placement = placement_of(the_plan, table.name)
        if placement is not None:
            lines.append(f"  citus: {placement.describe()} ({placement.why})")
    if the_plan.foreign_keys:
        lines += ["", "Foreign keys, added after all tables:"]
        lines += [f"  {fk.name}: {fk.target}({', '.join(fk.columns)}) -> {fk.ref_target}({', '.join(fk.ref_columns)})"
                  for fk in the_plan.foreign_keys]
    if the_plan.translated:
        lines += ["", "From SQLite's SQL, translated to PostgreSQL's, made after the load if PostgreSQL accepts it:"]
        lines += [f"  {t.table}: {t.kind} {t.name}: {t.sql}" for t in the_plan.translated]
    if the_plan.views:
        lines += ["", "Views, translated to PostgreSQL's SQL, created after the tables if PostgreSQL accepts it:"]
        lines += [f"  {v.name} -> {the_plan.schema}.{v.target}" for v in the_plan.views]
    if the_plan.skipped:
        lines += ["", "Skipped:"] + [f"  {name}: {why}" for name, why in the_plan.skipped]
    if the_plan.notes:
        lines += ["", "Notes:"] + [f"  {note}" for note in the_plan.notes]
    return "\n".join(lines)


@app.command(cls=_Command)
def verify(
    source: Source = None,
    sqlite: Sqlite = None,
    dsn: Dsn = None,
    host: Host = None,
    port: Port = None,
    username: Username = None,
    dbname: Dbname = None,
    schema: Schema = _DEFAULTS.schema,
    identifiers: Idents = _DEFAULTS.identifiers,
    tables: Tables = None,
    exclude: Exclude = None,
    reject_file: Annotated[Path | None, typer.Option(
        help="The reject file of the migration: its rows are accounted for, not counted as missing. "
             "Default: ./<source name>.rejects.jsonl if it exists.", show_default=False)] = None,
    cast: Casts = None,
    source_tz: SourceTz = _DEFAULTS.source_tz,
    strip_nul: Annotated[bool, typer.Option("--strip-nul", help="The migration used --strip-nul.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    as_json: AsJson = False,
) -> None:
    """Compare every migrated table with the source: row counts and every row's content."""
    from .pipeline import verify as run_verify

    resolved: str | None = None
    try:
        source = _one_source(source, sqlite)
        resolved, origin = _connection(dsn, host, port, username, dbname)
        _say_target(resolved, origin, schema, quiet=as_json, probe=True)
        settings = _settings(resolved, schema=schema, identifiers=identifiers, tables=tuple(tables or ()),
                             exclude=tuple(exclude or ()), casts=parse_casts(cast or []), source_tz=source_tz,
                             strip_nul=strip_nul, reject_file=reject_file)
        checks = anyio.run(run_verify, source, settings)
    except CopierError as exc:
        _fail(exc, debug, resolved)
        return
    except Exception as exc:  # a bug: still one line, traceback only with --debug
        _internal(exc, debug, resolved)
        return
    bad = [c for c in checks if not c.ok]
    if as_json:
        typer.echo(json.dumps({"tables": [c.as_dict() for c in checks], "verified": len(checks) - len(bad),
                               "differ": len(bad)}, indent=2, ensure_ascii=False))
        raise typer.Exit(int(ExitCode.VERIFY if bad else ExitCode.OK))
    for check in checks:
        typer.echo(check.describe())
    typer.echo(f"\n{len(checks) - len(bad)} of {len(checks)} tables verified"
               + (f"; {len(bad)} differ" if bad else ""))
    raise typer.Exit(int(ExitCode.VERIFY if bad else ExitCode.OK))


@app.command(cls=_Command)
def bench(
    dsn: Dsn = None,
    rows: Annotated[int, typer.Option(help="Rows in the generated transactions (and wide/text) tables.", min=1)]
    = 1_000_000,
    shape: Annotated[list[str] | None, typer.Option(
        "--shape", help="Data shape: finance (accounts, transactions, splits), wide (60 columns), text, many "
                        "(ROWS/20 tables of 20 rows), or an app shape (one big table and its parent, as the tool "
                        "stores it): sqlalchemy, django, numeric, json, without-rowid, epoch-ms (Prisma), "
                        "mixed-dates, plain-finance. Repeatable. Default: finance.", metavar="SHAPE",
        show_default=False)] = None,
    runs: Annotated[int, typer.Option(help="Runs per method; the table shows medians.", min=1)] = 3,
    methods: Annotated[str, typer.Option(
        help="Comma-separated: ceiling, copier (--no-verify), copier-verified (the default run: load, then "
             "verify), copier-existing (--if-exists append into the schema `copier plan --sql` made), "
             "copier-truncate (--if-exists truncate into that schema, loaded), copier-append-rerun (--if-exists "
             "append into a loaded target), copier-bad-rows (copier-existing on a copy with --bad-rows bad rows), "
             "duckdb, duckdb+keys (DuckDB's load, then the keys, indexes and foreign keys copier "
             "builds), pgloader (the DuckDB and pgloader methods when installed).")]
    = "ceiling,copier,copier-verified,duckdb,duckdb+keys,pgloader",
    bad_rows: Annotated[int | None, typer.Option(
        "--bad-rows", help="For copier-bad-rows: rows of each big table made bad, half refused by their foreign "
                           "key, half unconvertible. Default: 2 % of --rows.", min=2, show_default=False)] = None,
    batch_size: Annotated[str | None, typer.Option(
        "--batch-size", help="copier's --batch-size; several comma-separated values sweep it.",
        show_default=False)] = None,
    readers: Annotated[str | None, typer.Option(help="copier's --readers, or a sweep.", show_default=False)] = None,
    jobs: Annotated[str | None, typer.Option(help="copier's --jobs, or a sweep.", show_default=False)] = None,
    workers: Annotated[str | None, typer.Option(help="copier's --workers, or a sweep.", show_default=False)]
    = None,
    out: Annotated[Path, typer.Option(help="Where bench.json and the sweep charts (SVG) go.")]
    = Path("copier-bench"),
    data_dir: Annotated[Path | None, typer.Option(
        help="Where generated databases are kept and reused. Default: OUT/data.", show_default=False)] = None,
) -> None:
    """Measure copier against PostgreSQL's own binary COPY, DuckDB and pgloader on the same file.

    Without --dsn (and no $COPIER_DSN/$DATABASE_URL), a throwaway PostgreSQL is started.
    """
    from .bench import METHODS, BenchPlan, parse_sweep, render_table, run_bench, stopped_by_sigterm
    from .bench.data import SHAPES
    from .bench.throwaway import throwaway_server

    try:
        chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
        unknown = [m for m in chosen if m not in METHODS] + [s for s in (shape or []) if s not in SHAPES]
        if unknown:
            raise CopierError(f"unknown method or shape: {', '.join(unknown)}", hint=f"methods: {', '.join(METHODS)}; "
                              f"shapes: {', '.join(SHAPES)}")
        base: dict[str, int] = {}
        sweeps: dict[str, list[int]] = {}
        for name, text in (("batch_size", batch_size), ("readers", readers), ("jobs", jobs), ("workers", workers)):
            values = parse_sweep(text, name)
            if len(values) == 1:
                base[name] = values[0]
            elif values:
                sweeps[name] = values
        plan = BenchPlan(rows, tuple(shape or ["finance"]), runs, chosen, base, sweeps, out, data_dir or out / "data",
                         bad_rows)
        with stopped_by_sigterm():
            if dsn_given(dsn):
                report = run_bench(plan, dsn_source(dsn)[0], typer.echo)
            else:
                typer.echo("no --dsn: starting a throwaway PostgreSQL...", err=True)
                with throwaway_server() as server:
                    report = run_bench(plan, server, typer.echo)
    except CopierError as exc:
        _fail(exc, False, dsn)
        return
    except Exception as exc:  # a bug: still one line, traceback only with --debug
        _internal(exc, False, dsn)
        return
    typer.echo("")
    typer.echo(render_table(report))
    typer.echo(f"\nwritten: {out / 'bench.json'}" + "".join(f", {out / f'sweep-{n}.svg'}" for n in sweeps))


@app.command(cls=_Command)
def status(
    dsn: Dsn = None,
    host: Host = None,
    port: Port = None,
    username: Username = None,
    dbname: Dbname = None,
    schema: Annotated[str | None, typer.Option(help="Only this target schema.", show_default=False)] = None,
    state_schema: StateSchema = _DEFAULTS.state_schema,
    as_json: AsJson = False,
) -> None:
    """Show the progress recorded in the target by migrate (for --resume)."""
    resolved: str | None = None
    try:
        resolved, origin = _connection(dsn, host, port, username, dbname)
        _say_target(resolved, origin, schema, quiet=as_json)
        from .pipeline import status as read_status

        rows = anyio.run(read_status, resolved, schema, state_schema)
        from .existing import pending_labels

        set_aside = anyio.run(pending_labels, resolved, schema, state_schema)
    except CopierError as exc:
        _fail(exc, False, resolved)
        return
    except Exception as exc:  # a bug: still one line, traceback only with --debug
        _internal(exc, False, resolved)
        return
    if as_json:
        # What a run set aside and has not made again yet is listed apart from the tables'
        # rows: a killed run may have set aside a table it never started loading.
        typer.echo(json.dumps({
            "tables": [{**{k: getattr(r, k) for k in r.__dataclass_fields__}, "status": r.status.value,
                        "updated_at": r.updated_at.isoformat()} for r in rows],  # type: ignore[attr-defined]
            "set_aside_pending": [{"schema": s, "table": t, "definition": label} for s, t, label in set_aside],
        }, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no migration recorded" + (f" for schema {schema!r}" if schema else ""))
        return
    header = ("schema", "table", "status", "rows", "written", "rejected", "updated", "error")
    lines = [header] + [(r.target_schema, r.source_table, r.status, _n(r.rows_source), _n(r.rows_written),
                         _n(r.rows_rejected), f"{r.updated_at:%Y-%m-%d %H:%M:%S}", r.error or "") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " + line[-1])
    if set_aside:
        typer.echo("set aside by a run and not made again yet (migrate --resume or copier clean makes them again):")
        typer.echo("\n".join(f"  {label}" for _schema, _table, label in set_aside))


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


@app.command(cls=_Command)
def clean(
    dsn: Dsn = None,
    host: Host = None,
    port: Port = None,
    username: Username = None,
    dbname: Dbname = None,
    schema: Schema = _DEFAULTS.schema,
    state_schema: StateSchema = _DEFAULTS.state_schema,
) -> None:
    """Remove what copier left in the target for itself (staging tables, progress records); never your tables."""
    resolved: str | None = None
    try:
        resolved, origin = _connection(dsn, host, port, username, dbname)
        _say_target(resolved, origin, schema)
        from .pipeline import clean as run_clean

        removed = anyio.run(run_clean, resolved, schema, state_schema)
    except CopierError as exc:
        _fail(exc, False, resolved)
        return
    except Exception as exc:  # a bug: still one line, traceback only with --debug
        _internal(exc, False, resolved)
        return
    typer.echo("\n".join(f"removed {what}" for what in removed) if removed else "nothing to remove")


@app.command(cls=_Command)
def version() -> None:
    """Print copier's version."""
    typer.echo(__version__)


embedded_app = typer.Typer(help="The local PostgreSQL of migrate --embedded: start, stop, status, psql.",
                           no_args_is_help=True)
app.add_typer(embedded_app, name="embedded")


_T = TypeVar("_T")


def _embedded(action: Callable[[], _T]) -> _T:
    try:
        return action()
    except CopierError as exc:
        _fail(exc, False, None)
        raise  # _fail exits; here for the type checker


@embedded_app.command("start")
def embedded_start() -> None:
    """Start it (if it is not running) and print its DSN."""
    from . import embedded

    typer.echo(_embedded(embedded.start))


@embedded_app.command("stop")
def embedded_stop() -> None:
    """Stop it; the data stays in its data directory."""
    from . import embedded

    typer.echo("stopped" if _embedded(embedded.stop) else "not running")


@embedded_app.command("status")
def embedded_status() -> None:
    """Running or not, and where its data is."""
    from . import embedded

    state = "running" if _embedded(embedded.running) else "not running"
    typer.echo(f"{state}; data in {embedded.data_directory()}")


@embedded_app.command("psql")
def embedded_psql() -> None:
    """Print the psql command that connects to it (starting it if needed)."""
    from . import embedded

    typer.echo(f'psql "{_embedded(embedded.start)}"')


def main() -> None:
    # Arrow's default allocator (mimalloc) keeps freed batches for reuse: 173 MB peak against
    # 128 MB with the system's for 1M rows (benchmarks/README.md). This process is the CLI's
    # own, so it chooses; a value the user set wins, and the library never touches it.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    # asyncpg's pool logs a traceback when it cannot reconnect during a server restart;
    # copier retries the table itself and says so in one line (see tableload).
    logging.getLogger("asyncpg").addHandler(logging.NullHandler())
    logging.getLogger("asyncpg").propagate = False
    from .faults import route_asyncio_logs

    route_asyncio_logs()
    try:
        app()
    except SystemExit as done:
        end_process(done.code)
        raise


def end_process(code: object) -> None:
    """End the process once the command is done, without the interpreter's teardown:
    freeing every module's objects (pyarrow's, typer's) one by one took 0.1-0.26 s of CPU
    after the last byte was written (benchmarks/README.md). The exit handlers still run and
    the output is flushed; with a thread still running, or an exit code that is not a
    number, Python ends the process its own way (the caller re-raises)."""
    import atexit
    import sys
    import threading

    if not (code is None or isinstance(code, int)) or threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
    os._exit(code or 0)
