"""Watcher history: per watcher its matches, actions with results, state changes.

State::

    {"watchers": {watcher_id: {
        "name", "job", "host", "state", "created_at", "removed": bool,
        "counts": {"matches", "actions", "succeeded", "failed", "suppressed",
                   "interrupted", "state_changes"},
        "matches": [{"seq", "at", "match_id", "line", "captures", "condition"}],
        "actions": [{"seq", "at", "action_id", "type", "result", "detail",
                     "finished_at"}],   # result: pending|succeeded|failed|suppressed|interrupted
        "state_changes": [{"seq", "at", "old", "new", "reason"}],
        "variables": {name: value}, "metrics": {name: last value}}}}

Lists keep the newest :data:`HISTORY_LIMIT` entries (the counts are exact;
the full story is always in the log: ``pivot events --watcher ID``).
``watcher_recent`` is the same fold keeping :data:`RECENT_LIMIT` (what
``pivot ui`` shows: the last trigger and its results).

An intent whose host stopped before its result was recorded is
``interrupted`` (``action.interrupted``, reported by the next host); an
idempotent one, which the next host runs again, stays ``pending`` until that
run's result. A result recorded after all (a frozen host that woke up)
replaces ``interrupted``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pivot.events import watchers as ev
from pivot.events.store import Recorded
from pivot.projections.base import Projection, State
from pivot.projections.watcher_stats import WATCHER_STATS

__all__ = ["HISTORY_LIMIT", "RECENT_LIMIT", "WATCHER_HISTORY", "WATCHER_RECENT"]

HISTORY_LIMIT = 50
RECENT_LIMIT = 4  # watcher_recent: enough for a watcher's last trigger and its results


def _initial() -> State:
    return {"watchers": {}}


def _new_watcher(watcher_id: str) -> dict[str, Any]:
    return {
        "name": watcher_id,
        "job": "",
        "host": "",
        "state": "active",
        "created_at": None,
        "removed": False,
        "counts": {
            "matches": 0,
            "actions": 0,
            "succeeded": 0,
            "failed": 0,
            "suppressed": 0,
            "interrupted": 0,
            "state_changes": 0,
        },
        "matches": [],
        "actions": [],
        "state_changes": [],
        "variables": {},
        "metrics": {},
    }


# Pausing applies to an active watcher, resuming to a paused one (as in the fold).
PAUSE_FROM = {"paused": "active", "active": "paused"}


def _push(items: list[dict[str, Any]], item: dict[str, Any], limit: int) -> None:
    items.append(item)
    if len(items) > limit:
        del items[0]


_OPEN = ("pending", "interrupted")  # results a later event may still settle


def _finish(
    w: dict[str, Any], rec: Recorded, action_id: str, action_type: str, limit: int
) -> dict[str, Any]:
    # The entry its request created, if still among the recent ones.
    for entry in reversed(w["actions"]):
        if action_id and entry["action_id"] == action_id and entry["result"] in _OPEN:
            return entry  # type: ignore[no-any-return]
    return _new_action(w, rec, action_id, action_type, limit)


def _new_action(
    w: dict[str, Any], rec: Recorded, action_id: str, action_type: str, limit: int
) -> dict[str, Any]:
    """A pending entry for an action, pushed onto the watcher's recent actions."""
    entry = {
        "seq": rec.seq,
        "at": rec.event.at,
        "action_id": action_id,
        "type": action_type,
        "result": "pending",
        "detail": "",
        "finished_at": None,
    }
    _push(w["actions"], entry, limit)
    return entry


