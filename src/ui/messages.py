"""What the page is told about one event: pure functions from a recorded event to messages.

Every message carries the event's ``seq`` (a client resumes after the last
one it saw) and a ``channel``: ``watchers`` or ``pipeline``. Shapes::

    {"type": "watcher_event", "channel": "watchers", "seq", "job_id",
     "event": <event_json>}
    {"type": "watcher_state_change", "channel": "watchers", "seq", "job_id",
     "watcher_id", "state"}                       # also for a new watcher: "active"
    {"type": "job_state", "channel": "watchers", "seq", "job_id", "hostname", "state"}
    {"type": "pipeline_event", "channel": "pipeline", "seq", "event": <event_json>,
     "stage"?: name, "state"?: the stage's state after it, "wave"?: wave fields,
     "job"?: {"job_id", "host", "state"} of a stage's SLURM job (stage.submitted,
     stage.adopted, stage.job_state; state: submitted, adopted, or Slurm's)}

:func:`event_json` is also the shape of ``GET /api/watchers/events``: ssync's
fields (``id``, ``watcher_id``, ``job_id``, ``timestamp``, ``action_type``,
``success``, ``matched_text``, ``captured_vars``, ``action_result``) next to
pivot's own (``seq``, ``type``, ``at``, ``data``: every field of the event).
Outside text (matched lines, action details) stays plain text in JSON; the
page renders it as text, never as HTML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from pivot.events.store import Recorded

__all__ = ["Message", "event_json", "messages_for"]

Message = dict[str, Any]

_COMMON = ("at", "actor", "correlation_id")
# Watcher events that are about the job's output rather than the watcher's story.
_NOT_WATCHER_EVENTS = frozenset({"output.read"})
_STAGE_STATES = {
    "stage.queued": "queued",
    "stage.started": "running",
    "stage.succeeded": "succeeded",
    "stage.failed": "failed",
    "stage.skipped": "skipped",
    "stage.cancelled": "cancelled",
}
# A stage run's SLURM job: submitted, adopted after a killed pivot, seen in a new state.
_JOB_TYPES = frozenset({"stage.submitted", "stage.adopted", "stage.job_state"})
_PIPELINE_TYPES = frozenset(
    {
        *_STAGE_STATES,
        *_JOB_TYPES,
        "wave.started",
        "wave.finished",
        "wave.waiting",
        "wave.plan_failed",
        "pipeline.reloaded",
        "pipeline.invalid",
        "workers.restarted",
        "workers.restart_failed",
        "changes.detected",
        "watch.started",
        "watch.stopped",
    }
)


class _Watcher(Protocol):
    job_id: str
    host: str


class WatcherLookup(Protocol):
    """Where a watcher's job and host are found (a :class:`~pivot.jobs.book.Book`)."""

    @property
    def watchers(self) -> Mapping[str, Any]: ...


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).isoformat(timespec="milliseconds")


def event_json(seq: int, type_name: str, fields: Mapping[str, Any], job_id: str = "",
               host: str = "") -> dict[str, Any]:  # fmt: skip
    """One watcher or pipeline event as the API and the WebSocket give it."""
    at = float(fields.get("at") or 0.0)
    out: dict[str, Any] = {
        "id": str(seq),
        "seq": seq,
        "type": type_name,
        "at": at,
        "timestamp": _iso(at),
        "watcher_id": fields.get("watcher_id", ""),
        "job_id": str(fields.get("job_id") or job_id),
        "hostname": str(fields.get("host") or host),
        "actor": fields.get("actor", ""),
        "correlation_id": fields.get("correlation_id", ""),
        "data": {k: v for k, v in fields.items() if k not in _COMMON},
    }
    if type_name.startswith("action."):
        out["action_type"] = fields.get("action_type", "")
        out["success"] = {"action.succeeded": True, "action.failed": False}.get(type_name)
        out["action_result"] = (
            fields.get("detail") or fields.get("error") or fields.get("reason") or ""
        )
    elif type_name == "watcher.matched":
        out["action_type"] = "match"
        out["matched_text"] = fields.get("line", "")
        out["captured_vars"] = dict(fields.get("captures") or {})
        out["success"] = bool(fields.get("condition_result", True))
    elif type_name == "metric.stored":
        out["action_type"] = "store_metric"
        out["success"] = True
    return out


def _state_after(type_name: str, fields: Mapping[str, Any]) -> str | None:
    if type_name == "watcher.created":
        return "active"
    if type_name == "watcher.state_changed":
        return str(fields.get("new", ""))
    return {"watcher.paused": "paused", "watcher.resumed": "active",
            "watcher.removed": "removed"}.get(type_name)  # fmt: skip


def messages_for(rec: Recorded, book: WatcherLookup) -> list[Message]:
    """The messages one recorded event makes (none for events the page does not show)."""
    e = rec.event
    type_name = e.TYPE
    fields = e.to_dict()
    watcher_id = fields.get("watcher_id")
    if watcher_id and type_name not in _NOT_WATCHER_EVENTS:
        w = book.watchers.get(watcher_id)
        job_id = str(fields.get("job_id") or (w.job_id if w is not None else ""))
        host = str(fields.get("host") or (w.host if w is not None else ""))
        out: list[Message] = [
            {
                "type": "watcher_event",
                "channel": "watchers",
                "seq": rec.seq,
                "job_id": job_id,
                "event": event_json(rec.seq, type_name, fields, job_id, host),
            }
        ]
        state = _state_after(type_name, fields)
        if state is not None:
            out.append(
                {
                    "type": "watcher_state_change",
                    "channel": "watchers",
                    "seq": rec.seq,
                    "job_id": job_id,
                    "watcher_id": watcher_id,
                    "state": state,
                }
            )
        return out
    if type_name in ("job.state_changed", "job.ended", "job.seen"):
        state = fields.get("new") or fields.get("state") or ""
        return [
            {
                "type": "job_state",
                "channel": "watchers",
                "seq": rec.seq,
                "job_id": str(fields["job_id"]),
                "hostname": str(fields["host"]),
                "state": str(state),
            }
        ]
    if type_name in _PIPELINE_TYPES:
        msg: Message = {
            "type": "pipeline_event",
            "channel": "pipeline",
            "seq": rec.seq,
            "event": event_json(rec.seq, type_name, fields),
        }
        if type_name in _STAGE_STATES:
            msg["stage"] = fields.get("stage", "")
            msg["state"] = _STAGE_STATES[type_name]
        elif type_name in _JOB_TYPES:
            msg["stage"] = fields.get("stage", "")
            state = fields.get("state") or type_name.removeprefix("stage.")
            msg["job"] = {"job_id": str(fields.get("job_id", "")),
                          "host": str(fields.get("host", "")), "state": str(state)}  # fmt: skip
        elif type_name.startswith("wave."):
            msg["wave"] = {k: v for k, v in fields.items() if k not in _COMMON}
        return [msg]
    return []
