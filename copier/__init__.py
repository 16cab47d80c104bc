"""copier: move a whole SQLite database into PostgreSQL, fast, and prove nothing was lost."""

from __future__ import annotations

from os import PathLike

__version__ = "0.1.0"

from .errors import CopierError, ExitCode  # noqa: E402
from .settings import Settings  # noqa: E402
from .stats import RunStats  # noqa: E402


async def migrate(source: str | PathLike[str], settings: Settings) -> RunStats:
    """Move every table of the SQLite file `source` into PostgreSQL (see README.md).

    Example: ``anyio.run(copier.migrate, "app.db", copier.Settings(dsn="postgresql://..."))``
    """
    from pathlib import Path

    from .pipeline import migrate as run

    return await run(Path(source), settings)


__all__ = ["CopierError", "ExitCode", "Settings", "migrate", "__version__"]
