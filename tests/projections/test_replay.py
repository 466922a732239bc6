"""Replay as of a seq or a moment, and --verify against the stored projections."""

from __future__ import annotations

from pathlib import Path

from pivot.events import EventStore
from pivot.events.pipeline import StageFailed, StageStarted, StageSucceeded
from pivot.events.watchers import ActionRequested, ActionSucceeded, WatcherCreated
from pivot.projections import PROJECTIONS, open_projection
from pivot.projections.replay import differences, replay_until, verify


def _store(tmp_path: Path) -> EventStore:
    store = EventStore.open(tmp_path / "events.db")
    store.append([
        StageStarted(stage="train", at=1000.0),
        StageSucceeded(stage="train", duration=2.0, at=1002.0),
        WatcherCreated(watcher_id="w1", name="loss", job_id="7", at=1003.0),
    ])  # fmt: skip
    store.append([
        StageStarted(stage="train", at=5000.0),
        StageFailed(stage="train", error="boom", at=5001.0),
        ActionRequested(watcher_id="w1", action_id="a", action_type="cancel", at=5002.0),
        ActionSucceeded(watcher_id="w1", action_id="a", action_type="cancel", at=5003.0),
    ])  # fmt: skip
    return store


def test_replay_until_a_seq_or_a_time_shows_the_past(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        by_seq = replay_until(store, ["pipeline_status"], until_seq=2)
        assert by_seq.seq == 2 and by_seq.at == 1002.0
        assert by_seq.views["pipeline_status"]["stages"]["train"]["state"] == "succeeded"
        by_time = replay_until(store, until_time=4000.0)
        assert by_time.seq == 3
        assert by_time.views["pipeline_status"]["stages"]["train"]["state"] == "succeeded"
        stats = by_time.views["watcher_stats"]
        assert stats["total_events"] == 1 and stats["events_by_action"] == {}
        assert stats["events_last_hour"] == 1  # the hour before 4000 s, not before now
        end = replay_until(store)
        assert end.seq == 7
        assert end.views["pipeline_status"]["stages"]["train"]["last_error"] == "boom"
        assert end.views["watcher_stats"]["events_by_action"]["cancel"]["success"] == 1


def test_verify_passes_on_caught_up_projections_and_finds_tampering(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        assert {v.status for v in verify(store)} == {"not stored"}
        for name in PROJECTIONS:
            open_projection(store, name).catch_up(until=5)
        verdicts = verify(store)
        assert [(v.status, v.position) for v in verdicts] == [("ok", 5)] * len(PROJECTIONS)
        assert all(v.ok for v in verdicts)
        with store.backend.transaction() as cur:
            cur.execute(
                "UPDATE pivot_projections SET state = replace(state, '\"failed\"', '\"succeeded\"')"
                " WHERE name = 'pipeline_status'"
            )
        [bad] = [v for v in verify(store) if not v.ok]
        assert bad.name == "pipeline_status"
        assert bad.differences == [
            '$.stages.train.state: stored "succeeded", the log gives "failed"'
        ]


def test_verify_rebuilds_each_projection_up_to_its_own_position(tmp_path: Path) -> None:
    # One read of the log serves all projections; each must stop at its own
    # position (pipeline_status at 2 has not seen the failure at seq 5).
    positions = {"pipeline_status": 2, "watcher_history": 4, "watcher_stats": 7}
    with _store(tmp_path) as store:
        for name, position in positions.items():
            open_projection(store, name).catch_up(until=position)
        verdicts = verify(store, ["watcher_stats", "pipeline_status", "watcher_history"])
        assert [(v.name, v.status, v.position) for v in verdicts] == [
            ("watcher_stats", "ok", 7),
            ("pipeline_status", "ok", 2),
            ("watcher_history", "ok", 4),
        ]
        assert [v.status for v in verify(store, ["pipeline_status"])] == ["ok"]


def test_differences_name_paths() -> None:
    assert differences({"a": [1, 2], "b": 1}, {"a": [1, 3], "c": 1}) == [
        "$.a[1]: stored 2, the log gives 3",
        "$.b: stored but not in the rebuild",
        "$.c: missing from the stored state",
    ]
