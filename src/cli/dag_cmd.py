"""Command: pivot dag, the stage graph drawn (text, mermaid, dot, json).

Options, errors and where each stage runs are as in :mod:`pivot.cli.pipeline_cmd`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from pivot.cli.options import PipelineOpt
from pivot.cli.pipeline_cmd import _fail, _interruptible, _runs_on
from pivot.terminal import echo


class DagFormat(StrEnum):
    """Output formats of `pivot dag`."""

    text = "text"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


def dag(
    stages: Annotated[
        list[str] | None,
        typer.Argument(
            help="Draw only these stages and what they need (default: all).", show_default=False
        ),
    ] = None,
    *,
    fmt: Annotated[
        DagFormat, typer.Option("--format", "-F", help="text, mermaid, dot or json.")
    ] = DagFormat.text,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    pipeline: PipelineOpt = None,
) -> None:
    """Draw the stage graph: which stage feeds which, through which paths.

    Given stage names, only those stages and everything upstream of them
    (what `pivot run STAGE` would bring up to date). `pivot dag --format
    mermaid` pastes into Markdown; `--format dot | dot -Tsvg` draws it with
    Graphviz. Exit status: 0, 2 the pipeline is invalid or a stage unknown.

    Examples:

    \b
      pivot dag
      pivot dag report
      pivot dag train -F mermaid
    """
    from pivot.pipeline.dag import render, to_plain
    from pivot.pipeline.errors import PipelineError
    from pivot.pipeline.loader import load_with_graph
    from pivot.pipeline.plan import select

    if as_json:
        fmt = DagFormat.json
    try:
        spec, graph = load_with_graph(pipeline)
        if stages:
            graph = graph.restricted(select(spec, graph, stages))
    except PipelineError as exc:
        raise _fail(exc, fmt is DagFormat.json) from None
    where = _runs_on(spec)
    if fmt is DagFormat.json:
        plain = to_plain(graph)
        plain["runs_on"] = {n: where.get(n, "local") for n in graph.order}
        print(json.dumps(plain))
    else:
        echo(render(graph, fmt.value, where))


def register(app: typer.Typer) -> None:
    """Add this module's command to the `pivot` app."""
    app.command("dag")(_interruptible(dag))
