"""The embedding API watch mode relies on: fresh loads, pure planning, affected stages."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from pivot.pipeline.dag import affected_stages, build_graph, render
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.loader import load_fresh
from pivot.pipeline.plan import plan, stage_reasons
from pivot.pipeline.spec import PipelineSpec
from pivot.pipeline.state import StageRecord

from testkit.pipeline_project import HEADER, Project, make_project, wait_past_racy_window

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def clean(raw: Annotated[Path, Dep("data/raw.csv")], out: Annotated[Path, Out("data/clean.csv")],
          threshold: float = 0.5) -> None:
    out.write_text(raw.read_text())

@pipeline.stage
def stats(clean: Annotated[Path, Dep("data/clean.csv")],
          out: Annotated[Path, Out("reports")]) -> None:
    out.mkdir(exist_ok=True)
    (out / "n.txt").write_text("1")

@pipeline.stage
def report(rep: Annotated[Path, Dep("reports/n.txt")], docs: Annotated[Path, Dep("docs")],
           out: Annotated[Path, Out("report.md")]) -> None:
    out.write_text("r")
"""
)


def _project(project: Project) -> PipelineSpec:
    project.write("pipeline.py", PIPELINE)
    project.write("data/raw.csv", "a,1\n")
    project.write("docs/intro.md", "hi")
    return load_fresh(project.root / "pipeline.py")


