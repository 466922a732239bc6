"""A separate process that appends events and prints each acknowledged seq.

Usage: python producer.py LOCATION NAME COUNT [BATCH]. Prints ``ack <seq>``
after each append returned (flushed), then ``done``.
"""

from __future__ import annotations

import sys

from pivot.events import EventStore
from pivot.events.pipeline import StageStarted


def main() -> None:
    location, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    store = EventStore.open(location)
    sent = 0
    while count < 0 or sent < count:
        events = [StageStarted(stage=f"{name}-{sent + i}") for i in range(batch)]
        seqs = store.append(events)
        sent += batch
        print("ack", " ".join(map(str, seqs)), flush=True)
    print("done", flush=True)
    store.close()


if __name__ == "__main__":
    main()
