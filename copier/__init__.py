"""copier: move a whole SQLite database into PostgreSQL, fast, and prove nothing was lost."""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .errors import CopierError, ExitCode  # noqa: E402
from .settings import Settings  # noqa: E402
from .stats import RunStats  # noqa: E402

if TYPE_CHECKING:
    from .planning import MigrationPlan
    from .resume import TableState
    from .verification import TableCheck


async def migrate(source: str | PathLike[str], settings: Settings) -> RunStats:
    """Move every table of the SQLite file `source` into PostgreSQL (see README.md).

    Example: ``anyio.run(copier.migrate, "app.db", copier.Settings(dsn="postgresql://..."))``
    """
    from pathlib import Path

    from .pipeline import migrate as run

    return await run(Path(source), settings)


async def plan(source: str | PathLike[str], settings: Settings, *, against_target: bool = True) -> MigrationPlan:
    """The plan `migrate` would follow (tables, waves, column mapping); touches nothing."""
    from pathlib import Path

    from .pipeline import plan as run

    return await run(Path(source), settings, against_target=against_target)


async def verify(source: str | PathLike[str], settings: Settings) -> list[TableCheck]:
    """Compare every selected table with the target: counts and every row (README: Verification)."""
    from pathlib import Path

    from .pipeline import verify as run

    return await run(Path(source), settings)


async def status(dsn: str, schema: str | None = None, state_schema: str = "copier") -> list[TableState]:
    """The progress `migrate` recorded in the target, per table."""
    from .pipeline import status as run

    return await run(dsn, schema, state_schema)


__all__ = ["CopierError", "ExitCode", "MigrationPlan", "RunStats", "Settings", "TableCheck", "TableState",
           "migrate", "plan", "status", "verify", "__version__"]
