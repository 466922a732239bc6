"""Ctrl-C during a run: prompt stop, no process left, nothing unfinished recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.events.store import EventStore

from testkit.pipeline_project import HEADER, PIVOT, make_project

PIPELINE = (
    HEADER
    + """
import os
import subprocess
import time

@pipeline.stage
def quick(out: Annotated[Path, Out("quick.txt")]) -> None:
    out.write_text(str(os.getpid()))

@pipeline.stage
def slow(src: Annotated[Path, Dep("quick.txt")], out: Annotated[Path, Out("slow.txt")]) -> None:
    child = subprocess.Popen(["sleep", "600"])
    Path("pids.txt").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(600)
    out.write_text("never")

@pipeline.stage
def later(src: Annotated[Path, Dep("slow.txt")], out: Annotated[Path, Out("later.txt")]) -> None:
    out.write_text("never")
"""
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its (possibly gone) parent.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_c_kills_workers_and_children_and_records_nothing_unfinished(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    pids_file = project.root / "pids.txt"
    proc = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2)
        worker, child = (int(p) for p in pids_file.read_text().split())
        assert _alive(worker) and _alive(child)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    assert "Traceback" not in out + err
    other_worker = int(project.read("quick.txt"))
    _wait_for(lambda: not any(map(_alive, (worker, child, other_worker))), timeout=10)
    assert "slow: cancelled (interrupted)" in out
    assert "later: cancelled (not started)" in out
    assert not (project.root / "slow.txt").exists()
    status = project.status()
    assert status == {
        "quick": [],
        "slow": ["never run"],
        "later": ["never run", "upstream will run: slow"],
    }
    store = EventStore.open(str(project.root / ".pivot/events.db"))
    try:
        kinds = [(r.event.TYPE, getattr(r.event, "stage", "")) for r in store.read()]
    finally:
        store.close()
    assert ("stage.succeeded", "quick") in kinds
    assert ("stage.cancelled", "slow") in kinds
    assert ("stage.cancelled", "later") in kinds
    assert ("stage.succeeded", "slow") not in kinds
    assert kinds[-1] == ("wave.finished", "")


def test_ctrl_c_json(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    pids_file = project.root / "pids.txt"
    proc = subprocess.Popen(
        [*PIVOT, "run", "--json"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    doc = json.loads(out)
    assert doc["cancelled"] is True
    assert {s["stage"]: s["status"] for s in doc["stages"]} == {
        "quick": "succeeded",
        "slow": "cancelled",
        "later": "cancelled",
    }


GATED = (
    HEADER
    + """
import time

@pipeline.stage
def gated(out: Annotated[Path, Out("gated.txt")]) -> None:
    Path("started").write_text("")
    while not Path("gate").exists():
        time.sleep(0.02)
    out.write_text("done")
"""
)


def test_a_second_run_waits_for_the_first(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", GATED)
    first = subprocess.Popen(
        [*PIVOT, "run", "--json"], cwd=project.root, stdout=subprocess.PIPE, text=True
    )
    second_err = project.root / "second.err"
    second = None
    try:
        _wait_for((project.root / "started").exists)
        with second_err.open("w") as err:
            second = subprocess.Popen(
                [*PIVOT, "run", "--json"],
                cwd=project.root,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        _wait_for(lambda: "waiting for another pivot run" in second_err.read_text())
        assert f"(pid {first.pid})" in second_err.read_text()
        (project.root / "gate").touch()
        out1, _ = first.communicate(timeout=60)
        out2, _ = second.communicate(timeout=60)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
    assert json.loads(out1)["stages"] == [
        {"stage": "gated", "status": "succeeded", "reasons": ["never run"]}
    ]
    # The second run planned after the first finished: nothing left to do.
    assert json.loads(out2)["stages"] == [{"stage": "gated", "status": "up to date", "reasons": []}]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_run_like_ctrl_c(tmp_path: Path, sig: signal.Signals) -> None:
    # Workers lead sessions of their own, so a signal to pivot's group (a
    # closed terminal, `timeout`, a scheduler) reaches only `pivot run`: it
    # must still kill the workers and their children before releasing the
    # run lock, or an orphaned stage would keep writing outputs.
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    pids_file = project.root / "pids.txt"
    proc = subprocess.Popen(
        [*PIVOT, "run"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2)
        worker, child = (int(p) for p in pids_file.read_text().split())
        os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, out + err
    assert f"stopped by {sig.name}" in err
    if sig == signal.SIGTERM:
        assert "Traceback" not in out + err, err
    # On SIGHUP the terminal is gone, and loky's resource tracker (which stays
    # in pivot's group and ignores only SIGINT/SIGTERM) dies noisily on a
    # stderr nobody reads; what matters is below: nothing is left running.
    _wait_for(lambda: not any(map(_alive, (worker, child))), timeout=10)
    assert f"slow: cancelled ({sig.name})" in out
    assert not (project.root / "slow.txt").exists()
