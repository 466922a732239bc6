"""The actors on real threads, real watchfiles and real loky workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import loky
import pykka
import pytest

from pivot.actors.base import Shell
from pivot.actors.debouncer import Debouncer
from pivot.actors.file_watcher import FileWatcher
from pivot.actors.supervisor import Supervisor
from pivot.actors.watch_messages import Batch, DeclaredPaths, PathsChanged, Ping, WindowOpened
from pivot.events.actors import ActorCrashed, ActorRestarted, SupervisorGaveUp, WatchStarted
from pivot.pipeline.local_executor import LocalExecutor

from testkit.watch_helpers import (  # noqa: F401 - watch_context: a fixture
    Collector,
    Probe,
    WatchContext,
    watch_context,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _stop_actors() -> Any:
    yield
    pykka.ActorRegistry.stop_all()


def _watch(root: Path, context: WatchContext) -> tuple[Any, Collector]:
    ctx, _events = context
    got = Collector()
    ctx.registry.set("debouncer", Probe.start(got))
    ref = FileWatcher.start(ctx, root)
    ctx.registry.set("file_watcher", ref)
    ref.ask(Ping(), timeout=10)
    return ref, got


def _seen(got: Collector) -> set[str]:
    return {p for m in got.items if isinstance(m, PathsChanged) for p in m.paths}


def test_atomic_save_then_in_place_edit_are_both_seen(
    tmp_path: Path, watch_context: WatchContext
) -> None:
    root = tmp_path.resolve()
    (root / "data").mkdir()
    target = root / "data" / "raw.csv"
    target.write_text("1\n")
    _ref, got = _watch(root, watch_context)
    tmp = root / "data" / ".raw.csv.tmp"
    tmp.write_text("2\n")
    os.replace(tmp, target)
    got.wait_for(lambda _: str(target) in _seen(got))
    got.items.clear()
    with target.open("a") as fh:
        fh.write("3\n")
    got.wait_for(lambda _: str(target) in _seen(got))


def test_ignored_paths_never_reported(tmp_path: Path, watch_context: WatchContext) -> None:
    root = tmp_path.resolve()
    (root / "src" / "__pycache__").mkdir(parents=True)
    (root / ".pivot").mkdir()
    (root / ".gitignore").write_text("*.log\n")
    (root / ".pivotignore").write_text("scratch/\n")
    (root / "scratch").mkdir()
    _ref, got = _watch(root, watch_context)
    (root / ".pivot" / "state").write_text("x")
    (root / "src" / "__pycache__" / "m.cpython-311.pyc").write_text("x")
    (root / "src" / "run.log").write_text("x")
    (root / "scratch" / "notes.txt").write_text("x")
    (root / "src" / "sentinel.txt").write_text("x")  # written last: its report ends the test
    got.wait_for(lambda _: str(root / "src" / "sentinel.txt") in _seen(got))
    assert _seen(got) == {str(root / "src" / "sentinel.txt")}


def test_new_top_level_folder_and_declared_folder_elsewhere(
    tmp_path: Path, watch_context: WatchContext
) -> None:
    root = (tmp_path / "proj").resolve()
    root.mkdir()
    outside = (tmp_path / "shared").resolve()
    outside.mkdir()
    ref, got = _watch(root, watch_context)
    (root / "newdir").mkdir()
    got.wait_for(lambda _: str(root / "newdir") in _seen(got))
    ref.ask(Ping(), timeout=10)  # the re-plan for the new folder has happened
    (root / "newdir" / "f.txt").write_text("x")
    got.wait_for(lambda _: str(root / "newdir" / "f.txt") in _seen(got))
    ref.tell(DeclaredPaths(frozenset({str(outside)})))
    ref.ask(Ping(), timeout=10)
    (outside / "g.txt").write_text("x")  # scenario 17
    got.wait_for(lambda _: str(outside / "g.txt") in _seen(got))


def test_debouncer_sends_one_batch_for_a_burst(watch_context: WatchContext) -> None:
    ctx, _ = watch_context
    got = Collector()
    ctx.registry.set("coordinator", Probe.start(got))
    ref = Debouncer.start(ctx, 0.05, 2.0, 100, settle=0.05)  # the bulk rule alone
    ctx.registry.set("debouncer", ref)
    for i in range(5_000):
        ref.tell(PathsChanged(frozenset({f"/p/{i}"})))
    got.wait_for(lambda items: sum(b.count for b in items if isinstance(b, Batch)) == 5_000)
    batches = got.of(Batch)
    assert len(batches) <= 2
    assert any(b.overflow for b in batches)
    # Each batch is announced (the coordinator holds pending changes for it).
    notes = got.of(WindowOpened)
    assert notes[0] == WindowOpened(open=False)  # a fresh debouncer has no window
    assert len([n for n in notes if n.open]) == len(batches)


class _Fragile(Shell):
    name = "fragile"

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        return "ok"


def test_supervisor_restarts_then_gives_up(watch_context: WatchContext) -> None:
    ctx, events = watch_context

    def factory(restarted: bool) -> Any:
        return _Fragile.start(ctx)

    sup = Supervisor.start(ctx, {"fragile": factory}, max_restarts=3, window=60)
    ctx.registry.set("supervisor", sup)
    ctx.registry.set("fragile", factory(False))
    for attempt in range(1, 4):
        old = ctx.registry.get("fragile")
        ctx.registry.tell("fragile", "crash")

        def restarted(items: list[Any], n: int = attempt) -> bool:
            return len([e for e in items if isinstance(e, ActorRestarted)]) == n

        events.wait_for(restarted)
        new = ctx.registry.get("fragile")
        assert new is not None and new is not old and new.ask("hello", timeout=10) == "ok"
    ctx.registry.tell("fragile", "crash")
    events.wait_for(lambda items: any(isinstance(e, SupervisorGaveUp) for e in items))
    assert ctx.shutdown.event.is_set() and "boom" in ctx.shutdown.error
    assert len(events.of(ActorCrashed)) == 4


def test_watch_started_event_lists_folders(tmp_path: Path, watch_context: WatchContext) -> None:
    ctx, events = watch_context
    ctx.registry.set("debouncer", Probe.start(Collector()))
    (tmp_path / "src").mkdir()
    FileWatcher.start(ctx, tmp_path).ask(Ping(), timeout=10)
    started = events.of(WatchStarted)
    assert started and str(tmp_path.resolve() / "src") in started[0].deep


def _read_marker() -> str:
    import marker_mod  # type: ignore[import-not-found]

    return f"{os.getpid()}:{marker_mod.VALUE}"


@pytest.mark.parametrize(("jobs", "standby"), [(1, False), (1, True), (2, True)])
def test_restart_gives_new_processes_running_new_code(
    tmp_path: Path, jobs: int, standby: bool
) -> None:
    import sys

    (tmp_path / "marker_mod.py").write_text("VALUE = 'one'\n")
    sys.path.insert(0, str(tmp_path))
    workers = LocalExecutor(jobs=jobs, standby=standby)
    second: set[int] = set()
    try:
        first = workers.restart()
        assert len(first) == jobs  # --jobs N honoured, --jobs 1 is still a worker process
        assert os.getpid() not in first
        a = [workers.call(_read_marker) for _ in range(4 * jobs)]
        assert all(f.result(timeout=60).endswith(":one") for f in a)
        (tmp_path / "marker_mod.py").write_text("VALUE = 'two'\n")
        if jobs == 1:
            # loky's trap: the same process keeps the module it imported.
            stale = workers.call(_read_marker).result(timeout=60)
            assert stale.endswith(":one")
        if standby:
            workers.prepare_spare()
            assert workers.wait_spare(60)
        second = workers.restart()
        assert len(second) == jobs and not (first & second)
        b = [workers.call(_read_marker) for _ in range(4 * jobs)]
        for f in b:
            worker, value = f.result(timeout=60).split(":")
            assert value == "two" and int(worker) in second
    finally:
        workers.close()
        sys.path.remove(str(tmp_path))
    for pid in first | second:
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_loky_reusable_executor_keeps_its_processes() -> None:
    # The trap Workers avoids (DESIGN.md): "kill_workers=True" with unchanged
    # arguments hands back the very same worker processes.
    ex = loky.get_reusable_executor(max_workers=1, kill_workers=True)
    try:
        before = ex.submit(os.getpid).result(timeout=60)
        again = loky.get_reusable_executor(max_workers=1, kill_workers=True)
        assert again.submit(os.getpid).result(timeout=60) == before
    finally:
        ex.shutdown(wait=True, kill_workers=True)


def test_file_watcher_thread_failure_restarts_it_and_rechecks_everything(
    tmp_path: Path, watch_context: WatchContext
) -> None:
    ctx, events = watch_context
    got = Collector()
    ctx.registry.set("debouncer", Probe.start(got))

    def factory(restarted: bool) -> Any:
        return FileWatcher.start(ctx, tmp_path, restarted)

    ctx.registry.set("supervisor", Supervisor.start(ctx, {"file_watcher": factory}))
    first = factory(False)
    ctx.registry.set("file_watcher", first)
    first.ask(Ping(), timeout=10)
    # What a watcher thread does when watchfiles raises (scenario 20).
    first.proxy().thread_failed("simulated watchfiles error").get(timeout=10)
    events.wait_for(lambda items: any(isinstance(e, ActorRestarted) for e in items))
    assert [e.name for e in events.of(ActorCrashed)] == ["file_watcher"]
    assert "simulated watchfiles error" in events.of(ActorCrashed)[0].error
    # The new watcher may have missed changes: it asks for a full re-check...
    got.wait_for(lambda items: any(isinstance(m, PathsChanged) and m.overflow for m in items))
    # ...and it watches: a new file is reported.
    new = ctx.registry.get("file_watcher")
    assert new is not None and new is not first
    new.ask(Ping(), timeout=10)
    (tmp_path / "after.txt").write_text("x")
    got.wait_for(lambda _: str(tmp_path.resolve() / "after.txt") in _seen(got))
    assert not ctx.shutdown.event.is_set()
