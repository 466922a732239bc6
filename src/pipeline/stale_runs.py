"""`pivot watch`: a run whose deps change while it runs is cancelled, and runs in the next wave.

Only for runs an executor can cancel one at a time
(:class:`~pivot.pipeline.executor.CancelsOneRun`: a SLURM job, scancelled);
its result would be for inputs that no longer are. The change itself makes
the stage stale, so the next wave submits it anew.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["STALE_CHECK_SECONDS", "changed_deps", "stale_reason"]

# How often `pivot watch` checks the deps of stages whose runs can be cancelled.
STALE_CHECK_SECONDS = 1.0


def changed_deps(
    deps: Sequence[str], then: Mapping[str, str | None], now: Mapping[str, str | None]
) -> list[str]:
    """The deps whose hash ``now`` differs from the one the run was submitted with."""
    return [d for d in deps if now.get(d) != then.get(d)]


def stale_reason(changed: str) -> str:
    """Why the run was cancelled, as ``stage.cancelled`` says it."""
    return f"its input changed while its job ran ({changed}): submitted again in the next wave"
