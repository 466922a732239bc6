"""A wave `pivot watch` could not plan shows in the pipeline status until the next wave starts."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from pivot.cli.projection_render import pipeline_status
from pivot.events import pipeline as ev
from pivot.events.base import Event
from pivot.events.store import Recorded
from pivot.projections.pipeline_status import PIPELINE_STATUS

FIFO = "data/mid.txt is a named pipe (FIFO), not a regular file or directory"


def _fold(*events: Event) -> dict[str, Any]:
    return PIPELINE_STATUS.fold([Recorded(i + 1, e) for i, e in enumerate(events)])


def test_a_plan_error_is_kept_until_a_wave_is_planned_or_the_pipeline_reloads() -> None:
    failed = ev.WavePlanFailed(error=FIFO)
    state = _fold(failed)
    assert state["plan_error"] is not None and state["plan_error"]["error"] == FIFO
    assert state["pipeline_error"] is None  # the pipeline itself is fine
    started = ev.WaveStarted(wave_id="w2", trigger="change", stages=("down",))
    assert _fold(failed, started)["plan_error"] is None
    assert _fold(failed, ev.PipelineReloaded())["plan_error"] is None
    assert _fold(started, failed)["plan_error"]["error"] == FIFO


def test_the_status_view_says_the_wave_was_not_planned() -> None:
    console = Console(width=200, color_system=None)
    with console.capture() as cap:
        console.print(pipeline_status(_fold(ev.WavePlanFailed(error=FIFO))))
    assert f"wave not planned: {FIFO}" in cap.get()
