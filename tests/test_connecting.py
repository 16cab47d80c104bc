"""Connection strings the way psql and pg_dump users write them: URL, SQLAlchemy URL or
libpq key=value, libpq-only parameters handled or refused by name, the PG* variables with
no DSN, passwords redacted by structure, and the target named before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from copier.dsn import to_url
from copier.errors import UsageError

from .helpers import invoke, sqlite_db
from .pg import Target


def parts_of(dsn: str) -> dict[str, str]:
    """host, port, user, dbname of the test server's DSN (host may be a socket directory)."""
    url = urlsplit(dsn)
    query = dict(parse_qsl(url.query))
    return {"host": query.get("host") or url.hostname or "localhost", "port": str(url.port or 5432),
            "user": url.username or "postgres", "dbname": url.path.lstrip("/")}


def one_table(tmp_path: Path) -> Path:
    return sqlite_db(tmp_path / "one.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)", rows={"t": [(1,), (2,)]})


def test_a_libpq_key_value_string_with_libpq_only_keys(tmp_path: Path, target: Target) -> None:
    p = parts_of(target.dsn)
    conninfo = (f"host={p['host']} port={p['port']} dbname={p['dbname']} user={p['user']} connect_timeout=5 "
                "channel_binding=prefer gssencmode=disable keepalives=1 application_name='copier test'")
    result = invoke("migrate", one_table(tmp_path), "--dsn", conninfo, "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert target.count("t") == 2
    assert result.stdout.splitlines()[0] == (f"target: {p['user']}@{p['host']}:{p['port']}/{p['dbname']}, "
                                             f"schema {target.schema} (from --dsn)")


def test_a_url_with_the_parameters_hosted_providers_hand_out(tmp_path: Path, target: Target) -> None:
    separator = "&" if "?" in target.dsn else "?"
    dsn = target.dsn + separator + "connect_timeout=5&channel_binding=prefer&target_session_attrs=any"
    result = invoke("migrate", one_table(tmp_path), "--dsn", dsn, "--schema", target.schema, "--quiet")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("text", "message"), [
    ("postgresql://u@h/d?channel_binding=require",
     "channel_binding=require is not supported by copier's PostgreSQL driver (asyncpg) (hint: use "
     "channel_binding=prefer, or remove it)"),
    ("host=h gssencmode=require", "gssencmode=require is not supported by copier's PostgreSQL driver (asyncpg)"),
    ("host=h requirepeer=postgres", "the connection parameter requirepeer is not supported"),
    ("host=h client_encoding=LATIN1", "client_encoding=LATIN1: copier talks UTF-8 to PostgreSQL"),
])
def test_what_cannot_be_honoured_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        to_url(text)
    assert str(info.value).startswith(message)


def test_key_value_becomes_the_url_asyncpg_reads() -> None:
    assert to_url("host=db.example.org port=6543 dbname='my db' user=app password='it\\'s' sslmode=require "
                  "keepalives=1") == "postgresql://app:it%27s@db.example.org:6543/my%20db?sslmode=require"
    assert to_url("host=/var/run/postgresql dbname=app") == "postgresql:///app?host=/var/run/postgresql"
    assert to_url("postgresql+psycopg://u:p@h:5/d?sslmode=require") == "postgresql://u:p@h:5/d?sslmode=require"


def test_the_pg_variables_with_no_dsn(tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    p = parts_of(target.dsn)
    for variable, key in (("PGHOST", "host"), ("PGPORT", "port"), ("PGUSER", "user"), ("PGDATABASE", "dbname")):
        monkeypatch.setenv(variable, p[key])
    result = invoke("migrate", one_table(tmp_path), "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert target.count("t") == 2
    assert result.stdout.splitlines()[0].endswith("(from $PGHOST $PGPORT $PGUSER $PGDATABASE)")


def test_the_dsn_named_by_its_variable(tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", target.dsn)
    result = invoke("migrate", one_table(tmp_path), "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith(f"schema {target.schema} (from $DATABASE_URL)")


def test_a_short_password_is_redacted_by_structure(tmp_path: Path) -> None:
    result = invoke("migrate", one_table(tmp_path), "--dsn", "postgresql://postgres:1@127.0.0.1:5999/postgres")
    assert result.exit_code == 2
    assert "cannot reach PostgreSQL at 127.0.0.1:5999" in result.stderr
    assert "***27" not in result.stderr and ":1@" not in result.output


def test_a_service_from_a_service_file(tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    p = parts_of(target.dsn)
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[shop]\nhost={p['host']}\nport={p['port']}\nuser={p['user']}\ndbname={p['dbname']}\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGSERVICE", "shop")
    result = invoke("migrate", one_table(tmp_path), "--schema", target.schema)
    assert result.exit_code == 0, result.output
    assert target.count("t") == 2
    assert "(service shop)" in result.stdout.splitlines()[0]


def _run(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "copier", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def test_psqls_own_flags(tmp_path: Path, target: Target) -> None:
    """-h -p -U -d as psql takes them: the target line says where, and that the flags chose it."""
    p = parts_of(target.dsn)
    done = _run("migrate", one_table(tmp_path), "-h", p["host"], "-p", p["port"], "-U", p["user"], "-d", p["dbname"],
                "--schema", target.schema)
    assert done.returncode == 0, done.stderr
    assert target.count("t") == 2
    assert done.stdout.splitlines()[0] == (f"target: {p['user']}@{p['host']}:{p['port']}/{p['dbname']}, "
                                           f"schema {target.schema} (from -h -p -U -d)")
    # A flag overrides its part of a DSN, as psql's do: here the database of a DSN naming another.
    other = urlsplit(target.dsn)._replace(path="/no_such_database_here").geturl()
    done = _run("status", "--dsn", other, "-d", p["dbname"], "--schema", target.schema)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(f"/{p['dbname']}, schema {target.schema} (from --dsn with -d)")


def test_with_nothing_set_libpqs_defaults_as_psql(tmp_path: Path, target: Target) -> None:
    """No DSN, no PG* variable: the local socket, the login's user name and the database of
    that name, as psql connects; here a login called postgres on the local server."""
    sockets = [Path(d) / ".s.PGSQL.5432" for d in ("/run/postgresql", "/var/run/postgresql", "/tmp")]
    if not any(s.exists() for s in sockets):
        pytest.skip("no PostgreSQL listening on the default local socket")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and k not in ("COPIER_DSN", "DATABASE_URL", "SQLALCHEMY_DATABASE_URI")}
    env |= {"USER": "postgres", "LOGNAME": "postgres"}
    done = _run("status", "--schema", target.schema, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"target: postgres@[local]:5432/postgres, schema {target.schema} (from libpq's defaults)",
        f"no migration recorded for schema '{target.schema}'"]


def test_an_ssl_refusal_gets_its_own_hint(tmp_path: Path, target: Target) -> None:
    if target.fetchval("SHOW ssl") != "off" or parts_of(target.dsn)["host"].startswith("/"):
        pytest.skip("the test server accepts SSL, or is reached by a socket (no SSL there)")
    separator = "&" if "?" in target.dsn else "?"
    done = _run("status", "--dsn", f"{target.dsn}{separator}sslmode=require")
    assert done.returncode == 2
    where = "{host}:{port}".format(**parts_of(target.dsn))
    assert done.stderr.splitlines()[-1] == (
        f"copier: error: PostgreSQL at {where} does not accept SSL connections, and the DSN requires SSL (hint: "
        "turn ssl on in the server's postgresql.conf, or use sslmode=prefer (SSL when offered) or "
        "sslmode=disable in the DSN)")
