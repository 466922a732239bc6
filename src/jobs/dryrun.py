"""`pivot watchers test`: a watcher run over a log file, deciding but doing nothing.

The same code path as the real tailer (line splitting, RE2 scan, the pure
decisions of :mod:`pivot.jobs.decide`), so what the dry run shows is what a
running watcher would decide: matches, captures, condition results, the
actions with their parameters substituted, and what holds a match back:
``max_triggers`` (the watcher is ``triggered``), a ``pause_watcher`` action,
a false condition, the rate limit, or ``trigger_on_job_end``. Timer mode's
firings after the log are shown for ``timer_ticks`` intervals. Nothing runs.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.events.watchers import (
    ActionRequested,
    ActionSuppressed,
    WatcherCreated,
    WatcherMatched,
)
from pivot.jobs.book import Book, WatcherState
from pivot.jobs.decide import Context, captured_variables, on_job_end, on_timer, timer_due
from pivot.jobs.decide import on_match as decide_match
from pivot.jobs.definition import WatcherDefinition
from pivot.jobs.patterns import LineMatch
from pivot.jobs.tail import split_lines

__all__ = ["DryMatch", "DryRun", "DryTick", "dry_run"]

_CHUNK = 1 << 20


@dataclass
class DryMatch:
    """One matching line and what the watcher would do about it."""

    line_number: int
    line: str
    captures: dict[str, str]
    condition: bool
    condition_error: str
    actions: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    state_after: str = "active"
    # Why nothing (or not everything) ran; "" when every action would run.
    held_back: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "line_number": self.line_number,
            "line": self.line,
            "captures": self.captures,
            "condition": self.condition,
            "condition_error": self.condition_error,
            "actions": self.actions,
            "suppressed": self.suppressed,
            "state_after": self.state_after,
            "held_back": self.held_back,
        }


@dataclass
class DryTick:
    """One timer-mode interval after the log: what the timer would do."""

    tick: int
    at: float
    actions: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    held_back: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "tick": self.tick,
            "at": self.at,
            "actions": self.actions,
            "suppressed": self.suppressed,
            "held_back": self.held_back,
        }


@dataclass
class DryRun:
    """Everything one watcher would have done over one log."""

    watcher: str
    lines: int = 0
    matches: list[DryMatch] = field(default_factory=list)
    job_end: list[dict[str, Any]] = field(default_factory=list)
    timer: list[DryTick] = field(default_factory=list)
    final_state: str = "active"

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "watcher": self.watcher,
            "lines": self.lines,
            "matches": [m.to_json() for m in self.matches],
            "timer_ticks": [t.to_json() for t in self.timer],
            "job_end_actions": self.job_end,
            "final_state": self.final_state,
        }


def _action(req: ActionRequested) -> dict[str, Any]:
    return {"type": req.action_type, "params": dict(req.params)}


def _inactive(ws: WatcherState) -> str:
    d = ws.definition
    if ws.state == "triggered":
        return f"not acted on: triggered (max_triggers {d.max_triggers} reached)"
    if ws.state == "paused":
        return "not acted on: paused (by a pause_watcher action)"
    return f"not acted on: {ws.state}"


def _decide(
    book: Book, ws: WatcherState, m: LineMatch, *, now: float, host: str, number: int
) -> DryMatch:
    if ws.state != "active":
        # A running watcher no longer looks at its lines; say so for each.
        return DryMatch(
            line_number=number,
            line=m.line[:4096],
            captures=captured_variables(ws, m),
            condition=False,
            condition_error="",
            state_after=ws.state,
            held_back=_inactive(ws),
        )
    events = decide_match(ws, m, Context(now=now, hostname=host))
    book.apply_all(events)
    matched = next(e for e in events if isinstance(e, WatcherMatched))
    actions = [_action(e) for e in events if isinstance(e, ActionRequested)]
    suppressed = [f"{e.action_type}: {e.reason}" for e in events if isinstance(e, ActionSuppressed)]
    held = ""
    if matched.condition_error:
        held = f"matched, condition error: {matched.condition_error}"
    elif not matched.condition_result:
        held = "matched, condition false"
    elif ws.definition.trigger_on_job_end:
        held = "captured; acts when the job ends (trigger_on_job_end)"
    elif suppressed:
        held = "rate limit: " + ", ".join(
            e.action_type for e in events if isinstance(e, ActionSuppressed)
        )
    return DryMatch(
        line_number=number,
        line=matched.line,
        captures=dict(matched.captures),
        condition=matched.condition_result,
        condition_error=matched.condition_error,
        actions=actions,
        suppressed=suppressed,
        state_after=ws.state,
        held_back=held,
    )


def _ticks(ws: WatcherState, book: Book, *, start: float, count: int, host: str) -> list[DryTick]:
    d = ws.definition
    out: list[DryTick] = []
    for tick in range(1, count + 1):
        at = start + tick * d.timer_interval_seconds
        if not d.timer_mode_enabled:
            return [DryTick(1, at, held_back="timer mode is off (timer_mode_enabled: false)")]
        if not ws.first_fired_at:
            return [DryTick(1, at, held_back="the timer starts after the first firing; none yet")]
        if not timer_due(ws, at):
            out.append(DryTick(tick, at, held_back=f"not acted on: {ws.state}"))
            continue
        events = on_timer(ws, Context(now=at, hostname=host))
        book.apply_all(events)
        sup = [e for e in events if isinstance(e, ActionSuppressed)]
        out.append(
            DryTick(
                tick,
                at,
                actions=[_action(e) for e in events if isinstance(e, ActionRequested)],
                suppressed=[f"{e.action_type}: {e.reason}" for e in sup],
                held_back=("rate limit: " + ", ".join(e.action_type for e in sup)) if sup else "",
            )
        )
    return out


def dry_run(
    definition: WatcherDefinition,
    log: Path,
    *,
    job_id: str = "0",
    job_state: str = "",
    lines_per_second: float = 0.0,
    timer_ticks: int = 0,
) -> DryRun:
    """Decide over every line of ``log``; then ``timer_ticks`` timer intervals; then the job's end.

    Time advances by ``1 / lines_per_second`` per line when given (to see the
    rate limit as a steady stream would), else all lines come at once. The
    job's end (with ``job_state``) comes after the timer ticks.
    """
    book = Book()
    book.apply(
        WatcherCreated(
            watcher_id="dry-run", name=definition.name, job_id=job_id,
            definition=definition.to_dict(),
        )
    )  # fmt: skip
    ws = book.watchers["dry-run"]
    pattern = definition.compiled()
    host = socket.gethostname()
    result = DryRun(watcher=definition.name)
    # The clock starts now, so ${NOW} shows what it would be; it only moves
    # with lines_per_second and the timer ticks.
    start = now = time.time()
    partial, skipping = b"", False
    number = 0
    with log.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            final = not chunk
            if final:
                if not partial:
                    break
                chunk, partial = partial + b"\n", b""
            split = split_lines(partial, chunk, skipping=skipping)
            partial, skipping = split.partial, split.skipping
            if split.has_lines:
                for raw in split.lines_blob.split(b"\n"):
                    number += 1
                    for m in pattern.scan(raw):
                        if lines_per_second:
                            now = start + number / lines_per_second
                        result.matches.append(
                            _decide(book, ws, m, now=now, host=host, number=number)
                        )
            if final:
                break
    result.lines = number
    if timer_ticks:
        result.timer = _ticks(ws, book, start=now, count=timer_ticks, host=host)
        if result.timer and ws.definition.timer_mode_enabled:
            now = result.timer[-1].at
    if job_state:
        events = on_job_end(ws, Context(now=now, hostname=host, job_state=job_state))
        book.apply_all(events)
        result.job_end = [_action(e) for e in events if isinstance(e, ActionRequested)]
    result.final_state = ws.state
    return result
