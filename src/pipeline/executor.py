"""Where stage runs go: the :class:`Executor` interface, and the :class:`Router` between executors.

A wave (:func:`pivot.pipeline.execute.execute`) decides *when* a stage runs;
an executor decides *how*: local loky workers
(:class:`pivot.pipeline.local_executor.LocalExecutor`, `pivot run` and
`pivot watch`) or SLURM jobs (:class:`pivot.pipeline.slurm_executor.SlurmJobs`).
The wave hands each stage run to the executor the :class:`Router` picks for
it, as a :class:`StageRun`, and gets a :class:`~concurrent.futures.Future`
of its :class:`~pivot.pipeline.worker.StageOutcome` back. It keeps at most
:attr:`Executor.capacity` runs in flight on each executor, so mixed
pipelines interleave local and SLURM stages in dependency order, each
executor within its own limit (``--jobs``, ``--slurm-jobs``).

What an executor must do (``tests/pipeline/test_executor_contract.py``
checks it of every implementation):

- :meth:`Executor.submit` returns at once; the future completes when the run
  ended, with the outcome (a stage that raised is an outcome with ``ok``
  false, never an exception). The wave emits ``stage.started`` just before
  the submit.
- A future fails with :class:`WorkerLost` only when the process running the
  stage died without reporting (a segfault, ``os._exit``) and took
  :attr:`WorkerLost.stages` down with it; the wave then re-runs each of them
  alone to find the culprit (:mod:`pivot.pipeline.crash_recovery`). Any
  other exception fails the stage with its text.
- Events of its own (``stage.submitted`` with a job id, job state changes)
  go through :attr:`StageRun.emit`, from any thread, with
  :attr:`StageRun.wave_id` as their ``correlation_id``.
- :meth:`Executor.cancel` stops every run in flight and returns only once
  each has ended (loky: worker trees killed; SLURM: ``scancel`` and Slurm
  saying so); every future it handed out is then done.
- :meth:`Executor.close` releases what it holds; a closed executor takes no
  more runs.

Optional: :class:`CancelsOneRun` (cancel a single run, e.g. scancel one
job), which `pivot watch` uses to cancel a run whose deps changed meanwhile
(:mod:`pivot.pipeline.stale_runs`). Restarting workers (fresh processes after
a code change or a crash) is the local executor's own business and not part
of the interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pivot.events.base import Event
from pivot.pipeline.worker import StageOutcome, StageTask

if TYPE_CHECKING:
    from pivot.pipeline.spec import StageSpec

__all__ = ["CancelsOneRun", "Emit", "Executor", "Router", "StageRun", "WorkerLost"]

Emit = Callable[[Sequence[Event]], object]
"""Hands events on (appends them to the store, shows them); one call is one append."""


def _drop(events: Sequence[Event]) -> None:
    del events


@dataclass(frozen=True)
class StageRun:
    """One run of one stage, as a wave hands it to an executor.

    ``task`` is what the stage's code needs (picklable; a worker or a job
    runs it with :func:`pivot.pipeline.worker.run_stage`); ``stage`` is its
    declaration (resources, ``watchers=``); ``deps`` the dependency hashes the
    run was decided on (recorded with it); ``emit`` is the wave's own,
    safe to call from any thread.
    """

    task: StageTask
    stage: StageSpec
    wave_id: str
    deps: Mapping[str, str | None] = field(default_factory=dict)
    emit: Emit = _drop

    @property
    def name(self) -> str:
        """The stage's name."""
        return self.task.stage


class WorkerLost(Exception):
    """The process that ran the stage died without reporting, and took ``stages`` with it."""

    def __init__(self, message: str, stages: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.stages = tuple(stages)


class Executor(Protocol):
    """Runs stage runs somewhere; see the module docstring for the contract."""

    @property
    def name(self) -> str:
        """Short name shown to the user and in tests: ``local``, ``slurm``."""
        ...

    @property
    def capacity(self) -> int:
        """How many runs may be in flight on it at once."""
        ...

    def submit(self, run: StageRun) -> Future[StageOutcome]:
        """Start ``run``; the future completes when it ended. Never blocks on the run."""
        ...

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop every run in flight; returns once each ended (its future done)."""
        ...

    def close(self) -> None:
        """Release workers, connections and threads; no submit after it."""
        ...


@runtime_checkable
class CancelsOneRun(Protocol):
    """An executor that can cancel one run in flight (SLURM: scancel its job)."""

    def cancel_run(self, future: Future[StageOutcome]) -> None:
        """Stop the run of ``future``; the future completes once it ended."""
        ...


class Router:
    """Which executor runs each stage: those named in ``routes`` go to theirs, the rest to
    ``default``.

    `pivot run` routes the stages :func:`pivot.pipeline.slurm_resources.placement`
    puts on SLURM to a :class:`~pivot.pipeline.slurm_executor.SlurmJobs`
    (``--executor`` decides that placement) and everything else locally.
    """

    def __init__(self, default: Executor, routes: Mapping[str, Executor] | None = None) -> None:
        self.default = default
        self.routes = dict(routes or {})

    def executor_for(self, stage: str) -> Executor:
        """The executor ``stage`` runs on."""
        return self.routes.get(stage, self.default)

    def __iter__(self) -> Iterator[Executor]:
        """Every distinct executor, the default first."""
        seen: list[Executor] = [self.default]
        for ex in self.routes.values():
            if all(ex is not s for s in seen):
                seen.append(ex)
        return iter(seen)
