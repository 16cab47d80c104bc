"""The core stays pure: no driver, event loop, CLI or progress import in it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "copier"
CORE = ["errors", "ident", "catalog", "casting", "normalise", "planning", "ddl", "settings", "stats", "crosscheck",
        "rebuild", "resume", "dsn", "arrowlane", "dialect", "rules", "distribution", "lanes", "constraints",
        "batching"]
FORBIDDEN = {"asyncpg", "aiosqlite", "sqlite3", "anyio", "asyncio", "typer", "tqdm"}


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_no_io(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    imported, ours = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):  # relative: `from .x import y`, `from . import x`
            ours |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
    assert not imported & FORBIDDEN
    # The core reaches the edges through no copier module either: it imports only the core.
    assert ours <= set(CORE), ours - set(CORE)


def test_only_progress_imports_tqdm() -> None:
    users = [p.name for p in PACKAGE.glob("*.py") if "tqdm" in p.read_text() and p.name != "progress.py"]
    assert users == []


def test_no_product_module_imports_the_benchmark_harness() -> None:
    """copier/bench/ is a room of its own: only the CLI's `bench` command reaches into it."""
    for module in sorted(PACKAGE.glob("*.py")):
        if module.name == "cli.py":
            continue
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                name = ("." * node.level) + (node.module or "")
                assert not name.lstrip(".").startswith("bench"), f"{module.name} imports {name}"
                assert not any(alias.name == "bench" for alias in node.names), f"{module.name} imports bench"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("copier.bench") for a in node.names), module.name
