from __future__ import annotations

import pytest

from copier.errors import UsageError
from copier.settings import Settings, dsn_source, normalise_dsn, parse_casts, redact, redact_text, resolve_dsn


@pytest.mark.parametrize(("given", "expected"), [
    ("postgresql://u:p@h/db", "postgresql://u:p@h/db"),
    ("postgresql+psycopg://u:p@h:5433/db", "postgresql://u:p@h:5433/db"),
    ("postgresql+asyncpg://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
    ("postgres+psycopg2://u@h/db", "postgres://u@h/db"),
    ("postgres://u@h/db", "postgres://u@h/db"),
])
def test_sqlalchemy_urls_become_libpq_urls(given: str, expected: str) -> None:
    assert normalise_dsn(given) == expected


def test_non_postgres_url_is_refused_without_its_password() -> None:
    with pytest.raises(UsageError) as info:
        normalise_dsn("mysql://root:hunter2@h/db")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("dsn", [
    "postgresql://user:hunter2@host/db",
    "postgresql://user@host/db?password=hunter2&sslmode=require",
    "host=h user=u password=hunter2 dbname=d",
])
def test_passwords_are_redacted(dsn: str) -> None:
    assert "hunter2" not in redact(dsn)
    assert "hunter2" not in redact_text(f"failed to connect with {dsn}: bad hunter2", dsn)


def test_dsn_comes_from_flag_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-database-url/db")
    assert resolve_dsn(None) == "postgresql://from-database-url/db"
    monkeypatch.setenv("COPIER_DSN", "postgresql://from-copier-dsn/db")
    assert resolve_dsn(None) == "postgresql://from-copier-dsn/db"
    assert resolve_dsn("postgresql+psycopg://flag/db") == "postgresql://flag/db"


def test_no_dsn_is_libpqs_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("COPIER_DSN", "DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "PGHOST", "PGPORT", "PGUSER",
                     "PGDATABASE", "PGSERVICE", "PGHOSTADDR"):
        monkeypatch.delenv(variable, raising=False)
    assert dsn_source(None) == ("postgresql://", "libpq's defaults")


def test_settings_are_range_checked() -> None:
    with pytest.raises(UsageError, match="--batch-size must be between"):
        Settings(dsn="postgresql://x", batch_size=0)


def test_casts_parse() -> None:
    assert parse_casts(["t.a=text", "intege = numeric(10,2)"]) == (("t.a", "text"), ("INTEGE", "numeric(10,2)"))
    with pytest.raises(UsageError):
        parse_casts(["nonsense"])
