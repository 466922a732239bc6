"""`pivot why STAGE`: why a stage last ran or was skipped, from the log."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from pivot.cli.store_access import StoreOption, fail, open_store, store_errors

if TYPE_CHECKING:
    from pivot.events.store import EventStore
    from pivot.events.why import Explanation


def why(
    stage: Annotated[str, typer.Argument(help="The stage to explain.", show_default=False)],
    run: Annotated[
        int,
        typer.Option(
            "--run",
            "-r",
            min=1,
            help="Which run, counting back from the last: 1 the last real run, 2 the one "
            "before, ...",
        ),
    ] = 1,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    store: StoreOption = None,
) -> None:
    """Why STAGE ran: its reasons and the changes behind them.

    Explains the stage's last real run (one in which it started), even when
    later runs only skipped it as up to date: those are summarised as "since
    then". --run 2 explains the run before, and so on. A stage that never
    ran has its last skip explained. Follows correlation ids backwards
    through the log: the stage's event -> its wave -> the detected changes
    (paths, time) that started the wave, and shows which changed paths are
    deps of the stage (or of an upstream stage that had to run first).
    Exit status: 0, 1 the log has no such run or no store, 2 an unknown
    stage.

    Examples:

    \b
      pivot why train
      pivot why train --run 2
      pivot why train --json | jq .cause.paths
    """
    from pivot.events.why import explain_from_store

    with store_errors(), open_store(store) as opened:
        answer = explain_from_store(stage, opened, run)
        if not answer.outcome:
            _no_events(answer, opened)
    if json_:
        sys.stdout.write(json.dumps(answer.as_dict()) + "\n")
        return
    _print(answer)


def _no_events(answer: Explanation, store: EventStore) -> NoReturn:
    """No such run in the log: fewer runs, not run yet (the pipeline has it), or unknown."""
    from pivot.cli.known_names import logged_names, pipeline_stages
    from pivot.names import USAGE_EXIT, unknown_name

    stage = answer.stage
    if answer.runs_seen:
        runs = f"{answer.runs_seen} run" + ("s" if answer.runs_seen > 1 else "")
        fail(f"stage {stage!r} has only {runs} in the event log (asked for --run {answer.run})")
    declared = pipeline_stages()
    seen = logged_names(store, "stage")
    if answer.run > 1 and (stage in declared or stage in seen):
        fail(f"stage {stage!r} has not run yet (asked for --run {answer.run})")
    if stage in declared:
        fail(f"stage {stage!r} has not run yet: the event log has no event about it")
    if stage in seen:  # named by a wave, but it never got to run
        fail(f"stage {stage!r} has no event of its own in the log yet")
    fail(unknown_name("stage", stage, declared + sorted(seen.difference(declared))), USAGE_EXIT)


def _print(a: Explanation) -> None:
    from pivot.cli.event_render import event_style, format_time
    from pivot.terminal import console as make_console

    # Outside text (names, errors, paths) is shown literally: _safe escapes it.
    console = make_console(highlight=False)
    style = event_style(f"stage.{a.outcome}") or "bold"
    line = f"[bold]{_safe(a.stage)}[/] [{style}]{a.outcome}[/] at {format_time(a.at)} (seq {a.seq})"
    if a.run > 1:
        line += f", run {a.run} counting back from the last"
    if a.detail:
        line += f": {_safe(a.detail)}"
    console.print(line)
    for job in a.jobs:
        console.print(f"  {_safe(_job_line(job))}")
    if a.later:
        console.print(f"  since then: {_safe(_since(a.later))}")
    if a.wave:
        console.print(
            f"  in wave {a.wave['wave_id'][:12]} (trigger: {_safe(a.wave['trigger'])}, "
            f"started {format_time(a.wave['at'])}, seq {a.wave['seq']})"
        )
    if a.reasons:
        console.print("  queued because:")
        _print_reasons(console, a.reasons, a.upstream, depth=2, seen={a.stage})
    elif a.outcome in ("succeeded", "failed", "running"):
        console.print("  [dim](no queued reasons recorded for this run)[/]")
    cause = a.cause
    if cause:
        more = f" of {cause['count']}" if cause["count"] > len(cause["paths"]) else ""
        console.print(
            f"  caused by {cause['kind']} changes detected at {format_time(cause['at'])} "
            f"(seq {cause['seq']}, batch {cause['batch_id'][:12]}): "
            f"{len(cause['paths'])}{more} paths"
            + (" [yellow](overflow: everything rebuilt)[/]" if cause["overflow"] else "")
        )
        for path in cause["paths"]:
            mark = "  [green]<- dep[/]" if path in cause["via_deps"] else ""
            console.print(f"    {_safe(path)}{mark}")
    elif a.wave:
        console.print(f"  the wave was started by: {_safe(a.wave['trigger'])} (no change batch)")
    chain = " -> ".join(f"{link['type']} #{link['seq']}" for link in a.chain)
    console.print(f"  [dim]chain: {chain}[/]")


def _job_line(job: dict[str, Any]) -> str:
    """``ran as SLURM job 12 on local (Slurm said: failed, exit code 3:0)``."""
    where = f"SLURM job {job['job_id']} on {job['host']}"
    if job["how"] == "adopted":
        wave = job["submitted_in"][:12] or "?"
        text = f"adopted {where}, submitted in wave {wave} by a pivot that was killed"
    elif job["how"] == "resubmitted":
        text = f"resubmitted by a watcher as {where}, for job {job['resubmit_of']}"
    else:
        text = f"ran as {where}"
    if job["state"]:
        code = f", exit code {job['exit_code']}" if job["exit_code"] else ""
        text += f" (Slurm said: {job['state']}{code})"
    return text


def _since(later: dict[str, Any]) -> str:
    """``2 skips; the latest: skipped at 14:05:09.120 (seq 41): up to date``."""
    from pivot.cli.event_render import format_time

    counts = [
        f"{n} {word}{'s' if n > 1 else ''}"
        for n, word in ((later["runs"], "later run"), (later["skips"], "skip"))
        if n
    ]
    latest = later["latest"]
    text = f"{latest['outcome']} at {format_time(latest['at'])} (seq {latest['seq']})"
    if latest["detail"]:
        text += f": {latest['detail']}"
    return (" and ".join(counts) + "; the latest: " if counts else "") + text


def _safe(text: str) -> str:
    """Outside text for a markup string: no markup, no control characters."""
    from pivot.terminal import escaped

    return escaped(text)


def register(app: typer.Typer) -> None:
    """Add `pivot why`."""
    app.command("why")(why)


def _print_reasons(
    console: Any, reasons: list[str], upstream: dict[str, list[str]], depth: int, seen: set[str]
) -> None:
    """Each reason; ``upstream will run: X`` followed down to X's own reasons."""
    for reason in reasons:
        console.print(f"{'  ' * depth}{_safe(reason)}")
        name = reason.removeprefix("upstream will run: ")
        if name != reason and name in upstream and name not in seen:
            console.print(f"{'  ' * (depth + 1)}[dim]{_safe(name)} ran because:[/]")
            _print_reasons(console, upstream[name], upstream, depth + 2, seen | {name})
