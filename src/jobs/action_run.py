"""The ActionExecutor's logic: run a batch in order, record results, retry or disable.

An action's intent (``ActionRequested``) is in the log before it runs (the
tailer appended it with the match); its result is appended right after it
runs, with the events it caused. A failed action is retried (a new intent,
``attempt`` + 1) after a growing delay; earlier actions of the batch, which
succeeded, are not repeated. ``max_failures`` consecutive failures disable
the watcher. Every intent gets a result: those a disabled or removed watcher
will not run any more are recorded as ``ActionSuppressed`` (never left
pending).

An intent refused when it was decided (``params["refused"]``: captured text
made an argument unsafe, such as a NUL byte or a leading ``-``) is an error
of that match, not of the watcher: it is recorded as failed with
``refused``, is not retried, does not count toward ``max_failures``, and the
actions after it in the batch are recorded as not run (they may depend on it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pivot.events.base import Event
from pivot.events.watchers import (
    ActionFailed,
    ActionRequested,
    ActionSucceeded,
    ActionSuppressed,
    WatcherStateChanged,
)
from pivot.jobs.actions import ActionError, ActionRunner
from pivot.jobs.batch import ActionBatch

__all__ = ["Retry", "after_failure", "execute_batch"]

MAX_RETRY_DELAY = 300.0


@dataclass(frozen=True)
class Retry:
    """Run ``batch`` again after ``delay`` seconds."""

    batch: ActionBatch
    delay: float


def after_failure(consecutive: int, max_failures: int, attempt: int, base_delay: float) -> float:
    """Seconds before the next attempt, or a negative number: disable the watcher."""
    if consecutive >= max_failures:
        return -1.0
    return min(MAX_RETRY_DELAY, base_delay * 2.0 ** (attempt - 1))


def execute_batch(
    batch: ActionBatch,
    runner: ActionRunner,
    append: Callable[[Sequence[Event]], object],
    failures: dict[str, int],
    *,
    retry_delay: float = 5.0,
    is_live: Callable[[str], bool] = lambda _watcher_id: True,
) -> Retry | None:
    """Run the batch's actions in order; returns a retry when one failed and may run again.

    ``failures`` holds each watcher's consecutive failures (updated here);
    ``is_live`` tells whether the watcher still wants its actions run (a
    removed or disabled watcher does not).
    """
    for index, planned in enumerate(batch.requests):
        req = planned
        watcher = req.watcher_id
        if not is_live(watcher):
            left = batch.requests[index:]
            if index == 0 and batch.record_first:
                left = left[1:]  # a retry's first intent is not in the log
            if left:
                append(_not_run(left, "not run: the watcher was removed or disabled"))
            return None
        if index == 0 and batch.record_first:
            req = replace(req, at=time.time())
            append([req])
        failures.setdefault(watcher, batch.consecutive_failures)
        if req.params.get("refused") and not req.params.get("error"):
            append(_refused(req, batch.requests[index + 1 :]))
            return None
        try:
            outcome = runner.run(req, batch.job)
        except ActionError as exc:
            failures[watcher] += 1
            failed = ActionFailed(
                watcher_id=watcher,
                action_id=req.action_id,
                action_type=req.action_type,
                error=str(exc),
                attempt=req.attempt,
                actor="ActionExecutor",
                correlation_id=req.correlation_id,
            )
            delay = after_failure(failures[watcher], batch.max_failures, req.attempt, retry_delay)
            if delay < 0:
                append(
                    [
                        failed,
                        WatcherStateChanged(
                            watcher_id=watcher,
                            old=batch.watcher_state,
                            new="disabled",
                            reason=f"{failures[watcher]} consecutive failed actions "
                            f"(max_failures {batch.max_failures}); last: {exc}",
                            actor="ActionExecutor",
                            correlation_id=req.correlation_id,
                        ),
                        *_not_run(
                            batch.requests[index + 1 :],
                            f"not run: the watcher was disabled after {req.action_type} failed",
                        ),
                    ]
                )
                return None
            append([failed])
            again = replace(req, action_id=uuid.uuid4().hex, attempt=req.attempt + 1)
            rest = (again, *batch.requests[index + 1 :])
            return Retry(
                replace(
                    batch,
                    requests=rest,
                    consecutive_failures=failures[watcher],
                    record_first=True,
                ),
                delay,
            )
        failures[watcher] = 0
        append(
            [
                ActionSucceeded(
                    watcher_id=watcher,
                    action_id=req.action_id,
                    action_type=req.action_type,
                    detail=outcome.detail,
                    actor="ActionExecutor",
                    correlation_id=req.correlation_id,
                ),
                *outcome.events,
            ]
        )
    return None


def _not_run(requests: Sequence[ActionRequested], reason: str) -> list[ActionSuppressed]:
    """Results for intents that will never run, so none stays pending."""
    return [
        ActionSuppressed(
            watcher_id=r.watcher_id,
            action_id=r.action_id,
            action_type=r.action_type,
            reason=reason,
            actor="ActionExecutor",
            correlation_id=r.correlation_id,
        )
        for r in requests
    ]


def _refused(req: ActionRequested, rest: Sequence[ActionRequested]) -> list[Event]:
    """The refused intent's failure, and the batch's later intents as not run."""
    failed = ActionFailed(
        watcher_id=req.watcher_id,
        action_id=req.action_id,
        action_type=req.action_type,
        error=str(req.params["refused"]),
        attempt=req.attempt,
        refused=True,
        actor="ActionExecutor",
        correlation_id=req.correlation_id,
    )
    return [failed, *_not_run(rest, f"not run: the {req.action_type} before it was refused")]
