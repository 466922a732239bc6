"""`pivot watch`: the wave after a stale-code check runs on the pipeline the check loaded.

A code edit while a wave runs SLURM jobs loads the pipeline beside the wave
(:mod:`pivot.watch.stale_code`); the edit's batch then forms the next wave,
whose reload would load the same files again. Pure decisions, called by
:func:`pivot.watch.coordination.step`. Rules:

- A check's successful load is kept (:class:`CheckedLoad`) with the digest of
  each code path it was asked to check, taken right before and right after
  the load; a path whose digest differs between the two changed during the
  load and is not kept, so no later batch can reuse the load for it. A load
  error is not kept (it may be passing: a timeout; the next wave loads anew).
- A newer check replaces it: a code edit that starts a check, or comes while
  one is in flight, drops what an earlier check kept.
- The next wave's batch, once examined, takes it (it is kept for one batch
  only). Its reload is answered by the kept load, with no second load, when
  the batch is not too big to list and not a ``f``, it changed some code,
  every code path that really changed is one the check read, and every path
  the check read still has the digest it had then. Otherwise (a file changed
  again after the check, or one the check did not read) the pipeline is
  loaded again: correctness first.
"""

from __future__ import annotations

from dataclasses import replace

from pivot.watch.coordination_types import (
    BatchExamined,
    CheckedLoad,
    Command,
    CoordinatorState,
    Input,
    Load,
    PipelineLoaded,
    RunningCodeChecked,
)
from pivot.watch.watched_pipeline import LoadError

__all__ = ["keep_checked_load", "take_checked_load"]


def keep_checked_load(s: CoordinatorState, m: RunningCodeChecked) -> CoordinatorState:
    """Keep the check's load for the next wave (unless it failed, or more code changed
    since it began: the check that follows replaces it)."""
    if isinstance(m.result, LoadError) or s.recheck:
        return replace(s, checked=None)
    read = {p: d for p, d in m.before.items() if p in m.after and m.after[p] == d}
    return replace(s, checked=CheckedLoad(m.result, m.aliases, read))


def take_checked_load(
    s: CoordinatorState, m: Input, commands: list[Command]
) -> tuple[CoordinatorState, PipelineLoaded | None]:
    """After ``m``: for an examined batch, the kept load is taken; it answers the batch's
    :class:`Load` in ``commands`` if the code it was loaded from is still current."""
    kept = s.checked
    if not isinstance(m, BatchExamined) or kept is None:
        return s, None
    s = replace(s, checked=None)
    load = next((c for c in commands if isinstance(c, Load)), None)
    if load is None or m.taken.overflow or m.taken.force or not m.code:
        return s, None
    if not m.code <= kept.read.keys():
        return s, None  # a changed file the check did not read
    if any(p not in m.code_seen or m.code_seen[p] != d for p, d in kept.read.items()):
        return s, None  # changed again since the check read it
    return s, PipelineLoaded(load.batch_id, kept.view, kept.aliases)