def test_load_fresh_gives_a_picklable_spec(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    spec = _project(project)
    assert spec.names == ("clean", "stats", "report")
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert PipelineSpec.from_json(spec.to_json()) == spec
    clean = spec.stage("clean")
    assert clean.params == {"threshold": 0.5}
    assert clean.deps == ("data/raw.csv",)
    assert "pipeline.py:clean" in clean.code
    assert spec.source_files == ("pipeline.py",)


def test_load_fresh_structured_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", HEADER + "\nx = (\n")
    with pytest.raises(PipelineError) as info:
        load_fresh(project.root / "pipeline.py")
    assert info.value.file == "pipeline.py"
    assert info.value.line == 8
    assert "syntax error" in info.value.message


def test_affected_follows_consumers_directories_and_downstream(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    spec = _project(project)
    graph = build_graph(spec)
    assert graph.affected(["data/raw.csv"]) == {"clean", "stats", "report"}
    assert graph.affected(["data/clean.csv"]) == {"clean", "stats", "report"}  # its writer too
    assert graph.affected(["reports/n.txt"]) == {"stats", "report"}  # inside stats' output dir
    assert graph.affected(["docs/new/file.md"]) == {"report"}  # inside a directory dep
    assert graph.affected(["report.md"]) == {"report"}  # an output nothing reads: its writer
    assert graph.affected(["elsewhere.txt"]) == set()
    root = Path(spec.root)
    assert affected_stages(spec, graph, [root / "docs" / "intro.md", "/elsewhere/x"]) == {"report"}
    assert affected_stages(spec, graph, ["data/clean.csv"]) == {"clean", "stats", "report"}
    assert render(graph, "text").splitlines() == [
        "clean",
        "  stats  <- clean",
        "    report  <- stats",
    ]


def test_planner_reasons_are_pure(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    spec = _project(project)
    graph = build_graph(spec)
    clean = spec.stage("clean")
    observed = {"data/raw.csv": "h1", "data/clean.csv": "h2"}
    good = StageRecord(
        fingerprint=clean.fingerprint,
        code=clean.code,
        deps={"data/raw.csv": "h1"},
        params={"threshold": 0.5},
        outs={"data/clean.csv": "h2"},
    )
    assert stage_reasons(clean, good, observed) == []
    assert stage_reasons(clean, None, observed) == ["never run"]
    old_code = dict.fromkeys(clean.code, "old")
    stale = StageRecord(
        fingerprint="x",
        code=old_code,
        deps={"data/raw.csv": "h0"},
        params={"threshold": 0.7},
        outs={"data/clean.csv": "h2"},
    )
    assert stage_reasons(clean, stale, {**observed, "data/clean.csv": None}) == [
        "code changed: pipeline.py:clean",
        "param changed: threshold 0.7 -> 0.5",
        "dep changed: data/raw.csv",
        "output missing: data/clean.csv",
    ]
    the_plan = plan(spec, graph, {"clean": good}, observed, targets=["stats"])
    assert the_plan.to_run == ("stats",)
    assert the_plan.decision("stats").reasons == ("never run",)
    forced = plan(spec, graph, {"clean": good}, observed, force=True)
    assert forced.to_run == ("clean", "stats", "report")
    assert forced.decision("clean").reasons == ("forced",)
    assert forced.decision("stats").reasons == ("forced", "never run", "upstream will run: clean")


def test_spec_paths_are_project_relative(tmp_path: Path) -> None:
    from pivot.pipeline.declare import normalise_path

    assert normalise_path("data/./raw.csv") == "data/raw.csv"
    for bad in ("/etc/passwd", "../outside", "."):
        with pytest.raises(ValueError):
            normalise_path(bad)


def test_code_cache_skips_parsing_unchanged_files_but_sees_edits(tmp_path: Path) -> None:
    import json
    import os
    import time

    from pivot.pipeline.loader import load_pipeline

    project = make_project(tmp_path)
    project.write("pipeline.py", HEADER + "\nfrom helpers import clean\npipeline.stage(clean)\n")
    helpers = project.write(
        "helpers.py",
        """
        from pathlib import Path
        from typing import Annotated
        from pivot import Out

        def twice(x: int) -> int:
            return 2 * x

        def clean(out: Annotated[Path, Out("o.txt")]) -> None:
            out.write_text(str(twice(1)))
        """,
    )
    old = time.time() - 3600  # older than the racy window, so the load caches them
    for f in (project.root / "pipeline.py", helpers):
        os.utime(f, (old, old))
    wait_past_racy_window(project.root / "pipeline.py", helpers)  # their ctime too
    first = load_pipeline(project.root / "pipeline.py").stage("clean")
    cache = json.loads((project.root / ".pivot/code-cache.json").read_text())
    assert set(cache) == {"helpers.py"}  # pipeline.py holds no stage code here
    assert "twice" in cache["helpers.py"]["index"]["defs"]
    again = load_pipeline(project.root / "pipeline.py").stage("clean")
    assert again.code == first.code
    helpers.write_text(helpers.read_text().replace("2 * x", "3 * x"))
    edited = load_pipeline(project.root / "pipeline.py").stage("clean")
    changed = {k for k in edited.code if edited.code[k] != first.code[k]}
    assert changed == {"helpers.py:twice"}


def test_recorded_output_hashes_match_the_files(tmp_path: Path) -> None:
    """Watch mode tells the stages' own writes apart by these hashes."""
    from pivot.events.store import EventStore
    from pivot.pipeline.hashing import FileHasher, hash_bytes
    from pivot.pipeline.state import StateStore

    project = make_project(tmp_path)
    spec = _project(project)
    project.cli("run")
    state = StateStore.open(spec.root)
    try:
        records = state.records()
    finally:
        state.close()
    clean = records["clean"]
    assert clean.outs == {"data/clean.csv": hash_bytes(b"a,1\n")}
    assert clean.deps == {"data/raw.csv": hash_bytes(b"a,1\n")}
    assert clean.params == {"threshold": 0.5}
    hasher = FileHasher(spec.root, {})
    assert records["stats"].outs == {"reports": hasher.hash("reports")}
    store = EventStore.open(str(project.root / ".pivot/events.db"))
    try:
        succeeded = {r.event.stage: r.event for r in store.read(types=["stage.succeeded"])}  # type: ignore[attr-defined]
    finally:
        store.close()
    assert set(succeeded) == {"clean", "stats", "report"}
    assert dict(succeeded["clean"].outs) == clean.outs  # type: ignore[attr-defined]
    assert succeeded["clean"].duration >= 0  # type: ignore[attr-defined]
