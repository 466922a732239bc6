"""Command: pivot watch (the watch system: pivot.actors.watch_system).

Thin on purpose: options, the event store, signals and the exit status. The
system is in :mod:`pivot.actors` (actors) and :mod:`pivot.watch` (decisions).
"""

from __future__ import annotations

import signal
import sys
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from pivot.cli.options import PipelineOpt
from pivot.terminal import echo

if TYPE_CHECKING:
    from collections.abc import Callable

    from pivot.actors.base import ActorContext
    from pivot.events.store import EventStore


class DisplayMode(StrEnum):
    """What `pivot watch` prints."""

    tui = "tui"
    plain = "plain"
    json = "json"


def watch(
    stages: Annotated[
        list[str] | None,
        typer.Argument(help="Stages to keep up to date (default: all), with their upstream."),
    ] = None,
    *,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Stages run at once, each in a worker process (default: CPU count).",
        ),
    ] = None,
    debounce: Annotated[
        int,
        typer.Option(
            "--debounce",
            min=0,
            help="Quiet period in ms: a wave starts once no file changed for this long.",
        ),
    ] = 100,
    settle: Annotated[
        int,
        typer.Option(
            "--settle",
            min=0,
            help="A wave starts once no file changed for this many ms if every changed "
            "file is closed by its writer (a complete save); else after --debounce.",
        ),
    ] = 20,
    max_wait: Annotated[
        int,
        typer.Option(
            "--max-wait",
            min=1,
            help="A wave starts at most this many ms after the first change, even if "
            "changes never stop.",
        ),
    ] = 2000,
    display: Annotated[
        DisplayMode | None,
        typer.Option(
            "--display",
            "-d",
            help="tui: live table (default on a terminal); plain: one line per "
            "transition (default otherwise); json: one JSON event per line.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Run every selected stage in the first wave.")
    ] = False,
    standby: Annotated[
        bool,
        typer.Option(
            "--standby/--no-standby",
            help="Keep spare worker processes and a pipeline-loading interpreter started "
            "ahead of time, so a code change does not wait for them.",
        ),
    ] = True,
    warm_parent: Annotated[
        bool | None,
        typer.Option(
            "--warm-parent/--no-warm-parent",
            help="After a code change, fork fresh workers from a process that already "
            "imported the project's third-party modules (default: on, or warm_parent in "
            "pivot.toml).",
            show_default=False,
        ),
    ] = None,
    job_watchers: Annotated[
        bool,
        typer.Option(
            "--job-watchers/--no-job-watchers",
            help="Also run the project's SLURM job watchers (see `pivot watchers`), shown "
            "in the same display.",
        ),
    ] = True,
    pipeline: PipelineOpt = None,
) -> None:
    """Run what is stale, then watch code and data and re-run exactly what changes affect.

    A data change runs its consumers and everything downstream, on the same
    worker processes. A code or config change (any .py of the project,
    params.yaml, ignore files) reloads the pipeline in a fresh interpreter,
    replaces every worker process, and runs what became stale. A pipeline
    that no longer loads (syntax error, import error, cycle) is reported with
    file and line; the last valid one is kept until the file is fixed.
    .gitignore and .pivotignore are honoured; .pivot/ is never watched.

    Keys (stdin a terminal): f runs every stage, q quits; in the tui, up/down
    show a stage's output, PgUp/PgDn scroll it, l hides it. Ctrl-C quits too;
    running stages are cancelled and every worker process is stopped. Exit
    status: 0 after q, 130 after Ctrl-C, 2 for an unknown stage, 1 after an
    internal error.

    Examples: `pivot watch`, `pivot watch train -j 2`, `pivot watch --display
    json | jq .type`, `pivot watch --debounce 500`.
    """
    from pivot.actors.watch_system import WatchOptions, WatchSystem
    from pivot.cli.store_access import store_errors
    from pivot.events.location import open_project_store
    from pivot.pipeline.errors import PipelineError
    from pivot.pipeline.loader import find_pipeline
    from pivot.pipeline.local_executor import default_jobs
    from pivot.watch.job_watchers import job_watchers_starter
    from pivot.watch.project_pipeline import ProjectPipeline
    from pivot.watch.warm_workers import WarmWorkers

    try:
        pipeline_file = find_pipeline(pipeline)
    except PipelineError as exc:
        echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    warm_parent = _warm_parent_wanted(warm_parent, pipeline_file.parent)
    mode = display or (DisplayMode.tui if sys.stdout.isatty() else DisplayMode.plain)
    with store_errors():  # a damaged or unwritable .pivot/: one line, before anything starts
        store = open_project_store(pipeline_file.parent)
    jobs = jobs or default_jobs()
    # Forks the workers of each code change and the interpreter that reloads pipeline.py.
    warm = WarmWorkers(jobs, pipeline_file.parent, standby, _note) if warm_parent else None
    watched = ProjectPipeline(
        pipeline_file, standby=standby, say=_note, warm_load=warm.load_pipeline if warm else None
    )
    options = WatchOptions(
        targets=tuple(stages or ()),
        jobs=jobs,
        debounce=debounce / 1000,
        settle=settle / 1000,
        max_wait=max_wait / 1000,
        display=mode.value,
        force=force,
        standby=standby,
        workers=warm,
        keys=True,  # f and q in every display whose stdin is a terminal
    )
    starter = job_watchers_starter(store, watched.root, _warn) if job_watchers else None
    if starter is not None:
        options.extra_starts.append(_guarded(starter))
    system = WatchSystem(watched, options, store)
    _take_over(watched.root, store)

    def on_term(signum: int, frame: FrameType | None) -> None:
        del frame
        system.shutdown.request(code=128 + signum)

    # SIGTERM (a scheduler, `timeout`) and SIGHUP (the terminal closed) shut
    # down like `q`: workers lead their own sessions and would not get them.
    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        system.start()
        code = system.wait()
    finally:
        system.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        watched.close()
        store.close()
    if system.shutdown.error:
        echo(f"error: {system.shutdown.error}", err=True)
    if code:
        raise typer.Exit(code)


