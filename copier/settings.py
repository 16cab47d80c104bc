"""Run settings with range checks, and DSN handling: SQLAlchemy forms accepted, passwords redacted."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlencode

from . import dsn
from .batching import DEFAULT_BATCH_ROWS
from .errors import UsageError
from .lanes import Lane
from .normalise import Options

DSN_VARIABLES = ("COPIER_DSN", "DATABASE_URL", "SQLALCHEMY_DATABASE_URI")


class IfExists(StrEnum):
    FAIL = "fail"
    TRUNCATE = "truncate"
    APPEND = "append"
    UPSERT = "upsert"  # rows whose primary key is there are updated, the others inserted


class Identifiers(StrEnum):
    KEEP = "keep"  # as SQLite has them: "Track", "InvoiceId" (quoted in SQL)
    LOWER = "lower"  # track, invoiceid: what unquoted SQL means
    SNAKE = "snake"  # track, invoice_id


class Generated(StrEnum):
    """--generated: SQLite's generated columns in the tables copier creates."""
    TRANSLATE = "translate"  # generated in PostgreSQL where it computes SQLite's values (generation.py)
    PLAIN = "plain"  # plain columns holding SQLite's values


class OnError(StrEnum):
    REJECT = "reject"
    ABORT = "abort"


# Seconds a read waits for another process's lock on the source (--busy-timeout).
BUSY_TIMEOUT = 5.0

# --lock-timeout: a PostgreSQL duration (a number, then ms, s, min or h; alone: milliseconds).
_DURATION = re.compile(r"\d+(\.\d+)?\s*(ms|s|min|h)?")


@dataclass(frozen=True, slots=True)
class Settings:
    dsn: str
    schema: str = "public"
    state_schema: str = "copier"  # where progress is recorded, for --resume and copier status
    identifiers: Identifiers = Identifiers.KEEP  # names of the tables and columns copier creates
    views: bool = True  # create each SQLite view whose SQL PostgreSQL accepts
    generated: Generated = Generated.TRANSLATE
    tables: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    if_exists: IfExists = IfExists.FAIL
    truncate_cascade: bool = False  # --if-exists truncate may also empty tables outside the plan
    on_error: OnError = OnError.REJECT
    reject_file: Path | None = None
    casts: tuple[tuple[str, str], ...] = ()
    distribute: tuple[str, ...] = ()  # into Citus: TABLE=COLUMN, or auto (distribution.py)
    reference: tuple[str, ...] = ()  # into Citus: reference tables
    batch_size: int = DEFAULT_BATCH_ROWS  # rows read, converted and sent at a time, in every lane (batching.py)
    lane: Lane = Lane.AUTO
    readers: int = 1
    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, 8))
    queue_depth: int = 4
    jobs: int = 2
    source_tz: str = "UTC"
    strip_nul: bool = False
    verify: bool = True
    retries: int = 3
    max_rejects: int | None = None  # more rejected rows in a table than this fail it
    resume: bool = False
    force: bool = False
    snapshot: bool = False
    integrity_check: bool = True
    allow_empty: bool = False  # a source without tables is an error unless the caller expects it
    busy_timeout: float = BUSY_TIMEOUT
    # How long a statement waits for another session's lock on the target before its table
    # fails (PostgreSQL's lock_timeout on every connection); None waits, announced (lockwatch.py).
    lock_timeout: str | None = None
    report: Path | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        for name, low, high in (("batch_size", 1, 10_000_000), ("readers", 1, 64), ("workers", 1, 256),
                                ("queue_depth", 1, 1024), ("jobs", 1, 256),
                                ("retries", 0, 100)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise UsageError(f"--{name.replace('_', '-')} must be between {low} and {high}, got {value}")
        if self.lock_timeout is not None:
            if not _DURATION.fullmatch(self.lock_timeout.strip()):
                raise UsageError(f"--lock-timeout {self.lock_timeout!r} is not a duration",
                                 hint="e.g. 5s, 500ms or 2min")
            # Every connection of the run is made from the DSN: the setting travels in it.
            object.__setattr__(self, "dsn", dsn.with_setting(self.dsn, "lock_timeout", self.lock_timeout.strip()))

    def value_options(self) -> Options:
        """The flags that decide how values are converted."""
        return Options(source_tz=self.source_tz, strip_nul=self.strip_nul)

    def public(self) -> dict[str, object]:
        """The settings as shown in reports: DSN redacted, paths as text."""
        shown = asdict(self)
        shown["dsn"] = redact(self.dsn)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in shown.items()}


# libpq's own variables: with none of the DSN variables set, a connection made of these
# (and of a service file) is what psql would use.
PG_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGHOSTADDR")


def resolve_dsn(flag: str | None) -> str:
    """--dsn, else $COPIER_DSN, else $DATABASE_URL, else $SQLALCHEMY_DATABASE_URI, else the
    PG* variables and libpq's defaults (as psql reads them): as one URL asyncpg understands."""
    return dsn_source(flag)[0]


def dsn_given(flag: str | None) -> bool:
    """Whether a target was named at all (--dsn, a DSN variable, a PG* variable), rather
    than left to libpq's defaults."""
    return bool(flag) or any(os.environ.get(v) for v in (*DSN_VARIABLES, *PG_VARIABLES))


def dsn_source(flag: str | None) -> tuple[str, str]:
    """(the URL, where it came from: "--dsn", "$DATABASE_URL", "PG* variables", ...)."""
    if flag:
        return dsn.to_url(flag), "--dsn"
    for variable in DSN_VARIABLES:
        if os.environ.get(variable):
            return dsn.to_url(os.environ[variable]), f"${variable}"
    present = [v for v in PG_VARIABLES if os.environ.get(v)]
    if present:
        # The driver reads PGHOST & co. for what a URL leaves out, but a service only when
        # the URL names it.
        service = os.environ.get("PGSERVICE")
        return (f"postgresql://?{urlencode({'service': service})}" if service else "postgresql://",
                " ".join(f"${v}" for v in present))
    # As psql with nothing set: the local socket (then localhost), user $USER, database of the same name.
    return "postgresql://", "libpq's defaults"


def normalise_dsn(text: str) -> str:
    return dsn.to_url(text)


def redact(text: str) -> str:
    """The connection string with any password replaced by ***."""
    return dsn.redact(text)


def redact_text(text: str, url: str) -> str:
    """Remove the DSN's password from any message (driver errors may echo it)."""
    return dsn.redact_text(text, url)


def password_of(url: str) -> str | None:
    return dsn.password_of(url)


def parse_casts(values: list[str]) -> tuple[tuple[str, str], ...]:
    """--cast TABLE.COLUMN=TYPE or --cast DECLARED=TYPE."""
    casts = []
    for value in values:
        key, sep, pg_type = value.partition("=")
        if not sep or not key.strip() or not pg_type.strip():
            raise UsageError(f"--cast {value!r}: expected TABLE.COLUMN=TYPE or DECLARED_TYPE=TYPE")
        key = key.strip()
        casts.append((key if "." in key else key.upper(), pg_type.strip().lower()))
    return tuple(casts)
