"""`pivot watch`: a run whose inputs change while it runs is cancelled, and runs in the next wave.

Only for runs an executor can cancel one at a time
(:class:`~pivot.pipeline.executor.CancelsOneRun`: a SLURM job, scancelled);
its result would be for inputs that no longer are. Two ways a run goes stale:

- **its deps change**: the wave checks the deps of such runs once a second
  (:func:`changed_deps`);
- **its code or params change** (the stage function, a project helper it
  reaches, its ``params.yaml`` values): only a load of the pipeline can tell,
  so the Coordinator, given a code change while such a wave runs, loads it
  beside the wave, compares the stages' fingerprints (:func:`changed_code`)
  and marks the stale ones on the wave's :class:`StaleRuns`, which the wave
  takes at its next check.

Either way the change itself makes the stage stale, so the next wave
submits it anew, with the new code. Local runs are never interrupted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "CODE_STALE_REASON",
    "STALE_CHECK_SECONDS",
    "StaleRuns",
    "changed_code",
    "changed_deps",
    "stale_reason",
]

# How often `pivot watch` checks the deps of stages whose runs can be cancelled.
STALE_CHECK_SECONDS = 1.0

CODE_STALE_REASON = "its code changed while its job ran: submitted again in the next wave"


def changed_deps(
    deps: Sequence[str], then: Mapping[str, str | None], now: Mapping[str, str | None]
) -> list[str]:
    """The deps whose hash ``now`` differs from the one the run was submitted with."""
    return [d for d in deps if now.get(d) != then.get(d)]


def changed_code(
    stages: Iterable[str], then: Mapping[str, str], now: Mapping[str, str]
) -> tuple[str, ...]:
    """Those of ``stages`` whose fingerprint (code and params) ``now`` differs from ``then``
    (the one the wave runs), a removed stage included; sorted."""
    return tuple(sorted(s for s in stages if now.get(s) != then.get(s)))


def stale_reason(changed: str) -> str:
    """Why the run was cancelled, as ``stage.cancelled`` says it."""
    return f"its input changed while its job ran ({changed}): submitted again in the next wave"


class StaleRuns:
    """Stages of one wave marked stale from outside it (thread-safe): the wave cancels
    their runs, or does not start them, if its executor can cancel one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marked: dict[str, str] = {}

    def mark(self, stages: Iterable[str], reason: str) -> None:
        """Mark ``stages`` stale for ``reason`` (the first reason of a stage stays)."""
        with self._lock:
            for stage in stages:
                self._marked.setdefault(stage, reason)

    def reason(self, name: str, changed: Sequence[str]) -> str | None:
        """Why a run of ``name`` is stale: the first of its ``changed`` deps, else its mark;
        None when it is not."""
        if changed:
            return stale_reason(changed[0])
        with self._lock:
            return self._marked.get(name)

    def marked(self) -> dict[str, str]:
        """Stage -> reason, for every stage marked so far."""
        with self._lock:
            return dict(self._marked)