def _warm_parent_wanted(flag: bool | None, root: Path) -> bool:
    """``--warm-parent``/``--no-warm-parent``, else ``warm_parent`` of pivot.toml (exit 2
    with one line for a bad value)."""
    from pivot.watch.warm_workers import configured

    if flag is not None:
        return flag
    try:
        return configured(root)
    except ValueError as exc:
        echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _note(message: str) -> None:
    echo(message, err=True)


def _warn(message: str) -> None:
    echo(f"warning: {message}", err=True)


def _guarded(
    starter: Callable[[], Callable[[], None]],
) -> Callable[[ActorContext], Callable[[], None]]:
    """Start the job watchers; a failure is a warning, never the end of watch mode."""

    def start(ctx: ActorContext) -> Callable[[], None]:
        del ctx  # the watchers append to the store the actors share
        try:
            return starter()
        except Exception as exc:
            _warn(f"job watchers not started: {type(exc).__name__}: {exc}")
            return lambda: None

    return start


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pivot` app."""
    app.command("watch")(watch)


def _take_over(root: Path, store: EventStore) -> None:
    """Record what a killed pivot left behind, if the run lock is free now.

    A busy lock means a run is going on in another process: it records what
    it found when it took the lock, and our own waves check again whenever
    they take the lock from a process that died holding it.
    """
    from pivot.pipeline.interrupted import Takeover, describe
    from pivot.pipeline.lock import LockBusy, run_lock

    takeover = Takeover("pivot watch")
    try:
        with run_lock(root, on_leftover=takeover.on_leftover, blocking=False) as previous:
            found = takeover.events(store, previous)
            if found:
                store.append(found)
    except LockBusy:
        return
    for line in describe(found):
        print(line, file=sys.stderr)
