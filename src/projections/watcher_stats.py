"""Watcher stats: counts over every watcher, for `pivot stats` and the display.

The view (what ``pivot stats --json`` prints)::

    {"total_watchers": active (not removed) watchers,
     "watchers_by_state": {state: count},
     "total_events": watcher-domain events ever recorded,
     "events_by_action": {action_type: {"total", "success", "failed", "suppressed",
                                        "interrupted", "pending"}},
     "events_last_hour": watcher-domain events in the hour before ``now``,
     "top_watchers": [{"id", "name", "job", "events"}] (10 busiest, most first)}

``total`` of an action type counts its outcomes (success + failed +
suppressed + interrupted); a requested action that has not finished yet is
in ``pending``. ``interrupted``: its host stopped before the result was
recorded and it was not run again (an idempotent one is, and stays pending).

"Last hour" needs the clock, which a fold may not read: the state keeps
per-minute counts of the last 61 minutes *of the log* (by event time) and
the view sums those within an hour of ``now``.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

from pivot.events import watchers as ev
from pivot.events.base import Event
from pivot.projections.base import Projection, State

if TYPE_CHECKING:
    from pivot.events.store import Recorded

__all__ = ["TOP_WATCHERS", "WATCHER_STATS"]

TOP_WATCHERS = 10
_MINUTES_KEPT = 61


def _initial() -> State:
    return {"watchers": {}, "total_events": 0, "by_action": {}, "minutes": {}, "last_minute": 0}


def _action(state: State, action_type: str) -> dict[str, int]:
    by_action: dict[str, dict[str, int]] = state["by_action"]
    counts = by_action.get(action_type)
    if counts is None:
        counts = {
            "total": 0,
            "success": 0,
            "failed": 0,
            "suppressed": 0,
            "interrupted": 0,
            "pending": 0,
        }
        by_action[action_type] = counts
    return counts


def _apply(state: State, rec: Recorded) -> State:  # noqa: PLR0912 - one branch per event type
    e = rec.event
    watcher_id: str = getattr(e, "watcher_id", "")
    state["total_events"] += 1
    minute = int(e.at // 60)
    minutes: dict[str, int] = state["minutes"]
    key = str(minute)
    minutes[key] = minutes.get(key, 0) + 1
    if minute > state["last_minute"]:
        state["last_minute"] = minute
        for old in [m for m in minutes if int(m) <= minute - _MINUTES_KEPT]:
            del minutes[old]
    watchers: dict[str, dict[str, Any]] = state["watchers"]
    if isinstance(e, ev.WatcherCreated):
        watchers[watcher_id] = {"name": e.name, "job": e.job_id, "state": "active", "events": 0}
    w = watchers.get(watcher_id)
    if w is not None:
        w["events"] += 1
    if isinstance(e, ev.ActionRequested):
        _action(state, e.action_type)["pending"] += 1
    elif isinstance(e, ev.ActionSucceeded | ev.ActionFailed):
        counts = _action(state, e.action_type)
        counts["total"] += 1
        counts["success" if isinstance(e, ev.ActionSucceeded) else "failed"] += 1
        counts["pending"] = max(0, counts["pending"] - 1)
    elif isinstance(e, ev.ActionInterrupted):
        if not e.retried:
            counts = _action(state, e.action_type)
            counts["total"] += 1
            counts["interrupted"] += 1
            counts["pending"] = max(0, counts["pending"] - 1)
    elif isinstance(e, ev.ActionSuppressed):
        counts = _action(state, e.action_type)
        counts["total"] += 1
        counts["suppressed"] += 1
        if e.action_id:  # an intent that will not run: no longer pending
            counts["pending"] = max(0, counts["pending"] - 1)
    elif w is not None:
        if isinstance(e, ev.WatcherStateChanged):
            w["state"] = e.new
        elif isinstance(e, ev.WatcherPaused):
            if w["state"] == "active":  # as the fold: a triggered watcher stays triggered
                w["state"] = "paused"
        elif isinstance(e, ev.WatcherResumed):
            if w["state"] == "paused":
                w["state"] = "active"
        elif isinstance(e, ev.WatcherRemoved):
            del watchers[watcher_id]
        elif isinstance(e, ev.WatcherEdited):
            w["name"] = e.name
    return state


def _view(state: State, now: float) -> dict[str, Any]:
    watchers: dict[str, dict[str, Any]] = state["watchers"]
    by_state: dict[str, int] = {}
    for w in watchers.values():
        by_state[w["state"]] = by_state.get(w["state"], 0) + 1
    since = (now - 3600) // 60
    last_hour = sum(
        n for m, n in state["minutes"].items() if since < int(m) <= now // 60
    )  # fmt: skip
    # nsmallest is sorted(...)[:n] without sorting all 10,000 watchers per view.
    busiest = heapq.nsmallest(
        TOP_WATCHERS, watchers.items(), key=lambda kv: (-kv[1]["events"], kv[0])
    )
    return {
        "total_watchers": len(watchers),
        "watchers_by_state": dict(sorted(by_state.items())),
        "total_events": state["total_events"],
        "events_by_action": {k: dict(v) for k, v in sorted(state["by_action"].items())},
        "events_last_hour": last_hour,
        "top_watchers": [
            {"id": wid, "name": w["name"], "job": w["job"], "events": w["events"]}
            for wid, w in busiest
        ],
    }


def _watcher_types() -> tuple[str, ...]:
    # Every watcher-domain event, including ones added to the catalogue later.
    return tuple(
        sorted(
            cls.TYPE
            for cls in vars(ev).values()
            if isinstance(cls, type)
            and issubclass(cls, Event)
            and cls.__module__ == ev.__name__
            and "watcher_id" in cls.__dataclass_fields__
        )
    )


WATCHER_STATS = Projection(
    name="watcher_stats",
    version=2,
    types=_watcher_types(),
    initial=_initial,
    apply=_apply,
    view=_view,
    description="counts over all watchers: states, actions and their outcomes, busiest",
)
