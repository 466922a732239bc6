"""A wave left open by a killed pivot is closed as interrupted; the lock file's record."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from pivot.events import pipeline as ev
from pivot.events.base import Event
from pivot.events.store import EventStore
from pivot.pipeline import lifeline, proctree
from pivot.pipeline.interrupted import close_unfinished, describe
from pivot.pipeline.lock import Holder, lock_path, parse_holder, run_lock

from testkit.pipeline_project import HEADER, PIVOT, make_project

# -- the pure decision ---------------------------------------------------------


def _wave(wave_id: str = "w1") -> ev.WaveStarted:
    return ev.WaveStarted(
        wave_id=wave_id, trigger="run", stages=("a", "b", "c"), correlation_id="x"
    )


def test_stages_queued_or_running_are_cancelled_and_the_wave_interrupted() -> None:
    stages = [
        ev.StageQueued(stage="a", correlation_id="w1"),
        ev.StageQueued(stage="b", correlation_id="w1"),
        ev.StageQueued(stage="c", correlation_id="w1"),
        ev.StageStarted(stage="a", correlation_id="w1"),
        ev.StageSucceeded(stage="a", duration=1.0, correlation_id="w1"),
        ev.StageStarted(stage="b", correlation_id="w1"),
        ev.StageStarted(stage="z", correlation_id="another wave"),
    ]
    closing = close_unfinished(_wave(), stages, pid=42, actor="pivot run")
    assert [(type(e), getattr(e, "stage", "")) for e in closing] == [
        (ev.StageCancelled, "b"),
        (ev.StageCancelled, "c"),
        (ev.WaveInterrupted, ""),
    ]
    assert all(e.correlation_id == "w1" for e in closing[:2])
    wave = closing[-1]
    assert isinstance(wave, ev.WaveInterrupted)
    assert wave.wave_id == "w1" and wave.stages == ("b", "c") and wave.pid == 42
    assert wave.correlation_id == "x"  # the wave's own cause, as wave.finished would carry
    assert "pid 42" in closing[0].reason  # type: ignore[attr-defined]
    assert describe(closing) == [
        "note: pivot (pid 42) was stopped in the middle of a run (b, c did not finish); "
        "recorded it as interrupted"
    ]


def test_a_wave_killed_before_its_stage_events_cancels_what_it_was_to_run() -> None:
    # Stage events are recorded once the stages are on their way: a kill in
    # between leaves only wave.started, and its stages may have run.
    closing = close_unfinished(_wave(), [])
    assert [getattr(e, "stage", "") for e in closing] == ["a", "b", "c", ""]
    assert isinstance(closing[-1], ev.WaveInterrupted)
    assert closing[-1].stages == ("a", "b", "c")
    empty = ev.WaveStarted(wave_id="w2", trigger="run", stages=())
    assert [type(e) for e in close_unfinished(empty, [])] == [ev.WaveInterrupted]


# -- the lock file -------------------------------------------------------------


def test_lock_file_round_trip_and_older_formats() -> None:
    holder = Holder(pid=12, start=34, workers={5: 6, 7: 8}, released=True, boot="b-1")
    assert parse_holder(holder.to_json()) == holder
    assert parse_holder("4321\n") == Holder(pid=4321)  # written by an older pivot
    assert parse_holder("") == Holder()
    assert parse_holder("{not json") == Holder()
    assert parse_holder("²") == Holder()  # damaged: str.isdigit() says yes, int() refuses
    assert parse_holder(json.dumps({"pid": "x"})) == Holder()


def test_the_lock_file_lists_the_holders_children_while_held(tmp_path: Path) -> None:
    with run_lock(tmp_path):
        child = lifeline.spawn(subprocess.Popen, ["sleep", "600"])
        try:
            held = parse_holder(lock_path(tmp_path).read_text())
            assert held.pid == os.getpid() and not held.released
            assert held.workers.get(child.pid) == proctree.process_start(child.pid)
        finally:
            child.kill()
            child.wait()
    released = parse_holder(lock_path(tmp_path).read_text())
    assert released.released and child.pid not in released.workers


# -- through the CLI ------------------------------------------------------------

SLOW = (
    HEADER
    + """
import os
import time

@pipeline.stage
def slow(out: Annotated[Path, Out("slow.txt")]) -> None:
    Path("started").write_text(str(os.getpid()))
    if not Path("fast").exists():
        time.sleep(600)
    out.write_text("done")
