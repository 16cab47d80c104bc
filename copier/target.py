"""The PostgreSQL edge: connect (with clear errors), read what already exists, run DDL."""

from __future__ import annotations

import asyncio
import os
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from .casting import Kind, TargetType, parse_pg_type
from .distribution import Placement
from .dsn import connect_timeout, endpoint
from .errors import CopierError, PlanError, TargetError
from .faults import is_transient, sqlstate_of
from .ident import qualified, quote_ident
from .planning import ExistingColumn, ExistingTable, MigrationPlan
from .settings import redact_text

CONNECT_TIMEOUT = 10.0
_CONNECT_ERRORS = (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                   asyncpg.ClientConfigurationError, ValueError)

_EXISTING_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
       CASE WHEN t.typtype = 'e' THEN
         (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
       END,
       CASE WHEN a.attgenerated <> '' THEN
         (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid = c.oid AND d.adnum = a.attnum)
       END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""


_PRIMARY_KEYS = """
SELECT c.relname, array_agg(a.attname ORDER BY k.position)
FROM pg_constraint p
JOIN pg_class c ON c.oid = p.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS k(attnum, position)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND p.contype = 'p'
GROUP BY c.relname
"""


def _where(dsn: str) -> str:
    _user, host, port, _database, _service = endpoint(dsn, os.environ)
    return f"{host}:{port}"


def _ssl_required(dsn: str) -> bool:
    """Whether the connection insists on SSL (sslmode require or stricter; $PGSSLMODE as libpq reads it)."""
    mode = dict(parse_qsl(urlsplit(dsn).query)).get("sslmode") or os.environ.get("PGSSLMODE", "")
    return mode in ("require", "verify-ca", "verify-full")


def translate_connect_error(exc: BaseException, dsn: str) -> CopierError:
    """One clear line for the failures a user will hit when connecting; a server that
    restarts ("the database system is starting up") stays transient, for the retries."""
    error = _connect_error(exc, dsn)
    error.sqlstate = error.sqlstate or sqlstate_of(exc) or None
    error.transient = is_transient(exc)
    return error


def _connect_error(exc: BaseException, dsn: str) -> CopierError:
    where = _where(dsn)
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return TargetError(f"PostgreSQL at {where}: password authentication failed",
                           hint="check the user and password in the DSN")
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return TargetError(f"PostgreSQL at {where} refused the connection: {redact_text(str(exc), dsn)}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return TargetError(f"PostgreSQL at {where}: {redact_text(str(exc), dsn)}",
                           hint="create it first (createdb NAME) or fix the database name in the DSN")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return TargetError(f"PostgreSQL at {where}: permission denied: {redact_text(str(exc), dsn)}")
    if type(exc) is ConnectionError and _ssl_required(dsn):
        # asyncpg's bare ConnectionError when the server answers an SSL request with "no"
        # (its refused or reset connections are subclasses): the server is up, SSL is off.
        return TargetError(f"PostgreSQL at {where} does not accept SSL connections, and the DSN requires SSL",
                           hint="turn ssl on in the server's postgresql.conf, or use sslmode=prefer "
                                "(SSL when offered) or sslmode=disable in the DSN")
    if isinstance(exc, (OSError, socket.gaierror, asyncio.TimeoutError, TimeoutError)):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return TargetError(f"cannot reach PostgreSQL at {where}: {redact_text(reason, dsn)}",
                           hint="is the server running and the host/port right?")
    if isinstance(exc, asyncpg.PostgresError):
        return TargetError(f"PostgreSQL at {where}: {redact_text(str(exc), dsn)}")
    return TargetError(f"cannot connect to PostgreSQL at {where}: {redact_text(str(exc), dsn)}")


# asyncpg's own codecs turn date(1, 1, 1) and date(9999, 12, 31) (and the matching
# timestamps) into -infinity/infinity, silently. Ours send every value as itself, and read
# PostgreSQL's infinities back as text, so verify sees them as different from any date.
_PG_EPOCH_ORDINAL = date(2000, 1, 1).toordinal()
_PG_EPOCH = datetime(2000, 1, 1)
_PG_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DATE_INFINITY = {2**31 - 1: "infinity", -(2**31): "-infinity"}
_TIME_INFINITY = {2**63 - 1: "infinity", -(2**63): "-infinity"}


def _date_out(value: date) -> tuple[int]:
    return (value.toordinal() - _PG_EPOCH_ORDINAL,)


def _date_in(value: tuple[int]) -> date | str:
    (days,) = value
    if days in _DATE_INFINITY:
        return _DATE_INFINITY[days]
    try:
        return date.fromordinal(days + _PG_EPOCH_ORDINAL)
    except (ValueError, OverflowError):
        return f"date {days:+d} days from 2000-01-01 (outside Python's range)"


def _timestamp_out(value: datetime) -> tuple[int]:
    return ((value - _PG_EPOCH) // _MICROSECOND,)


def _timestamptz_out(value: datetime) -> tuple[int]:
    return ((value - _PG_EPOCH_UTC) // _MICROSECOND,)


def _moment_in(epoch: datetime) -> Callable[[tuple[int]], datetime | str]:
    def decode(value: tuple[int]) -> datetime | str:
        (micros,) = value
        if micros in _TIME_INFINITY:
            return _TIME_INFINITY[micros]
        try:
            return epoch + micros * _MICROSECOND
        except OverflowError:
            return f"timestamp {micros:+d} us from 2000-01-01 (outside Python's range)"
    return decode


async def exact_datetime_codecs(connection: asyncpg.Connection) -> None:
    """Install on every connection copier writes or verifies with."""
    for name, encoder, decoder in (("date", _date_out, _date_in),
                                   ("timestamp", _timestamp_out, _moment_in(_PG_EPOCH)),
                                   ("timestamptz", _timestamptz_out, _moment_in(_PG_EPOCH_UTC))):
        await connection.set_type_codec(name, schema="pg_catalog", encoder=encoder, decoder=decoder,
                                        format="tuple")


def _server_settings(dsn: str) -> dict[str, str]:
    """Name our sessions in pg_stat_activity, unless the DSN names them itself."""
    return {} if "application_name" in dsn else {"application_name": "copier"}


async def connect(dsn: str) -> asyncpg.Connection:
    url, timeout = connect_timeout(dsn)
    try:
        connection = await asyncpg.connect(url, timeout=timeout or CONNECT_TIMEOUT,
                                           server_settings=_server_settings(url))
    except _CONNECT_ERRORS as exc:
        raise translate_connect_error(exc, dsn) from None
    try:
        await exact_datetime_codecs(connection)
    except BaseException:
        await connection.close()
        raise
    return connection


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection for the block, closed whatever happens in it."""
    connection = await connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    url, timeout = connect_timeout(dsn)
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=size, timeout=timeout or CONNECT_TIMEOUT,
                                         command_timeout=None, server_settings=_server_settings(url),
                                         init=exact_datetime_codecs)
    except _CONNECT_ERRORS as exc:
        raise translate_connect_error(exc, dsn) from None
    assert pool is not None
    return pool


async def existing_tables(connection: asyncpg.Connection, schema: str) -> dict[str, ExistingTable]:
    """Tables already in the target schema, with the types copier will convert into."""
    columns: dict[str, list[ExistingColumn]] = defaultdict(list)
    for table, name, formatted, not_null, has_default, labels, generated in await connection.fetch(
            _EXISTING_COLUMNS, schema):
        try:
            target_type = parse_pg_type(formatted, enum_labels=tuple(labels or ()))
            unsupported = None
        except PlanError as exc:
            # Only a problem if a source column goes there: the planner says so then.
            target_type, unsupported = TargetType(formatted, Kind.TEXT), exc.message
        columns[table].append(ExistingColumn(name, target_type, not_null, has_default, unsupported, generated))
    keys = {table: tuple(key) for table, key in await connection.fetch(_PRIMARY_KEYS, schema)}
    return {name: ExistingTable(name, tuple(cols), keys.get(name, ())) for name, cols in columns.items()}


# Every name taken in the schema, with the table it belongs to (an index's table, an owned
# sequence's table, else itself), so a resumed run can set aside the names of its own tables.
_TAKEN_NAMES = """
SELECT c.relname, COALESCE(indexed.relname, owner.relname, c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class indexed ON indexed.oid = i.indrelid
LEFT JOIN pg_depend d ON c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class owner ON owner.oid = d.refobjid
WHERE n.nspname = $1
UNION
SELECT t.typname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = $1 AND t.typrelid = 0 AND t.typelem = 0
"""


async def taken_names(connection: asyncpg.Connection, schema: str) -> dict[str, str]:
    """Relation and type names in the target schema -> the table each belongs to."""
    return {name: owner for name, owner in await connection.fetch(_TAKEN_NAMES, schema)}


async def ensure_schema(connection: asyncpg.Connection, schema: str) -> None:
    exists = await connection.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
    if not exists:
        try:
            await connection.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        except asyncpg.InsufficientPrivilegeError as exc:
            raise TargetError(f"cannot create schema {schema!r}: {exc}") from None


async def check_privileges(connection: asyncpg.Connection, plan: MigrationPlan) -> None:
    """Refuse before any data moves if the login cannot create or fill the tables."""
    user = await connection.fetchval("SELECT current_user")
    if any(t.create for t in plan.tables) and not await connection.fetchval(
            "SELECT has_schema_privilege($1, 'CREATE')", plan.schema):
        raise TargetError(f"permission denied: user {user} cannot create tables in schema {plan.schema!r}",
                          hint=f"GRANT CREATE ON SCHEMA {quote_ident(plan.schema)} TO {quote_ident(user)}, "
                               "or use --schema")
    for table in plan.tables:
        if not table.create and not await connection.fetchval(
                "SELECT has_table_privilege($1, 'INSERT')", qualified(plan.schema, table.target)):
            raise TargetError(f"permission denied: user {user} cannot insert into {plan.schema}.{table.target}")


# A Citus target: the extension's version, then the active primary workers (group 0 is the
# coordinator; pg_dist_node exists only with the extension).
_CITUS_VERSION = "SELECT extversion FROM pg_extension WHERE extname = 'citus'"
_CITUS_WORKERS = "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive"


async def citus(connection: asyncpg.Connection) -> str | None:
    """`Citus 13.2-1, 2 workers` when the database has the citus extension, else None."""
    version = await connection.fetchval(_CITUS_VERSION)
    if version is None:
        return None
    workers = await connection.fetchval(_CITUS_WORKERS)
    return f"Citus {version}, {workers} worker{'s' if workers != 1 else ''}"


async def check_citus(connection: asyncpg.Connection, plan: MigrationPlan) -> None:
    """A plan that distributes tables needs a Citus target: refused before any data moves."""
    if any(p.placement is not Placement.LOCAL for p in plan.distribution) and await citus(connection) is None:
        database = await connection.fetchval("SELECT current_database()")
        raise TargetError(f"--distribute/--reference need a Citus target: database {database!r} has no citus "
                          "extension", hint="CREATE EXTENSION citus in the database the cluster is set up in "
                                            "(usually postgres), or leave out --distribute and --reference")


_CITUS_TABLES = """
SELECT c.relname FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2::text[])
"""


async def citus_tables(connection: asyncpg.Connection, schema: str, tables: list[str]) -> set[str]:
    """Which of the tables Citus distributes, replicates or tracks (none without Citus)."""
    if await connection.fetchval(_CITUS_VERSION) is None:
        return set()
    return {row[0] for row in await connection.fetch(_CITUS_TABLES, schema, tables)}
