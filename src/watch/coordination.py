"""The Coordinator's decisions: ``step(state, input) -> (state, commands)``, pure.

Rules (the Coordinator actor only runs :func:`step` and carries out what it
returns, see :mod:`pivot.actors.coordinator`):

- **One wave at a time.** While a wave is being prepared (its batch examined,
  the pipeline loaded, the wave planned) or runs, batches wait in
  :class:`Pending` and form exactly one next wave. While the debouncer has a
  window open (a batch is on its way) pending changes wait for it too, so a
  wave never starts in the middle of a checkout.
- **Boot** (once the file watcher runs): load the pipeline, run what is stale
  (``initial``), or every selected stage with ``--force`` (not after a
  restart of the Coordinator).
- **A code/config batch** (or one too big to list, or any batch while no valid
  pipeline is loaded): stale bytecode of the edited modules is dropped and the
  pipeline reloaded in a fresh interpreter. A load error is reported (file,
  line), the last valid pipeline is kept and nothing runs until a code change
  or ``f``. An unknown target stage stops `pivot watch` at boot (exit 2) and
  is an error later. A good load tells the file watcher the declared paths,
  and runs what is stale on restarted workers (``restart`` once a pipeline
  was loaded before).
- **A data batch**: the stages affected by the changed paths (after the
  stages' own writes and vanished temporary files are dropped), plus any
  stage a failed restart left to run, are planned; nothing runs when none is.
- **A code batch while a wave runs SLURM jobs**: it waits like any other, but the pipeline
  is loaded beside the wave to find the jobs it makes stale, which are cancelled
  (:mod:`pivot.watch.stale_code`); the next wave reuses that load while its code is
  current (:mod:`pivot.watch.checked_load`).
- **A plan that fails** (a dep or output pivot cannot read, such as a FIFO: what `pivot
  run` reports and exits 2 for) is reported (``wave.plan_failed``) and nothing runs; the
  pipeline stays valid, so the next change (the FIFO replaced by a file) plans again.
- ``--force``/``f``: every selected stage. Target stages (``pivot watch STAGE``) limit
  every wave to them and their upstream.

What touches files or processes is a command the actor runs *off its thread*
(:class:`Examine`, :class:`Load`, :class:`PlanWave`); its result comes back as an input
(:class:`BatchExamined`, :class:`PipelineLoaded`, :class:`WavePlanned`), so the actor
keeps answering (a new batch, ``f``, a shutdown) during a long load. :func:`examine` is
the work of :class:`Examine`, over the file-system calls it is given; :func:`is_own_write`
its own-write rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pivot.actors.watch_messages import (
    Batch,
    Boot,
    DeclaredPaths,
    ForceAll,
    RunWave,
    WaveDone,
    WindowOpened,
)
from pivot.events.actors import ChangesPending
from pivot.events.pipeline import ChangesDetected, PipelineInvalid, PipelineReloaded, WavePlanFailed
from pivot.names import USAGE_EXIT, unknown_name
from pivot.watch.affected import (
    affected_stages,
    declared_paths,
    diff_stages,
    drop_own_writes,
    drop_vanished,
    is_own_write,  # re-exported: the actor's own-write rule
    unalias,
    upstream,
)
from pivot.watch.checked_load import take_checked_load
from pivot.watch.classify import classify, really_changed
from pivot.watch.coordination_types import (
    Append,
    BatchExamined,
    Command,
    CoordinatorState,
    Examine,
    Examining,
    Idle,
    Input,
    Load,
    Loading,
    PipelineLoaded,
    PlanFailed,
    Planning,
    PlanWave,
    RequestShutdown,
    Running,
    RunningCodeChecked,
    Tell,
    WavePlanned,
)
from pivot.watch.debounce import SAMPLE_SIZE
from pivot.watch.pending import Pending, Taken
from pivot.watch.stale_code import on_batch_while_running, on_code_checked
from pivot.watch.watched_pipeline import LoadError, PipelineView

__all__ = ["examine", "is_own_write", "step"]

ACTOR = "coordinator"
Step = tuple[CoordinatorState, list[Command]]


# -- the decision --------------------------------------------------------------
def step(state: CoordinatorState, message: Input) -> Step:
    """The new state and what to do, for one input."""
    if state.stopped:
        return state, []
    if isinstance(message, RunningCodeChecked):  # answers no phase: beside the running wave
        state, commands = on_code_checked(state, message)
    else:
        state, commands = _handle(state, message)
    state, known = take_checked_load(state, message, commands)
    if known is not None:  # the check loaded this code already: no second load
        state, more = _handle(state, known)
        kept: list[Command] = [c for c in commands if not isinstance(c, Load)]
        commands = kept + more
    state, more = _advance(state)
    return state, commands + more


def _handle(s: CoordinatorState, m: Input) -> Step:
    if isinstance(m, Boot):
        return _boot(s)
    if isinstance(m, WindowOpened):
        return replace(s, incoming=m.open), []
    if isinstance(m, Batch):
        return _batch(s, m)
    if isinstance(m, ForceAll):
        return replace(s, pending=s.pending.force()), []
    if isinstance(m, WaveDone):
        return _wave_done(s, m), []
    assert not isinstance(m, RunningCodeChecked)  # step answers it
    return _result(s, m)


def _batch(s: CoordinatorState, m: Batch) -> Step:
    s = replace(s, incoming=False, pending=s.pending.add(m))
    if isinstance(s.phase, Idle | Examining):
        return s, []  # taken as soon as the batch in hand is examined
    sample = tuple(sorted(_rel(p, s.settings.root) for p in m.paths)[:5])
    pending = Append((ChangesPending(count=s.pending.count, paths=sample, actor=ACTOR),))
    s, check = on_batch_while_running(s, m)  # SLURM jobs its code edit makes stale
    return s, [pending, *check]


def _wave_done(s: CoordinatorState, m: WaveDone) -> CoordinatorState:
    if isinstance(s.phase, Running) and s.phase.wave_id == m.wave_id:
        s = replace(s, phase=Idle())
    if m.restart_failed:
        s = replace(s, restart_needed=True, carry=s.carry | frozenset(m.stages))
    return s


def _result(
    s: CoordinatorState, m: BatchExamined | PipelineLoaded | WavePlanned | PlanFailed
) -> Step:
    # A result of work no longer in flight is ignored (cannot happen; be safe).
    phase = s.phase
    if isinstance(m, BatchExamined):
        if phase != Examining(m.batch_id):
            return s, []
        return _examined(replace(s, code_seen=m.code_seen), m)
    if isinstance(m, PipelineLoaded):
        if not isinstance(phase, Loading) or phase.batch_id != m.batch_id:
            return s, []
        return _loaded(s, phase, m)
    if not isinstance(phase, Planning) or phase.batch_id != m.batch_id:
        return s, []
    return _planned(s, phase, m)


def _new_id(s: CoordinatorState) -> tuple[str, CoordinatorState]:
    return f"{s.settings.id_prefix}{s.ids:08x}", replace(s, ids=s.ids + 1)


def _boot(s: CoordinatorState) -> Step:
    if s.booted:
        return s, []  # told twice (a restarted Coordinator boots itself)
    batch_id, s = _new_id(s)
    force = s.settings.force_first and not s.settings.restarted
    # The initial staleness check covers anything seen so far.
    s = replace(s, booted=True, pending=Pending(s.pending.max_paths))
    phase = Loading(batch_id, force, "force" if force else "initial")
    return replace(s, phase=phase), [Load(batch_id)]


def _advance(s: CoordinatorState) -> Step:
    if not s.booted or s.phase != Idle() or s.pending.empty or s.incoming or s.checking:
        return s, []
    taken, pending = s.pending.take()
    batch_id, s = _new_id(s)
    s = replace(s, pending=pending, phase=Examining(batch_id))
    return s, [Examine(batch_id, taken, s.view, s.invalid, s.aliases, s.code_seen)]


def _reloads(code: frozenset[str], taken: Taken, view: PipelineView | None, invalid: bool) -> bool:
    return bool(code) or taken.overflow or view is None or invalid


def _examined(s: CoordinatorState, m: BatchExamined) -> Step:
    taken, code, data = m.taken, m.code, m.data
    commands: list[Command] = []
    if code or taken.overflow or data:
        shown = sorted(code | data)
        root = s.settings.root
        detected = ChangesDetected(
            batch_id=m.batch_id,
            kind="code" if (code or taken.overflow) else "data",
            paths=tuple(_rel(p, root) for p in shown[:SAMPLE_SIZE]),
            # Paths, not notifications (one save is several); a guess on overflow.
            count=max(taken.count, len(shown)) if taken.overflow else len(shown),
            overflow=taken.overflow,
            actor=ACTOR,
            correlation_id=m.batch_id,
        )
        commands.append(Append((detected,)))
    if _reloads(code, taken, s.view, s.invalid):
        if s.invalid and not (code or taken.overflow) and not taken.force:
            return replace(s, phase=Idle()), commands  # the fix of the pipeline re-checks all
        if m.ignore_changed:
            commands.append(Tell("file_watcher", DeclaredPaths(None, True)))
        trigger = "force" if taken.force else "change"
        commands.append(Load(m.batch_id, code))  # a stale .pyc must not outlive its edit
        return replace(s, phase=Loading(m.batch_id, taken.force, trigger)), commands
    assert s.view is not None  # _reloads is true without one
    if taken.force:
        return _launch(
            s,
            view=s.view,
            batch_id=m.batch_id,
            targets=None,
            force=True,
            trigger="force",
            commands=commands,
        )
    targets = frozenset(affected_stages(s.view, data)) | s.carry
    if not targets:
        return replace(s, phase=Idle()), commands
    return _launch(
        s,
        view=s.view,
        batch_id=m.batch_id,
        targets=targets,
        force=False,
        trigger="change",
        commands=commands,
    )


def _loaded(s: CoordinatorState, phase: Loading, m: PipelineLoaded) -> Step:
    cfg = s.settings
    result = m.result
    batch_id = phase.batch_id
    if isinstance(result, LoadError):
        invalid = PipelineInvalid(
            error=result.message,
            file=result.file,
            line=result.line,
            actor=ACTOR,
            correlation_id=batch_id,
        )
        return replace(s, phase=Idle(), invalid=True), [Append((invalid,))]
    missing = [t for t in cfg.targets if t not in result.stages]
    if missing:
        error = unknown_name("stage", missing[0], list(result.stages))
        s = replace(s, phase=Idle(), invalid=True)
        if s.view is None:
            # A typo on the command line: say so and stop, rather than wait.
            # Not a pipeline.invalid event: the pipeline is fine, the command
            # was not (replay would show it as broken until the next reload).
            return replace(s, stopped=True), [RequestShutdown(error, USAGE_EXIT)]
        renamed = PipelineInvalid(  # a watched stage was renamed or removed meanwhile
            error=error,
            file=_rel(str(cfg.pipeline_file), cfg.root),
            actor=ACTOR,
            correlation_id=batch_id,
        )
        return s, [Append((renamed,))]
    added, removed, modified = diff_stages(s.view, result)
    scope = _scope(result, cfg.targets)
    reloaded = PipelineReloaded(
        added=added,
        removed=removed,
        modified=modified,
        stages=tuple(n for n in result.stages if scope is None or n in scope),
        actor=ACTOR,
        correlation_id=batch_id,
    )
    watched = {str(p) for p in declared_paths(result)} | {str(p) for p in m.aliases}
    commands: list[Command] = [
        Append((reloaded,)),
        Tell("file_watcher", DeclaredPaths(frozenset(watched), True)),
    ]
    s = replace(
        s,
        view=result,
        invalid=False,
        aliases=m.aliases,
        restart_needed=s.restart_needed or s.view is not None,
    )
    return _launch(
        s,
        view=result,
        batch_id=batch_id,
        targets=None,
        force=phase.force,
        trigger=phase.trigger,
        commands=commands,
    )


def _scope(view: PipelineView, targets: tuple[str, ...]) -> frozenset[str] | None:
    if not targets:
        return None
    return frozenset(upstream(view, targets))


def _launch(
    s: CoordinatorState,
    *,
    view: PipelineView,
    batch_id: str,
    targets: frozenset[str] | None,
    force: bool,
    trigger: str,
    commands: list[Command],
) -> Step:
    scope = _scope(view, s.settings.targets)
    if scope is not None:
        targets = scope if targets is None else targets & scope
    plan = PlanWave(batch_id, view, targets, force)
    return replace(s, phase=Planning(batch_id, trigger)), [*commands, plan]


def _planned(s: CoordinatorState, phase: Planning, m: WavePlanned | PlanFailed) -> Step:
    if isinstance(m, PlanFailed):  # the pipeline is fine: the next change plans again
        e = WavePlanFailed(
            error=m.error, file=m.file, line=m.line, actor=ACTOR, correlation_id=m.batch_id
        )
        return replace(s, phase=Idle()), [Append((e,))]
    if not m.stages:
        return replace(s, phase=Idle()), []
    wave_id, s = _new_id(s)
    restart = s.restart_needed
    run = RunWave(
        wave_id=wave_id,
        view=m.view,
        stages=m.stages,
        trigger=phase.trigger,
        restart=restart,
        reason="code changed" if restart else "",
        correlation_id=phase.batch_id,
    )
    jobs = frozenset(
        p.name for p in m.stages if p.name in m.view.stages and m.view.stages[p.name].job
    )
    s = replace(s, phase=Running(wave_id, jobs), restart_needed=False, carry=frozenset())
    return s, [Tell("worker_pool", run)]


# -- the work of Examine, over the file-system calls it is given -----------------
def examine(
    command: Examine,
    root: Path,
    pipeline_file: Path,
    *,
    digest: Callable[[str], str | None],
    exists: Callable[[str], bool],
    is_recorded: Callable[[PipelineView, str, Path], bool],
    is_dir: Callable[[Path], bool],
) -> BatchExamined:
    """Which of a batch's paths count: code whose bytes changed (by ``digest``), data
    once symlink targets are mapped back, vanished temporary files (``exists``) and
    (when no reload follows) the stages' own writes (``is_recorded``) are dropped."""
    classified = classify(command.taken.paths, root, pipeline_file)
    seen = dict(command.code_seen)
    code = really_changed(classified.code, seen, digest)
    view = command.view
    data = unalias(classified.data, command.aliases)
    if view is not None:
        data = drop_vanished(view, data, exists)
        if not _reloads(code, command.taken, view, command.invalid):

            def recorded(stage: str, out: Path) -> bool:
                return is_recorded(view, stage, out)

            data = drop_own_writes(view, data, recorded, is_dir)
    return BatchExamined(
        command.batch_id, command.taken, code, data, classified.ignore_changed, seen
    )


def _rel(path: str, root: Path) -> str:
    p = Path(path)
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return path
