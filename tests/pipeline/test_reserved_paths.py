"""pivot's own state (and git's) is never a stage's dep or output."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.pipeline_project import HEADER, make_project


@pytest.mark.parametrize(
    ("marker", "path"),
    [
        ("Out", ".pivot/state.db"),
        ("Out", "./.pivot"),
        ("Out", "data/../.pivot/events.db"),
        ("Dep", ".pivot/logs/a.log"),
        ("Out", ".git/config"),
        ("Dep", ".git"),
    ],
)
@pytest.mark.parametrize("command", ["status", "run", "dag"])
def test_a_path_inside_pivot_or_git_is_refused_at_definition(
    tmp_path: Path, marker: str, path: str, command: str
) -> None:
    project = make_project(tmp_path)
    project.write(
        "pipeline.py",
        HEADER
        + f"""
@pipeline.stage
def wreck(target: Annotated[Path, {marker}({path!r})]) -> None:
    target.write_text("gone")
""",
    )
    project.cli("status", ok=None)  # creates .pivot/ if it were accepted
    state = project.root / ".pivot" / "state.db"
    before = state.read_bytes() if state.exists() else None
    proc = project.cli(command, ok=None)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    line = proc.stderr.strip()
    assert line.startswith("error: pipeline.py:"), line
    assert "stage 'wreck'" in line and repr(path) in line, line
    top = ".git" if ".git" in path else ".pivot"
    assert f"is inside {top}/" in line, line
    if before is not None:
        assert state.read_bytes() == before
