"""Test modules import what they share from the package testkit, never from one another.

A bare-name import of a sibling (``from jobs_e2e import ...``) works only
through pytest's ``prepend`` path insertion and breaks under another import
mode, in an editor, or when a second file of the same name appears; and
importing ``conftest`` gets whichever conftest pytest loaded last
(docs/solutions/nested-conftest-shadows-require.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported_top_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_test_module_imports_another_by_bare_name() -> None:
    local = {p.stem for p in TESTS.rglob("*.py") if "testkit" not in p.relative_to(TESTS).parts}
    offenders = [
        f"{path.relative_to(TESTS)}: imports {name}"
        for path in sorted(TESTS.rglob("*.py"))
        for name in sorted(_imported_top_names(path) & local)
    ]
    assert offenders == [], "move shared helpers into tests/testkit/:\n" + "\n".join(offenders)


def test_testkit_is_a_package_on_the_path() -> None:
    import testkit
    from testkit.require import require

    assert Path(testkit.__file__).parent == TESTS / "testkit"
    assert callable(require)
