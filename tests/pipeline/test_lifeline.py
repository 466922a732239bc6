"""The lifeline: children die with pivot, but never because the thread that forked them ended."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pivot.pipeline import lifeline, proctree
from pivot.pipeline.local_executor import LocalExecutor


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _alive(pid: int) -> bool:
    return _state(pid) not in {"gone", "Z", "X"}


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _pid() -> int:
    return os.getpid()


def test_workers_forked_for_a_thread_that_ended_live_on() -> None:
    # Linux sends the parent-death signal when the *thread* that forked a
    # child ends. Workers spawned for a short-lived thread (watch mode warms
    # spares on one) must not be frozen or killed when it ends.
    pool = LocalExecutor(1)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(pool.call(_pid).result(timeout=120)))
    t.start()
    t.join(150)
    try:
        (worker,) = got
        assert pool.call(_pid).result(timeout=120) == worker
        assert _state(worker) in {"R", "S"}
    finally:
        pool.close()
    _wait_for(lambda: not _alive(worker))


def test_a_warmed_spare_survives_the_thread_that_warmed_it() -> None:
    workers = LocalExecutor(1, standby=True)
    try:
        workers.restart()
        workers.prepare_spare()
        assert workers.wait_spare(120)
        _wait_for(lambda: not any(t.name == "pivot-spare" for t in threading.enumerate()))
        new = workers.restart()  # swaps the spare in
        (pid,) = new
        assert workers.call(_pid).result(timeout=120) == pid
        assert _state(pid) in {"R", "S"}
    finally:
        workers.close()


def _start_orphan(path: str) -> int:
    # setsid(1) then a shell that backgrounds a sleep and exits: the sleep is
    # in a session of its own and its parent is gone.
    subprocess.run(
        ["setsid", "sh", "-c", 'sleep 600 > /dev/null 2>&1 & echo $! > "$0"', path], check=True
    )
    return int(Path(path).read_text())


def _start_orphan_and_wait(path: str) -> None:
    _start_orphan(path)
    time.sleep(600)


def test_killing_the_pool_kills_a_stage_orphan_in_its_own_session(tmp_path: Path) -> None:
    pool = LocalExecutor(1)
    gc = tmp_path / "gc"
    try:
        pool.call(_start_orphan_and_wait, str(gc))
        _wait_for(lambda: gc.exists() and gc.read_text().strip() != "")
        orphan = int(gc.read_text())
        assert _alive(orphan)
    finally:
        pool.close()
    _wait_for(lambda: not _alive(orphan), timeout=30)


def test_a_child_whose_coordinator_is_already_gone_exits_at_once() -> None:
    # PIVOT_LIFELINE names a coordinator that is not this child's parent: it
    # died before the child could ask to die with it.
    proc = subprocess.run(
        [sys.executable, "-c", "from pivot.pipeline import lifeline; lifeline.arm(); print('ran')"],
        env={**os.environ, lifeline.ENV: "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "ran" not in proc.stdout


def test_arm_without_a_coordinator_does_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if k != lifeline.ENV}
    proc = subprocess.run(
        [sys.executable, "-c", "from pivot.pipeline import lifeline; lifeline.arm(); print('ran')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == "ran"


def test_spawned_lists_live_children_only() -> None:
    proc = lifeline.spawn(subprocess.Popen, ["sleep", "600"])
    try:
        assert proc.pid in lifeline.spawned()
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in lifeline.spawned()


def test_a_guard_whose_worker_died_before_it_started_kills_nothing() -> None:
    # The worker starts its guard and dies at once: the guard then has init
    # (or a subreaper) as its parent and must not take that for the worker.
    bystander = subprocess.Popen(["sleep", "600"])
    script = (
        "import os, subprocess, sys\n"
        "g = subprocess.Popen([sys.executable, '-I', '-m', 'pivot.pipeline.proctree',"
        " str(os.getppid()), str(os.getpid())])\n"
        "print(g.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
        guard = int(out.stdout)
        _wait_for(lambda: not _alive(guard))
        assert _alive(bystander.pid)
        assert _alive(os.getpid())
    finally:
        bystander.kill()
        bystander.wait()


def test_kill_tree_never_kills_init_this_process_or_its_ancestors() -> None:
    assert proctree.kill_tree(1) == set()
    assert proctree.kill_tree(os.getpid()) == set()
    assert proctree.kill_tree(os.getppid()) == set()
    assert proctree.kill_tree(os.getppid(), include_root=False) == set()


def test_a_child_still_starting_dies_with_its_coordinator() -> None:
    # `sleep` never calls arm(): only the exec prefix (setpriv --pdeathsig)
    # ties it to the coordinator, as it ties an interpreter still importing.
    if not lifeline.exec_prefix():
        pytest.skip("no setpriv(1) on this machine: children are armed by arm() alone")
    script = (
        "import os, subprocess\n"
        "from pivot.pipeline import lifeline\n"
        "p = lifeline.spawn(subprocess.Popen, [*lifeline.exec_prefix(), 'sleep', '600'])\n"
        # Once setpriv has exec'd sleep, the signal is set; a coordinator gone
        # before that is arm()'s to catch, and sleep never calls arm().
        "while not open(f'/proc/{p.pid}/cmdline', 'rb').read().startswith(b'sleep'):\n"
        "    pass\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    child = int(out.stdout)
    _wait_for(lambda: not _alive(child), timeout=30)
