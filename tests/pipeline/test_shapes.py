"""Linear, fan-in, diamond and directory-dep pipelines through the real CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from testkit.pipeline_project import HEADER, PIVOT, make_project

LINEAR = (
    HEADER
    + """
@pipeline.stage
def a(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("a.txt")]) -> None:
    out.write_text(src.read_text() + "a")

@pipeline.stage
def b(src: Annotated[Path, Dep("a.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text(src.read_text() + "b")

@pipeline.stage
def c(src: Annotated[Path, Dep("b.txt")], out: Annotated[Path, Out("c.txt")]) -> None:
    out.write_text(src.read_text() + "c")
"""
)


def test_linear_runs_in_order_then_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", LINEAR)
    project.write("in.txt", "x")
    assert project.status() == {
        "a": ["never run"],
        "b": ["never run", "upstream will run: a"],
        "c": ["never run", "upstream will run: b"],
    }
    assert project.ran() == ["a", "b", "c"]
    assert project.read("c.txt") == "xabc"
    assert project.ran() == []
    assert project.status() == {"a": [], "b": [], "c": []}
    # A's input changes -> A, B, C; B's output changes by hand -> B rewrites it, then C.
    project.write("in.txt", "y")
    assert project.status()["a"] == ["dep changed: in.txt"]
    assert project.ran() == ["a", "b", "c"]
    assert project.read("c.txt") == "yabc"
    project.write("b.txt", "hand")
    assert project.status()["b"] == ["output changed: b.txt"]
    assert project.ran() == ["b", "c"]
    assert project.read("c.txt") == "yabc"


def test_linear_target_runs_only_upstream_and_output_missing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", LINEAR)
    project.write("in.txt", "x")
    assert project.ran("b") == ["a", "b"]
    assert not (project.root / "c.txt").exists()
    (project.root / "a.txt").unlink()
    reasons = project.status()
    assert reasons["a"] == ["output missing: a.txt"]
    assert reasons["b"] == ["dep changed: a.txt", "upstream will run: a"]
    assert reasons["c"] == ["never run", "upstream will run: b"]
    text = project.cli("status").stdout
    assert "a  stale: output missing: a.txt" in text
    assert project.ran("--force", "c") == ["a", "b", "c"]


FAN_IN = (
    HEADER
    + """
def _copy(src: Path, out: Path) -> None:
    out.write_text(src.read_text())

@pipeline.stage
def a(src: Annotated[Path, Dep("in/a.txt")], out: Annotated[Path, Out("mid/a.txt")]) -> None:
    _copy(src, out)

@pipeline.stage
def b(src: Annotated[Path, Dep("in/b.txt")], out: Annotated[Path, Out("mid/b.txt")]) -> None:
    _copy(src, out)

@pipeline.stage
def c(src: Annotated[Path, Dep("in/c.txt")], out: Annotated[Path, Out("mid/c.txt")]) -> None:
    _copy(src, out)

@pipeline.stage
def d(
    x: Annotated[Path, Dep("mid/a.txt")],
    y: Annotated[Path, Dep("mid/b.txt")],
    z: Annotated[Path, Dep("mid/c.txt")],
    out: Annotated[Path, Out("all.txt")],
) -> None:
    out.write_text(x.read_text() + y.read_text() + z.read_text())
"""
)


def test_fan_in(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", FAN_IN)
    for n in "abc":
        project.write(f"in/{n}.txt", n)
    assert sorted(project.ran("-j", "3")) == ["a", "b", "c", "d"]
    assert project.read("all.txt") == "abc"
    project.write("in/b.txt", "B")
    assert project.ran() == ["b", "d"]
    assert project.read("all.txt") == "aBc"
    assert "d  <- a, b, c" in project.cli("dag").stdout


DIAMOND = (
    HEADER
    + """
@pipeline.stage
def top(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("top.txt")]) -> None:
    out.write_text(src.read_text())

@pipeline.stage
def left(src: Annotated[Path, Dep("top.txt")], out: Annotated[Path, Out("left.txt")],
         suffix: str = "L") -> None:
    out.write_text(src.read_text() + suffix)

@pipeline.stage
def right(src: Annotated[Path, Dep("top.txt")], out: Annotated[Path, Out("right.txt")]) -> None:
    out.write_text(src.read_text() + "R")

@pipeline.stage
def merge(l: Annotated[Path, Dep("left.txt")], r: Annotated[Path, Dep("right.txt")],
          out: Annotated[Path, Out("merged.txt")]) -> None:
    out.write_text(l.read_text() + "+" + r.read_text())
"""
)


def test_diamond_branch_and_merge(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", DIAMOND)
    project.write("in.txt", "t")
    assert project.ran() == ["top", "left", "right", "merge"]
    assert project.read("merged.txt") == "tL+tR"
    # One branch changes (via params.yaml): that branch plus the merge.
    project.write("params.yaml", "left:\n  suffix: Q\n")
    assert project.status()["left"] == ['param changed: suffix "L" -> "Q"']
    assert project.ran() == ["left", "merge"]
    assert project.read("merged.txt") == "tQ+tR"


DIR_DEP = (
    HEADER
    + """
@pipeline.stage
def split(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("parts")]) -> None:
    out.mkdir(exist_ok=True)
    for i, line in enumerate(src.read_text().splitlines()):
        (out / f"{i}.txt").write_text(line)

@pipeline.stage
def count(parts: Annotated[Path, Dep("parts")], out: Annotated[Path, Out("count.txt")]) -> None:
    out.write_text(str(len(list(parts.iterdir()))))

@pipeline.stage
def first(one: Annotated[Path, Dep("parts/0.txt")], out: Annotated[Path, Out("first.txt")]) -> None:
    out.write_text(one.read_text())

@pipeline.stage
def catalogue(docs: Annotated[Path, Dep("docs")],
              out: Annotated[Path, Out("catalogue.txt")]) -> None:
    out.write_text(",".join(sorted(p.name for p in docs.rglob("*") if p.is_file())))
"""
)


def test_directory_deps(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", DIR_DEP)
    project.write("in.txt", "x\ny\n")
    project.write("docs/a.md", "a")
    assert project.ran() == ["split", "count", "first", "catalogue"]
    assert project.read("count.txt") == "2"
    graph = project.cli("dag", "--format", "dot").stdout
    assert '"split" -> "count" [label="parts"];' in graph
    assert '"split" -> "first" [label="parts/0.txt"];' in graph
    # A new file inside a directory dep: its consumer runs, nothing else.
    project.write("docs/sub/b.md", "b")
    assert project.status()["catalogue"] == ["dep changed: docs"]
    assert project.ran() == ["catalogue"]
    assert project.read("catalogue.txt") == "a.md,b.md"
    # Upstream rewrites the directory: both the directory consumer and the file consumer.
    project.write("in.txt", "z\ny\nw\n")
    assert project.ran() == ["split", "count", "first"]
    assert project.read("count.txt") == "3"
    assert project.read("first.txt") == "z"


PARALLEL = (
    HEADER
    + """
import time

def _meet(me: str, other: str) -> None:
    Path(f"arrived-{me}").write_text("")
    deadline = time.monotonic() + 60
    while not Path(f"arrived-{other}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never ran alongside {me}")
        time.sleep(0.01)

@pipeline.stage
def left(out: Annotated[Path, Out("left.txt")]) -> None:
    _meet("left", "right")
    out.write_text("l")

@pipeline.stage
def right(out: Annotated[Path, Out("right.txt")]) -> None:
    _meet("right", "left")
    out.write_text("r")
"""
)


def test_independent_stages_run_at_the_same_time(tmp_path: Path) -> None:
    # Each stage waits for the other to have started: only a parallel run passes.
    project = make_project(tmp_path)
    project.write("pipeline.py", PARALLEL)
    assert sorted(project.ran("--jobs", "2")) == ["left", "right"]


def test_pipeline_found_upwards_or_given(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", LINEAR)
    project.write("in.txt", "x")
    sub = project.root / "deep" / "er"
    sub.mkdir(parents=True)
    below = subprocess.run([*PIVOT, "status"], check=False, cwd=sub, capture_output=True, text=True)
    assert below.returncode == 0, below.stderr
    assert "a  stale: never run" in below.stdout
    elsewhere = subprocess.run(
        [*PIVOT, "run", "--pipeline", str(project.root / "pipeline.py")],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert project.read("c.txt") == "xabc"
