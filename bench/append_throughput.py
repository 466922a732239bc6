"""Sustained durable append throughput: pivot's store vs raw sqlite3, same run.

Four producer threads each append ``--events`` events in appends of
``--batch`` events. pivot's store (eventsourcing's SQLite recorder, WAL,
synchronous=FULL, group commit) is measured against raw sqlite3 doing the
same durable work on the same machine in the same run: the same JSON
payloads (pre-encoded, so the raw side does not even pay for encoding), the
same WAL/FULL settings, the same four threads, one transaction per
producer batch on one shared connection (SQLite has one writer; a lock
avoids the busy-retry sleeps separate connections would suffer).

    uv run python bench/append_throughput.py [--events 50000] [--batch 100]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pivot.events import EventStore
from pivot.events.base import Event
from pivot.events.row_codec import encode_state
from pivot.events.watchers import WatcherMatched

THREADS = 4


def make_events(producer: int, count: int) -> list[Event]:
    return [
        WatcherMatched(
            watcher_id=f"w{producer}",
            match_id=uuid.uuid4().hex,
            line=f"step {i} loss={1.0 / (i + 1):.6f} lr=0.001",
            captures={"step": str(i), "loss": f"{1.0 / (i + 1):.6f}"},
            actor="bench",
            correlation_id="c",
        )
        for i in range(count)
    ]


def run_threads(work: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def bench_pivot(path: Path, events: list[list[Event]], batch: int) -> tuple[float, int]:
    store = EventStore.open(path)

    def work(n: int) -> None:
        mine = events[n]
        for i in range(0, len(mine), batch):
            store.append(mine[i : i + batch])

    elapsed = run_threads(work)
    transactions = store.transactions
    assert store.last_seq() == sum(len(e) for e in events)
    store.close()
    return elapsed, transactions


def bench_raw(path: Path, payloads: list[list[tuple[str, bytes]]], batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    lock = threading.Lock()

    def work(n: int) -> None:
        stream = uuid.uuid4().hex
        mine = payloads[n]
        for i in range(0, len(mine), batch):
            rows = [(stream, i + k + 1, t, s) for k, (t, s) in enumerate(mine[i : i + batch])]
            with lock:
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows)
                conn.execute("COMMIT")

    elapsed = run_threads(work)
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per producer")
    parser.add_argument("--batch", type=int, default=100, help="events per append")
    args = parser.parse_args()
    events = [make_events(n, args.events) for n in range(THREADS)]
    payloads = [[encode_state(e) for e in mine] for mine in events]
    total = THREADS * args.events
    with tempfile.TemporaryDirectory() as tmp:
        raw = bench_raw(Path(tmp) / "raw.db", payloads, args.batch)
        ours, transactions = bench_pivot(Path(tmp) / "events.db", events, args.batch)
    size = len(payloads[0][0][1])
    print(f"{THREADS} threads x {args.events} events, {args.batch} per append, ~{size} B each")
    print(f"raw sqlite3 WAL FULL : {total / raw:10,.0f} events/s ({raw:.2f} s)")
    print(
        f"pivot EventStore     : {total / ours:10,.0f} events/s ({ours:.2f} s, "
        f"{transactions} transactions, {total / transactions:.1f} events each)"
    )
    print(f"ratio pivot / raw    : {raw / ours:10.2f}")
    print(json.dumps({"raw_eps": total / raw, "pivot_eps": total / ours, "ratio": raw / ours}))


if __name__ == "__main__":
    main()
