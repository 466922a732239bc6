"""`pivot watch` forks code-change workers from a warm parent: fresh code, imports paid once.

Real CLI on a real project whose stage imports a third-party package: a
package in a folder on ``PYTHONPATH`` outside the project (the import system
treats it like anything under site-packages, and the test can upgrade it in
place the way ``pip install -U`` does). Each stage run records its pid, its
parent's pid, what it computed, and whether the package was already imported
before its module ran (preloaded by the warm parent).
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pivot.pipeline.lock import lock_path, parse_holder

from testkit.watch_e2e import Watch, alive, atomic_write, descendants, wait_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PIPELINE = """
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

PRELOADED = {name: name in sys.modules for name in ("fakelib", "threadlib")}

import fakelib
import helpers
from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def report(
    src: Annotated[Path, Dep("data.txt")],
    out: Annotated[Path, Out("out.txt")],
) -> None:
    if src.read_text().startswith("hold"):
        child = subprocess.Popen(["sleep", "300"])
        Path("child.pid").write_text(str(child.pid))
    run = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "value": helpers.VALUE,
        "lib": fakelib.VERSION,
        "preloaded": PRELOADED,
    }
    Path("runs.jsonl").open("a").write(json.dumps(run) + "\\n")
    out.write_text(f"{helpers.VALUE} {fakelib.VERSION}\\n")
    if src.read_text().startswith("hold"):
        while not Path("gate").exists():
            time.sleep(0.01)
"""


def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Path:
    root = (tmp_path / "project").resolve()
    site = tmp_path / "site"
    (site / "fakelib").mkdir(parents=True)
    root.mkdir()
    (site / "fakelib" / "__init__.py").write_text("VERSION = 1\n")
    (site / "fakelib-1.0.dist-info").mkdir()
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip() + extra)
    (root / "helpers.py").write_text("VALUE = 0\n")
    (root / "data.txt").write_text("go\n")
    (root / ".gitignore").write_text("runs.jsonl\nchild.pid\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    return root


def runs(root: Path) -> list[dict[str, Any]]:
    path = root / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def edit(w: Watch, root: Path, value: int) -> dict[str, Any]:
    """A code change; the run it caused (which must see ``value``)."""
    before = len(runs(root))
    mark = w.mark()
    atomic_write(root / "helpers.py", f"VALUE = {value}\n")
    w.wait_for(lambda _: w.events("wave.finished", mark) and len(runs(root)) > before)
    run = runs(root)[-1]
    assert run["value"] == value, run  # never stale code
    return run


def until_forked(w: Watch, root: Path, first: int = 1) -> tuple[dict[str, Any], int]:
    """Edit until a run's worker is not a child of pivot (the warm parent is ready)."""
    deadline = time.monotonic() + 120
    value = first
    while True:
        run = edit(w, root, value)
        if run["ppid"] != w.proc.pid:
            return run, value
        assert time.monotonic() < deadline, f"never forked from a warm parent: {run}"
        value += 1


def test_code_changes_run_fresh_code_in_workers_forked_from_a_warm_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, monkeypatch)
    w = Watch(root, "-j", "1")  # one worker: a data change must find the same one
    try:
        w.wave_done(0)
        first = runs(root)[-1]
        assert first["ppid"] == w.proc.pid  # the first wave: today's workers
        run, value = until_forked(w, root)
        warm_parent = run["ppid"]
        assert warm_parent in descendants(w.proc.pid)
        assert run["preloaded"]["fakelib"] is True  # imported once, by the warm parent
        assert run["lib"] == 1
        # Every later code change: a new worker, from the same warm parent, new code.
        pids = {run["pid"]}
        for v in range(value + 1, value + 4):
            again = edit(w, root, v)
            assert again["ppid"] == warm_parent
            assert again["pid"] not in pids
            pids.add(again["pid"])
        # A data change keeps the worker, like today's workers.
        mark = w.mark()
        (root / "data.txt").write_text("go again\n")
        w.wait_for(lambda _: w.events("wave.finished", mark))
        assert runs(root)[-1]["pid"] == again["pid"]
        assert w.events("stage.succeeded", mark)[-1]["pid"] == again["pid"]
    finally:
        w.close()
    assert not alive(pids | {warm_parent})