def _apply(state: State, rec: Recorded, limit: int = HISTORY_LIMIT) -> State:  # noqa: PLR0912, PLR0915 - one branch per event type
    e = rec.event
    watcher_id: str = getattr(e, "watcher_id", "")
    watchers: dict[str, dict[str, Any]] = state["watchers"]
    w = watchers.get(watcher_id)
    if w is None:
        w = watchers[watcher_id] = _new_watcher(watcher_id)
    counts = w["counts"]
    if isinstance(e, ev.WatcherCreated):
        w.update(name=e.name, job=e.job_id, host=e.host, created_at=e.at, state="active")
    elif isinstance(e, ev.WatcherMatched):
        counts["matches"] += 1
        _push(
            w["matches"],
            {
                "seq": rec.seq,
                "at": e.at,
                "match_id": e.match_id,
                "line": e.line,
                "captures": dict(e.captures),
                "condition": e.condition_result,
            },
            limit,
        )
    elif isinstance(e, ev.ActionRequested):
        counts["actions"] += 1
        _new_action(w, rec, e.action_id, e.action_type, limit)
    elif isinstance(e, ev.ActionSucceeded | ev.ActionFailed):
        entry = _finish(w, rec, e.action_id, e.action_type, limit)
        ok = isinstance(e, ev.ActionSucceeded)
        counts["succeeded" if ok else "failed"] += 1
        entry["result"] = "succeeded" if ok else "failed"
        entry["detail"] = e.detail if isinstance(e, ev.ActionSucceeded) else e.error
        entry["finished_at"] = e.at
    elif isinstance(e, ev.ActionInterrupted):
        entry = _finish(w, rec, e.action_id, e.action_type, limit)
        if e.retried:
            entry["detail"] = "interrupted (pivot stopped); idempotent, so run again"
        else:
            counts["interrupted"] += 1
            entry["result"] = "interrupted"
            entry["detail"] = "pivot stopped before its result was recorded; not run again"
            entry["finished_at"] = e.at
    elif isinstance(e, ev.ActionSuppressed):
        counts["suppressed"] += 1
        # An intent that will not run closes its pending entry; a rate-limited
        # firing (no intent) gets an entry of its own.
        entry = _finish(w, rec, e.action_id, e.action_type, limit)
        entry.update(action_id=e.action_id, result="suppressed", detail=e.reason, finished_at=e.at)
    elif isinstance(e, ev.WatcherStateChanged | ev.WatcherPaused | ev.WatcherResumed):
        if isinstance(e, ev.WatcherStateChanged):
            old, new, reason = e.old, e.new, e.reason
        elif isinstance(e, ev.WatcherPaused):
            old, new, reason = w["state"], "paused", f"paused by {e.by}"
        else:
            old, new, reason = w["state"], "active", f"resumed by {e.by}"
        if not isinstance(e, ev.WatcherStateChanged) and old != PAUSE_FROM[new]:
            # As the fold (pivot.jobs.book): a pause_watcher action after the firing
            # that made the watcher `triggered` leaves it triggered.
            return state
        counts["state_changes"] += 1
        w["state"] = new
        _push(w["state_changes"], {"seq": rec.seq, "at": e.at, "old": old, "new": new,
                                   "reason": reason}, limit)  # fmt: skip
    elif isinstance(e, ev.WatcherRemoved):
        w["removed"] = True
    elif isinstance(e, ev.WatcherEdited):
        w["name"] = e.name
    elif isinstance(e, ev.VariablesCaptured):
        w["variables"].update(e.variables)
    elif isinstance(e, ev.MetricStored):
        w["metrics"][e.name] = e.value
    return state


WATCHER_HISTORY = Projection(
    name="watcher_history",
    version=2,
    types=WATCHER_STATS.types,
    initial=_initial,
    apply=_apply,
    description="per watcher: matches, actions and their results, state changes",
)

# The same fold keeping only the newest few entries: what `pivot ui` shows of
# a watcher (its counts, its last trigger and the results of its actions),
# at a tenth of watcher_history's size, so its snapshot loads in a moment.
WATCHER_RECENT = Projection(
    name="watcher_recent",
    version=1,
    types=WATCHER_STATS.types,
    initial=_initial,
    apply=partial(_apply, limit=RECENT_LIMIT),
    description="watcher_history with only the newest entries (pivot ui's cards)",
)
