"""What stage events say about when and in which process a stage ran.

Each stage writes its own pid and clock into a file; the events of a real
`pivot run` must agree with what the stages themselves saw.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from pivot.events.base import decode
from pivot.events.pipeline import StageFailed, StageStarted, StageSucceeded
from pivot.events.store import EventStore
from pivot.events.transfer import import_jsonl

from testkit.pipeline_project import HEADER, make_project

PIPELINE = (
    HEADER
    + """
import os
import time


def _seen(name: str) -> None:
    Path("seen").mkdir(exist_ok=True)
    Path(f"seen/{name}").write_text(f"{os.getpid()} {time.time()!r}")

@pipeline.stage
def first(out: Annotated[Path, Out("first.txt")]) -> None:
    _seen("first")
    out.write_text("1")

@pipeline.stage
def second(out: Annotated[Path, Out("second.txt")]) -> None:
    _seen("second")
    out.write_text("2")

@pipeline.stage
def raises(out: Annotated[Path, Out("raises.txt")]) -> None:
    _seen("raises")
    raise ValueError("no")

@pipeline.stage
def dies(out: Annotated[Path, Out("dies.txt")]) -> None:
    os._exit(3)
"""
)


def _seen(root: Path, stage: str) -> tuple[int, float]:
    pid, at = (root / "seen" / stage).read_text().split()
    return int(pid), float(at)


def _stage_events(root: Path) -> list[Any]:
    with EventStore.open(str(root / ".pivot/events.db")) as store:
        types = [StageStarted.TYPE, StageSucceeded.TYPE, StageFailed.TYPE]
        return [r.event for r in store.read(types=types)]


def test_events_name_the_worker_process_that_ran_each_stage(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.cli("run", "-j", "1", "--keep-going", ok=False)
    events = _stage_events(project.root)
    ended = {e.stage: e for e in events if not isinstance(e, StageStarted)}
    assert set(ended) == {"first", "second", "raises", "dies"}
    for stage in ("first", "second", "raises"):
        pid, at = _seen(project.root, stage)
        assert ended[stage].pid == pid, stage  # the process the stage itself ran in
        started = next(e for e in events if isinstance(e, StageStarted) and e.stage == stage)
        assert started.at <= at <= ended[stage].at, stage
    assert isinstance(ended["raises"], StageFailed)
    # A worker that died never reported: no pid is made up for it.
    assert isinstance(ended["dies"], StageFailed) and ended["dies"].pid == 0
    # One worker (-j 1): a stage is reported started only once the one before ended.
    kinds = ["start" if isinstance(e, StageStarted) else "end" for e in events]
    assert kinds == ["start", "end"] * 4


def test_stage_started_v1_reads_without_its_placeholder_pid(tmp_path: Path) -> None:
    assert decode(StageStarted.TYPE, 1, {"stage": "a", "pid": 0, "at": 5.0}) == StageStarted(
        stage="a", at=5.0
    )
    # A log exported by an older pivot imports and reads back the same way.
    line = {
        "seq": 1,
        "stream": "5f0c3b0e8c2d4e8f9a1b2c3d4e5f6a7b",
        "position": 1,
        "type": "stage.started",
        "version": 1,
        "data": {"stage": "train", "pid": 0, "at": 7.0, "actor": "", "correlation_id": "w"},
    }
    with EventStore.open(str(tmp_path / "old.db")) as store:
        assert import_jsonl(store, io.StringIO(json.dumps(line) + "\n")) == 1
        [rec] = list(store.read())
    assert rec.event == StageStarted(stage="train", at=7.0, correlation_id="w")
