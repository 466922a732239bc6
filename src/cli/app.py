"""The ``pivot`` command: one typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="pivot",
    help="Pipelines that rebuild themselves, and watchers for long SLURM jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Pipelines that rebuild themselves, and watchers for long SLURM jobs.

    Every state transition is recorded in an event log under .pivot/; see
    `pivot events`.
    """


def main() -> None:
    """Console-script entry point."""
    app()
