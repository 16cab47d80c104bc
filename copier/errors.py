"""The CopierError tree: one-line messages with the fields a user needs, and exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `copier` exits with; documented in the README."""

    OK = 0
    FAILED = 1  # a table failed to load, or a constraint could not be added
    USAGE = 2  # bad flags, bad source file, PostgreSQL unreachable or refusing
    REJECTED = 3  # every table loaded, but some rows went to the reject file
    VERIFY = 4  # the data moved, but verification found a difference
    INTERRUPTED = 130  # SIGINT/SIGTERM: in-flight tables rolled back


class CopierError(Exception):
    """Base of every error copier raises on purpose.

    str() is the one line shown to the user; `hint` says what to do about it.
    """

    exit_code: ExitCode = ExitCode.FAILED
    # Whether doing the same work again from a clean start may succeed (a lost
    # connection, a server restart, the source written to while read).
    transient_by_default = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        table: str | None = None,
        column: str | None = None,
        row: object = None,
        sqlstate: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.table = table
        self.column = column
        self.row = row
        self.sqlstate = sqlstate  # of the PostgreSQL error behind it, if any
        self.transient = self.transient_by_default if transient is None else transient

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword fields survive pickling: errors travel back from worker processes.
        return (self.__class__, (self.message,), self.__dict__)


class UsageError(CopierError):
    """A flag or argument the user gave cannot work."""

    exit_code = ExitCode.USAGE


class SourceError(CopierError):
    """The SQLite file is missing, unreadable or not a database."""

    exit_code = ExitCode.USAGE


class TargetError(CopierError):
    """PostgreSQL cannot be reached, refuses us, or is missing something we need."""

    exit_code = ExitCode.USAGE


class PlanError(CopierError):
    """The migration cannot be planned: unmatched columns, unsupported types, name clashes."""

    exit_code = ExitCode.USAGE


class LoadError(CopierError):
    """A table failed while loading; it was rolled back."""


class StepFailed(CopierError):
    """The server, the network or the machine failed under a step before any table loaded
    (a restart, a full disk, a timeout): nothing to summarise yet."""


class VerifyError(CopierError):
    """Source and target disagree after the load."""

    exit_code = ExitCode.VERIFY


class SourceChanged(CopierError):
    """The SQLite file was written to while a table was being read (retried, then fatal)."""

    transient_by_default = True


class ValueRejected(ValueError):
    """A single value cannot be converted without loss; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
