"""The playbook end to end, with real ORMs from PyPI: the app's ORM makes the schema on
PostgreSQL (and, as a real migration does, writes bookkeeping rows into it), copier loads
the SQLite data with --if-exists truncate and verifies it, then the app works on
PostgreSQL: it inserts a row through its ORM, and (Django) the admin user logs in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import invoke
from .pg import Target

PROJECTS = Path(__file__).parent / "projects"


def _run(project: Path, step: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, str(project / "run.py"), step], capture_output=True, text=True,
                          timeout=240, env={**os.environ, **env}, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _project(name: str, tmp_path: Path) -> Path:
    pytest.importorskip("django" if name == "djangoshop" else "alembic")
    return Path(shutil.copytree(PROJECTS / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")))


def test_django_app_moves_to_its_orm_made_postgres_schema(tmp_path: Path, target: Target) -> None:
    project = _project("djangoshop", tmp_path)
    sqlite = tmp_path / "shop.db"
    env = {"SHOP_SQLITE": str(sqlite), "SHOP_PG_DSN": target.dsn, "SHOP_PG_SCHEMA": target.schema}
    _run(project, "app-data", env)  # the app's life on SQLite
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    _run(project, "migrate", {**env, "SHOP_DB": "postgres"})  # manage.py migrate on PostgreSQL
    assert target.count("django_migrations") > 0 and target.count("auth_permission") > 0  # rows already there

    plain = invoke("migrate", sqlite, "--dsn", target.dsn, "--schema", target.schema, "--quiet")
    assert plain.exit_code == 2 and "target tables already hold rows" in plain.stderr
    result = invoke("migrate", sqlite, "--dsn", target.dsn, "--schema", target.schema, "--if-exists", "truncate")
    assert result.exit_code == 0, result.output
    assert "Verified: every table's row count and every row's content match the source." in result.stdout
    assert target.count("shop_order") == 100 and target.count("auth_user") == 1

    # Cutover: the app wrote, updated and deleted in SQLite since; an upsert rerun converges,
    # and verify names the order deleted in SQLite (still in PostgreSQL: upsert deletes nothing).
    _run(project, "app-changes", env)
    rerun = invoke("migrate", sqlite, "--dsn", target.dsn, "--schema", target.schema, "--if-exists", "upsert")
    assert rerun.exit_code == 4, rerun.output
    assert "shop_order: source 99 rows, target 100, rejected 0, CONTENT DIFFERS at key(s) 5: MISMATCH" \
        in rerun.stdout
    assert "shop_customer" not in rerun.stdout.split("Problems:")[1]  # inserted and updated rows converged

    assert _run(project, "app-after-cutover", {**env, "SHOP_DB": "postgres"}).strip() == "ok"


def test_sqlalchemy_alembic_app_moves_to_its_migrated_postgres_schema(tmp_path: Path, target: Target) -> None:
    project = _project("alembicshop", tmp_path)
    sqlite = tmp_path / "shop.db"
    env = {"SHOP_SQLITE": str(sqlite), "SHOP_PG_DSN": target.dsn, "SHOP_PG_SCHEMA": target.schema}
    _run(project, "app-data", env)  # alembic upgrade head on SQLite, then the app's rows
    target.execute(f'CREATE SCHEMA "{target.schema}"')
    _run(project, "upgrade", {**env, "SHOP_DB": "postgres"})  # alembic upgrade head on PostgreSQL
    assert target.count("alembic_version") == 1 and target.count("category") == 1  # seeded by the migration

    result = invoke("migrate", sqlite, "--dsn", target.dsn, "--schema", target.schema, "--if-exists", "truncate")
    assert result.exit_code == 0, result.output
    assert "Verified: every table's row count and every row's content match the source." in result.stdout
    assert target.count("product") == 50

    assert _run(project, "app-after-cutover", {**env, "SHOP_DB": "postgres"}).strip() == "ok"
