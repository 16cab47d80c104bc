"""Which failures are worth retrying, and what to tell the user about the others.

Pure: matches exceptions by class and SQLSTATE, never by message text (which is localised).
"""

from __future__ import annotations

import asyncpg

# Connection exceptions (08), admin/crash shutdown and "cannot connect now" (57P01-3),
# serialization failure and deadlock (40001, 40P01), too many connections (53300):
# the transaction was rolled back and the same work can simply be done again.
TRANSIENT_SQLSTATES = {"57P01", "57P02", "57P03", "40001", "40P01", "53300"}
TRANSIENT_CLASSES = {"08"}

HINTS = {
    "57014": "a statement_timeout (or a cancel) stopped it: allow the migration more time, e.g. "
             "ALTER ROLE <user> SET statement_timeout = 0, or add ?options=-c%20statement_timeout%3D0 to the DSN",
    "55P03": "lock_timeout: another session holds a lock on the table; let it finish or stop it, then rerun "
             "with --resume",
    "53100": "PostgreSQL's disk is full: free space on the server, then rerun with --resume",
    "53200": "PostgreSQL ran out of memory: lower --workers/--jobs, then rerun with --resume",
    "53400": "a server limit was reached: lower --workers/--jobs, then rerun with --resume",
    "25006": "the server is read-only (a standby?): point --dsn at the primary",
    "42501": "the user lacks a privilege on the target",
}


def root_cause(exc: BaseException) -> BaseException:
    """The server's error behind a client error it caused: when a backend is terminated,
    asyncpg reports the closed connection while leaving the transaction, and the
    server's reason (SQLSTATE 57P01, ...) is the exception it happened during."""
    seen = exc
    while not sqlstate_of(seen) and seen.__context__ is not None:
        seen = seen.__context__
    return seen if sqlstate_of(seen) else exc


def sqlstate_of(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def is_transient(exc: BaseException) -> bool:
    """A failure that retrying the table from a clean start may get past."""
    from .errors import CopierError

    if isinstance(exc, CopierError):
        return exc.transient
    exc = root_cause(exc)
    state = sqlstate_of(exc)
    if state:
        return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_CLASSES
    # The connection went away under us: asyncpg's ConnectionDoesNotExistError and
    # InterfaceError("connection is closed") are not PostgresErrors; a socket reset or
    # refused is a ConnectionError. Other OSErrors (a full disk for the reject file) are not.
    name = type(exc).__name__
    return isinstance(exc, (ConnectionError, TimeoutError)) or name in (
        "ConnectionDoesNotExistError", "InterfaceError", "ConnectionFailureError")


def hint_for(exc: BaseException) -> str | None:
    return HINTS.get(sqlstate_of(exc))


# SQLSTATE classes that describe a bad row, not a broken connection or a missing
# privilege: data exceptions (22) and integrity violations (23).
_ROW_ERROR_CLASSES = ("22", "23")


def is_row_error(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "")[:2] in _ROW_ERROR_CLASSES
    # Raised client-side by asyncpg's binary encoders for a value of the wrong type.
    return isinstance(exc, asyncpg.DataError)


def describe_pg_error(exc: BaseException) -> str:
    """One line: the server's message, its detail, and our hint for the SQLSTATE."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    detail = getattr(exc, "detail", None)
    line = f"{message} ({detail})" if detail else message
    hint = hint_for(exc)
    return f"{line} (hint: {hint})" if hint else line
