"""Stages a worker cannot import (closures made by a factory, lambdas) are refused at definition."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.pipeline_project import HEADER, make_project

FACTORY = (
    HEADER
    + """
def make(n: int):
    def stage(out: Annotated[Path, Out(f"out{n}.txt")]) -> None:
        out.write_text(str(n))
    return stage


for i in (1, 2):
    pipeline.stage(name=f"s{i}")(make(i))
"""
)

LAMBDA = HEADER + '\npipeline.stage(name="s1")(lambda: None)\n'


@pytest.mark.parametrize("body", [FACTORY, LAMBDA], ids=["closure", "lambda"])
@pytest.mark.parametrize("command", ["status", "run"])
def test_a_stage_function_a_worker_cannot_import_is_refused(
    tmp_path: Path, body: str, command: str
) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", body)
    proc = project.cli(command, ok=None)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    line = proc.stderr.strip()
    assert line.startswith("error: pipeline.py:"), line
    assert "stage 's1'" in line and "module level" in line, line
    assert "AttributeError" not in proc.stderr + proc.stdout


def test_the_suggested_way_works(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write(
        "pipeline.py",
        HEADER
        + """
def write_n(out: Annotated[Path, Out("out.txt")], n: int = 0) -> None:
    out.write_text(str(n))


pipeline.stage(name="s1")(write_n)
""",
    )
    assert project.ran() == ["s1"]
    assert project.read("out.txt") == "0"
