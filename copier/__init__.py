"""copier: move a whole SQLite database into PostgreSQL, fast, and prove nothing was lost."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CopierError, ExitCode  # noqa: E402
from .settings import Settings  # noqa: E402


async def migrate(source: str, settings: Settings):  # type: ignore[no-untyped-def]
    """Library entry point: see copier.pipeline.migrate."""
    from pathlib import Path

    from .pipeline import migrate as run

    return await run(Path(source), settings)


__all__ = ["CopierError", "ExitCode", "Settings", "migrate", "__version__"]
