"""The API's JSON shapes, as pure functions over the read models.

A watcher (``GET /api/watchers``, ``/api/jobs/{job_id}/watchers``) has
ssync's fields::

    id, job_id, hostname, name, pattern, state, trigger_count,
    interval_seconds, captures, condition, actions, last_check, created_at,
    output_type, max_triggers, timer_mode_enabled, timer_interval_seconds,
    trigger_on_job_end, trigger_job_states, variables

(ids and job ids are strings; times are ISO 8601 strings in UTC, or null)
and pivot's: ``match_count``, ``max_failures``, ``rate_limit_per_minute``,
``counts`` (matches, actions, succeeded, failed, suppressed),
``last_trigger`` (the newest match with its captures and the results of the
actions it caused, or null), ``created_at_ts`` / ``last_check_ts`` (seconds).

Stats (``GET /api/watchers/stats``) are ssync's shape:
``events_by_action: {action: {total, success, failed}}`` and
``top_watchers: [{watcher_id, job_id, name, event_count}]``, plus pivot's
``suppressed``/``pending`` per action.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pivot.jobs.book import WatcherState

__all__ = ["iso", "stats_json", "watcher_json"]


def iso(at: float | None) -> str | None:
    """ISO 8601 in UTC, or None."""
    if not at:
        return None
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).isoformat(timespec="seconds")


def _last_trigger(history: Mapping[str, Any]) -> dict[str, Any] | None:
    matches = history.get("matches") or []
    if not matches:
        return None
    last = matches[-1]
    # The actions a match caused share its match id as correlation; the
    # history keeps them in order after it.
    results = [
        {"type": a["type"], "result": a["result"], "detail": a["detail"], "at": a["at"]}
        for a in history.get("actions") or []
        if a["seq"] > last["seq"]
    ]
    return {
        "at": last["at"],
        "timestamp": iso(last["at"]),
        "matched_text": last["line"],
        "captures": dict(last["captures"]),
        "condition": last["condition"],
        "actions": results,
    }


def watcher_json(
    ws: WatcherState, history: Mapping[str, Any] | None, last_read: float | None
) -> dict[str, Any]:
    """One watcher as the API gives it."""
    d = ws.definition
    h = history or {}
    counts = dict(h.get("counts") or {})
    return {
        "id": ws.watcher_id,
        "job_id": ws.job_id,
        "hostname": ws.host,
        "name": ws.name,
        "pattern": d.pattern,
        "state": ws.state,
        "trigger_count": ws.trigger_count,
        "interval_seconds": d.interval_seconds,
        "captures": list(d.captures),
        "condition": d.condition or None,
        "actions": [{"type": a.type, "params": dict(a.params)} for a in d.actions],
        "last_check": iso(last_read),
        "created_at": iso(ws.created_at),
        "output_type": d.output_type,
        "max_triggers": d.max_triggers,
        "timer_mode_enabled": d.timer_mode_enabled,
        "timer_interval_seconds": d.timer_interval_seconds,
        "trigger_on_job_end": d.trigger_on_job_end,
        "trigger_job_states": list(d.job_end_states),
        "variables": dict(ws.variables),
        "match_count": ws.match_count,
        "max_failures": d.max_failures,
        "rate_limit_per_minute": d.rate_limit_per_minute,
        "counts": counts,
        "last_trigger": _last_trigger(h),
        "created_at_ts": ws.created_at or None,
        "last_check_ts": last_read,
    }


def stats_json(view: Mapping[str, Any]) -> dict[str, Any]:
    """The ``watcher_stats`` view in ssync's stats shape."""
    return {
        "total_watchers": view["total_watchers"],
        "watchers_by_state": dict(view["watchers_by_state"]),
        "total_events": view["total_events"],
        "events_by_action": {
            action: {
                "total": c["total"],
                "success": c["success"],
                "failed": c["failed"],
                "suppressed": c.get("suppressed", 0),
                "pending": c.get("pending", 0),
            }
            for action, c in view["events_by_action"].items()
        },
        "events_last_hour": view["events_last_hour"],
        "top_watchers": [
            {"watcher_id": t["id"], "job_id": t["job"], "name": t["name"],
             "event_count": t["events"]}
            for t in view["top_watchers"]
        ],
    }  # fmt: skip
