"""What a watch wave reports, and whether it is planned again: pure decisions."""

from __future__ import annotations

from pivot.events.pipeline import StageCancelled, StageFailed, StageStarted, StageSucceeded
from pivot.watch.watched_pipeline import PlannedStage
from pivot.watch.wave_report import as_reported, end_of, is_repeat, needs_replan, still_to_run


def test_a_failure_in_a_cancelled_wave_is_reported_cancelled() -> None:
    failed = StageFailed(
        stage="train", error="worker died", actor="pivot watch", correlation_id="w1"
    )
    got = as_reported(failed, "shutdown")
    assert isinstance(got, StageCancelled)
    assert (got.stage, got.reason, got.actor, got.correlation_id) == (
        "train",
        "shutdown",
        "pivot watch",
        "w1",
    )


def test_outside_a_cancel_every_event_is_reported_as_it_is() -> None:
    failed = StageFailed(stage="train", error="ValueError: x")
    assert as_reported(failed, "") is failed
    ok = StageSucceeded(stage="train", duration=1.0)
    assert as_reported(ok, "shutdown") is ok


def test_a_stage_end_is_reported_once() -> None:
    ended = {"a": "succeeded"}
    assert end_of(StageSucceeded(stage="b", duration=0.0)) == ("b", "succeeded")
    assert end_of(StageStarted(stage="b")) is None
    assert is_repeat(StageCancelled(stage="a", reason="x"), ended)
    assert not is_repeat(StageCancelled(stage="b", reason="x"), ended)
    assert not is_repeat(StageStarted(stage="a"), ended)


def test_a_wave_is_planned_again_only_after_waiting_for_the_lock_unless_forced() -> None:
    assert needs_replan(True, "change")
    assert not needs_replan(False, "change")
    assert not needs_replan(True, "force")


def test_the_replan_keeps_the_stages_still_stale_in_order_with_their_reasons() -> None:
    plan = [PlannedStage("a", ("dep changed: x",)), PlannedStage("b"), PlannedStage("c")]
    assert still_to_run(plan, {"c", "a"}) == [plan[0], plan[2]]
    assert still_to_run(plan, set()) == []
