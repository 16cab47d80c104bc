"""Helpers shared by the end-to-end tests: the corpus, and running the CLI in-process."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from copier.cli import app

from .pg import Target

# Real SQLite databases nobody on this project wrote, with their origins and licences
# (tests/corpus/README.md): part of the checkout, so a fresh clone runs every test.
CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_file(relative: str, tmp_path: Path) -> Path:
    """A copy of a corpus database in the test's directory: the originals are never touched."""
    destination = tmp_path / Path(relative).name
    shutil.copyfile(CORPUS / relative, destination)
    return destination


def invoke(*args: object) -> Any:
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr, output)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def migrate(target: Target, source: Path, *extra: object) -> Any:
    return invoke("migrate", source, "--dsn", target.dsn, "--schema", target.schema, "--quiet", *extra)


def sqlite_db(path: Path, *statements: str, rows: Mapping[str, Sequence[Sequence[object]]] | None = None) -> Path:
    """Build a small SQLite database from DDL statements and rows per table."""
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    for table, values in (rows or {}).items():
        if values:
            marks = ", ".join("?" * len(values[0]))
            connection.executemany(f'INSERT INTO "{table}" VALUES ({marks})', values)
    connection.commit()
    connection.close()
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
