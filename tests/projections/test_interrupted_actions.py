"""An intent whose host stopped before its result is `interrupted`, never pending for ever."""

from __future__ import annotations

from pivot.events.base import Event
from pivot.events.store import Recorded
from pivot.events.watchers import (
    ActionInterrupted,
    ActionRequested,
    ActionSucceeded,
    WatcherCreated,
)
from pivot.projections.watcher_history import WATCHER_HISTORY
from pivot.projections.watcher_stats import WATCHER_STATS


def records(*events: Event) -> list[Recorded]:
    return [Recorded(i + 1, e) for i, e in enumerate(events)]


def requested(action_id: str, action_type: str = "run_command") -> ActionRequested:
    return ActionRequested(watcher_id="w", action_id=action_id, action_type=action_type)


LOG = records(
    WatcherCreated(watcher_id="w", name="steps", job_id="1"),
    requested("a"),
    requested("b", "log_event"),
    requested("c"),
    ActionSucceeded(watcher_id="w", action_id="c", action_type="run_command"),
    # The next host's report: "a" is not run again, "b" (idempotent) is.
    ActionInterrupted(watcher_id="w", action_id="a", action_type="run_command"),
    ActionInterrupted(watcher_id="w", action_id="b", action_type="log_event", retried=True),
)


def test_history_shows_interrupted_and_rerun_intents() -> None:
    state = WATCHER_HISTORY.fold(LOG)
    w = state["watchers"]["w"]
    results = {a["action_id"]: a["result"] for a in w["actions"]}
    assert results == {"a": "interrupted", "b": "pending", "c": "succeeded"}
    assert w["counts"]["interrupted"] == 1
    # The rerun's result settles "b"; a late result for "a" (its host woke up) settles it too.
    later = records(
        *(r.event for r in LOG),
        ActionSucceeded(watcher_id="w", action_id="b", action_type="log_event"),
        ActionSucceeded(watcher_id="w", action_id="a", action_type="run_command"),
    )
    w = WATCHER_HISTORY.fold(later)["watchers"]["w"]
    assert [a["result"] for a in w["actions"]] == ["succeeded"] * 3


def test_stats_count_interrupted_actions_and_leave_none_pending() -> None:
    view = WATCHER_STATS.view(WATCHER_STATS.fold(LOG), 0.0)
    run = view["events_by_action"]["run_command"]
    assert (run["total"], run["success"], run["interrupted"], run["pending"]) == (2, 1, 1, 0)
    assert view["events_by_action"]["log_event"]["pending"] == 1  # being run again
