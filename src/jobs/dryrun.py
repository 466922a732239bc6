"""`pivot watchers test`: a watcher run over a log file, deciding but doing nothing.

The same code path as the real tailer (line splitting, RE2 scan, the pure
decisions of :mod:`pivot.jobs.decide`), so what the dry run shows is what a
running watcher would decide: matches, captures, condition results, the
actions with their parameters substituted, and which firings the trigger
limit or the rate limit would stop. Nothing runs.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.events.watchers import (
    ActionRequested,
    ActionSuppressed,
    WatcherCreated,
    WatcherMatched,
)
from pivot.jobs.decide import Context, on_job_end
from pivot.jobs.decide import on_match as decide_match
from pivot.jobs.definition import WatcherDefinition
from pivot.jobs.patterns import LineMatch
from pivot.jobs.state import Book, WatcherState
from pivot.jobs.tail import split_lines

__all__ = ["DryMatch", "DryRun", "dry_run"]

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
        }


@dataclass
class DryRun:
    """Everything one watcher would have done over one log."""

    watcher: str
    lines: int = 0
    matches: list[DryMatch] = field(default_factory=list)
    job_end: list[dict[str, Any]] = field(default_factory=list)
    final_state: str = "active"

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "watcher": self.watcher,
            "lines": self.lines,
            "matches": [m.to_json() for m in self.matches],
            "job_end_actions": self.job_end,
            "final_state": self.final_state,
        }


def _action(req: ActionRequested) -> dict[str, Any]:
    return {"type": req.action_type, "params": dict(req.params)}


def _decide(
    book: Book, ws: WatcherState, m: LineMatch, *, now: float, host: str, number: int
) -> DryMatch:
    events = decide_match(ws, m, Context(now=now, hostname=host))
    book.apply_all(events)
    matched = next(e for e in events if isinstance(e, WatcherMatched))
    return DryMatch(
        line_number=number,
        line=matched.line,
        captures=dict(matched.captures),
        condition=matched.condition_result,
        condition_error=matched.condition_error,
        actions=[_action(e) for e in events if isinstance(e, ActionRequested)],
        suppressed=[e.reason for e in events if isinstance(e, ActionSuppressed)],
        state_after=ws.state,
    )


def dry_run(
    definition: WatcherDefinition,
    log: Path,
    *,
    job_id: str = "0",
    job_state: str = "",
    lines_per_second: float = 0.0,
) -> DryRun:
    """Decide over every line of ``log``; with ``job_state`` also the job's end.

    Time advances by ``1 / lines_per_second`` per line when given (to see the
    rate limit as a steady stream would), else all lines come at once.
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
    now = 0.0
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
                            now = number / lines_per_second
                        result.matches.append(
                            _decide(book, ws, m, now=now, host=host, number=number)
                        )
            if final:
                break
    result.lines = number
    if job_state:
        events = on_job_end(ws, Context(now=now, hostname=host, job_state=job_state))
        book.apply_all(events)
        result.job_end = [_action(e) for e in events if isinstance(e, ActionRequested)]
    result.final_state = ws.state
    return result
