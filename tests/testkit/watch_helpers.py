"""Helpers for the watch tests: an event collector to wait on, never sleep on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from pivot.actors.base import ActorContext, Registry, Shutdown
from pivot.events.base import Event
from pivot.events.store import EventStore
from pivot.pipeline.project import Project
from pivot.pipeline.spec import PipelineSpec, StageSpec


class Collector:
    """Receives messages or events; waits for a condition with a timeout."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[list[Any]], bool], timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.items):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {self.items!r}")
                self.cond.wait(left)
            return list(self.items)

    def of(self, cls: type) -> list[Any]:
        with self.cond:
            return [i for i in self.items if isinstance(i, cls)]


WatchContext = tuple[ActorContext, "Collector"]


@pytest.fixture
def watch_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchContext]:
    """An actor context over a real event store (outside the test's project folder, so no
    file watcher sees it), and a collector of every event the store hands on. Stops the
    actors before closing the store: their last events are appended too."""
    store = EventStore.open(tmp_path_factory.mktemp("log") / "events.db")
    events = Collector()
    store.subscribe(lambda rec: events(rec.event))
    try:
        yield ActorContext(store, Registry(), Shutdown()), events
    finally:
        pykka.ActorRegistry.stop_all()
        store.close()


class Probe:
    """A stand-in actor: a pykka actor that records what it receives."""

    @staticmethod
    def start(collector: Collector) -> Any:
        class _Probe(pykka.ThreadingActor):
            def on_receive(self, message: Any) -> Any:
                collector(message)

        return _Probe.start()


def is_event(e: Any, cls: type[Event]) -> bool:
    return isinstance(e, cls)


def tiny_project(root: Path, stages: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> Project:
    """A real :class:`pivot.pipeline.project.Project` at ``root`` (its ``.pivot/state.db``
    created) over stages declared here, not loaded from a pipeline.py: ``name -> (deps,
    outs)``, relative paths. The Coordinator plans on it and reads its records, as on a
    loaded one; what its stages would run is up to the test. Close it when done."""
    specs = tuple(
        StageSpec(
            name=name,
            module="pipeline",
            file="pipeline.py",
            qualname=name,
            line=1,
            dep_args={f"dep{i}": d for i, d in enumerate(deps)},
            out_args={f"out{i}": o for i, o in enumerate(outs)},
            params={},
            fingerprint=name,
        )
        for name, (deps, outs) in stages.items()
    )
    return Project.from_spec(PipelineSpec(str(root), "pipeline.py", specs))
