"""copier as a library: migrate, plan, verify and status are typed functions, and they leave
the caller's process alone (garbage collector settings, environment)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import anyio

import copier
from copier.stats import TableStatus

from .helpers import corpus_file
from .pg import Target


def test_plan_migrate_verify_status_as_functions(tmp_path: Path, target: Target) -> None:
    source = corpus_file("chinook/Chinook_Sqlite.sqlite", tmp_path)
    settings = copier.Settings(dsn=target.dsn, schema=target.schema, quiet=True, verify=False)
    thresholds, environment = gc.get_threshold(), dict(os.environ)

    plan = anyio.run(copier.plan, source, settings)
    assert len(plan.tables) == 11 and all(t.create for t in plan.tables)
    stats = anyio.run(copier.migrate, source, settings)
    assert {t.status for t in stats.tables.values()} == {TableStatus.DONE}
    checks = anyio.run(copier.verify, source, settings)
    assert len(checks) == 11 and all(c.ok and c.content_equal for c in checks)
    recorded = anyio.run(copier.status, target.dsn, target.schema)
    assert {r.status for r in recorded} == {TableStatus.DONE} and len(recorded) == 11

    assert gc.get_threshold() == thresholds and dict(os.environ) == environment
