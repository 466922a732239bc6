"""`pivot ui`'s watcher list in-process: the server's own time, without HTTP or the client.

Builds a store of N watchers, each with a match and an action, folds it
into a :class:`pivot.ui.feed.Feed`, and times ``Listing.body()`` (what
``GET /api/watchers`` answers): the first call (every watcher encoded), a
repeat (nothing changed: the kept body), and a call after one watcher
changed (one re-encoded, the body joined again). Peer, same run: building
and encoding every watcher's object on each request, as the first version
of the API did.

    uv run python bench/ui_listing.py [--watchers 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from pivot.events.store import EventStore
from pivot.events.watchers import ActionRequested, ActionSucceeded, WatcherCreated, WatcherMatched
from pivot.ui.feed import Feed
from pivot.ui.shapes import watcher_json

DEFINITION = {"name": "w", "pattern": r"loss=([0-9.]+)", "captures": ["loss"],
              "actions": [{"type": "store_metric",
                           "params": {"name": "loss", "value": "$loss"}}]}  # fmt: skip


def timed(fn: object, repeat: int = 5) -> float:
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best.append(time.perf_counter() - t0)
    return sorted(best)[len(best) // 2] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--watchers", type=int, default=10_000)
    n = ap.parse_args().watchers
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore.open(Path(tmp) / "events.db")
        ids = [f"w{i:05d}" for i in range(n)]
        created = [WatcherCreated(watcher_id=w, name=f"loss {i}", job_id=str(1000 + i % 500),
                                  definition=DEFINITION) for i, w in enumerate(ids)]  # fmt: skip
        store.append(created)
        events: list[object] = []
        for i, w in enumerate(ids):
            events += [
                WatcherMatched(watcher_id=w, match_id=f"m{i}", line=f"epoch {i} loss=0.5",
                               captures={"loss": "0.5"}, fired=True),
                ActionRequested(watcher_id=w, action_id=f"a{i}", action_type="store_metric"),
                ActionSucceeded(watcher_id=w, action_id=f"a{i}", action_type="store_metric",
                                detail="loss=0.5"),
            ]  # fmt: skip
        store.append(events)  # type: ignore[arg-type]
        feed = Feed(store)
        t0 = time.perf_counter()
        feed.load()
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {n} watchers")
        print(f"fold and first encoding: {(time.perf_counter() - t0) * 1000:.0f} ms")
        size = len(feed.listing.body())
        print(f"body: {size / 1e6:.1f} MB")
        print(f"repeat, nothing changed: {timed(feed.listing.body):.3f} ms")

        def one_changed() -> None:
            feed.touched.add(ids[0])
            feed.listing.body()

        print(f"after one watcher changed: {timed(one_changed):.1f} ms")

        def every_time() -> None:
            history = feed.states["watcher_recent"]["watchers"]
            docs = [watcher_json(ws, history.get(wid), feed.last_read.get(wid))
                    for wid, ws in feed.book.watchers.items()]  # fmt: skip
            json.dumps({"watchers": docs, "count": len(docs)}).encode()

        print(f"peer, encode every watcher per request: {timed(every_time, 3):.0f} ms")
        store.close()


if __name__ == "__main__":
    main()
