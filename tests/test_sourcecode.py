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


def test_only_the_lifecycle_moves_a_table() -> None:
    """copier/lifecycle.py is the one owner of a table's status (in memory and in the state
    table) and of its wake-up events: no other module assigns a `.status`, calls
    state.set_status(es), or sets an event named for a table's rows being in or done."""
    import ast

    found = []
    for path in sorted((ROOT / "copier").rglob("*.py")):
        if path.name in ("lifecycle.py", "state.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = [t for target in node.targets
                           for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            found += [f"{where}:{line}: assigns .status" for t in targets
                      if isinstance(t, ast.Attribute) and t.attr == "status"]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called, on = node.func.attr, ast.unparse(node.func.value)
                if called in ("set_status", "set_statuses"):
                    found.append(f"{where}:{line}: records a status ({on}.{called})")
                # A table's event was looked up by its name (run.done[name], event[name]).
                if called == "set" and (isinstance(node.func.value, ast.Subscript) or "rows_in" in on):
                    found.append(f"{where}:{line}: sets a table's event ({on}.set())")
    assert found == []
