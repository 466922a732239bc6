"""The Coordinator's decisions (pivot.watch.coordination.step), without threads or files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pivot.actors.watch_messages import (
    Batch,
    Boot,
    DeclaredPaths,
    ForceAll,
    RunWave,
    WaveDone,
    WindowOpened,
)
from pivot.events.actors import ChangesPending
from pivot.events.pipeline import ChangesDetected, PipelineInvalid, PipelineReloaded, WavePlanFailed
from pivot.names import USAGE_EXIT
from pivot.watch.coordination import examine, is_own_write, step
from pivot.watch.coordination_types import (
    Append,
    BatchExamined,
    Command,
    CoordinatorState,
    Examine,
    Idle,
    Input,
    Load,
    Loading,
    PipelineLoaded,
    PlanFailed,
    PlanWave,
    RequestShutdown,
    Running,
    Settings,
    Tell,
    WavePlanned,
)
from pivot.watch.pending import Taken
from pivot.watch.watched_pipeline import LoadError, PipelineView, PlannedStage, StageInfo

R = Path("/r")
VIEW = PipelineView(
    {
        "a": StageInfo("a", (R / "a.in",), (R / "a.out",), "1"),
        "b": StageInfo("b", (R / "b.in",), (R / "b.out",), "1"),
        "c": StageInfo("c", (R / "a.out",), (R / "c.out",), "1"),
    }
)


def _state(**kw: object) -> CoordinatorState:
    return CoordinatorState(Settings(R, R / "pipeline.py", **kw))  # type: ignore[arg-type]


def _work(commands: list[Command]) -> list[Examine | Load | PlanWave]:
    return [c for c in commands if isinstance(c, Examine | Load | PlanWave)]


def _events(commands: list[Command]) -> list[object]:
    return [e for c in commands if isinstance(c, Append) for e in c.events]


def _told(commands: list[Command], to: str) -> list[object]:
    return [c.message for c in commands if isinstance(c, Tell) and c.to == to]


def _planned(names: str) -> tuple[PlannedStage, ...]:
    return tuple(PlannedStage(n, ("test",)) for n in names)


def _booted(s: CoordinatorState, view: PipelineView = VIEW) -> CoordinatorState:
    """Boot with ``view`` and run (then finish) the initial wave of stage a."""
    s, cmds = step(s, Boot())
    (load,) = _work(cmds)
    s, cmds = step(s, PipelineLoaded(load.batch_id, view))
    (plan,) = _work(cmds)
    s, cmds = step(s, WavePlanned(plan.batch_id, view, _planned("a")))
    (run,) = _told(cmds, "worker_pool")
    assert isinstance(run, RunWave)
    s, _ = step(s, WaveDone(run.wave_id, ("a",)))
    return s


def _examined(
    s: CoordinatorState, cmds: list[Command], code: set[str], data: set[str]
) -> tuple[CoordinatorState, list[Command]]:
    (ex,) = _work(cmds)
    assert isinstance(ex, Examine)
    return step(
        s, BatchExamined(ex.batch_id, ex.taken, frozenset(code), frozenset(data), False, {})
    )


def test_boot_loads_tells_the_watcher_plans_and_runs_what_is_stale() -> None:
    s, cmds = step(_state(), Boot())
    assert cmds == [Load(cmds[0].batch_id)]  # type: ignore[union-attr]
    assert isinstance(s.phase, Loading) and s.phase.trigger == "initial"
    s, cmds = step(s, PipelineLoaded(s.phase.batch_id, VIEW))
    (reloaded,) = _events(cmds)
    assert isinstance(reloaded, PipelineReloaded) and reloaded.added == ("a", "b", "c")
    (declared,) = _told(cmds, "file_watcher")
    assert isinstance(declared, DeclaredPaths) and str(R / "a.in") in (declared.paths or ())
    (plan,) = _work(cmds)
    assert plan == PlanWave(plan.batch_id, VIEW, None, False)
    s, cmds = step(s, WavePlanned(plan.batch_id, VIEW, _planned("ab")))
    (run,) = _told(cmds, "worker_pool")
    assert isinstance(run, RunWave) and run.trigger == "initial" and not run.restart
    assert run.stages == _planned("ab") and isinstance(s.phase, Running)
    s, cmds = step(s, WaveDone(run.wave_id, ("a", "b")))
    assert s.phase == Idle() and cmds == []


def test_force_first_forces_the_first_wave_but_not_after_a_restart() -> None:
    s, cmds = step(_state(force_first=True), Boot())
    s, cmds = step(s, PipelineLoaded(_work(cmds)[0].batch_id, VIEW))
    assert _work(cmds)[0] == PlanWave(_work(cmds)[0].batch_id, VIEW, None, True)
    s, cmds = step(_state(force_first=True, restarted=True), Boot())
    s, cmds = step(s, PipelineLoaded(_work(cmds)[0].batch_id, VIEW))
    assert _work(cmds)[0].force is False  # type: ignore[union-attr]


def test_nothing_stale_runs_nothing_and_a_second_boot_is_ignored() -> None:
    s, cmds = step(_state(), Boot())
    s, cmds = step(s, PipelineLoaded(_work(cmds)[0].batch_id, VIEW))
    s, cmds = step(s, WavePlanned(_work(cmds)[0].batch_id, VIEW, ()))
    assert s.phase == Idle() and cmds == []
    assert step(s, Boot()) == (s, [])


def test_changes_during_a_wave_wait_and_form_exactly_one_next_wave() -> None:
    s = _booted(_state())
    s, cmds = step(s, Batch(frozenset({"/r/a.in"}), 1))
    s, cmds = _examined(s, cmds, set(), {"/r/a.in"})
    (detected,) = _events(cmds)
    assert isinstance(detected, ChangesDetected) and detected.kind == "data"
    assert detected.paths == ("a.in",)
    (plan,) = _work(cmds)
    assert plan.targets == {"a", "c"}  # type: ignore[union-attr]
    s, cmds = step(s, WavePlanned(plan.batch_id, VIEW, _planned("ac")))
    (run,) = _told(cmds, "worker_pool")
    for n, path in enumerate(["/r/b.in", "/r/a.in", "/r/b.in"], 1):
        s, cmds = step(s, Batch(frozenset({path}), 1))
        (pending,) = _events(cmds)
        assert isinstance(pending, ChangesPending) and pending.count == n
        assert _work(cmds) == []
    s, cmds = step(s, WaveDone(run.wave_id, ("a", "c")))  # type: ignore[attr-defined]
    (ex,) = _work(cmds)
    assert isinstance(ex, Examine) and ex.taken == Taken(
        frozenset({"/r/a.in", "/r/b.in"}), 3, False, False
    )


def test_a_batch_during_a_load_waits_for_it_and_an_open_window_holds_it() -> None:
    s = _booted(_state())
    s, cmds = step(s, Batch(frozenset({"/r/lib.py"}), 1))
    s, cmds = _examined(s, cmds, {"/r/lib.py"}, set())
    (load,) = _work(cmds)
    assert load == Load(load.batch_id, frozenset({"/r/lib.py"}))  # drops its bytecode
    s, cmds = step(s, Batch(frozenset({"/r/b.in"}), 1))
    assert isinstance(_events(cmds)[0], ChangesPending) and _work(cmds) == []
    s, cmds = step(s, WindowOpened())  # another batch is on its way
    s, cmds = step(s, PipelineLoaded(load.batch_id, LoadError("syntax error", "lib.py", 3)))
    (invalid,) = _events(cmds)
    assert isinstance(invalid, PipelineInvalid) and invalid.line == 3 and s.invalid
    assert _work(cmds) == [] and s.phase == Idle()  # the window is open: wait for its batch
    s, cmds = step(s, Batch(frozenset({"/r/a.in"}), 1))
    (ex,) = _work(cmds)
    assert isinstance(ex, Examine) and ex.taken.paths == {"/r/a.in", "/r/b.in"} and ex.invalid


def test_a_broken_pipeline_runs_nothing_until_code_changes_or_force() -> None:
    s = _booted(_state())
    s = replace(s, invalid=True)
    s, cmds = step(s, Batch(frozenset({"/r/a.in"}), 1))
    s, cmds = _examined(s, cmds, set(), {"/r/a.in"})
    assert _work(cmds) == [] and s.phase == Idle()
    s, cmds = step(s, ForceAll())
    s, cmds = _examined(s, cmds, set(), set())
    (load,) = _work(cmds)
    assert isinstance(load, Load) and isinstance(s.phase, Loading) and s.phase.force
    s, cmds = step(s, PipelineLoaded(load.batch_id, VIEW))
    (plan,) = _work(cmds)
    assert plan == PlanWave(plan.batch_id, VIEW, None, True) and not s.invalid
    s, cmds = step(s, WavePlanned(plan.batch_id, VIEW, _planned("abc")))
    (run,) = _told(cmds, "worker_pool")
    assert isinstance(run, RunWave) and run.restart and run.trigger == "force"


def test_a_plan_that_fails_is_reported_and_the_next_change_plans_again() -> None:
    s = _booted(_state())
    s, cmds = step(s, Batch(frozenset({"/r/a.in"}), 1))
    s, cmds = _examined(s, cmds, set(), {"/r/a.in"})
    (plan,) = _work(cmds)
    fifo = "a.out is a named pipe (FIFO), not a regular file or directory"
    s, cmds = step(s, PlanFailed(plan.batch_id, fifo, "pipeline.py", 7))
    (failed,) = _events(cmds)
    assert isinstance(failed, WavePlanFailed) and failed.error == fifo and failed.line == 7
    assert failed.correlation_id == plan.batch_id
    assert s.phase == Idle() and not s.invalid and _told(cmds, "worker_pool") == []
    # The pipeline is still valid: a data change (the FIFO replaced by a file) plans again.
    s, cmds = step(s, Batch(frozenset({"/r/a.out"}), 1))
    s, cmds = _examined(s, cmds, set(), {"/r/a.out"})
    (plan,) = _work(cmds)
    assert isinstance(plan, PlanWave) and plan.targets == frozenset(
        {"a", "c"}
    )  # its producer, its user
    s, cmds = step(s, WavePlanned(plan.batch_id, VIEW, _planned("ac")))
    (run,) = _told(cmds, "worker_pool")
    assert isinstance(run, RunWave) and run.stages == _planned("ac")


def test_an_unknown_target_stops_at_boot_and_is_an_error_later() -> None:
    s, cmds = step(_state(targets=("nope",)), Boot())
    s, cmds = step(s, PipelineLoaded(_work(cmds)[0].batch_id, VIEW))
    assert cmds == [RequestShutdown(cmds[0].error, USAGE_EXIT)]  # type: ignore[union-attr]
    assert "nope" in cmds[0].error and s.stopped  # type: ignore[union-attr]
    assert step(s, Batch(frozenset({"/r/a.in"}), 1)) == (s, [])
    s = _booted(_state(targets=("c",)))
    s, cmds = step(s, Batch(frozenset({"/r/p.py"}), 1))
    s, cmds = _examined(s, cmds, {"/r/p.py"}, set())
    renamed = PipelineView({"x": VIEW.stages["a"]})
    s, cmds = step(s, PipelineLoaded(_work(cmds)[0].batch_id, renamed))
    (invalid,) = _events(cmds)
    assert isinstance(invalid, PipelineInvalid) and invalid.file == "pipeline.py"
    assert s.view is VIEW and not s.stopped


def test_targets_limit_every_wave_to_them_and_their_upstream() -> None:
    s, cmds = step(_state(targets=("c",)), Boot())
    s, cmds = step(s, PipelineLoaded(_work(cmds)[0].batch_id, VIEW))
    assert _work(cmds)[0].targets == {"a", "c"}  # type: ignore[union-attr]
    (reloaded,) = _events(cmds)
    assert isinstance(reloaded, PipelineReloaded) and reloaded.stages == ("a", "c")
    s, cmds = step(s, WavePlanned(_work(cmds)[0].batch_id, VIEW, ()))
    s, cmds = step(s, Batch(frozenset({"/r/b.in"}), 1))
    s, cmds = _examined(s, cmds, set(), {"/r/b.in"})
    assert _work(cmds)[0].targets == frozenset()  # type: ignore[union-attr]


def test_a_failed_restart_is_retried_with_its_stages_by_the_next_wave() -> None:
    s = _booted(_state())
    s, cmds = step(s, Batch(frozenset({"/r/lib.py"}), 1))
    s, cmds = _examined(s, cmds, {"/r/lib.py"}, set())
    s, cmds = step(s, PipelineLoaded(_work(cmds)[0].batch_id, VIEW))
    s, cmds = step(s, WavePlanned(_work(cmds)[0].batch_id, VIEW, _planned("a")))
    (run,) = _told(cmds, "worker_pool")
    assert isinstance(run, RunWave) and run.restart and run.reason == "code changed"
    s, cmds = step(s, WaveDone(run.wave_id, ("a",), restart_failed=True))
    s, cmds = step(s, Batch(frozenset({"/r/b.in"}), 1))
    s, cmds = _examined(s, cmds, set(), {"/r/b.in"})
    assert _work(cmds)[0].targets == {"a", "b"}  # type: ignore[union-attr]
    s, cmds = step(s, WavePlanned(_work(cmds)[0].batch_id, VIEW, _planned("ab")))
    (run,) = _told(cmds, "worker_pool")
    assert isinstance(run, RunWave) and run.restart and s.carry == frozenset()


def test_examine_drops_unchanged_code_vanished_files_and_own_writes() -> None:
    taken = Taken(frozenset({"/r/lib.py", "/r/tmp123", "/r/a.out", "/r/b.in"}), 4, False, False)
    cmd = Examine("x", taken, VIEW, False, {}, {"/r/lib.py": "same"})
    done = examine(
        cmd,
        R,
        R / "pipeline.py",
        digest=lambda p: "same",
        exists=lambda p: p != "/r/tmp123",
        is_recorded=lambda view, stage, out: stage == "a",
        is_dir=lambda p: False,
    )
    assert done.code == frozenset() and done.data == {"/r/b.in"}
    assert done.code_seen == {"/r/lib.py": "same"}
    edited = examine(
        replace(cmd, code_seen={}),
        R,
        R / "pipeline.py",
        digest=lambda p: "new",
        exists=lambda p: True,
        is_recorded=lambda view, stage, out: True,
        is_dir=lambda p: False,
    )
    # A reload follows: own writes are not examined (the plan decides after it).
    assert edited.code == {"/r/lib.py"} and "/r/a.out" in edited.data


# -- any order of inputs: one piece of work and one wave at a time, no change lost ---
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.sets(st.sampled_from(["/r/a.in", "/r/b.in", "/r/x.py"]))),
        st.tuples(st.just("window"), st.booleans()),
        st.tuples(st.just("force"), st.none()),
        st.tuples(st.just("work"), st.booleans()),  # answer the work in flight (ok / fails)
        st.tuples(st.just("wave"), st.booleans()),  # end the wave (restart failed?)
    ),
    max_size=40,
)


@given(ACTIONS)
@settings(max_examples=300, deadline=None)
def test_any_order_of_inputs_keeps_the_rules(actions: list[tuple[str, object]]) -> None:
    s, cmds = step(_state(), Boot())
    work: list[Examine | Load | PlanWave] = _work(cmds)
    wave: str | None = None
    sent: set[str] = set()
    examined: set[str] = set()

    def apply(message: Input) -> None:
        nonlocal s, wave
        s, out = step(s, message)
        new = _work(out)
        assert len(work) + len(new) <= 1, "two pieces of work in flight"
        work.extend(new)
        for ex in new:
            if isinstance(ex, Examine):
                examined.update(ex.taken.paths)
        for run in _told(out, "worker_pool"):
            assert wave is None and not work, "a wave started while another was in hand"
            assert isinstance(run, RunWave)
            wave = run.wave_id

    def answer(ok: bool) -> None:
        cmd = work.pop()
        if isinstance(cmd, Examine):
            code = frozenset(p for p in cmd.taken.paths if p.endswith(".py"))
            data = cmd.taken.paths - code
            apply(BatchExamined(cmd.batch_id, cmd.taken, code, data, False, {}))
        elif isinstance(cmd, Load):
            apply(PipelineLoaded(cmd.batch_id, VIEW if ok else LoadError("broken")))
        else:
            if ok:
                apply(WavePlanned(cmd.batch_id, cmd.view, _planned("ab")))
            elif len(sent) % 2:  # nothing stale, or a plan that fails: both end idle
                apply(WavePlanned(cmd.batch_id, cmd.view, ()))
            else:
                apply(PlanFailed(cmd.batch_id, "data/x is a named pipe (FIFO)"))

    for kind, arg in actions:
        if kind == "batch" and arg:
            assert isinstance(arg, set)
            paths = frozenset(str(p) for p in arg)
            sent |= paths
            apply(Batch(paths, len(paths)))
        elif kind == "window":
            apply(WindowOpened(bool(arg)))
        elif kind == "force":
            apply(ForceAll())
        elif kind == "work" and work:
            answer(bool(arg))
        elif kind == "wave" and wave is not None:
            done, wave = wave, None
            apply(WaveDone(done, ("a",), restart_failed=bool(arg)))
    # Drain: the window closes, every piece of work is answered, every wave ends.
    apply(WindowOpened(False))
    for _ in range(100):
        if work:
            answer(True)
        elif wave is not None:
            done, wave = wave, None
            apply(WaveDone(done, ("a",)))
        else:
            break
    assert s.phase == Idle() and s.pending.empty
    assert sent <= examined  # every changed path was looked at by some wave


def test_an_output_is_its_stages_own_write_when_the_last_wave_or_record_left_it() -> None:
    reads: list[int] = []

    def recorded(outs: dict[str, str | None] | None) -> Callable[[], dict[str, str | None] | None]:
        def read() -> dict[str, str | None] | None:
            reads.append(1)
            return outs

        return read

    # What the last wave left (a failed run's writes too): the records are not read.
    assert is_own_write("o.txt", "h1", {"o.txt": "h1"}, recorded(None))
    assert reads == []
    # What the last success recorded.
    assert is_own_write("o.txt", "h2", {"o.txt": "h1"}, recorded({"o.txt": "h2"}))
    # Someone else's edit: neither matches; a stage never run has no record.
    assert not is_own_write("o.txt", "h3", {"o.txt": "h1"}, recorded({"o.txt": "h2"}))
    assert not is_own_write("o.txt", "h3", {}, recorded(None))
    # A deleted output the wave had also left missing (None) is its own.
    assert is_own_write("o.txt", None, {"o.txt": None}, recorded(None))
    assert not is_own_write("o.txt", None, {}, recorded({"other.txt": None}))
