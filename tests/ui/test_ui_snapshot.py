"""`pivot ui` starts from its stored read models: the same state as a fold of the whole log.

The property: for any log and any point at which a snapshot was stored,
loading the snapshot and folding the rest gives exactly the read models a
fold of the whole log gives (book, projections, metric series, last reads),
and only the events after the snapshot are read. End to end: a `pivot ui`
stopped with Ctrl-C, events appended by other commands while it was down,
and a restart that shows them, answering as a server that folded it all.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot.events.base import Event
from pivot.events.jobs import (
    JobLookupFailed,
    JobLookupRecovered,
    JobSeen,
    JobStateChanged,
    OutputRead,
)
from pivot.events.pipeline import (
    StageAdopted,
    StageJobState,
    StageStarted,
    StageSubmitted,
    StageSucceeded,
)
from pivot.events.store import EventStore
from pivot.events.watchers import (
    ActionFailed,
    ActionRequested,
    ActionSucceeded,
    MetricStored,
    VariablesCaptured,
    WatcherCreated,
    WatcherEdited,
    WatcherMatched,
    WatcherPaused,
    WatcherRemoved,
    WatcherResumed,
)
from pivot.jobs.book import fold
from pivot.projections.book_snapshot import book_data, book_from_data, stored_book
from pivot.ui.feed import Feed
from pivot.ui.feed_snapshot import SNAPSHOT_EVENTS, SNAPSHOT_SECONDS, snapshot_due

from testkit.pgserver import postgres_url  # noqa: F401 - pytest fixture
from testkit.ui_server import pivot, running_ui

METRIC = {"type": "store_metric", "params": {"name": "loss", "value": "$loss"}}
DEFINITION = {"name": "w", "pattern": r"loss=([0-9.]+)", "captures": ["loss"], "actions": [METRIC]}
IDS = ("w1", "w2", "w3")


def _event(kind: int, w: str, i: int) -> Event:
    at = 1_700_000_000.0 + i
    match kind:
        case 0:
            return WatcherCreated(
                watcher_id=w, name=f"n{w}", job_id="42", definition=DEFINITION, at=at
            )
        case 1:
            return WatcherMatched(watcher_id=w, match_id=f"m{i}", line=f"loss={i}",
                                  fired=i % 2 == 0, captures={"loss": str(i)},
                                  whole=f"loss={i}", groups=(str(i),), at=at)  # fmt: skip
        case 2:
            return ActionRequested(
                watcher_id=w, action_id=f"a{i}", action_type="notify_webhook", at=at
            )
        case 3:
            return ActionSucceeded(
                watcher_id=w, action_id=f"a{i - 1}", action_type="store_metric", at=at
            )
        case 4:
            return ActionFailed(
                watcher_id=w, action_id=f"a{i - 1}", action_type="run_command", error="x", at=at
            )
        case 5:
            return WatcherPaused(watcher_id=w, at=at)
        case 6:
            return WatcherResumed(watcher_id=w, at=at)
        case 7:
            return WatcherRemoved(watcher_id=w, at=at)
        case 8:
            return MetricStored(watcher_id=w, name="loss", value=i / 7, at=at)
        case 9:
            return OutputRead(
                host="local", job_id="42", path="/o", offset=i * 10, inode=7, watcher_id=w, at=at
            )
        case 10:
            return VariablesCaptured(watcher_id=w, variables={"loss": str(i)}, at=at)
        case 11:
            return WatcherEdited(
                watcher_id=w, name=f"e{i}", definition={**DEFINITION, "max_triggers": i}, at=at
            )
        case 12:
            return JobSeen(host="local", job_id="42", state="RUNNING", stdout="/o", at=at)
        case 13:
            return JobStateChanged(host="local", job_id="42", old="PENDING", new="RUNNING", at=at)
        case 14:
            return JobLookupFailed(host="local", what="squeue", error="down", at=at)
        case 15:
            return JobLookupRecovered(host="local", what="squeue", failures=2, since=at - 5, at=at)
        # The pipeline status's SLURM fields (job id and state of the run's job).
        case 16:
            return StageSubmitted(stage="train", job_id=str(40 + i % 3), resubmit_of="40", at=at)
        case 17:
            return StageJobState(stage="train", job_id=str(40 + i % 3), state="running", at=at)
        case 18:
            return StageAdopted(stage="train", job_id="41", submitted_in="w0", at=at)
        case 19:
            return StageSucceeded(stage="train", duration=1.0, job_id=str(40 + i % 3), at=at)
        case _:
            return StageStarted(stage="train", executor="slurm", at=at)


events = st.lists(st.tuples(st.integers(0, 20), st.sampled_from(IDS)), min_size=1, max_size=60)


def _models(feed: Feed) -> dict[str, Any]:
    return {"book": feed.book, "states": feed.states, "metrics": feed.metrics,
            "last_read": feed.last_read, "seq": feed.seq}  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.data())
def test_a_snapshot_and_the_rest_of_the_log_equal_a_fold_of_the_whole_log(
    spec: list[tuple[int, str]], data: st.DataObject
) -> None:
    log = [_event(k, w, i) for i, (k, w) in enumerate(spec)]
    cut = data.draw(st.integers(0, len(log)), label="snapshot after")
    created = [
        WatcherCreated(watcher_id=w, name=w, job_id="42", definition=DEFINITION) for w in IDS
    ]
    with tempfile.TemporaryDirectory() as tmp:
        snapped = EventStore.open(Path(tmp) / "snapped.db")
        whole = EventStore.open(Path(tmp) / "whole.db")
        for store in (snapped, whole):
            store.append(created)
        if log[:cut]:
            snapped.append(log[:cut])
        first = Feed(snapped)
        first.load()
        assert first.snapshot(force=True)
        if log[cut:]:
            snapped.append(log[cut:])  # while no `pivot ui` ran
        whole.append(log)

        restarted = Feed(snapped)
        restarted.load()
        folded = Feed(whole)
        folded.load()
        assert folded.loaded == {"from": 0, "events_read": len(created) + len(log)}
        assert restarted.loaded == {"from": len(created) + cut, "events_read": len(log) - cut}
        assert _models(restarted) == _models(folded)
        assert restarted.listing.body() == folded.listing.body()
        # The job watchers' host and the CLI start from the same stored book.
        assert stored_book(snapped) == fold(whole.read()) == folded.book
        snapped.close()
        whole.close()


def test_the_book_survives_its_plain_data_form() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore.open(Path(tmp) / "e.db")
        store.append([_event(0, w, 0) for w in IDS])
        store.append(
            [_event(k, w, i) for i, (k, w) in enumerate((k, IDS[k % 3]) for k in range(17))]
        )
        feed = Feed(store)
        feed.load()
        assert any(ws.pending for ws in feed.book.watchers.values())
        assert any(ws.positions for ws in feed.book.watchers.values())
        assert book_from_data(book_data(feed.book)) == feed.book
        store.close()


def test_a_snapshot_of_another_fold_is_not_trusted(tmp_path: Path) -> None:
    store = EventStore.open(tmp_path / "e.db")
    store.append([_event(0, "w1", 0), _event(1, "w1", 1)])
    feed = Feed(store)
    feed.load()
    assert feed.snapshot(force=True)
    db = sqlite3.connect(tmp_path / "e.db")
    with db:
        db.execute("UPDATE pivot_projections SET version = version + 1 WHERE name = 'watcher_book'")
    db.close()
    again = Feed(store)
    again.load()
    assert again.loaded == {"from": 0, "events_read": 2}  # the book is folded from the start
    assert again.book == feed.book
    store.close()


def test_the_read_models_are_stored_on_postgresql_too(postgres_url: str) -> None:
    store = EventStore.open(postgres_url)
    store.append([_event(0, w, 0) for w in IDS])
    store.append([_event(k, IDS[k % 3], k) for k in range(1, 17)])
    feed = Feed(store)
    feed.load()
    assert feed.snapshot(force=True)
    older = Feed(store)  # a second writer with an older position does not go back
    older.load()
    store.append([_event(1, "w1", 99)])
    again = Feed(store)
    again.load()
    assert again.loaded == {"from": feed.seq, "events_read": 1}
    assert again.snapshot(force=True)
    assert older.snapshot(force=True)  # its rows are older: left as they are
    last = Feed(store)
    last.load()
    assert last.loaded == {"from": again.seq, "events_read": 0}
    assert last.book == again.book == stored_book(store)
    store.close()


def test_when_the_read_models_are_stored() -> None:
    assert not snapshot_due(0, float("inf"), stopping=True)
    assert snapshot_due(1, 0.0, stopping=True)
    assert not snapshot_due(SNAPSHOT_EVENTS - 1, float("inf"))
    assert snapshot_due(SNAPSHOT_EVENTS, float("inf"))
    assert not snapshot_due(SNAPSHOT_EVENTS * 10, SNAPSHOT_SECONDS / 2)


def _watchers_yaml(project: Path) -> Path:
    path = project / "w.yaml"
    path.write_text(
        "name: loss\npattern: 'loss=([0-9.]+)'\ncaptures: [loss]\n"
        "actions:\n  - type: store_metric\n    params: {name: loss, value: $loss}\n"
    )
    return path


def test_pivot_ui_restarts_from_its_snapshot_and_sees_what_came_meanwhile(tmp_path: Path) -> None:
    (tmp_path / "pivot.toml").write_text("")
    store = tmp_path / "events.db"
    spec = _watchers_yaml(tmp_path)
    for job in ("101", "102"):
        pivot(tmp_path, "watchers", "add", str(spec), "--job", job, "--store", str(store))
    with running_ui(tmp_path, "--no-watchers", "--store", str(store)) as ui:
        assert ui.get("/api/status")["loaded"]["from"] == 0
        stopped_at = ui.get("/api/status")["seq"]
    # While no `pivot ui` runs: a new watcher, and one paused.
    pivot(tmp_path, "watchers", "add", str(spec), "--job", "103", "--store", str(store))
    listed = pivot(tmp_path, "watchers", "list", "--json", "--store", str(store)).stdout
    first = next(w for w in json.loads(listed) if w["job"] == "101")
    pivot(tmp_path, "watchers", "pause", first["id"], "--store", str(store))

    fresh = tmp_path / "fresh.db"  # the same log without any stored read model
    shutil.copy(store, fresh)
    db = sqlite3.connect(fresh)
    with db:
        db.execute("DELETE FROM pivot_projections")
    db.close()
    with running_ui(tmp_path, "--no-watchers", "--store", str(store)) as ui:
        status = ui.get("/api/status")
        assert status["loaded"]["from"] == stopped_at
        assert 0 < status["loaded"]["events_read"] <= status["seq"] - stopped_at
        restarted = ui.get("/api/watchers")
        stats = ui.get("/api/watchers/stats")
    with running_ui(tmp_path, "--no-watchers", "--store", str(fresh)) as ui:
        assert ui.get("/api/status")["loaded"]["from"] == 0
        assert ui.get("/api/watchers") == restarted
        assert ui.get("/api/watchers/stats")["watchers_by_state"] == stats["watchers_by_state"]
    assert {w["job_id"]: w["state"] for w in restarted["watchers"]} == {
        "101": "paused", "102": "active", "103": "active"}  # fmt: skip
