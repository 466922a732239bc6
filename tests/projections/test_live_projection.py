"""Stored projections on both backends: resume, races, crashes, versions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pivot.events import EventStore
from pivot.events import watchers as wt
from pivot.events.base import Event
from pivot.projections import PROJECTIONS, UnknownProjectionError, open_projection, rebuild
from pivot.projections.base import Projection
from pivot.projections.live import LiveProjection

from testkit.pgserver import postgres_url  # noqa: F401 - pytest fixture

WORKER = Path(__file__).with_name("catchup_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _watcher_events(n: int) -> list[Event]:
    events: list[Event] = [wt.WatcherCreated(watcher_id="w1", name="loss", job_id="7")]
    for i in range(n - 1):
        events.append(wt.WatcherMatched(watcher_id="w1", match_id=str(i), line=f"loss={i}"))
    return events


class LiveProjectionConformance:
    location: str

    def open(self) -> EventStore:
        return EventStore.open(self.location)

    def test_position_and_state_survive_reopening(self) -> None:
        with self.open() as store:
            store.append(_watcher_events(10))
            stats = open_projection(store, "watcher_stats")
            assert stats.catch_up() == 10
            assert stats.view()["total_events"] == 10
        with self.open() as store:
            again = open_projection(store, "watcher_stats")
            assert again.position == 10
            assert again.catch_up() == 0
            store.append(_watcher_events(5)[1:])
            assert again.catch_up() == 4
            assert again.view()["total_events"] == 14

    def test_position_advances_past_events_of_other_types(self) -> None:
        with self.open() as store:
            from pivot.events.pipeline import StageStarted

            store.append([StageStarted(stage="a")] * 3)
            stats = open_projection(store, "watcher_stats")
            assert stats.catch_up() == 0
            assert stats.position == 3

    def test_two_catching_up_at_once_count_each_event_once(self) -> None:
        with self.open() as store:
            store.append(_watcher_events(20))
            first = open_projection(store, "watcher_stats")
            second = open_projection(store, "watcher_stats")  # loaded before first saves
            first.catch_up()
            store.append(_watcher_events(6)[1:])
            second.catch_up()  # its save conflicts: it must reload, not double count
            assert second.view()["total_events"] == 25
            fresh = open_projection(store, "watcher_stats")
            assert fresh.view()["total_events"] == 25
            first.catch_up()
            assert first.view()["total_events"] == 25

    def test_killed_catch_up_resumes_without_double_counting(self) -> None:
        with self.open() as store:
            store.append(_watcher_events(3000))
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), self.location, "watcher_history"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        checkpoints = 0
        for line in proc.stdout:
            checkpoints += line.startswith("checkpoint")
            if checkpoints == 5:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.communicate(timeout=60)
        with self.open() as store:
            history = open_projection(store, "watcher_history")
            assert 0 < history.position < 3000  # it really stopped half-way
            history.catch_up()
            assert history.state["watchers"]["w1"]["counts"]["matches"] == 2999
            assert history.state == rebuild(store, ["watcher_history"])["watcher_history"]

    def test_a_new_projection_version_rebuilds(self) -> None:
        with self.open() as store:
            store.append(_watcher_events(4))
            stats = open_projection(store, "watcher_stats")
            stats.catch_up()
            bumped = Projection(**{**vars(PROJECTIONS["watcher_stats"]), "version": 99})
            newer = LiveProjection(store, bumped)
            assert newer.position == 0
            assert newer.catch_up() == 4
            assert newer.view()["total_events"] == 4
            assert LiveProjection(store, bumped).position == 4

    def test_reset_forgets_the_stored_state(self) -> None:
        with self.open() as store:
            store.append(_watcher_events(4))
            stats = open_projection(store, "watcher_stats")
            stats.catch_up()
            stats.reset()
            assert stats.position == 0
            assert stats.catch_up() == 4


class TestSQLiteLiveProjection(LiveProjectionConformance):
    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.location = str(tmp_path / "events.db")


@pytest.mark.postgres
class TestPostgresLiveProjection(LiveProjectionConformance):
    @pytest.fixture(autouse=True)
    def _location(self, postgres_url: str) -> None:  # noqa: F811 - fixture
        self.location = postgres_url


def test_unknown_projection_is_a_clear_error(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "e.db") as store, pytest.raises(UnknownProjectionError) as err:
        open_projection(store, "nope")
    assert "known: pipeline_stats, pipeline_status, watcher_history, watcher_stats" in str(
        err.value
    )
