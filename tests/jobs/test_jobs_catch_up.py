"""The tailer folds every event other processes append, however the appends fall.

A host learns of new watchers (``pivot jobs submit``, ``pivot watchers
add``: another process) only by reading the log at each cycle. An event
committed by another process *while* the tailer reads must be folded at the
next look: the tailer's position must never move past an event it did not
read. On both backends, with a second store on the same database standing
for the other process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from pivot.events.store import EventStore, Recorded
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.definition import parse_watchers
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.manage import add_watchers
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import make_transports

from testkit import pgserver
from testkit.jobs_servers import io  # noqa: F401 - pytest fixture
from testkit.require import require

WATCHER = """\
name: steps
pattern: "^step ([0-9]+)$"
actions:
  - type: log_event
    params: {message: "$1"}
"""


class AppendAfterRead:
    """The tailer's store; once armed, another process appends just after a read ends."""

    def __init__(self, store: EventStore, other: EventStore) -> None:
        self._store = store
        self._other = other
        self.armed = False
        self.added: list[str] = []

    def read(self, *args: Any, **kwargs: Any) -> Iterator[Recorded]:
        yield from self._store.read(*args, **kwargs)
        if self.armed:  # the read's last query is done: the other process commits now
            self.armed = False
            self.added += add_watchers(self._other, parse_watchers(WATCHER), "7", "local")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        require(pgserver.available(), "PostgreSQL server (Debian package postgresql)")
        return pgserver.fresh_database()
    return str(tmp_path / "events.db")


def test_a_watcher_added_while_the_tailer_reads_is_folded_at_the_next_look(
    location: str, io: IoLoop
) -> None:
    with EventStore.open(location) as mine, EventStore.open(location) as other:
        store = AppendAfterRead(mine, other)
        config = Config(hosts={"local": HostConfig("local")})
        tailer = Tailer(cast(EventStore, store), config, make_transports(config), io)
        tailer.start()
        assert tailer.book.watchers == {}
        store.armed = True
        tailer.catch_up()  # the watcher is committed after this look's read
        assert store.added, "the other process appended nothing"
        tailer.catch_up()
        assert set(tailer.book.watchers) == set(store.added)
        assert tailer.book.seq == other.last_seq()
