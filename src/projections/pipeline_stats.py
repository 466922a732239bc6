"""Pipeline stats: how often each stage runs, fails and takes how long, and why it runs.

The view (``pivot stats --json`` prints it as ``pipeline``)::

    {"stages": [{"stage", "runs", "succeeded", "failed", "cancelled", "skipped",
                 "last_outcome", "last_at", "last_duration", "p50", "p95",
                 "triggers": [{"trigger", "count"}]}],      # most frequent first
     "waves": {"total", "by_trigger": {trigger: count},
               "by_day": [{"day", "waves"}], "per_day"},
     "triggers": [{"trigger", "count"}]}                     # over every stage

- ``runs`` counts ``stage.started`` (a run handed to a worker); ``failed``,
  ``succeeded``, ``cancelled`` and ``skipped`` their outcome events.
- ``last_*`` is the stage's newest outcome (a skip included) and the
  duration of its newest finished run; ``p50`` and ``p95`` are the
  nearest-rank percentiles of its last :data:`DURATIONS_KEPT` successful
  runs (None before the first).
- A *trigger* is why a ``stage.queued`` says the stage runs, reduced to what
  a user acts on: ``code``, ``params``, ``dep PATH``, ``upstream STAGE``,
  ``output missing``, ``output changed``, ``never run``, ``last run
  failed``, ``forced`` (anything else verbatim). Each queued run counts each
  of its triggers once; :data:`TOP_TRIGGERS` are shown per stage.
- Waves are counted per UTC day (a fold may not read the local time zone:
  rebuilding must give the same state anywhere); the state keeps the last
  :data:`DAYS_KEPT` days of the log and the view lists the last
  :data:`DAYS_SHOWN` days before ``now`` (zero days included), with their
  mean as ``per_day``.

The module does not import the pipeline's event classes until it folds one,
so ``pivot stats`` on a caught-up store does not pay for them; the type
names below are checked against the catalogue by a test.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from pivot.projections.base import Projection, State

if TYPE_CHECKING:
    from pivot.events.store import Recorded

__all__ = ["DAYS_KEPT", "DAYS_SHOWN", "DURATIONS_KEPT", "PIPELINE_STATS", "TOP_TRIGGERS", "trigger"]

DURATIONS_KEPT = 100
TOP_TRIGGERS = 3
DAYS_KEPT = 31
DAYS_SHOWN = 7
_DAY = 86400

TYPES = (
    "stage.cancelled",
    "stage.failed",
    "stage.queued",
    "stage.skipped",
    "stage.started",
    "stage.succeeded",
    "wave.started",
)
_OUTCOMES = {
    "stage.succeeded": "succeeded",
    "stage.failed": "failed",
    "stage.cancelled": "cancelled",
    "stage.skipped": "skipped",
}
# Reason prefix (as the planner words it) -> what it is about.
_PREFIXES = (
    ("code changed", "code"),
    ("param changed", "params"),
    ("param removed", "params"),
    ("dep changed: ", "dep "),
    ("upstream will run: ", "upstream "),
    ("output missing", "output missing"),
    ("output changed", "output changed"),
)


def trigger(reason: str) -> str:
    """What a queued reason is about: ``dep changed: a.csv`` -> ``dep a.csv``."""
    for prefix, name in _PREFIXES:
        if reason.startswith(prefix):
            return name + reason[len(prefix) :] if name.endswith(" ") else name
    return reason


def _initial() -> State:
    return {"stages": {}, "waves": 0, "wave_triggers": {}, "days": {}}


def _stage(state: State, name: str) -> dict[str, Any]:
    stages: dict[str, dict[str, Any]] = state["stages"]
    entry = stages.get(name)
    if entry is None:
        entry = {
            "runs": 0,
            "succeeded": 0,
            "failed": 0,
            "cancelled": 0,
            "skipped": 0,
            "last_outcome": "",
            "last_at": None,
            "last_duration": None,
            "durations": [],
            "triggers": {},
        }
        stages[name] = entry
    return entry


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _apply(state: State, rec: Recorded) -> State:
    e = rec.event
    kind = e.TYPE
    if kind == "wave.started":
        state["waves"] += 1
        _count(state["wave_triggers"], getattr(e, "trigger", ""))
        days: dict[str, int] = state["days"]
        _count(days, time.strftime("%Y-%m-%d", time.gmtime(e.at)))
        if len(days) > DAYS_KEPT:
            for old in sorted(days)[:-DAYS_KEPT]:
                del days[old]
        return state
    s = _stage(state, getattr(e, "stage", ""))
    if kind == "stage.queued":
        for name in dict.fromkeys(trigger(r) for r in getattr(e, "reasons", ())):
            _count(s["triggers"], name)
    elif kind == "stage.started":
        s["runs"] += 1
    else:
        outcome = _OUTCOMES[kind]
        s[outcome] += 1
        s["last_outcome"], s["last_at"] = outcome, e.at
        if kind in ("stage.succeeded", "stage.failed"):
            duration = float(getattr(e, "duration", 0.0))
            s["last_duration"] = duration
            if kind == "stage.succeeded":
                s["durations"] = [*s["durations"], duration][-DURATIONS_KEPT:]
    return state


def _percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _top(counts: dict[str, int], n: int | None = None) -> list[dict[str, Any]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"trigger": k, "count": v} for k, v in ranked[:n]]


def _view(state: State, now: float) -> dict[str, Any]:
    stages = []
    everything: dict[str, int] = {}
    for name, s in sorted(state["stages"].items()):
        for k, v in s["triggers"].items():
            everything[k] = everything.get(k, 0) + v
        stages.append(
            {
                "stage": name,
                **{k: s[k] for k in ("runs", "succeeded", "failed", "cancelled", "skipped")},
                "last_outcome": s["last_outcome"],
                "last_at": s["last_at"],
                "last_duration": s["last_duration"],
                "p50": _percentile(s["durations"], 50),
                "p95": _percentile(s["durations"], 95),
                "triggers": _top(s["triggers"], TOP_TRIGGERS),
            }
        )
    days = [
        time.strftime("%Y-%m-%d", time.gmtime(now - i * _DAY)) for i in reversed(range(DAYS_SHOWN))
    ]
    by_day = [{"day": d, "waves": state["days"].get(d, 0)} for d in days]
    return {
        "stages": stages,
        "waves": {
            "total": state["waves"],
            "by_trigger": dict(sorted(state["wave_triggers"].items())),
            "by_day": by_day,
            "per_day": round(sum(d["waves"] for d in by_day) / DAYS_SHOWN, 2),
        },
        "triggers": _top(everything),
    }


PIPELINE_STATS = Projection(
    name="pipeline_stats",
    version=1,
    types=TYPES,
    initial=_initial,
    apply=_apply,
    view=_view,
    description="per stage: runs, failures, durations (last, p50, p95), what triggers it; "
    "waves per day",
)
