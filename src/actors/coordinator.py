"""Coordinator: decides what each wave runs, one wave at a time.

The decisions are :func:`pivot.watch.coordination.step`, a pure function
of the state and one input (its docstring states every rule). This actor
only feeds it its messages and carries out the commands it returns:
appending events, telling other actors, and running the work that touches
files or processes (examining a batch, loading the pipeline, planning a
wave) in a thread of its own, whose result comes back as a message. So
the actor answers a new batch, ``f`` or a shutdown while a pipeline that
takes a minute to import loads. The plan is `pivot run`'s own
(:meth:`pivot.pipeline.project.Project.plan`, on the project the view
carries, over the same ``.pivot/state.db``: watch and run agree on what is
stale); whether an output holds its stage's own write is
:func:`pivot.watch.coordination.is_own_write` over the hashes read here.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pykka

from pivot.actors.base import ActorContext, Shell
from pivot.actors.watch_messages import Batch, Boot, ForceAll, WaveDone, WindowOpened
from pivot.pipeline.bytecode import drop_bytecode
from pivot.pipeline.errors import PipelineError
from pivot.watch.affected import symlink_aliases
from pivot.watch.classify import content_digest
from pivot.watch.coordination import examine, is_own_write, step
from pivot.watch.coordination_types import (
    Append,
    BatchExamined,
    CheckRunningCode,
    Command,
    CoordinatorState,
    Examine,
    Load,
    PipelineLoaded,
    PlanFailed,
    PlanWave,
    RequestShutdown,
    RunningCodeChecked,
    Settings,
    Tell,
    WavePlanned,
)
from pivot.watch.watched_pipeline import LoadError, PipelineView, PlannedStage, WatchedPipeline

__all__ = ["Coordinator", "WorkFailed"]

_INPUTS = (
    Boot,
    WindowOpened,
    Batch,
    ForceAll,
    WaveDone,
    BatchExamined,
    PipelineLoaded,
    WavePlanned,
    PlanFailed,
    RunningCodeChecked,
)


class WorkFailed:
    """The Coordinator's work thread -> the Coordinator: the work raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Coordinator(Shell):
    """Owns the Coordinator's state; runs its commands."""

    name = "coordinator"

    def __init__(
        self,
        ctx: ActorContext,
        pipeline: WatchedPipeline,
        targets: Sequence[str] = (),
        force_first: bool = False,
        restarted: bool = False,
    ) -> None:
        super().__init__(ctx)
        self.pipeline = pipeline
        settings = Settings(
            root=pipeline.root,
            pipeline_file=pipeline.pipeline_file,
            targets=tuple(targets),
            force_first=force_first,
            restarted=restarted,
            id_prefix=uuid.uuid4().hex[:24],  # + an 8-digit counter: unique as uuid4().hex
        )
        self.state = CoordinatorState(settings)

    def started(self) -> None:
        if self.state.settings.restarted:
            self.actor_ref.tell(Boot())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, WorkFailed):
            raise message.error  # a crash of the actor, as when the work ran in it
        if isinstance(message, _INPUTS):
            self.state, commands = step(self.state, message)
            for command in commands:
                self._carry_out(command)
        return None

    def _carry_out(self, command: Command) -> None:
        if isinstance(command, Append):
            self.ctx.store.emit(*command.events)
        elif isinstance(command, Tell):
            self.ctx.registry.tell(command.to, command.message)
        elif isinstance(command, RequestShutdown):
            self.ctx.shutdown.request(command.error, code=command.code)
        else:
            # One at a time (step starts the next only once this one answered).
            threading.Thread(
                target=self._work, args=(command,), name="pivot-coordinator-work", daemon=True
            ).start()

    # -- in the work thread ----------------------------------------------------
    def _work(self, command: Examine | Load | PlanWave | CheckRunningCode) -> None:
        result: object
        try:
            result = self._perform(command)
        except BaseException as exc:
            result = WorkFailed(exc)
        # This actor, not a successor: the work was its own. Stopped meanwhile:
        # the result is for nobody.
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(result)

    def _perform(self, command: Examine | Load | PlanWave | CheckRunningCode) -> object:
        pipeline = self.pipeline
        if isinstance(command, CheckRunningCode):  # beside a running wave, for its SLURM jobs
            drop_bytecode(command.stale_bytecode)
            # The files' digests around the load: what it read, for the next wave to reuse.
            before = {p: content_digest(p) for p in command.stale_bytecode}
            checked = pipeline.load()
            after = {p: content_digest(p) for p in command.stale_bytecode}
            aliases = {} if isinstance(checked, LoadError) else symlink_aliases(checked)
            return RunningCodeChecked(command.wave_id, checked, aliases, before, after)
        if isinstance(command, Examine):
            return examine(
                command,
                pipeline.root,
                pipeline.pipeline_file,
                digest=content_digest,
                exists=os.path.lexists,
                is_recorded=self._is_recorded,
                is_dir=Path.is_dir,
            )
        if isinstance(command, Load):
            drop_bytecode(command.stale_bytecode)  # a stale .pyc must not outlive its edit
            result = pipeline.load()
            aliases = {} if isinstance(result, LoadError) else symlink_aliases(result)
            return PipelineLoaded(command.batch_id, result, aliases)
        try:
            return WavePlanned(command.batch_id, command.view, self._plan(command))
        except PipelineError as exc:  # what `pivot run` reports (exit 2): not a crash
            return PlanFailed(command.batch_id, exc.message, exc.file, exc.line)

    @staticmethod
    def _plan(command: PlanWave) -> tuple[PlannedStage, ...]:
        # Stages to run, in dependency order: the stale ones among the targets (all
        # when None) and their stale upstream; every target when forced.
        project = command.view.project
        if project is None:
            raise TypeError("a view without a loaded project")
        targets = command.targets
        if targets is not None and not targets:
            return ()
        decided = project.plan(sorted(targets) if targets is not None else [], command.force)
        project.save_cache()
        return tuple(PlannedStage(d.stage, d.reasons) for d in decided.decisions if d.run)

    @staticmethod
    def _is_recorded(view: PipelineView, stage: str, out: Path) -> bool:
        project = view.project
        if project is None:  # a view without records: nothing is anyone's own write
            return False
        try:
            rel = out.relative_to(project.root).as_posix()

            def recorded() -> Mapping[str, str | None] | None:
                record = project.state.records().get(stage)
                return None if record is None else record.outs

            now = project.hasher.hash_or_unreadable(rel)  # as the WorkerPool recorded it
            return is_own_write(rel, now, view.after_wave, recorded)
        except Exception:  # outside the project, no records: someone else's edit
            return False
