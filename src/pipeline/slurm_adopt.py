"""Adopting the SLURM jobs of a killed pivot, as pure functions over the log.

``kill -9`` of `pivot run` leaves its jobs running: they are the cluster's,
not pivot's processes. The next run finds, for each stage, the last
``stage.submitted`` that no ``stage.succeeded`` / ``stage.failed`` of the
same wave followed (:func:`candidates`). When that stage must run again and
its inputs (code fingerprint, dep hashes, params) are those the job was
submitted with (:func:`same_inputs`), and Slurm still has the job pending
or running (or it ended having written its outcome), the job is adopted
instead of submitting another; otherwise the stale job is cancelled and a
new one submitted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pivot.events.base import Event
from pivot.events.pipeline import StageFailed, StageSubmitted, StageSucceeded

__all__ = ["TYPES", "candidates", "run_inputs", "same_inputs"]

# The event types :func:`candidates` reads.
TYPES = (StageSubmitted.TYPE, StageSucceeded.TYPE, StageFailed.TYPE)


def candidates(events: Iterable[Event]) -> dict[str, StageSubmitted]:
    """Per stage, its last submitted job whose wave did not record how the stage ended."""
    found: dict[str, StageSubmitted] = {}
    for ev in events:
        if isinstance(ev, StageSubmitted):
            found[ev.stage] = ev
        elif isinstance(ev, StageSucceeded | StageFailed):
            last = found.get(ev.stage)
            if last is not None and last.correlation_id == ev.correlation_id:
                del found[ev.stage]
    return found


def run_inputs(
    fingerprint: str, deps: Mapping[str, str | None], params: Mapping[str, Any]
) -> dict[str, Any]:
    """What a stage run is decided on, as ``stage.submitted`` records it."""
    return {"fingerprint": fingerprint, "deps": dict(deps), "params": dict(params)}


def same_inputs(submitted: StageSubmitted, inputs: Mapping[str, Any]) -> bool:
    """Whether the job was submitted for exactly these inputs (none recorded: no)."""
    recorded = dict(submitted.inputs)
    # As the log gives them back: JSON (tuples are lists there).
    return bool(recorded) and recorded == json.loads(json.dumps(dict(inputs)))
