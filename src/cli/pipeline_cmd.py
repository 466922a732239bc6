"""Commands: pivot run, status (``pivot dag``: :mod:`pivot.cli.dag_cmd`).

Thin on purpose: options, printing and exit codes. The work is in
:mod:`pivot.pipeline` (``project``, ``plan``, ``execute``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from pivot.cli.options import PipelineOpt
from pivot.terminal import echo

if TYPE_CHECKING:
    from pivot.events.store import EventStore
    from pivot.pipeline.errors import PipelineError
    from pivot.pipeline.plan import Plan
    from pivot.pipeline.project import Project
    from pivot.pipeline.spec import PipelineSpec
    from pivot.pipeline.wave_result import WaveResult

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]


class RunOn(StrEnum):
    """Where `pivot run --executor` runs every stage."""

    local = "local"
    slurm = "slurm"


def _fail(exc: PipelineError, as_json: bool) -> typer.Exit:
    if as_json:
        print(json.dumps({"ok": False, "error": exc.to_dict()}))
    else:
        echo(f"error: {exc}", err=True)  # may quote the user's exception text
    return typer.Exit(2)


def _note_rebuilt(project: Project) -> None:
    if project.state.rebuilt:
        print(
            f"note: {project.state.path.name} was missing: rebuilt the records of "
            f"{project.state.rebuilt} stages from the event log",
            file=sys.stderr,
        )


def _print(line: str) -> None:
    echo(line)  # stage output and errors: outside text


@contextlib.contextmanager
def _load_pause() -> Iterator[None]:
    """The collector paused while a command loads and plans; what they made is frozen.

    The spec, graph, records and hashes (about a million objects at 10,000
    stages) live until the command ends and hold no garbage cycles: out of the
    collector's sight (``gc.freeze``), they are never walked. Without this the
    first collection after the loader's own pause walked all of them, 40-70 ms
    of `pivot status` at 10,000 stages. Only here, in a command that ends: a
    frozen cycle is never collected, which a process loading again and again
    (watch mode, tests) would pile up.
    """
    from pivot.pipeline.gc_pause import gc_paused

    with gc_paused():
        yield
        gc.freeze()


F = TypeVar("F", bound=Callable[..., None])


def _interruptible(command: F) -> F:
    """Ctrl-C outside a running wave (loading, hashing): exit 130, no traceback.

    A damaged, full or unwritable ``.pivot/`` is one line too (exit 1).
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from pivot.cli.store_access import store_errors

        try:
            with store_errors():
                command(*args, **kwargs)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def run(
    stages: Annotated[
        list[str] | None,
        typer.Argument(help="Stages to bring up to date (default: all), with their upstream."),
    ] = None,
    *,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Run the named stages (or all) even if fresh.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Only say what would run and why.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Stages run at once (default: CPU count)."),
    ] = None,
    keep_going: Annotated[
        bool,
        typer.Option("--keep-going", "-k", help="After a failure, still run independent stages."),
    ] = False,
    executor: Annotated[
        RunOn | None,
        typer.Option(
            "--executor",
            help="Run every stage locally (local) or as a SLURM job (slurm) "
            "(default: where each stage is declared to run).",
            show_default=False,
        ),
    ] = None,
    slurm_jobs: Annotated[
        int, typer.Option("--slurm-jobs", min=1, help="SLURM jobs of this run queued at once.")
    ] = 100,
    as_json: JsonOpt = False,
    pipeline: PipelineOpt = None,
) -> None:
    """Run the stale stages, independent ones in parallel.

    A stage is stale when its code (and the project code it reaches), its deps,
    its params or its outputs changed since its last successful run. Stage
    output goes to .pivot/logs/STAGE.log and is shown live as "STAGE | line".
    Ctrl-C stops the run and kills the workers. Exit status: 0 all good, 1 a
    stage failed, 2 the pipeline is invalid, 130 interrupted.

    Examples:

    \b
      pivot run
      pivot run train --dry-run
      pivot run -f clean -j 4
      pivot run --executor local     # SLURM stages too, on this machine
    """
    from pivot.pipeline.errors import PipelineError
    from pivot.pipeline.project import Project
    from pivot.pipeline.run_output import summary

    # The collector is paused until the plan is made, then what was made is frozen
    # (_load_pause); loading.close() ends the pause, and an error before it too.
    loading = contextlib.ExitStack()
    loading.enter_context(_load_pause())
    with loading:
        try:
            project = Project.open(pipeline)
        except PipelineError as exc:
            raise _fail(exc, as_json) from None
        _note_rebuilt(project)
        if dry_run:
            _dry_run(project, stages or (), force, as_json)
            return

        from pivot.events.location import open_project_store
        from pivot.pipeline.interrupted import Takeover, describe
        from pivot.pipeline.lock import run_lock

        def waiting(holder: str) -> None:
            print(f"waiting for another pivot run (pid {holder}) to finish...", file=sys.stderr)

        takeover = Takeover("pivot run")
        with contextlib.ExitStack() as stack:
            stack.callback(project.close)
            previous = stack.enter_context(
                run_lock(project.root, on_wait=waiting, on_leftover=takeover.on_leftover)
            )
            store = open_project_store(project.root)
            stack.callback(store.close)
            # Holding the lock, no wave runs: a wave left open was interrupted.
            found = takeover.events(store, previous)
            if found:
                store.append(found)
                for line in describe(found):
                    print(line, file=sys.stderr)
            try:
                the_plan = project.plan(stages or (), force=force)
                project.slurm_placement(executor and executor.value)  # a host it lacks: exit 2
            except PipelineError as exc:
                raise _fail(exc, as_json) from None
            loading.close()  # frozen, and the collector back on for the wave
            result = _execute(
                project, the_plan, jobs, keep_going, as_json, store=store,
                executor=executor.value if executor else None, slurm_jobs=slurm_jobs,
            )  # fmt: skip
    if as_json:
        print(json.dumps(summary(the_plan, result)))
    if result.cancelled:
        signum = _received[-1] if _received else signal.SIGINT
        if not as_json:
            print(
                "interrupted"
                if signum == signal.SIGINT
                else f"stopped by {signal.Signals(signum).name}",
                file=sys.stderr,
            )
        raise typer.Exit(128 + signum)
    if not result.ok:
        raise typer.Exit(1)


