"""The event base: encode/decode round trip and upcasting of old versions."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from pivot.events.base import Event, EventDecodeError, decode, encode, event, upcaster


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class _Renamed(Event):
    TYPE = "test.renamed"
    VERSION = 2
    new_name: str
    paths: tuple[str, ...] = ()


@upcaster("test.renamed", 1)
def _v1_to_v2(data: dict[str, object]) -> dict[str, object]:
    data = dict(data)
    data["new_name"] = data.pop("old_name")
    return data


def test_round_trip_keeps_every_field() -> None:
    ev = _Renamed(new_name="x", paths=("a", "b"), actor="tester", correlation_id="c1")
    type_name, version, data = encode(ev)
    assert decode(type_name, version, data) == ev


def test_old_version_is_upcast() -> None:
    ev = decode("test.renamed", 1, {"old_name": "legacy", "at": 1.0})
    assert ev == _Renamed(new_name="legacy", at=1.0)


def test_unknown_type_and_newer_version_are_clear_errors() -> None:
    with pytest.raises(EventDecodeError, match="unknown event type"):
        decode("nope.nothing", 1, {})
    with pytest.raises(EventDecodeError, match="newer pivot"):
        decode("test.renamed", 3, {"new_name": "x"})


LAZY_PROBE = """
import sys
from pivot.events.store import EventStore
domains = ("pivot.events.pipeline", "pivot.events.watchers", "pivot.events.jobs",
           "pivot.events.actors")
before = [d for d in domains if d in sys.modules]
with EventStore.open(sys.argv[1]) as store:
    types = [rec.event.TYPE for rec in store.read()]
print(before, types)
"""


def test_a_fresh_process_decodes_every_domain_without_importing_it(tmp_path: Path) -> None:
    # The domain modules load on first use (start-up time); reading a log that
    # holds events of all four must still decode each into its class.
    from pivot.events import EventStore
    from pivot.events.actors import ActorStarted
    from pivot.events.jobs import JobSeen
    from pivot.events.pipeline import StageStarted
    from pivot.events.watchers import WatcherCreated

    db = tmp_path / "events.db"
    with EventStore.open(db) as store:
        store.append(
            [
                StageStarted(stage="a"),
                WatcherCreated(watcher_id="w", name="n", job_id="1"),
                JobSeen(host="local", job_id="1", state="RUNNING"),
                ActorStarted(name="display"),
            ]
        )
    proc = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE, str(db)], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == (
        "[] ['stage.started', 'watcher.created', 'job.seen', 'actor.started']"
    )


def test_event_types_is_the_whole_catalogue() -> None:
    from pivot.events.base import DOMAINS, event_types

    modules = {cls.__module__ for cls in event_types().values()}
    assert set(DOMAINS) <= modules
