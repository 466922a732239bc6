"""A process that catches a projection up with tiny checkpoints, reporting each.

Usage: python catchup_worker.py LOCATION NAME. Prints ``checkpoint <position>``
after every stored checkpoint; the test kills it with SIGKILL part-way.
"""

from __future__ import annotations

import sys

from pivot.events import EventStore
from pivot.projections import live, open_projection


def main() -> None:
    store = EventStore.open(sys.argv[1])
    projection = open_projection(store, sys.argv[2])
    live.CHECKPOINT_EVERY = 50
    save = projection._save

    def reporting_save(position: int) -> bool:
        ok = save(position)
        print("checkpoint", position, flush=True)
        return ok

    projection._save = reporting_save  # type: ignore[method-assign]
    projection.catch_up()
    print("done", flush=True)


if __name__ == "__main__":
    main()
