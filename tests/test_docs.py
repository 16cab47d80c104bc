"""The README documents every flag the CLI has."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from copier.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _flags() -> list[str]:
    command = typer.main.get_command(app)
    flags = set()
    for sub in command.commands.values():  # type: ignore[attr-defined]
        for param in sub.params:
            flags |= {o for o in param.opts if o.startswith("--") and o != "--help"}
    return sorted(flags)


@pytest.mark.parametrize("flag", _flags())
def test_flag_is_in_readme(flag: str) -> None:
    assert f"`{flag}" in README or f"{flag}/" in README or f"/{flag}" in README


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && python -m pytest' in README
    assert 'pip install -e ".[test]" && python -m pytest' in ci
