"""Stage records rebuilt from the event log when ``.pivot/state.db`` is missing.

``state.db`` is a cache of the log: each ``StageSucceeded`` carries what the
stage's record holds (fingerprint, code, dep, param and output hashes), and a
later ``StageFailed`` withdraws the vouching. So a state file that was lost,
or moved aside because it was damaged, costs no re-run: :func:`fold` replays
those two event types into records (pure), and :func:`read_records` reads
them from the project's log. Records saved after the last event reached the
log (a crash in between) are not in it: those stages run once more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from pivot.events.base import Event
from pivot.events.pipeline import StageFailed, StageSucceeded
from pivot.pipeline.state import StageRecord

__all__ = ["fold", "read_records"]


def fold(events: Iterable[Event]) -> dict[str, StageRecord]:
    """Each stage's record after ``events`` (in log order), as ``state.db`` would hold it."""
    records: dict[str, StageRecord] = {}
    for e in events:
        if isinstance(e, StageSucceeded):
            records[e.stage] = StageRecord(
                fingerprint=e.fingerprint,
                code=dict(e.code),
                deps=dict(e.deps),
                params=dict(e.params),
                outs=dict(e.outs),
                at=e.at,
                duration=e.duration,
            )
        elif isinstance(e, StageFailed) and e.stage in records:
            records[e.stage] = replace(records[e.stage], failed=True)
    return records


def read_records(log: Path) -> dict[str, StageRecord]:
    """:func:`fold` over the SQLite log at ``log`` ({} when there is none)."""
    if not log.is_file():
        return {}
    from pivot.events.store import EventStore

    with EventStore.open(log) as store:
        return fold(r.event for r in store.read(types=(StageSucceeded.TYPE, StageFailed.TYPE)))
