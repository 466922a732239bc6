"""`pivot watchers test | trigger | run`: dry runs, manual firing, and the runtime."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from pivot.cli.store_access import StoreOption, fail, open_store
from pivot.cli.watchers_cmd import IdArg, JsonOption, emit, load_config, user_errors
from pivot.terminal import printable

__all__ = ["register"]


def test(  # noqa: PLR0917 - typer passes options by keyword
    file: Annotated[Path, typer.Argument(help="Watcher YAML to try.")],
    log: Annotated[Path, typer.Option("--log", help="A job output file to run it over.")],
    job_state: Annotated[
        str | None,
        typer.Option(
            help="Also pretend the job then ended in this state (failed, completed, ...), "
            "to see job-end actions.",
            show_default=False,
        ),
    ] = None,
    lines_per_second: Annotated[
        float,
        typer.Option(
            help="Spread the lines over time at this rate (the rate limit counts per minute); "
            "0: all at once.",
            min=0,
        ),
    ] = 0.0,
    timer_ticks: Annotated[
        int,
        typer.Option(
            "--timer-ticks",
            help="Then let timer mode run this many timer_interval_seconds and show its firings.",
            min=0,
        ),
    ] = 0,
    job: Annotated[str, typer.Option("--job", help="The job id ${JOB_ID} shows.")] = "0",
    json_: JsonOption = False,
) -> None:
    """Dry run: the watchers in FILE over the lines of a log. Runs nothing.

    Shows each match with its line number, captures, condition result and
    the actions with their parameters substituted, as a running watcher
    would decide them, and what holds a match back (max_triggers, a false
    condition, the rate limit, a pause). Warnings about what would fail at
    run time (a program off the allowlist, shell syntax, no SMTP) come first.
    """
    from pivot.cli.watchers_cmd import _read_definitions
    from pivot.jobs.advice import static_warnings
    from pivot.jobs.definition import END_STATES
    from pivot.jobs.dryrun import dry_run

    if job_state is not None and job_state.lower() not in END_STATES:
        fail(f"--job-state must be one of {', '.join(END_STATES)}")
    with user_errors():
        definitions = _read_definitions(file)
        config = load_config()
        if not log.is_file():
            fail(f"{log}: no such file")
        results = []
        for d in definitions:
            r = dry_run(
                d,
                log,
                job_id=job,
                job_state=(job_state or "").lower(),
                lines_per_second=lines_per_second,
                timer_ticks=timer_ticks,
            ).to_json()
            r["warnings"] = [w.to_json() for w in static_warnings(d, config)]
            results.append(r)
    if json_:
        emit(results)
        return
    from pivot.cli.watchers_render import dry_run_report

    for r in results:
        dry_run_report(r)


def trigger(
    watcher_id: IdArg,
    text: Annotated[
        str | None,
        typer.Option(
            "--text",
            help="A sample line: its captures are used (it must match the pattern). "
            "Without it, the watcher's last captures.",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Fire a watcher now and run its actions here (really: cancel means cancel).

    The condition and the rate limit apply as for a match; every step is
    recorded in the event log. Exit status 1 when an action failed.
    """
    from pivot.events.query import to_json
    from pivot.events.watchers import ActionFailed, ActionSucceeded, ActionSuppressed
    from pivot.jobs.manage import trigger as fire
    from pivot.terminal import echo

    with user_errors():
        config = load_config()
        with open_store(store) as opened:
            events = fire(opened, config, watcher_id, text)
    failed = any(isinstance(e, ActionFailed) for e in events)
    if json_:
        emit([to_json(0, e.TYPE, e.to_dict()) for e in events])
    else:
        for e in events:
            if isinstance(e, ActionSucceeded):
                echo(f"ok      {e.action_type}: {e.detail}")
            elif isinstance(e, ActionFailed):
                echo(f"FAILED  {e.action_type}: {e.error}")
            elif isinstance(e, ActionSuppressed):
                echo(f"skipped {e.action_type}: {e.reason}")
        if not any(
            isinstance(e, ActionSucceeded | ActionFailed | ActionSuppressed) for e in events
        ):
            print("nothing to run (the condition was false)")
    if failed:
        raise typer.Exit(1)


