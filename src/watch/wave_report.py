"""What a watch wave reports, and whether to plan it again: pure decisions for the WorkerPool.

- A wave cancelled by a restart or a shutdown has its workers killed; a stage
  whose end the wave sees before it notices the cancel looks failed. It is
  reported cancelled (:func:`as_reported`), and each stage's end only once
  (:func:`end_of`).
- A wave that had to wait for the run lock (a `pivot run` in another terminal)
  may find its work done meanwhile: unless forced it is planned again, and
  keeps only the stages still stale (:func:`needs_replan`, :func:`still_to_run`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from pivot.events.base import Event
from pivot.events.pipeline import StageCancelled, StageFailed, StageSkipped, StageSucceeded
from pivot.watch.watched_pipeline import PlannedStage

__all__ = ["as_reported", "end_of", "is_repeat", "needs_replan", "still_to_run"]

_ENDS: dict[type[Event], str] = {
    StageSucceeded: "succeeded",
    StageFailed: "failed",
    StageSkipped: "skipped",
    StageCancelled: "cancelled",
}


def as_reported(ev: Event, cancel_reason: str) -> Event:
    """``ev`` as the log should say it: a failure in a cancelled wave (``cancel_reason``
    not empty) is a cancellation with that reason; anything else as it is."""
    if not cancel_reason or not isinstance(ev, StageFailed):
        return ev
    return StageCancelled(
        stage=ev.stage, reason=cancel_reason, actor=ev.actor, correlation_id=ev.correlation_id
    )


def end_of(ev: Event) -> tuple[str, str] | None:
    """``(stage, how)`` when ``ev`` ends a stage (``succeeded``, ``failed``, ``skipped``,
    ``cancelled``); None for every other event."""
    kind = _ENDS.get(type(ev))
    stage = getattr(ev, "stage", None)
    if kind is None or not isinstance(stage, str):
        return None
    return (stage, kind)


def is_repeat(ev: Event, ended: Mapping[str, str]) -> bool:
    """Whether ``ev`` reports again the end of a stage that already ended."""
    end = end_of(ev)
    return end is not None and end[0] in ended


def needs_replan(waited_for_lock: bool, trigger: str) -> bool:
    """Plan again after the run lock: only when we waited for it and the wave is not forced."""
    return waited_for_lock and trigger != "force"


def still_to_run(plan: Sequence[PlannedStage], stale: Collection[str]) -> list[PlannedStage]:
    """The planned stages a fresh plan still finds stale, in the planned order and reasons."""
    return [p for p in plan if p.name in stale]
