"""Run settings with range checks, and DSN handling: SQLAlchemy forms accepted, passwords redacted."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import UsageError
from .normalise import Options

DSN_VARIABLES = ("COPIER_DSN", "DATABASE_URL", "SQLALCHEMY_DATABASE_URI")
_SQLALCHEMY_SCHEME = re.compile(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", re.IGNORECASE)


class IfExists(StrEnum):
    FAIL = "fail"
    TRUNCATE = "truncate"
    APPEND = "append"
    UPSERT = "upsert"  # rows whose primary key is there are updated, the others inserted


class OnError(StrEnum):
    REJECT = "reject"
    ABORT = "abort"


# Seconds a read waits for another process's lock on the source (--busy-timeout).
BUSY_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    dsn: str
    schema: str = "public"
    tables: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    if_exists: IfExists = IfExists.FAIL
    truncate_cascade: bool = False  # --if-exists truncate may also empty tables outside the plan
    on_error: OnError = OnError.REJECT
    reject_file: Path | None = None
    casts: tuple[tuple[str, str], ...] = ()
    batch_size: int = 5_000  # from the sweeps in benchmarks/README.md
    readers: int = 1
    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, 8))
    queue_depth: int = 4
    jobs: int = 2
    source_tz: str = "UTC"
    strip_nul: bool = False
    verify: bool = True
    retries: int = 3
    resume: bool = False
    force: bool = False
    snapshot: bool = False
    integrity_check: bool = True
    busy_timeout: float = BUSY_TIMEOUT
    report: Path | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        for name, low, high in (("batch_size", 1, 10_000_000), ("readers", 1, 64), ("workers", 1, 256),
                                ("queue_depth", 1, 1024), ("jobs", 1, 256),
                                ("retries", 0, 100)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise UsageError(f"--{name.replace('_', '-')} must be between {low} and {high}, got {value}")

    def value_options(self) -> Options:
        """The flags that decide how values are converted."""
        return Options(source_tz=self.source_tz, strip_nul=self.strip_nul)

    def public(self) -> dict[str, object]:
        """The settings as shown in reports: DSN redacted, paths as text."""
        shown = asdict(self)
        shown["dsn"] = redact(self.dsn)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in shown.items()}


def resolve_dsn(flag: str | None) -> str:
    """--dsn, else $COPIER_DSN, else $DATABASE_URL, else $SQLALCHEMY_DATABASE_URI."""
    for candidate in (flag, *(os.environ.get(v) for v in DSN_VARIABLES)):
        if candidate:
            return normalise_dsn(candidate)
    raise UsageError("no PostgreSQL to write to",
                     hint="pass --dsn postgresql://user@host/db or set COPIER_DSN or DATABASE_URL")


def normalise_dsn(dsn: str) -> str:
    """libpq URL from a SQLAlchemy one: postgresql+psycopg://... -> postgresql://..."""
    dsn = dsn.strip()
    dsn = _SQLALCHEMY_SCHEME.sub(lambda m: m.group(1) + "://", dsn)
    if not re.match(r"^postgres(ql)?://", dsn, re.IGNORECASE) and "=" not in dsn:
        raise UsageError(f"not a PostgreSQL URL: {redact(dsn)}",
                         hint="expected postgresql://user:password@host:5432/dbname")
    return dsn


def redact(dsn: str) -> str:
    """The DSN with any password replaced by ***, in the userinfo and in the query."""
    if "://" not in dsn:
        return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", dsn, flags=re.IGNORECASE)
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)],
                      safe="/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, dsn: str) -> str:
    """Remove the DSN's password from any message (driver errors may echo it)."""
    password = password_of(dsn)
    return text.replace(dsn, redact(dsn)).replace(password, "***") if password else text.replace(dsn, redact(dsn))


def password_of(dsn: str) -> str | None:
    if "://" not in dsn:
        match = re.search(r"password\s*=\s*('[^']*'|\S+)", dsn, re.IGNORECASE)
        return match.group(1).strip("'") if match else None
    parts = urlsplit(dsn)
    if parts.password:
        return parts.password
    return dict(parse_qsl(parts.query)).get("password")


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
