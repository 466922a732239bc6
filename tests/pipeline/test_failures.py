"""Failing stages: shown once, downstream not run, nothing recorded as good; --keep-going."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pivot.events.store import EventStore

from testkit.pipeline_project import HEADER, make_project

PIPELINE = (
    HEADER
    + """
import os

@pipeline.stage
def bad(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("bad.txt")]) -> None:
    print("about to fail")
    out.write_text("partial")
    if src.read_text() == "boom":
        raise ValueError("bad row 3")

@pipeline.stage
def after_bad(src: Annotated[Path, Dep("bad.txt")],
              out: Annotated[Path, Out("after_bad.txt")]) -> None:
    out.write_text("x")

@pipeline.stage
def good(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("good.txt")]) -> None:
    out.write_text("ok")

@pipeline.stage
def after_good(src: Annotated[Path, Dep("good.txt")],
               out: Annotated[Path, Out("after_good.txt")]) -> None:
    out.write_text("ok")
"""
)


def _statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in doc["stages"]}


def test_failure_stops_the_run_and_traceback_shows_once(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("in.txt", "boom")
    proc = project.cli("run", "-j", "1", ok=False)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert out.count("Traceback (most recent call last)") == 1
    assert "bad | ValueError: bad row 3" in out
    assert "bad: FAILED after" in out and "ValueError: bad row 3" in out
    assert (
        "run_stage" not in out and "worker.py" not in out
    )  # pivot's frames are not the user's business
    assert "after_bad: skipped (upstream failed: bad)" in out
    assert "good: skipped (not run: another stage failed)" in out
    assert not (project.root / "good.txt").exists()
    log = (project.root / ".pivot/logs/bad.log").read_text()
    assert "about to fail" in log and "ValueError: bad row 3" in log
    status = project.status()
    assert status["bad"] == ["never run"]
    # The failure is in the event log, with its traceback.
    store = EventStore.open(str(project.root / ".pivot/events.db"))
    try:
        failed = [r.event for r in store.read(types=["stage.failed"])]
    finally:
        store.close()
    assert [(e.stage, e.error) for e in failed] == [("bad", "ValueError: bad row 3")]  # type: ignore[attr-defined]
    assert "raise ValueError" in failed[0].traceback  # type: ignore[attr-defined]


def test_keep_going_runs_independent_branches(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("in.txt", "boom")
    doc = project.run_json("--keep-going", "-j", "1", ok=False)
    assert doc["ok"] is False
    assert _statuses(doc) == {
        "bad": "failed",
        "after_bad": "skipped",
        "good": "succeeded",
        "after_good": "succeeded",
    }
    assert doc["stages"][0]["error"] == "ValueError: bad row 3"
    # After a previously good run, a failure marks the stage so it runs next time.
    project.write("in.txt", "fine")
    assert project.ran() == ["bad", "after_bad", "good", "after_good"]
    project.write("in.txt", "boom")
    project.run_json("--keep-going", ok=False)
    assert project.status()["bad"] == ["last run failed", "dep changed: in.txt"]


CRASHES = (
    HEADER
    + """
import ctypes
import os

@pipeline.stage
def segfault(out: Annotated[Path, Out("seg.txt")]) -> None:
    ctypes.string_at(0)

@pipeline.stage
def hard_exit(out: Annotated[Path, Out("exit.txt")]) -> None:
    out.write_text("half")
    os._exit(3)

@pipeline.stage
def fine(out: Annotated[Path, Out("fine.txt")]) -> None:
    out.write_text("ok")

@pipeline.stage
def lazy(out: Annotated[Path, Out("lazy.txt")]) -> None:
    pass
"""
)


def test_segfault_and_os_exit_fail_cleanly(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", CRASHES)
    proc = project.cli("run", "--json", "--keep-going", "-j", "2", ok=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    status = _statuses(doc)
    assert status == {
        "segfault": "failed",
        "hard_exit": "failed",
        "fine": "succeeded",
        "lazy": "failed",
    }
    errors = {s["stage"]: s.get("error", "") for s in doc["stages"]}
    assert "segmentation fault" in errors["segfault"]
    assert "worker process died" in errors["hard_exit"]
    assert errors["lazy"] == "declared output not written: lazy.txt"
    assert project.status() == {
        "segfault": ["never run"],
        "hard_exit": ["never run"],
        "fine": [],
        "lazy": ["never run"],
    }


FORGETFUL = (
    HEADER
    + """
@pipeline.stage
def maybe(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("out.txt")]) -> None:
    if src.read_text() == "write":
        out.write_text("fresh")
"""
)


def test_an_output_left_by_an_earlier_run_does_not_pass_for_a_fresh_one(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", FORGETFUL)
    project.write("in.txt", "write")
    assert project.ran() == ["maybe"]
    project.write("in.txt", "skip")  # now the stage does not write its output
    doc = project.run_json(ok=False)
    assert doc["stages"][0]["error"] == "declared output not written: out.txt (left from before)"
    assert project.status()["maybe"] == ["last run failed", "dep changed: in.txt"]
