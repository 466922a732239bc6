"""Commands: `pivot watchers ...` (see watchers_cmd) and `pivot jobs submit | list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pivot.cli import watchers_reuse, watchers_run
from pivot.cli.store_access import StoreOption, open_store
from pivot.cli.watchers_cmd import JsonOption, emit, load_config, user_errors, watchers_app
from pivot.terminal import echo, plain

jobs_app = typer.Typer(
    help="SLURM jobs: submit a script with its embedded watchers, list known jobs.\n\n"
    "Examples: `pivot jobs submit train.sbatch` (on this machine's Slurm), "
    "`pivot jobs submit train.sbatch --host cluster` (a host of pivot.toml), "
    "`pivot jobs list --json`.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

HostOption = Annotated[
    str, typer.Option(help="Host from [hosts.NAME] in pivot.toml; `local` runs Slurm here.")
]


@jobs_app.command("submit")
def submit(
    script: Annotated[Path, typer.Argument(help="An sbatch script.")],
    host: HostOption = "local",
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """sbatch SCRIPT and attach the watchers embedded in it.

    Watchers go between `#WATCHER_BEGIN` and `#WATCHER_END`, as the watcher
    YAML behind `# ` (see docs/watchers.md). They are validated before
    anything is submitted. The script is sent on stdin, so it need not
    exist on a remote host; locally the job runs in the script's directory.
    """
    from pivot.cli.watchers_reuse import warn
    from pivot.jobs.advice import describe, static_warnings
    from pivot.jobs.embedded import watcher_blocks
    from pivot.jobs.manage import submit_job

    with user_errors():
        text = script.read_text(encoding="utf-8")
        blocks = watcher_blocks(text, str(script))  # fail before submitting anything
        config = load_config()
        found = [(d.name, w) for d in blocks for w in static_warnings(d, config)]
        hc = config.host(host)
        with open_store(store, create=True) as opened:
            workdir = str(script.resolve().parent) if hc.is_local else ""
            done = submit_job(opened, config, str(script), text, host, workdir=workdir)
    if json_:
        emit({"job_id": done.job_id, "host": done.host, "watchers": done.watcher_ids,
              "warnings": [{"watcher": n, **w.to_json()} for n, w in found]})  # fmt: skip
        return
    for name, w in found:
        warn(describe([w], watcher=name))
    print(done.job_id)
    for wid in done.watcher_ids:
        print(f"  watcher {wid}")


@jobs_app.command("list")
def list_(
    host: Annotated[
        str | None, typer.Option(help="Only jobs on this host.", show_default=False)
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Jobs pivot knows (submitted or watched), with their state from Slurm now.

    One `squeue` per host. A host that cannot be reached shows its jobs'
    last known state and a warning; the exit status is then 1.
    """
    from pivot.jobs.joblist import job_rows

    with user_errors():
        config = load_config()
        if host is not None:
            config.host(host)
        with open_store(store) as opened:
            rows, errors = job_rows(opened, config, host)
    if json_:
        emit({"jobs": rows, "errors": errors})
    elif not rows:
        print("no jobs yet (submit one with `pivot jobs submit SCRIPT`)")
    else:
        from rich.table import Table

        from pivot.terminal import console as make_console

        table = Table(box=None, header_style="bold")
        for col in ("host", "job", "name", "state", "watchers", "resubmit of"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                *(plain(r[k]) for k in ("host", "job_id", "name", "state")),
                str(r["watchers"]),
                plain(r["resubmit_of"]),
            )
        make_console().print(table)
    for h, err in errors.items():
        echo(f"warning: {h}: {err}", err=True)  # the host's own error text
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `pivot watchers ...` and `pivot jobs ...`."""
    watchers_run.register(watchers_app)
    watchers_reuse.register(watchers_app)
    app.add_typer(watchers_app, name="watchers")
    app.add_typer(jobs_app, name="jobs")