def _dry_run(project: Project, stages: Sequence[str], force: bool, as_json: bool) -> None:
    """`pivot run --dry-run`: what would run and why; nothing is run."""
    from pivot.pipeline.errors import PipelineError

    try:
        the_plan = project.plan(stages, force=force)
    except PipelineError as exc:
        raise _fail(exc, as_json) from None
    finally:
        project.close()
    _print_dry_run(the_plan, as_json)


def _execute(
    project: Project,
    the_plan: Plan,
    jobs: int | None,
    keep_going: bool,
    as_json: bool,
    *,
    store: EventStore,
    executor: str | None = None,
    slurm_jobs: int = 100,
) -> WaveResult:
    """Run the plan with events appended and shown; Ctrl-C cancels the wave."""
    from pivot.pipeline.cancel import CancelToken
    from pivot.pipeline.run_output import RunDisplay

    display = RunDisplay(project.root, store.append, None if as_json else _print)
    adoptable = None
    if project.slurm_placement(executor, the_plan.to_run):
        from pivot.pipeline import slurm_adopt

        # The jobs a killed pivot left are taken over, not submitted again.
        records = store.read(types=slurm_adopt.TYPES)
        adoptable = slurm_adopt.candidates(r.event for r in records)
    cancel = CancelToken()

    def on_signal(signum: int, frame: object) -> None:
        del frame
        _received.append(signum)
        cancel.cancel("interrupted" if signum == signal.SIGINT else signal.Signals(signum).name)

    # Workers lead sessions of their own, so a signal to pivot's process group
    # (Ctrl-C, a closed terminal's SIGHUP, `timeout`'s or a scheduler's SIGTERM)
    # reaches only this process: each one must cancel the wave, which kills the
    # workers and their children before the run lock is released.
    previous = {sig: signal.signal(sig, on_signal) for sig in _CANCEL_SIGNALS}
    try:
        return project.run(
            the_plan, display.emit, jobs=jobs, keep_going=keep_going, cancel=cancel,
            executor=executor, slurm_jobs=slurm_jobs, adoptable=adoptable, store=store,
        )  # fmt: skip
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        display.close()


_CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []


def _print_dry_run(the_plan: Plan, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": True, "stages": [d.to_dict() for d in the_plan.decisions]}))
        return
    _echo_all(
        f"{d.stage}: would run ({'; '.join(d.reasons)})" if d.run else f"{d.stage}: up to date"
        for d in the_plan.decisions
    )


def _echo_all(lines: Iterable[str]) -> None:
    """:func:`~pivot.terminal.echo` of each line, written at once (10,000 stages:
    one write, not one flushed write per line)."""
    from pivot.terminal import printable

    sys.stdout.write("".join(f"{printable(line)}\n" for line in lines))
    sys.stdout.flush()


def status(
    stages: Annotated[
        list[str] | None, typer.Argument(help="Stages to check (default: all), with upstream.")
    ] = None,
    *,
    as_json: JsonOpt = False,
    pipeline: PipelineOpt = None,
) -> None:
    """Say, for each stage, whether it is up to date, and if not why.

    Reasons: never run, last run failed, code changed: FILE:NAME, param
    changed: NAME OLD -> NEW, dep changed: PATH, output missing: PATH, output
    changed: PATH, upstream will run: STAGE. Nothing is run or recorded.
    Exit status: 0 (stale or not), 2 the pipeline is invalid or a stage unknown.

    Examples:

    \b
      pivot status
      pivot status train
      pivot status --json | jq .stages
    """
    from pivot.pipeline.errors import PipelineError
    from pivot.pipeline.project import Project

    try:
        with _load_pause():
            project = Project.open(pipeline)
            _note_rebuilt(project)
            try:
                the_plan = project.plan(stages or ())
            finally:
                project.close()
    except PipelineError as exc:
        raise _fail(exc, as_json) from None
    from pivot.cli.status_render import stage_jobs, status_lines, status_rows

    where = _runs_on(project.spec)
    jobs = stage_jobs(project.root) if where else {}  # the SLURM job of each stage's last run
    if as_json:
        print(json.dumps({"ok": True, "stages": status_rows(the_plan, where, jobs)}))
        return
    lines = status_lines(the_plan, where, jobs)
    _echo_all(lines)


def _runs_on(spec: PipelineSpec) -> dict[str, str]:
    """Where each stage that does not run locally runs: ``slurm@local (02:00:00, 16G)``."""
    from pivot.pipeline.slurm_resources import describe

    return {s.name: describe(s.slurm) for s in spec.stages if s.slurm is not None}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pivot` app."""
    app.command("run")(_interruptible(run))
    app.command("status")(_interruptible(status))
