"""Watchers embedded in an sbatch script between ``#WATCHER_BEGIN`` and ``#WATCHER_END``.

Each line of a block is the watcher YAML behind ``# `` (or ``#``)::

    #!/bin/bash
    #SBATCH --mem=4G
    #WATCHER_BEGIN
    # name: oom
    # pattern: "CUDA out of memory"
    # actions:
    #   - type: cancel_job
    #WATCHER_END
    python train.py

Errors name the script and the line in it.
"""

from __future__ import annotations

from pivot.jobs.definition import DefinitionError, WatcherDefinition, parse_watchers

__all__ = ["watcher_blocks"]


def watcher_blocks(script: str, source: str = "<script>") -> list[WatcherDefinition]:
    """Every watcher defined in the script's blocks, in order."""
    found: list[WatcherDefinition] = []
    block: list[str] | None = None
    start = 0
    for number, line in enumerate(script.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#WATCHER_BEGIN"):
            if block is not None:
                raise DefinitionError("#WATCHER_BEGIN inside another block", source, number)
            block, start = [], number
        elif stripped.startswith("#WATCHER_END"):
            if block is None:
                raise DefinitionError("#WATCHER_END without #WATCHER_BEGIN", source, number)
            found.extend(parse_watchers("\n".join(block), source, line_offset=start))
            block = None
        elif block is not None:
            if not stripped.startswith("#"):
                raise DefinitionError(
                    "inside a watcher block every line starts with '#'", source, number
                )
            text = line.lstrip()[1:]
            block.append(text[1:] if text.startswith(" ") else text)
    if block is not None:
        raise DefinitionError("#WATCHER_BEGIN without #WATCHER_END", source, start)
    return found
