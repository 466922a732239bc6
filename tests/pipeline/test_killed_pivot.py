"""`kill -9` of pivot mid-stage: nothing it started keeps running, nothing runs twice.

A killed `pivot run` or `pivot watch` gets no chance to clean up; its workers,
the processes its stages started (one of them in a session of its own, whose
parent already exited) and loky's resource trackers must all die on their
own. A `pivot run` started right after must never run a stage while an
orphan of the killed one still runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from testkit.pipeline_project import HEADER, PIVOT, make_project

# The stage records its worker, a child, and a grandchild that went to a
# session of its own and whose parent (the shell) exited: the kind of process
# a process-group kill cannot reach.
PIPELINE = (
    HEADER
    + """
import os
import subprocess
import time

@pipeline.stage
def slow(out: Annotated[Path, Out("slow.txt")]) -> None:
    marker = Path("running")
    if marker.exists():
        other = int(marker.read_text() or 0)
        try:
            os.kill(other, 0)
            alive = Path(f"/proc/{other}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, ValueError):
            alive = False
        if alive:
            with open("overlaps", "a") as f:
                f.write(f"{os.getpid()} ran while {other} still ran\\n")
    marker.write_text(str(os.getpid()))
    child = subprocess.Popen(["sleep", "600"])
    subprocess.run(
        ["setsid", "sh", "-c", "sleep 600 > /dev/null 2>&1 & echo $! > grandchild.tmp"],
        check=True,
    )
    Path("grandchild.tmp").replace("grandchild")
    Path("pids.tmp").write_text(f"{os.getpid()} {child.pid} {Path('grandchild').read_text()}")
    Path("pids.tmp").replace("pids")
    if Path("fast").exists():
        out.write_text("done")
        return
    time.sleep(600)
    out.write_text("never")
"""
)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None and fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.02)


def _start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PIVOT, *args],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def _stage_pids(root: Path) -> list[int]:
    pids = root / "pids"
    _wait_for(pids.exists, what="the stage to start")
    return [int(p) for p in pids.read_text().split()]


def _kill_mid_stage_and_check(root: Path, *args: str) -> None:
    proc = _start(root, *args)
    try:
        stage = _stage_pids(root)
        # Everything below pivot now: workers, their guards, resource trackers,
        # the standby interpreter (watch), the stage's children...
        below = _descendants(proc.pid)
        assert set(stage[:2]) <= below
        everything = below | set(stage)
        assert all(map(_alive, stage)), stage
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    # No timing budget here (bench/crash_soak.py measures how fast); only "they all end".
    _wait_for(
        lambda: not any(map(_alive, everything)),
        timeout=30,
        what=f"left running: {sorted(p for p in everything if _alive(p))}",
    )


def test_kill_9_of_pivot_run_leaves_no_process_behind(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    _kill_mid_stage_and_check(project.root, "run")


def test_kill_9_of_pivot_watch_leaves_no_process_behind(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    _kill_mid_stage_and_check(project.root, "watch", "--display", "json")


def test_what_a_stage_leaves_running_ends_with_it(tmp_path: Path) -> None:
    # Its child and a grandchild in a session of its own (whose parent exited)
    # would otherwise run on after the stage, and after pivot.
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    (project.root / "fast").touch()
    project.cli("run")
    _worker, child, grandchild = (int(p) for p in project.read("pids").split())
    _wait_for(lambda: not _alive(child) and not _alive(grandchild), timeout=30, what="leftovers")


def test_a_run_right_after_a_kill_never_overlaps_the_stage(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    first = _start(project.root, "run")
    try:
        old = _stage_pids(project.root)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    (project.root / "pids").unlink()
    (project.root / "fast").touch()
    second = subprocess.run(
        [*PIVOT, "run"], cwd=project.root, capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert not (project.root / "overlaps").exists(), (project.root / "overlaps").read_text()
    assert project.read("slow.txt") == "done"
    _wait_for(lambda: not any(map(_alive, old)), timeout=30, what="the old stage's processes")
    new = [int(p) for p in project.read("pids").split()]
    _wait_for(
        lambda: not any(map(_alive, new)), timeout=30, what="the second run's stage processes"
    )
