"""Scenario 22 across commands: a `pivot run` in another terminal and a watch
wave never run the project's stages at once (both take the run lock).

Real CLI, real files; every wait is on something observed (a file a stage
wrote, an event `pivot watch` printed), with a generous timeout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pivot.events.pipeline import WaveFinished, WaveStarted
from pivot.events.store import EventStore

from testkit.watch_e2e import (
    PIVOT,
    Watch,
    env,
    wait_path,
    watches,  # noqa: F401 - pytest fixture
    write_project,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_watch_wave_waits_for_a_pivot_run_in_another_terminal(
    tmp_path: Path, watches: list[Watch]
) -> None:
    root = write_project(tmp_path.resolve())
    (root / "data" / "slow.csv").write_text("wait\n")  # `slow` waits for the gate
    gate = root / "gate"
    gate.touch()
    w = Watch(root)
    watches.append(w)
    w.wave_done(0)
    gate.unlink()
    running = root / "ignored" / "slow-running"
    running.unlink()

    run = subprocess.Popen(
        [*PIVOT, "run", "-f", "slow"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        wait_path(running)  # `pivot run` is inside its stage, holding the lock
        m = w.mark()
        other = root / "data" / "other.csv"
        other.write_text("y\n")
        [waiting] = w.wait_for(lambda _: w.events("wave.waiting", m))
        assert waiting["stages"] == ["other"]
        assert str(run.pid) == waiting["holder"]
        # Waiting, not running: no wave started, the output is the old one.
        assert w.events("wave.started", m) == []
        assert (root / "reports" / "other.txt").read_text() == "v1:x\n"
        gate.touch()
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, out + err
    [started] = w.wave_done(m)
    assert started["stages"] == ["other"]
    assert started["wave_id"] == waiting["wave_id"]  # one wave, one id, whoever records it
    assert (root / "reports" / "other.txt").read_text() == "v1:y\n"

    with EventStore.open(root / ".pivot" / "events.db") as store:
        records = list(store.read(types=[WaveStarted.TYPE, WaveFinished.TYPE]))
    seq_of = {(type(r.event).__name__, r.event.wave_id): r.seq for r in records}  # type: ignore[attr-defined]
    run_waves = [
        r.event.wave_id
        for r in records
        if isinstance(r.event, WaveStarted) and r.event.stages == ("slow",)
    ]
    assert len(run_waves) == 1
    assert seq_of[("WaveFinished", run_waves[0])] < seq_of[("WaveStarted", started["wave_id"])]
