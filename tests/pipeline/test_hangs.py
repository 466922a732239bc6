"""Nothing hangs without a word: special files as deps, a pipeline.py that loops or exits.

End to end through the real CLI, each with a generous timeout that only
keeps a regression from hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testkit.pipeline_project import HEADER, PIVOT, Project, make_project

STAGE = (
    HEADER
    + """
@pipeline.stage
def copy(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("data/out.txt")],
) -> None:
    out.write_text(src.read_text())
"""
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = make_project(tmp_path)
    p.write("pipeline.py", STAGE)
    return p


@pytest.mark.parametrize("command", ["status", "run"])
def test_a_fifo_dep_is_refused_naming_it(project: Project, command: str) -> None:
    (project.root / "data").mkdir()
    os.mkfifo(project.root / "data/in.txt")
    proc = project.cli(command, ok=None, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "data/in.txt is a named pipe (FIFO)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_fifo_output_is_refused_too(project: Project) -> None:
    project.write("data/in.txt", "x\n")
    os.mkfifo(project.root / "data/out.txt")
    proc = project.cli("status", ok=None, timeout=60)
    assert proc.returncode == 2 and "data/out.txt is a named pipe" in proc.stderr, proc.stderr


MAKES_A_FIFO = (
    HEADER
    + """
import os


@pipeline.stage
def copy(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("data/out.txt")],
) -> None:
    os.mkfifo(out)
"""
)


def test_a_stage_that_writes_a_fifo_output_fails_naming_it(project: Project) -> None:
    # Hashing it after the stage ran raised out of the wave: a traceback, no stage.failed.
    project.write("pipeline.py", MAKES_A_FIFO)
    project.write("data/in.txt", "x\n")
    proc = project.cli("run", ok=None, timeout=60)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    out = proc.stdout + proc.stderr
    assert "copy" in out and "data/out.txt is a named pipe (FIFO)" in out, out
    assert "Traceback" not in out


LOOPING = STAGE + "\nimport time\nwhile True:\n    time.sleep(0.05)\n"
SPINNING = STAGE + "\nwhile True:\n    pass\n"


@pytest.mark.parametrize("body", [LOOPING, SPINNING], ids=["sleeping", "spinning"])
def test_a_pipeline_that_loops_at_import_says_so_and_stops_at_load_timeout(
    project: Project, body: str
) -> None:
    project.write("pipeline.py", body)
    project.write("data/in.txt", "x\n")
    project.write("pivot.toml", "load_timeout = 4\n")
    proc = project.cli("run", ok=None, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert any(line.startswith("still loading pipeline.py (") for line in lines), proc.stderr
    error = lines[-1]
    assert error.startswith("error: pipeline.py:"), error  # the line it was on
    assert "loading pipeline.py stopped after 4 s (load_timeout in pivot.toml)" in error
    assert "Traceback" not in proc.stderr


def test_a_bad_load_timeout_names_the_file(project: Project) -> None:
    project.write("data/in.txt", "x\n")
    project.write("pivot.toml", 'load_timeout = "soon"\n')
    proc = project.cli("status", ok=None, timeout=60)
    assert proc.returncode == 2
    assert "pivot.toml:1: load_timeout must be a positive number" in proc.stderr, proc.stderr


def test_os_exit_at_import_is_said(project: Project) -> None:
    project.write("pipeline.py", STAGE + "\nimport os\nos._exit(3)\n")
    project.write("data/in.txt", "x\n")
    for command in ("run", "status"):
        proc = project.cli(command, ok=None, timeout=60)
        assert proc.returncode == 2, (proc.returncode, proc.stderr)
        assert "called os._exit(3)" in proc.stderr and "pipeline.py:" in proc.stderr


def test_watch_says_still_loading_and_reports_the_timeout(project: Project) -> None:
    project.write("pipeline.py", LOOPING)
    project.write("data/in.txt", "x\n")
    project.write("pivot.toml", "load_timeout = 4\n")
    proc = subprocess.Popen(
        [*PIVOT, "watch", "--display", "plain", "--no-job-watchers"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "stopped after 4 s" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = "".join(seen)
    assert "still loading pipeline.py (" in text, text
    assert "stopped after 4 s" in text, text
