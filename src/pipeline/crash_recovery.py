"""Which stage crashed the worker? Pure decisions over stage names.

When a worker process dies without reporting (segfault, ``os._exit``), the
executor loses every run it had in flight with it
(:class:`~pivot.pipeline.executor.WorkerLost` names them). A stage that was
alone is the culprit. Otherwise each lost stage becomes a *suspect* and is
re-run on its own (no other run on that executor beside it): the one that
crashes alone fails, the others succeed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["CrashVerdict", "after_crash", "crash_message", "may_start"]


@dataclass(frozen=True)
class CrashVerdict:
    """What to do with the stages a crash lost: fail these, run those again alone."""

    fail: tuple[str, ...] = ()
    retry: tuple[str, ...] = ()


def after_crash(lost: Sequence[str], suspects: Collection[str]) -> CrashVerdict:
    """Fail the culprit when it is known (alone, or only suspects ran); otherwise retry all."""
    if len(lost) <= 1 or all(name in suspects for name in lost):
        return CrashVerdict(fail=tuple(lost))
    return CrashVerdict(retry=tuple(lost))


def may_start(stage: str, running: Iterable[str], suspects: Collection[str]) -> bool:
    """Whether ``stage`` may start beside ``running`` (on the same executor).

    A suspect runs alone, and nothing starts beside a running suspect.
    """
    names = list(running)
    if not names:
        return True
    return stage not in suspects and not any(n in suspects for n in names)


def crash_message(error: str) -> str:
    """The one-line error of a stage whose worker died, from what the pool said."""
    text = error.replace("\n", " ")
    if "SIGSEGV" in text:
        return "worker process crashed (segmentation fault)"
    return "worker process died without reporting (crash or os._exit): " + text[:200]
