"""Which failures are retried, matched by exception class and SQLSTATE (never message text)."""

from __future__ import annotations

import asyncpg
import pytest

from copier.errors import LoadError, SourceChanged
from copier.faults import is_transient, root_cause


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CrashShutdownError("crash"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ConnectionResetError(104, "Connection reset by peer"),
    SourceChanged("the SQLite file was written to while it was read"),
])
def test_transient_failures_are_retried(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.UniqueViolationError("duplicate key"),
    asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.exceptions.DiskFullError("no space left"),
    asyncpg.exceptions.InsufficientPrivilegeError("permission denied"),
    LoadError("row 3: column x: text 'a' cannot be an integer"),
    ValueError("a bug"),
    OSError(28, "No space left on device"),  # writing the reject file: retrying cannot help
])
def test_other_failures_are_not(error: BaseException) -> None:
    assert not is_transient(error)


def test_the_servers_reason_behind_a_closed_connection() -> None:
    reason = asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")
    try:
        try:
            raise reason
        except asyncpg.PostgresError:
            raise asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the connection is closed")  # noqa: B904
    except asyncpg.InterfaceError as closed:
        assert root_cause(closed) is reason
        assert is_transient(closed)


def test_errors_from_workers_keep_their_transience() -> None:
    import pickle

    from copier.worker import _picklable

    error = _picklable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, LoadError) and copy.transient and is_transient(copy) and copy.sqlstate == "57P01"
    assert not is_transient(pickle.loads(pickle.dumps(_picklable(ValueError("bug")))))
