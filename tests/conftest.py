from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .pg import Target, fresh_database, server


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    with server() as server_dsn, fresh_database(server_dsn) as dsn:
        yield dsn


@pytest.fixture
def target(database: str) -> Target:
    """A schema of its own for each test, in the run's database."""
    return Target(database, f"t_{uuid.uuid4().hex[:8]}")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Default reject files land in the test's directory; no DSN leaks in from the environment."""
    monkeypatch.chdir(tmp_path)
    for variable in ("COPIER_DSN", "DATABASE_URL", "SQLALCHEMY_DATABASE_URI"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(scope="session", autouse=True)
def _corpus_untouched() -> Iterator[None]:
    """The corpus is never modified by a test run (tests migrate copies anyway)."""
    import hashlib

    from .helpers import CORPUS

    def hashes() -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(CORPUS.rglob("*")) if p.is_file()}

    before = hashes()
    assert before, f"the corpus is missing from {CORPUS}"
    yield
    assert hashes() == before, "a test run modified the corpus"
