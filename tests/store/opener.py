"""A separate process that opens a (fresh) store as soon as a start file appears.

Usage: python opener.py LOCATION GO_FILE. Waits for GO_FILE (so several
openers start their first open together), opens the store, creates the
projections table, appends one event and prints ``ok <seq>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pivot.events import EventStore
from pivot.events.pipeline import StageStarted
from pivot.projections.live import ensure_table


def main() -> None:
    location, go = sys.argv[1], Path(sys.argv[2])
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    store = EventStore.open(location)
    ensure_table(store.backend)
    [seq] = store.append([StageStarted(stage="opener")])
    store.close()
    print("ok", seq, flush=True)


if __name__ == "__main__":
    main()
