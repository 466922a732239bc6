"""What a wave appends together, and that a stage's start is recorded before it runs.

A wave's events reach ``emit`` one step at a time: what finished in a poll, what
that skipped, and the starts of the next submission round go in one call (one
durable append); every ``stage.started`` is in a call made before its stage is
handed to the executor (so a ``kill -9`` can never leave a run with no start).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest

from pivot.events.base import Event
from pivot.events.pipeline import (
    StageCancelled,
    StageQueued,
    StageSkipped,
    StageStarted,
    StageSucceeded,
    WaveFinished,
    WaveStarted,
)
from pivot.pipeline.execute import execute
from pivot.pipeline.executor import StageRun
from pivot.pipeline.loader import load_fresh
from pivot.pipeline.local_executor import LocalExecutor
from pivot.pipeline.project import Project
from pivot.pipeline.worker import StageOutcome

from testkit.pipeline_project import HEADER

CHAIN = (
    HEADER
    + """
@pipeline.stage
def a(out: Annotated[Path, Out("a.txt")]) -> None:
    out.write_text("a")


@pipeline.stage
def b(a: Annotated[Path, Dep("a.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text(a.read_text() + "b")


@pipeline.stage
def c(b: Annotated[Path, Dep("b.txt")], out: Annotated[Path, Out("c.txt")]) -> None:
    out.write_text(b.read_text() + "c")
"""
)


class _Recording(LocalExecutor):
    """A local executor that notes, at each submit, what had been appended by then."""

    def __init__(self, batches: list[list[Event]]) -> None:
        super().__init__(1)
        self.batches = batches
        self.appended_before: dict[str, list[Event]] = {}

    def submit(self, run: StageRun) -> Future[StageOutcome]:
        self.appended_before[run.task.stage] = [e for b in self.batches for e in b]
        return super().submit(run)


def _kinds(batch: Sequence[Event]) -> list[tuple[str, str]]:
    return [(type(e).__name__, getattr(e, "stage", "")) for e in batch]


def _wave(root: Path, batches: list[list[Event]]) -> _Recording:
    project = Project.from_spec(load_fresh(root / "pipeline.py", timeout=120))
    executor = _Recording(batches)
    try:
        result = execute(
            project.spec,
            project.graph,
            project.plan(),
            executor,
            state=project.state,
            hasher=project.hasher,
            emit=lambda batch: batches.append(list(batch)),
        )
        assert result.ok, result.errors
    finally:
        executor.close()
        project.close()
    return executor


def test_a_chain_appends_once_per_step_and_each_start_before_its_submit() -> None:
    root = Path(tempfile.mkdtemp(prefix="pivot-wave-appends-"))
    (root / "pipeline.py").write_text(CHAIN)
    batches: list[list[Event]] = []
    executor = _wave(root, batches)
    assert (root / "c.txt").read_text() == "abc"
    queued = [("StageQueued", s) for s in "abc"]
    assert [_kinds(b) for b in batches] == [
        [("WaveStarted", ""), *queued, ("StageStarted", "a")],
        [("StageSucceeded", "a"), ("StageStarted", "b")],
        [("StageSucceeded", "b"), ("StageStarted", "c")],
        [("StageSucceeded", "c"), ("WaveFinished", "")],
    ]
    for stage in "abc":
        before = executor.appended_before[stage]
        assert any(isinstance(e, StageStarted) and e.stage == stage for e in before)
        assert not any(isinstance(e, StageSucceeded) and e.stage == stage for e in before)

    batches.clear()  # nothing to do: the whole wave is one append
    executor = _wave(root, batches)
    assert executor.appended_before == {}
    assert len(batches) == 1
    assert [type(e) for e in batches[0]] == [WaveStarted, *[StageSkipped] * 3, WaveFinished]
    assert not any(isinstance(e, StageQueued) for e in batches[0])


THREE = (
    HEADER
    + """
@pipeline.stage
def a(out: Annotated[Path, Out("a.txt")]) -> None:
    out.write_text("a")


@pipeline.stage
def b(out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text("b")


@pipeline.stage
def c(out: Annotated[Path, Out("c.txt")]) -> None:
    out.write_text("c")
"""
)


class _RefusesB(LocalExecutor):
    """Three local workers; the submit of stage b raises (as a misconfigured executor may)."""

    def submit(self, run: StageRun) -> Future[StageOutcome]:
        if run.task.stage == "b":
            raise ValueError("cannot take b")
        return super().submit(run)


def test_stages_started_but_never_submitted_are_cancelled_as_not_started() -> None:
    root = Path(tempfile.mkdtemp(prefix="pivot-wave-refused-"))
    (root / "pipeline.py").write_text(THREE)
    project = Project.from_spec(load_fresh(root / "pipeline.py", timeout=120))
    executor = _RefusesB(3)
    batches: list[list[Event]] = []
    try:
        with pytest.raises(ValueError, match="cannot take b"):
            execute(project.spec, project.graph, project.plan(), executor, state=project.state,
                    hasher=project.hasher, emit=lambda got: batches.append(list(got)))  # fmt: skip
    finally:
        executor.close()
        project.close()
    events = [e for batch in batches for e in batch]
    started = [e.stage for e in events if isinstance(e, StageStarted)]
    assert started == ["a", "b", "c"]  # one round, all durable before the submits
    not_started = [
        (e.stage, e.reason) for e in events if isinstance(e, StageCancelled) and e.stage != "a"
    ]
    assert not_started == [("b", "not started"), ("c", "not started")]
    for stage in "bc":  # each start closed, after it
        kinds = [type(e) for e in events if getattr(e, "stage", "") == stage]
        assert kinds[-2:] == [StageStarted, StageCancelled]
