"""History that answers questions, through the real CLI: replay, why, stats."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline_project import HEADER, Project, make_project

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def divide(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("ratio.txt")]) -> None:
    n = int(src.read_text())
    out.write_text(str(10 / n))

@pipeline.stage
def report(src: Annotated[Path, Dep("ratio.txt")], out: Annotated[Path, Out("report.txt")]) -> None:
    out.write_text("ratio " + src.read_text())
"""
)


def _project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("in.txt", "0")
    return project


def test_replay_after_a_fixed_failure_shows_no_old_error(tmp_path: Path) -> None:
    project = _project(tmp_path)
    project.cli("run", ok=False)
    failed = json.loads(project.cli("replay", "--json", "-p", "pipeline_status").stdout)
    divide = failed["projections"]["pipeline_status"]["stages"]["divide"]
    assert divide["state"] == "failed" and "ZeroDivisionError" in divide["last_error"]
    project.write("in.txt", "4")
    project.cli("run")
    fixed = json.loads(project.cli("replay", "--json", "-p", "pipeline_status").stdout)
    divide = fixed["projections"]["pipeline_status"]["stages"]["divide"]
    assert divide["state"] == "succeeded" and divide["last_error"] == ""
    text = project.cli("replay", "-p", "pipeline_status").stdout
    assert "ZeroDivisionError" not in text and "succeeded" in text
