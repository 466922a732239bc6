"""Every pipeline mistake is one clear line naming the file/line, stages and paths; no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.pipeline_project import HEADER, make_project

CASES = {
    "cycle": (
        HEADER
        + """
@pipeline.stage
def a(x: Annotated[Path, Dep("b.txt")], out: Annotated[Path, Out("a.txt")]) -> None: ...

@pipeline.stage
def b(x: Annotated[Path, Dep("a.txt")], out: Annotated[Path, Out("b.txt")]) -> None: ...
""",
        "pipeline.py:8: dependency cycle: a -> b (via a.txt); b -> a (via b.txt) "
        "(a at pipeline.py:8, b at pipeline.py:11)",
    ),
    "duplicate output": (
        HEADER
        + """
@pipeline.stage
def a(out: Annotated[Path, Out("same.txt")]) -> None: ...

@pipeline.stage
def b(out: Annotated[Path, Out("same.txt")]) -> None: ...
""",
        "pipeline.py:11: stages 'a' (pipeline.py:8) and 'b' both write 'same.txt'",
    ),
    "overlapping outputs": (
        HEADER
        + """
@pipeline.stage
def a(out: Annotated[Path, Out("d")]) -> None: ...

@pipeline.stage
def b(out: Annotated[Path, Out("d/x.txt")]) -> None: ...
""",
        "pipeline.py:8: outputs overlap: 'd' of stage 'a' and 'd/x.txt' of stage 'b' "
        "(pipeline.py:11; one is inside the other)",
    ),
    "missing dep": (
        HEADER
        + """
@pipeline.stage
def a(x: Annotated[Path, Dep("nowhere.csv")], out: Annotated[Path, Out("a.txt")]) -> None: ...
""",
        "pipeline.py:8: stage 'a' depends on 'nowhere.csv', "
        "which no stage writes and which does not exist",
    ),
    "param without default": (
        HEADER
        + """
@pipeline.stage
def a(out: Annotated[Path, Out("a.txt")], threshold: float) -> None: ...
""",
        "pipeline.py:8: stage 'a': param 'threshold' has no default",
    ),
    "duplicate stage name": (
        HEADER
        + """
@pipeline.stage
def a(out: Annotated[Path, Out("a.txt")]) -> None: ...

@pipeline.stage(name="a")
def other(out: Annotated[Path, Out("b.txt")]) -> None: ...
""",
        "pipeline.py:11: two stages are named 'a' (the other one is at pipeline.py:8)",
    ),
    "syntax error": (
        HEADER + "\n@pipeline.stage\ndef a(:\n    pass\n",
        "pipeline.py:9: syntax error: invalid syntax",
    ),
    "import error": (
        HEADER + "\nimport helpers_that_do_not_exist\n",
        "pipeline.py:8: error while loading the pipeline: ModuleNotFoundError: "
        "No module named 'helpers_that_do_not_exist'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pipeline_mistakes(tmp_path: Path, case: str) -> None:
    project = make_project(tmp_path)
    text, expected = CASES[case]
    project.write("pipeline.py", text)
    proc = project.cli("status", ok=False)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_errors_in_imported_modules_and_json(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", HEADER + "\nimport stages\n")
    project.write("stages.py", "x = 1\ny = undefined_name\n")
    proc = project.cli("run", ok=False)
    assert "stages.py:2: error while loading the pipeline: NameError" in proc.stderr
    assert "Traceback" not in proc.stderr
    project.write("stages.py", "def broken(:\n")
    doc = json.loads(project.cli("run", "--json", ok=False).stdout)
    assert doc["ok"] is False
    assert doc["error"]["file"] == "stages.py"
    assert doc["error"]["line"] == 1
    assert doc["error"]["message"].startswith("syntax error")
    proc = project.cli("dag", "--format", "mermaid", ok=False)
    assert "stages.py:1: syntax error" in proc.stderr


def test_no_pipeline_and_unknown_stage(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    proc = project.cli("status", ok=False)
    assert "no pipeline.py in" in proc.stderr
    project.write(
        "pipeline.py",
        CASES["param without default"][0].replace("threshold: float", "threshold: float = 1"),
    )
    proc = project.cli("run", "nope", ok=False)
    assert "unknown stage 'nope' (known stages: a)" in proc.stderr
    assert "Traceback" not in proc.stderr
