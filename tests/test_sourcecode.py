"""Linters as tests (asyncpg's test__sourcecode.py): mypy strict on the package and the tests, ruff everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_mypy_strict() -> None:
    done = run("mypy", "copier", "tests")
    assert done.returncode == 0, done.stdout


def test_ruff() -> None:
    done = run("ruff", "check", "copier", "tests", "benchmarks", "examples")
    assert done.returncode == 0, done.stdout