"""
)


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _events(root: Path) -> list[Event]:
    with EventStore.open(str(root / ".pivot/events.db")) as store:
        return [r.event for r in store.read()]


def test_the_run_after_a_kill_records_the_killed_wave_as_interrupted(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", SLOW)
    first = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for((project.root / "started").exists)
        first.kill()
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    # Before the next start the log can only say the stage is running.
    why = json.loads(project.cli("why", "slow", "--json").stdout)
    assert why["outcome"] == "running"

    (project.root / "fast").touch()
    second = project.cli("run")
    assert (
        f"note: pivot (pid {first.pid}) was stopped in the middle of a run (slow did not finish); "
        "recorded it as interrupted"
    ) in second.stderr
    events = _events(project.root)
    interrupted = [e for e in events if isinstance(e, ev.WaveInterrupted)]
    assert len(interrupted) == 1
    assert interrupted[0].stages == ("slow",) and interrupted[0].pid == first.pid
    waves = [e.wave_id for e in events if isinstance(e, ev.WaveStarted)]
    assert interrupted[0].wave_id == waves[0]
    cancelled = [e for e in events if isinstance(e, ev.StageCancelled)]
    assert [(e.stage, e.correlation_id) for e in cancelled] == [("slow", waves[0])]
    assert cancelled[0].reason.startswith("interrupted: pivot (pid ")
    # The second run went on and ran the stage; a third finds nothing to close.
    assert project.read("slow.txt") == "done"
    third = project.cli("run")
    assert "interrupted" not in third.stderr
    assert len([e for e in _events(project.root) if isinstance(e, ev.WaveInterrupted)]) == 1


def _replay_status(project, *args: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    out = project.cli("replay", "-p", "pipeline_status", "--json", *args).stdout
    return json.loads(out)["projections"]["pipeline_status"]  # type: ignore[no-any-return]


def test_the_pipeline_status_projection_shows_the_interrupted_wave(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", SLOW)
    first = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for((project.root / "started").exists)
        _wait_for(lambda: any(isinstance(e, ev.StageStarted) for e in _events(project.root)))
        first.kill()
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert _replay_status(project)["stages"]["slow"]["state"] == "running"
    (project.root / "fast").touch()
    project.cli("run", "--dry-run")  # takes no lock, so it records nothing
    assert not any(isinstance(e, ev.WaveInterrupted) for e in _events(project.root))
    project.cli("run")
    with EventStore.open(str(project.root / ".pivot/events.db")) as store:
        (seq,) = [r.seq for r in store.read() if isinstance(r.event, ev.WaveInterrupted)]
    status = _replay_status(project, "--until", str(seq))
    assert status["stages"]["slow"]["state"] == "cancelled"
    assert status["stages"]["slow"]["reason"].startswith("interrupted: pivot (pid ")
    assert status["wave"]["interrupted"] is True
    assert status["wave"]["finished_at"] is not None
    assert _replay_status(project)["stages"]["slow"]["state"] == "succeeded"
    verify = project.cli("replay", "--verify")
    assert verify.returncode == 0


def _dead_pid() -> tuple[int, int]:
    proc = subprocess.Popen(["sleep", "0"])
    start = proctree.process_start(proc.pid) or 1
    proc.wait()
    return proc.pid, start


def test_a_new_run_stops_workers_a_dead_holder_left_and_says_so(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", SLOW)
    (project.root / "fast").touch()
    orphan = subprocess.Popen(["sleep", "600"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        holder, start = _dead_pid()
        orphan_start = proctree.process_start(orphan.pid)
        assert orphan_start is not None
        # The record a killed pivot leaves: its pid, not released, one worker
        # still running, and a pid whose start time is another process's.
        record = Holder(
            pid=holder,
            start=start,
            workers={orphan.pid: orphan_start, bystander.pid: orphan_start - 1},
        )
        lock_path(project.root).parent.mkdir(parents=True, exist_ok=True)
        lock_path(project.root).write_text(record.to_json())
        run = project.cli("run")
        assert orphan.wait(30) == -9
        assert bystander.poll() is None  # same pid, other start time: not a worker of that run
        assert (
            f"note: stopped 1 process(es) left running by pivot (pid {holder}), which ended "
            f"without stopping them: {orphan.pid}"
        ) in run.stderr
        stopped = [e for e in _events(project.root) if isinstance(e, ev.OrphansStopped)]
        assert [(e.holder, e.pids) for e in stopped] == [(holder, (orphan.pid,))]
    finally:
        for p in (orphan, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_workers_of_a_live_holder_are_left_alone(tmp_path: Path) -> None:
    # `pivot watch` between waves: it released the lock, its workers wait for the next wave.
    project = make_project(tmp_path)
    project.write("pipeline.py", SLOW)
    (project.root / "fast").touch()
    idle = subprocess.Popen(["sleep", "600"], start_new_session=True)
    keeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        record = Holder(
            pid=keeper.pid,
            start=proctree.process_start(keeper.pid),
            workers={idle.pid: proctree.process_start(idle.pid) or 0},
            released=True,
        )
        lock_path(project.root).parent.mkdir(parents=True, exist_ok=True)
        lock_path(project.root).write_text(record.to_json())
        run = project.cli("run")
        assert idle.poll() is None
        assert "note:" not in run.stderr
    finally:
        for p in (idle, keeper):
            p.kill()
            p.wait()


def test_a_record_from_before_a_reboot_names_no_process(tmp_path: Path) -> None:
    # Start times count from boot: after a reboot, a process with the pid and
    # start time a killed pivot recorded is someone else's and must live.
    project = make_project(tmp_path)
    project.write("pipeline.py", SLOW)
    (project.root / "fast").touch()
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        start = proctree.process_start(stranger.pid)
        assert start is not None and proctree.boot_id()
        record = Holder(pid=stranger.pid, start=start, workers={stranger.pid: start},
                        boot="00000000-0000-0000-0000-000000000000")  # fmt: skip
        assert record.gone() and record.died_holding() and record.leftovers() == {}
        same_boot = Holder(pid=stranger.pid, start=start, workers={stranger.pid: start},
                           boot=proctree.boot_id())  # fmt: skip
        assert not same_boot.gone() and same_boot.leftovers() == {stranger.pid: start}
        lock_path(project.root).parent.mkdir(parents=True, exist_ok=True)
        lock_path(project.root).write_text(record.to_json())
        run = project.cli("run")
        assert stranger.poll() is None
        assert "note: stopped" not in run.stderr
        assert parse_holder(lock_path(project.root).read_text()).boot == proctree.boot_id()
    finally:
        stranger.kill()
        stranger.wait()