def run(
    tick: Annotated[
        float, typer.Option(help="Seconds between wake-ups (each host is polled at its "
                            "watchers' interval_seconds).", min=0.05)
    ] = 1.0,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON object per line for each thing shown.")
    ] = False,
    store: StoreOption = None,
) -> None:  # fmt: skip
    """Run every watcher until Ctrl-C: poll jobs, read output, act. Prints what happens.

    One `squeue` per host per cycle for all its jobs, one connection per
    SSH host. Watchers added, paused or removed meanwhile (from any shell)
    are picked up on the next cycle. `pivot watch` runs the same inside its
    display. One process at a time hosts a project's watchers: when another
    one does, this one says who and stands by, and takes over when it stops.
    """
    from pivot.events.query import to_json
    from pivot.jobs.runtime import start_watchers

    with user_errors():
        config = load_config()
        opened = open_store(store, create=True)
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    names = {
        str(rec.data.get("watcher_id")): str(rec.data.get("name", ""))
        for rec in opened.read_raw(types=["watcher.created"])
    }
    start = opened.last_seq()
    with user_errors():  # a store that cannot keep the hosting lease: one line, exit 1
        handle = start_watchers(opened, config, tick_seconds=tick, command="pivot watchers run")
    print(f"watching ({len(config.hosts)} host(s)); Ctrl-C to stop", file=sys.stderr)
    seen = start

    def show_new() -> None:
        nonlocal seen
        for rec in opened.read_raw(after=seen):
            seen = rec.seq
            if rec.type == "watcher.created":
                names[str(rec.data.get("watcher_id"))] = str(rec.data.get("name", ""))
            line = describe(rec.type, rec.data, names)
            if line and json_:
                # One JSON document per line, for what the text shows.
                row = to_json(rec.seq, rec.type, rec.data)
                wid = str(rec.data.get("watcher_id", ""))
                print(json.dumps({**row, "watcher_name": names.get(wid, "")}), flush=True)
            elif line:
                print(printable(line), flush=True)

    try:
        while not stop.wait(0.5):
            show_new()
    finally:
        handle.stop()
        show_new()  # what happened since the last look, up to the stop
        opened.close()
    # Stopped by a signal, as the shell expects: 130 for Ctrl-C, 143 for SIGTERM.
    raise typer.Exit(128 + (stopped_by[0] if stopped_by else signal.SIGINT))


def describe(type_name: str, d: dict[str, Any], names: dict[str, str]) -> str:
    """One line for `watchers run`: the watcher by name (and id), what happened."""
    wid = str(d.get("watcher_id", ""))
    who = f"{names[wid]} ({wid})" if names.get(wid) else wid
    if type_name == "watcher.matched":
        if not d.get("condition_result", True):
            error = d.get("condition_error", "")
            verdict = f"matched, condition error ({error})" if error else "matched, condition false"
        else:
            verdict = "matched"
        return f"{who} {verdict}: {str(d.get('line', ''))[:120]}"
    return {
        "action.succeeded": f"{who} {d.get('action_type')} ok: {d.get('detail', '')}",
        "action.failed": f"{who} {d.get('action_type')} FAILED: {d.get('error', '')}",
        "action.suppressed": f"{who} {d.get('action_type')} suppressed: {d.get('reason', '')}",
        "watcher.state_changed": f"{who} {d.get('old')} -> {d.get('new')} ({d.get('reason')})",
        "watcher.paused": f"{who} paused (by {d.get('by', '')})",
        "watcher.resumed": f"{who} resumed (by {d.get('by', '')})",
        "job.ended": f"job {d.get('job_id')} on {d.get('host')} ended: {d.get('state')}",
        "job.lookup_failed": f"host {d.get('host')}: lookup failed: {d.get('error')}",
        "job.lookup_recovered": f"host {d.get('host')}: {d.get('what')} works again "
        f"after {d.get('failures')} failed attempt(s)",
        "actor.crashed": f"{d.get('name')} crashed: {d.get('error')}",
        "watchers.hosting_started": _hosting_started(d),
        "watchers.hosting_stopped": f"pid {d.get('pid')} on {d.get('host')} stopped hosting "
        f"the job watchers: {d.get('reason')}",
        "watchers.standing_by": f"pid {d.get('pid')} on {d.get('host')} stands by: the job "
        f"watchers are hosted by {_holder(d)}",
    }.get(type_name, "")


def _hosting_started(d: dict[str, Any]) -> str:
    line = f"pid {d.get('pid')} on {d.get('host')} hosts the job watchers"
    if d.get("previous"):
        line += f" (took over from {d.get('previous')}: {d.get('reason')})"
    return line


def _holder(d: dict[str, Any]) -> str:
    import time

    since = time.strftime("%H:%M:%S", time.localtime(float(d.get("holder_since") or 0)))
    what = f" ({d.get('holder_command')})" if d.get("holder_command") else ""
    return f"pid {d.get('holder_pid')} on {d.get('holder_host')}{what} since {since}"


def register(app: typer.Typer) -> None:
    """Add test, trigger and run to the watchers group."""
    app.command("test")(test)
    app.command("trigger")(trigger)
    app.command("run")(run)
