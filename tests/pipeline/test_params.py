"""params.yaml overrides stage defaults; a change re-runs the stage with the new value."""

from __future__ import annotations

from pathlib import Path

from testkit.pipeline_project import HEADER, make_project

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def clean(raw: Annotated[Path, Dep("raw.csv")], out: Annotated[Path, Out("clean.csv")],
          threshold: float = 0.5) -> None:
    rows = [float(x) for x in raw.read_text().split()]
    out.write_text(" ".join(str(x) for x in rows if x >= threshold))

@pipeline.stage(name="train")
def fit(clean: Annotated[Path, Dep("clean.csv")],
        model: Annotated[Path, Out("models/model.txt")]) -> None:
    model.write_text(str(len(clean.read_text().split())))
"""
)


def test_params_override_and_change(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("raw.csv", "0.1 0.6 0.8 0.9")
    project.write("params.yaml", "clean:\n  threshold: 0.7\n")
    assert project.ran() == ["clean", "train"]
    assert project.read("clean.csv") == "0.8 0.9"
    assert project.read("models/model.txt") == "2"
    project.write("params.yaml", "clean: {threshold: 0.5}\n")
    assert project.status() == {
        "clean": ["param changed: threshold 0.7 -> 0.5"],
        "train": ["upstream will run: clean"],
    }
    assert project.ran() == ["clean", "train"]
    assert project.read("models/model.txt") == "3"
    (project.root / "params.yaml").unlink()  # back to the default, which equals 0.5
    assert project.status() == {"clean": [], "train": []}


def test_params_yaml_mistakes_name_file_and_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("raw.csv", "0.1")
    project.write("params.yaml", "clean:\n  threshold: 0.7\n  treshold: 0.1\n")
    proc = project.cli("status", ok=False)
    assert proc.returncode == 2
    assert (
        "params.yaml:3: stage 'clean' has no param 'treshold' (its params: threshold)"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    project.write("params.yaml", "trian:\n  x: 1\n")
    proc = project.cli("run", ok=False)
    assert "params.yaml:1: no stage named 'trian' (stages: clean, train)" in proc.stderr


def test_params_yaml_value_of_the_wrong_type_names_file_line_stage_and_param(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    project.write(
        "pipeline.py",
        PIPELINE.replace("threshold: float = 0.5", "threshold: float = 0.5, tags: list[str] = []"),
    )
    project.write("raw.csv", "0.1 0.6")
    project.write("params.yaml", "clean:\n  threshold: [1, 2]\n")
    proc = project.cli("status", ok=False)
    assert proc.returncode == 2
    assert (
        "params.yaml:2: stage 'clean', param 'threshold': expected float "
        "(as the stage function annotates it), got list [1, 2]" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    project.write("params.yaml", "clean:\n  threshold: 0.5\n  tags: yes\n")
    proc = project.cli("run", ok=False)
    assert "params.yaml:3: stage 'clean', param 'tags': expected list" in proc.stderr
    assert "got bool true" in proc.stderr
    project.write("params.yaml", "clean:\n  threshold: 1\n  tags: [a]\n")  # int is a float
    assert project.ran() == ["clean", "train"]
