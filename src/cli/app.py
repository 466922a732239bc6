"""The ``pivot`` command: one typer app, one module per command group.

Each command module exposes ``register(app)``; this module only assembles
them, so a group can be read (and tested) on its own.
"""

from __future__ import annotations

import typer

from pivot.cli import events_cmd, jobs_cmd, pipeline_cmd, watch_cmd

app = typer.Typer(
    name="pivot",
    help="Pipelines that rebuild themselves, and watchers for long SLURM jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """Pipelines that rebuild themselves, and watchers for long SLURM jobs.

    Every state transition is recorded in an event log under .pivot/; see
    `pivot events`.
    """


for _module in (pipeline_cmd, events_cmd, watch_cmd, jobs_cmd):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
