"""`pivot watch`: a code edit while a wave runs SLURM jobs cancels the jobs it makes stale.

Pure decisions, called by :func:`pivot.watch.coordination.step`. Rules:

- A batch that arrives while wave W runs stages as SLURM jobs
  (:attr:`Running.jobs`) and holds code or config paths (a ``.py`` file of the
  project, ``pipeline.py``, ``params.yaml``, ``pivot.toml``) starts a *check*:
  the pipeline is loaded beside the wave, in a fresh interpreter as for any
  reload (:class:`CheckRunningCode`, over every code path pending: their stale
  bytecode is dropped, their digests around the load kept). The batch itself
  stays pending and forms the next wave as any batch that comes during a wave
  does, which plans what is stale on the check's load while the code it read
  is current, else loads again (:mod:`pivot.watch.checked_load`).
- One check at a time: code that changes while a check is in flight is
  checked once it answered. A batch too big to list (overflow) is not
  checked: its next wave re-checks everything.
- The answer: those SLURM stages of W whose fingerprint (code reached, params)
  differs from the pipeline W runs, or which are gone, are stale.
  ``wave.code_checked`` names them (none: nothing to do), and the worker pool
  is told :class:`CancelStaleRuns`: their jobs are scancelled and the stages
  end ``cancelled`` with :data:`~pivot.pipeline.stale_runs.CODE_STALE_REASON`;
  the pending change then submits them anew with the new code. A load that
  fails cancels nothing (``wave.code_checked`` with the error; the next wave
  reports the load error as usual). An answer for a wave no longer running
  cancels nothing (its load still serves the next wave).
- No next wave is prepared while a check is in flight: two loads never run
  at once.
- Local stages are never interrupted: a code edit while they run lets them
  finish on the code they started with, and the next wave runs them again
  if their fingerprint changed.
"""

from __future__ import annotations

from dataclasses import replace

from pivot.actors.watch_messages import Batch, CancelStaleRuns
from pivot.events.pipeline import WaveCodeChecked
from pivot.pipeline.stale_runs import CODE_STALE_REASON, changed_code
from pivot.watch.checked_load import keep_checked_load
from pivot.watch.classify import classify
from pivot.watch.coordination_types import (
    Append,
    CheckRunningCode,
    Command,
    CoordinatorState,
    Running,
    RunningCodeChecked,
    Tell,
)
from pivot.watch.watched_pipeline import LoadError

__all__ = ["on_batch_while_running", "on_code_checked"]

ACTOR = "coordinator"
Step = tuple[CoordinatorState, list[Command]]


def on_batch_while_running(s: CoordinatorState, m: Batch) -> Step:
    """A batch came while a wave runs: check the code of its SLURM stages if it may have
    changed (the batch stays pending either way)."""
    phase = s.phase
    if not isinstance(phase, Running) or not phase.jobs or m.overflow:
        return s, []
    code = classify(m.paths, s.settings.root, s.settings.pipeline_file).code
    if not code:
        return s, []
    if s.checking:
        return replace(s, recheck=s.recheck | code), []
    check = CheckRunningCode(phase.wave_id, _pending_code(s))
    return replace(s, checking=True, checked=None), [check]


def _pending_code(s: CoordinatorState) -> frozenset[str]:
    # Every code path of the next wave's batch, not only the last edit's: the load reads
    # them all, so their bytecode goes and their digests say what the next wave may reuse.
    return classify(s.pending.paths, s.settings.root, s.settings.pipeline_file).code


def on_code_checked(s: CoordinatorState, m: RunningCodeChecked) -> Step:
    """The pipeline as loaded beside wave ``m.wave_id``: cancel its stale SLURM runs."""
    s = keep_checked_load(replace(s, checking=False), m)  # for the next wave
    phase = s.phase
    if not isinstance(phase, Running) or phase.wave_id != m.wave_id or s.view is None:
        return replace(s, recheck=frozenset()), []
    commands: list[Command] = []
    result = m.result
    if isinstance(result, LoadError):
        checked = WaveCodeChecked(
            wave_id=m.wave_id, error=result.message, actor=ACTOR, correlation_id=m.wave_id
        )
        commands.append(Append((checked,)))
    else:
        then = {n: i.fingerprint for n, i in s.view.stages.items()}
        now = {n: i.fingerprint for n, i in result.stages.items()}
        stale = changed_code(phase.jobs, then, now)
        checked = WaveCodeChecked(
            wave_id=m.wave_id, stale=stale, actor=ACTOR, correlation_id=m.wave_id
        )
        commands.append(Append((checked,)))
        if stale:
            commands.append(
                Tell("worker_pool", CancelStaleRuns(m.wave_id, stale, CODE_STALE_REASON))
            )
    if s.recheck:
        commands.append(CheckRunningCode(m.wave_id, _pending_code(s)))
        s = replace(s, checking=True, recheck=frozenset())
    return s, commands