def test_a_package_upgraded_while_watching_rebuilds_the_warm_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, monkeypatch)
    site = tmp_path / "site"
    w = Watch(root)
    try:
        w.wave_done(0)
        run, value = until_forked(w, root)
        assert run["lib"] == 1
        old_parent = run["ppid"]
        # What `pip install -U fakelib` does: new files, a new dist-info.
        (site / "fakelib" / "__init__.py").write_text("VERSION = 2\n")
        (site / "fakelib-1.0.dist-info").rename(site / "fakelib-2.0.dist-info")
        after = edit(w, root, value + 1)
        assert after["lib"] == 2, after  # never a worker of the stale parent
        assert after["ppid"] != old_parent
        # ... and a new warm parent takes over, with the new version preloaded.
        deadline = time.monotonic() + 120
        v = value + 2
        while True:
            later = edit(w, root, v)
            assert later["lib"] == 2, later
            if later["ppid"] not in {w.proc.pid, old_parent}:
                break
            assert time.monotonic() < deadline, later
            v += 1
        assert later["preloaded"]["fakelib"] is True
        assert "changed; rebuilding it" in w.stderr
    finally:
        w.close()
    assert not alive({old_parent, later["ppid"]})


def test_an_import_that_starts_a_thread_is_not_preloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, monkeypatch, extra="\nimport threadlib\n")
    site = tmp_path / "site"
    (site / "threadlib.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
    )
    w = Watch(root)
    try:
        w.wave_done(0)
        run, _ = until_forked(w, root)
        assert run["preloaded"] == {"fakelib": True, "threadlib": False}
        note = "warm parent: not preloading threadlib (importing threadlib started a thread"
        assert w.stderr.count(note) == 1, w.stderr
    finally:
        w.close()


def test_kill_9_of_pivot_leaves_no_forked_worker_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, monkeypatch)
    w = Watch(root)
    try:
        w.wave_done(0)
        until_forked(w, root)
        before = len(runs(root))
        (root / "data.txt").write_text("hold\n")  # the stage starts a child and waits
        atomic_write(root / "helpers.py", "VALUE = 1000\n")
        wait_path(root / "child.pid")
        deadline = time.monotonic() + 60
        while len(runs(root)) <= before:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        run = runs(root)[-1]
        child = int((root / "child.pid").read_text())
        assert run["ppid"] != w.proc.pid  # a forked worker
        below = descendants(w.proc.pid)
        assert {run["pid"], run["ppid"], child} <= below
        holder = parse_holder(lock_path(root).read_text())
        assert run["pid"] in holder.workers  # listed in the run lock like a loky worker
        w.proc.kill()
        w.finish()
    finally:
        w.close()
    deadline = time.monotonic() + 30  # generous: bench/crash_soak.py measures how fast
    while alive(below):
        assert time.monotonic() < deadline, f"left running: {sorted(alive(below))}"
        time.sleep(0.02)


def test_no_warm_parent_keeps_todays_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, monkeypatch)
    (root / "pivot.toml").write_text("warm_parent = false\n")
    w = Watch(root)
    try:
        w.wave_done(0)
        for value in (1, 2, 3):
            run = edit(w, root, value)
            assert run["ppid"] == w.proc.pid  # a loky worker, started by pivot
            assert run["preloaded"]["fakelib"] is False
    finally:
        w.close()
    (root / "pivot.toml").write_text('warm_parent = "yes"\n')
    w = Watch(root)
    assert w.finish() == 2
    assert w.stderr.strip() == (
        f"error: {root / 'pivot.toml'}: warm_parent must be true or false, not 'yes'"
    )
