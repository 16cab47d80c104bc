"""Which failures are worth retrying, and what to tell the user about the others.

Matches exceptions by class and SQLSTATE, never by message text (which is localised).
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TypeVar

import anyio
import asyncpg

from .settings import redact_text

T = TypeVar("T")

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
    # A socket reset, refused or timed out, or a server's unix socket not there (yet: it
    # restarts). Other OSErrors (a full disk for the reject file, or a file not found, which
    # names its file) are not: doing the same again fails the same way.
    return (isinstance(exc, (ConnectionError, TimeoutError)) or lost_connection(exc)
            or (isinstance(exc, FileNotFoundError) and exc.filename is None))


def lost_connection(exc: BaseException) -> bool:
    """A call on a connection the server had closed, told by where asyncpg raised it, not
    by its text:
    - InterfaceError, before anything is sent, from the connection's _check_open or from a
      transaction's _check_conn_validity on a closed connection (or raised while leaving
      after such an error);
    - from the protocol's state machine (_set_state, _check_state, _new_waiter): a pooled
      connection the server terminated while idle has read the server's FATAL error but
      not yet its end of stream when it is handed out (asyncpg's race; copier never shares
      a connection between tasks, so this is not two of ours at once).
    Not any InterfaceError: a connection used after its release to the pool is a bug of
    ours, and is reported as one."""
    seen: BaseException | None = exc
    while isinstance(seen, (asyncpg.InterfaceError, asyncpg.InternalClientError)) and type(seen) in (
            asyncpg.InterfaceError, asyncpg.InternalClientError):
        frame = seen.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        if frame is not None:
            # Cython's frames are named by their qualified name (…CoreProtocol._set_state).
            code = frame.tb_frame.f_code.co_name.rsplit(".", 1)[-1]
            owner = frame.tb_frame.f_locals.get("self")
            if code in ("_check_open", "_set_state", "_check_state", "_new_waiter"):
                return True
            if code == "_check_conn_validity":
                connection = getattr(owner, "_connection", None)
                return connection is not None and bool(connection.is_closed())
        seen = seen.__context__
    return False


# SQLSTATE classes of the environment, not of the rows or of copier: connection exception
# (08), transaction rollback (40), insufficient resources (53: disk full, out of memory),
# object not in prerequisite state (55: lock not available), operator intervention (57:
# cancel, shutdown), system error (58: I/O).
_ENVIRONMENT_CLASSES = ("08", "40", "53", "55", "57", "58")


def is_environmental(exc: BaseException) -> bool:
    """A failure of the server, the network or the machine, in any phase: never a bug to
    report as one, nor a refusal to note as a warning (a constraint PostgreSQL refuses
    for the data's sake is that). The run ends with its summary, naming the step."""
    from .errors import CopierError

    if isinstance(exc, CopierError):
        return exc.transient or sqlstate_of(exc)[:2] in _ENVIRONMENT_CLASSES
    exc = root_cause(exc)
    state = sqlstate_of(exc)
    if state:
        return state[:2] in _ENVIRONMENT_CLASSES
    return isinstance(exc, OSError) or lost_connection(exc)


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


def out_of_memory(exc: BaseException) -> str | None:
    """What ran out and what to lower, for a failure that is memory and not a bug: a
    MemoryError, or a native module (pyarrow's, asyncpg's) that could not be loaded under
    an address-space limit (ulimit -v), where mapping its code is what fails."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    under = f" under the address-space limit of {limit // 2**20:,} MB (ulimit -v)" if limit > 0 else ""
    lower = "lower --workers, --jobs or --batch-size, or allow more memory"
    for failure in (*_leaves(exc), root_cause(exc)):
        if isinstance(failure, MemoryError):
            return f"out of memory{under}: {lower}"
        if isinstance(failure, ImportError) and under:
            return f"out of memory{under}: could not load {failure.name or 'a module'} ({failure}): {lower}"
        # A thread's stack is address space too: under ulimit -v it is what runs out first.
        if isinstance(failure, RuntimeError) and "can't start new thread" in str(failure):
            return f"out of memory{under}: could not start a thread: {lower}"
    return None


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions a task group's ExceptionGroup holds (nested ones too), or exc itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def describe_failure(exc: BaseException, dsn: str) -> str:
    """One line for a failure in any step: copier's own message, the server's (with our
    hint), or, for a bug, what it was (a bug must not take the other tables down with it)."""
    from .errors import CopierError

    if isinstance(exc, CopierError):
        return redact_text(str(exc), dsn)
    memory = out_of_memory(exc)
    if memory:
        return memory
    cause = root_cause(exc)
    if isinstance(cause, (asyncpg.PostgresError, OSError)) or lost_connection(cause):
        return redact_text(describe_pg_error(cause), dsn)
    return redact_text(f"internal error: {type(cause).__name__}: {cause}", dsn)


def backoff(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: 0.5, 1, 2, 4, then 8, give or take a quarter."""
    return min(8.0, 0.5 * 2.0**attempt) * (0.75 + random.random() / 2)


async def retrying(work: Callable[[], Awaitable[T]], retries: int,
                   failed: Callable[[int, BaseException], None], pool: asyncpg.Pool | None = None,
                   transient: Callable[[BaseException], bool] = is_transient) -> T:
    """`work` again from its start after a transient failure, up to `retries` times, each
    failure told to `failed` (attempt number from 0, error) first. The last failure, and
    any that is not transient, is raised. The `pool`'s connections are replaced before a
    retry: a server that restarted or terminated one has likely ended the others too."""
    attempt = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            if attempt >= retries or not transient(exc):
                raise
            failed(attempt, exc)
        await anyio.sleep(backoff(attempt))
        if pool is not None:
            await pool.expire_connections()
        attempt += 1


class _OneLineEach(logging.Handler):
    """asyncio's log records on stderr, one line each, once per message and without their
    tracebacks. Its warnings (socket.send() failing after a connection was lost, hundreds
    of times with --workers 1) and the errors of tasks whose connection was lost (a table
    already retried or rolled back, whose failure copier reports itself) are left out."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            error = getattr(record, "exception", None)  # asyncio's exception-handler context
        if isinstance(error, BaseException) and (is_environmental(error) or not isinstance(error, Exception)):
            return
        line = record.getMessage().splitlines()[0] if record.getMessage() else "an error"
        if isinstance(error, BaseException):
            line += f" ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        if line not in self.seen:
            self.seen.add(line)
            print(f"copier: asyncio: {line}", file=sys.stderr, flush=True)


def route_asyncio_logs() -> None:
    """asyncio's logger through _OneLineEach instead of Python's last-resort handler (the CLI's
    choice; a library caller keeps its own logging)."""
    logger = logging.getLogger("asyncio")
    logger.handlers[:] = [_OneLineEach()]
    logger.propagate = False


@asynccontextmanager
async def ended_if_lost(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """A COPY over `connection`, ended (ConnectionDoesNotExistError, transient) when the
    server closes the connection. asyncpg's copy_in waits for its transport to let it write
    again, which a lost connection whose writes were paused never does: without this, a
    restart or a terminated backend mid-COPY would hang the run (and an unpaused one would
    read the whole source into a closed socket before saying so)."""
    lost = False
    with anyio.CancelScope() as scope:
        def on_lost(_connection: object) -> None:
            nonlocal lost
            lost = True
            scope.cancel()

        connection.add_termination_listener(on_lost)
        try:
            yield
        finally:
            # A pooled connection the server closed is detached from its proxy at once:
            # the proxy then refuses every call (and the listener list is cleared anyway).
            with suppress(asyncpg.InterfaceError):
                connection.remove_termination_listener(on_lost)
    if lost and scope.cancelled_caught:
        # The server's reason, if it sent one, stays inside asyncpg's protocol (not public).
        raise asyncpg.ConnectionDoesNotExistError("the connection was lost during a COPY (the server closed it)")
