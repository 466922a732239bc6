"""Rebuilding a projection from the whole log == keeping it incrementally.

Checked twice: as pure folds (chunks with a JSON round trip of the state
between them, as the store does), and against a real SQLite store where
events are appended in random chunks and the stored projection catches up
after each.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot.events import EventStore
from pivot.events.base import Event
from pivot.events.store import Recorded
from pivot.projections import PROJECTIONS, open_projection, rebuild

from testkit.eventgen import SEQUENCES


def _normal(state: Any) -> Any:
    return json.loads(json.dumps(state))


def _chunks(events: list[Event], cuts: list[int]) -> list[list[Event]]:
    bounds = sorted({c % (len(events) + 1) for c in cuts} | {0, len(events)})
    return [events[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(events=SEQUENCES, cuts=st.lists(st.integers(0, 100), max_size=6))
def test_pure_fold_in_chunks_with_round_trips_equals_one_fold(
    events: list[Event], cuts: list[int]
) -> None:
    records = [Recorded(i + 1, e) for i, e in enumerate(events)]
    for projection in PROJECTIONS.values():
        whole = _normal(projection.fold(records))
        state = None
        done = 0
        for chunk in _chunks(events, cuts):
            part = records[done : done + len(chunk)]
            done += len(chunk)
            state = _normal(projection.fold(part, state))
        assert (state if state is not None else _normal(projection.initial())) == whole
        # A view never fails on a reachable state.
        projection.view(whole, 1.7e9 + 3 * 3600)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=SEQUENCES, cuts=st.lists(st.integers(0, 100), max_size=4))
def test_stored_projection_caught_up_in_chunks_equals_rebuild(
    events: list[Event], cuts: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore.open(Path(tmp) / "events.db")
        try:
            live = {name: open_projection(store, name) for name in PROJECTIONS}
            for chunk in _chunks(events, cuts):
                store.append(chunk)
                for p in live.values():
                    p.catch_up()
                # A fresh process opening the projection sees the same state.
                live = {name: open_projection(store, name) for name in PROJECTIONS}
            rebuilt = rebuild(store)
            for name, p in live.items():
                assert p.position == store.last_seq()
                assert _normal(p.state) == _normal(rebuilt[name])
        finally:
            store.close()
