"""Rebuild every projection from a 1,000,000-event log; then `pivot stats` on it.

Builds (or reuses) a SQLite store of ``--events`` events of every domain in
a plausible mix (watcher matches and actions, stage runs and waves, job
polls, actor lifecycle), then measures:

1. ``rebuild``: all projections folded from the whole log, in memory, the
   way ``pivot replay`` does (target < 20 s for 1M events);
2. ``catch-up from zero``: the stored projections brought up to date from
   an empty state, checkpoints included (what the first ``pivot stats`` on
   an old log does);
3. ``pivot stats``: in-process (open the store, load the stored projection,
   catch up, view; target < 200 ms), and the real CLI process
   (``pivot stats --json``), next to the bare interpreter start and the
   import of typer, which every ``pivot`` command pays; ``pivot why`` and
   ``pivot events -n 10`` on the same log for comparison; and ``pivot stats``
   when 1,000 events were appended since it last read (on a copy).

    uv run python bench/rebuild_projections.py [--events 1000000] [--store PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pivot.events import EventStore
from pivot.events import actors as ac
from pivot.events import jobs as jb
from pivot.events import pipeline as pl
from pivot.events import watchers as wt
from pivot.events.base import Event
from pivot.projections import PROJECTIONS, open_projection, rebuild

START = 1.76e9


def _events(n: int, rng: random.Random, at: float) -> list[Event]:
    """``n`` events of a plausible mix, times starting at ``at``."""
    out: list[Event] = []
    watchers = [f"w{i}" for i in range(200)]
    stages = [f"stage{i}" for i in range(40)]
    i = 0
    while len(out) < n:
        at += 0.01
        roll = rng.random()
        w = rng.choice(watchers)
        if roll < 0.45:
            mid = f"m{i}"
            out.append(
                wt.WatcherMatched(
                    watcher_id=w,
                    match_id=mid,
                    at=at,
                    line=f"step {i} loss={rng.random():.5f}",
                    captures={"loss": f"{rng.random():.5f}"},
                )
            )
            if rng.random() < 0.3:
                kind = rng.choice(["notify", "cancel", "store_metric", "resubmit"])
                aid = f"a{i}"
                out.append(
                    wt.ActionRequested(
                        watcher_id=w, action_id=aid, action_type=kind, correlation_id=mid, at=at
                    )
                )
                end = rng.random()
                if end < 0.8:
                    out.append(
                        wt.ActionSucceeded(watcher_id=w, action_id=aid, action_type=kind, at=at)
                    )
                elif end < 0.9:
                    out.append(
                        wt.ActionFailed(
                            watcher_id=w, action_id=aid, action_type=kind, error="exit 1", at=at
                        )
                    )
                else:
                    out.append(
                        wt.ActionSuppressed(
                            watcher_id=w, action_id=aid, action_type=kind, reason="rate", at=at
                        )
                    )
        elif roll < 0.55:
            out.append(wt.MetricStored(watcher_id=w, name="loss", value=rng.random(), at=at))
        elif roll < 0.57:
            out.append(wt.WatcherCreated(watcher_id=w, name=f"name-{w}", job_id=str(i), at=at))
        elif roll < 0.58:
            new = rng.choice(["active", "paused", "triggered", "completed"])
            out.append(wt.WatcherStateChanged(watcher_id=w, old="active", new=new, at=at))
        elif roll < 0.80:
            batch, wave = f"batch{i}", f"wave{i}"
            s = rng.choice(stages)
            out += [
                pl.ChangesDetected(
                    batch_id=batch,
                    kind="data",
                    paths=("data/x.csv",),
                    count=1,
                    correlation_id=batch,
                    at=at,
                ),
                pl.WaveStarted(
                    wave_id=wave, trigger="change", stages=(s,), correlation_id=batch, at=at
                ),
                pl.StageQueued(
                    stage=s, reasons=("dep changed: data/x.csv",), correlation_id=wave, at=at
                ),
                pl.StageStarted(stage=s, correlation_id=wave, at=at),
                pl.StageSucceeded(stage=s, duration=rng.random(), correlation_id=wave, at=at)
                if rng.random() < 0.9
                else pl.StageFailed(stage=s, error="boom", correlation_id=wave, at=at),
                pl.WaveFinished(wave_id=wave, correlation_id=batch, at=at),
            ]
        elif roll < 0.95:
            out.append(
                jb.OutputRead(
                    host="local", job_id=str(i % 50), path="/tmp/x.out", offset=i * 100, at=at
                )
            )
        else:
            out.append(ac.ActorStarted(name=f"actor{i % 7}", at=at))
        i += 1
    return out[:n]


def build(path: Path, total: int) -> None:
    rng = random.Random(7)
    store = EventStore.open(path)
    have = store.last_seq()
    at = START + have * 0.01
    started = time.perf_counter()
    while have < total:
        chunk = _events(min(20_000, total - have), rng, at)
        at = chunk[-1].at
        store.append(chunk)
        have += len(chunk)
    store.close()
    print(f"store: {path} with {total:,} events (built in {time.perf_counter() - started:.1f} s)")


def timed(fn: object, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, help="reuse/keep this store (default: a temp file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or Path(tmp) / "events.db"
        build(path, args.events)
        store = EventStore.open(path)
        figures: dict[str, float] = {}

        cpu = time.process_time()
        [figures["rebuild_s"]] = timed(lambda: rebuild(store))
        figures["rebuild_cpu_s"] = time.process_time() - cpu
        print(
            f"rebuild of all {len(PROJECTIONS)} projections from {args.events:,} events: "
            f"{figures['rebuild_s']:.2f} s wall, {figures['rebuild_cpu_s']:.2f} s CPU "
            f"({args.events / figures['rebuild_s']:,.0f} events/s; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )

        def catch_up_from_zero() -> None:
            for name in PROJECTIONS:
                p = open_projection(store, name)
                p.reset()
                p.catch_up()

        [figures["catch_up_s"]] = timed(catch_up_from_zero)
        print(f"catch-up of the stored projections from zero: {figures['catch_up_s']:.2f} s")
        store.close()

        def stats_in_process() -> None:
            s = EventStore.open(path)
            p = open_projection(s, "watcher_stats")
            p.catch_up()
            json.dumps(p.view())
            s.close()

        runs = timed(stats_in_process, 20)
        figures["stats_in_process_ms"] = statistics.median(runs) * 1000
        print(
            f"pivot stats in process (open, load, catch up, view): median "
            f"{figures['stats_in_process_ms']:.1f} ms, max {max(runs) * 1000:.1f} ms"
        )

        pivot = str(Path(sys.executable).with_name("pivot"))
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            print(
                "note: PYTHONDONTWRITEBYTECODE is set; without .pyc files every process "
                "compiles its imports (python -m compileall .venv src gives installed-like "
                "figures)"
            )
        for key, cmd in (
            ("python_start", [sys.executable, "-c", "pass"]),
            ("import_typer", [sys.executable, "-c", "import typer"]),
            ("import_typer_pydantic", [sys.executable, "-c", "import typer, pydantic"]),
            ("pivot_help", [pivot, "--help"]),
            ("pivot_stats_process", [pivot, "stats", "--json", "--store", str(path)]),
            ("pivot_why_process", [pivot, "why", "stage3", "--store", str(path)]),
            ("pivot_events_last_10_process", [pivot, "events", "-n", "10", "--store", str(path)]),
        ):
            runs = timed(lambda c=cmd: subprocess.run(c, check=True, capture_output=True), 10)  # type: ignore[misc]
            figures[key + "_ms"] = statistics.median(runs) * 1000
            shown = " ".join([Path(cmd[0]).name, *cmd[1:]])
            print(f"process `{shown}`: median {figures[key + '_ms']:.0f} ms")
        figures["pivot_stats_after_1000_new_ms"] = stats_after_new_events(
            path, Path(tmp) / "fresh.db", pivot
        )
        print(
            "process `pivot stats --json` with 1,000 events appended since the last read "
            f"(a copy of the store): median {figures['pivot_stats_after_1000_new_ms']:.0f} ms"
        )
        print(json.dumps(figures))


def stats_after_new_events(path: Path, copy: Path, pivot: str, rounds: int = 10) -> float:
    """Median ms of `pivot stats` when 1,000 events arrived since the last read.

    The usual case while watchers run: the stored projection folds the new
    events (decoding them) before answering. Works on a copy, so a store kept
    with --store keeps exactly --events events.
    """
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    rng = random.Random(11)
    runs = []
    cmd = [pivot, "stats", "--json", "--store", str(copy)]
    with EventStore.open(copy) as store:
        at = START + 1e7
        for _ in range(rounds):
            chunk = _events(1000, rng, at)
            at = chunk[-1].at
            store.append(chunk)
            runs += timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
    return statistics.median(runs) * 1000


if __name__ == "__main__":
    main()
