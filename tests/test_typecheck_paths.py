"""Type checkers and editors see `pivot` as src/ through the committed typecheck/pivot."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_typecheck_pivot_is_the_source_tree() -> None:
    link = ROOT / "typecheck" / "pivot"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "src").resolve()


def test_mypy_and_pyright_look_there() -> None:
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tools["mypy"]["mypy_path"].split(":")[0] == "typecheck"
    assert tools["mypy"]["files"] == ["typecheck/pivot", "tests"]
    assert "typecheck" in tools["pyright"]["extraPaths"]
    assert "typecheck/pivot" in tools["pyright"]["include"]
