"""A code edit while a wave runs SLURM jobs: the Coordinator's pure decisions (no threads)."""

from __future__ import annotations

from pathlib import Path

from pivot.actors.watch_messages import Batch, Boot, CancelStaleRuns, RunWave, WaveDone
from pivot.events.pipeline import PipelineReloaded, WaveCodeChecked
from pivot.pipeline.stale_runs import CODE_STALE_REASON, StaleRuns, changed_code
from pivot.watch.coordination import step
from pivot.watch.coordination_types import (
    Append,
    BatchExamined,
    CheckRunningCode,
    Command,
    CoordinatorState,
    Examine,
    Load,
    PipelineLoaded,
    PlanWave,
    Running,
    RunningCodeChecked,
    Settings,
    Tell,
    WavePlanned,
)
from pivot.watch.watched_pipeline import LoadError, PipelineView, PlannedStage, StageInfo

R = Path("/r")


def _view(train: str = "1", prep: str = "1", *, jobs: bool = True) -> PipelineView:
    return PipelineView(
        {
            "prep": StageInfo("prep", (R / "raw",), (R / "a",), prep),
            "train": StageInfo("train", (R / "a",), (R / "m",), train, job=jobs),
        }
    )


def _running(view: PipelineView) -> tuple[CoordinatorState, str]:
    """Booted with ``view``; its initial wave (prep, train) runs."""
    s, cmds = step(CoordinatorState(Settings(R, R / "pipeline.py", id_prefix="x")), Boot())
    (load,) = cmds
    assert isinstance(load, Load)
    s, cmds = step(s, PipelineLoaded(load.batch_id, view))
    (plan,) = [c for c in cmds if isinstance(c, PlanWave)]
    staged = (PlannedStage("prep"), PlannedStage("train"))
    s, cmds = step(s, WavePlanned(plan.batch_id, view, staged))
    (run,) = [c.message for c in cmds if isinstance(c, Tell)]
    assert isinstance(run, RunWave)
    return s, run.wave_id


def _checks(cmds: list[Command]) -> list[CheckRunningCode]:
    return [c for c in cmds if isinstance(c, CheckRunningCode)]


def _events(cmds: list[Command]) -> list[object]:
    return [e for c in cmds if isinstance(c, Append) for e in c.events]


def _told(cmds: list[Command]) -> list[object]:
    return [c.message for c in cmds if isinstance(c, Tell) and c.to == "worker_pool"]


def test_the_running_wave_knows_which_of_its_stages_run_as_jobs() -> None:
    s, wave = _running(_view())
    assert s.phase == Running(wave, frozenset({"train"}))


def test_a_code_edit_while_jobs_run_loads_beside_the_wave_and_cancels_the_stale_ones() -> None:
    s, wave = _running(_view())
    s, cmds = step(s, Batch(frozenset({"/r/helpers.py", "/r/raw"}), 2))
    assert _checks(cmds) == [CheckRunningCode(wave, frozenset({"/r/helpers.py"}))]
    assert s.checking and not s.pending.empty  # the batch still forms the next wave
    s, cmds = step(s, RunningCodeChecked(wave, _view(train="2", prep="2")))
    assert _told(cmds) == [CancelStaleRuns(wave, ("train",), CODE_STALE_REASON)]
    (checked,) = _events(cmds)
    assert isinstance(checked, WaveCodeChecked) and checked.stale == ("train",)
    assert not s.checking
    # The wave ends: the pending edit is examined as usual (it reloads, train runs anew).
    s, cmds = step(s, WaveDone(wave, ("prep", "train")))
    assert [type(c) for c in cmds] == [Examine]


def test_an_edit_that_leaves_the_jobs_stage_alone_cancels_nothing() -> None:
    s, wave = _running(_view())
    s, cmds = step(s, Batch(frozenset({"/r/pipeline.py"}), 1))
    s, cmds = step(s, RunningCodeChecked(wave, _view(prep="2")))
    assert _told(cmds) == []
    (checked,) = _events(cmds)
    assert isinstance(checked, WaveCodeChecked) and checked.stale == ()


def test_data_edits_and_waves_without_jobs_start_no_check() -> None:
    s, _ = _running(_view())
    s, cmds = step(s, Batch(frozenset({"/r/raw"}), 1))  # the wave checks deps itself
    assert _checks(cmds) == [] and not s.checking
    s, _ = _running(_view(jobs=False))  # local stages finish on the code they started with
    s, cmds = step(s, Batch(frozenset({"/r/helpers.py"}), 1))
    assert _checks(cmds) == [] and not s.checking


def test_one_check_at_a_time_and_an_edit_meanwhile_is_checked_after_it() -> None:
    s, wave = _running(_view())
    s, cmds = step(s, Batch(frozenset({"/r/a.py"}), 1))
    s, cmds = step(s, Batch(frozenset({"/r/b.py"}), 1))
    s, cmds = step(s, Batch(frozenset({"/r/params.yaml"}), 1))
    assert _checks(cmds) == []
    s, cmds = step(s, RunningCodeChecked(wave, _view()))
    # Over every code path the next wave's batch holds: the load reads them all.
    again = frozenset({"/r/a.py", "/r/b.py", "/r/params.yaml"})
    assert _checks(cmds) == [CheckRunningCode(wave, again)]
    assert s.checking and s.recheck == frozenset()


def test_no_next_wave_is_prepared_while_a_check_loads() -> None:
    s, wave = _running(_view())
    s, cmds = step(s, Batch(frozenset({"/r/a.py"}), 1))
    s, cmds = step(s, WaveDone(wave, ("prep", "train")))
    assert cmds == []  # two loads never run at once
    s, cmds = step(s, RunningCodeChecked(wave, _view(train="2")))
    assert _told(cmds) == [] and _events(cmds) == []  # for a wave no longer running
    assert [type(c) for c in cmds] == [Examine]


def test_a_load_error_cancels_nothing() -> None:
    s, wave = _running(_view())
    s, cmds = step(s, Batch(frozenset({"/r/a.py"}), 1))
    s, cmds = step(s, RunningCodeChecked(wave, LoadError("SyntaxError", "a.py", 3)))
    assert _told(cmds) == []
    (checked,) = _events(cmds)
    assert isinstance(checked, WaveCodeChecked) and checked.error == "SyntaxError"


H = "/r/helpers.py"


def _checked(
    view: PipelineView | LoadError, before: str = "d2", after: str = "d2"
) -> tuple[CoordinatorState, str]:
    """A helper edit while the initial wave ran was checked (``view``, the helper's digest
    ``before``/``after`` the load); the wave ended: the edit's batch is being examined."""
    s, wave = _running(_view())
    s, _ = step(s, Batch(frozenset({H}), 1))
    s, _ = step(s, RunningCodeChecked(wave, view, {}, {H: before}, {H: after}))
    return s, wave


def _examine(
    s: CoordinatorState,
    wave: str,
    seen: dict[str, str | None],
    code: frozenset[str] = frozenset({H}),
) -> list[Command]:
    s, cmds = step(s, WaveDone(wave, ("prep", "train")))
    (examine,) = cmds
    assert isinstance(examine, Examine)
    done = BatchExamined(examine.batch_id, examine.taken, code, frozenset(), False, seen)
    return step(s, done)[1]


def test_the_next_wave_runs_on_the_checked_load_when_its_code_is_unchanged() -> None:
    checked = _view(train="2")
    s, wave = _checked(checked)
    cmds = _examine(s, wave, {H: "d2"})
    assert not any(isinstance(c, Load) for c in cmds)  # one load, not two
    (reloaded,) = [e for e in _events(cmds) if isinstance(e, PipelineReloaded)]
    assert reloaded.modified == ("train",)
    (plan,) = [c for c in cmds if isinstance(c, PlanWave)]
    assert plan.view is checked


def test_after_two_checks_the_next_wave_runs_on_the_last_which_read_both_edits() -> None:
    p = "/r/pipeline.py"
    s, wave = _running(_view())
    s, _ = step(s, Batch(frozenset({p}), 1))
    s, _ = step(s, RunningCodeChecked(wave, _view(prep="2"), {}, {p: "p2"}, {p: "p2"}))
    s, cmds = step(s, Batch(frozenset({H}), 1))
    assert _checks(cmds) == [CheckRunningCode(wave, frozenset({p, H}))]
    last, read = _view(prep="2", train="2"), {p: "p2", H: "d2"}
    s, _ = step(s, RunningCodeChecked(wave, last, {}, read, read))
    cmds = _examine(s, wave, {p: "p2", H: "d2"}, frozenset({p, H}))
    assert not any(isinstance(c, Load) for c in cmds)
    assert [c.view for c in cmds if isinstance(c, PlanWave)] == [last]


def test_a_file_changed_after_the_check_or_during_its_load_is_loaded_again() -> None:
    s, wave = _checked(_view(train="2"))
    assert [type(c) for c in _examine(s, wave, {H: "d3"}) if isinstance(c, Load)] == [Load]
    s, wave = _checked(_view(train="2"), before="d2", after="d3")  # edited while it loaded
    assert [c for c in _examine(s, wave, {H: "d3"}) if isinstance(c, Load)] != []


def test_a_changed_file_the_check_did_not_read_is_loaded_again() -> None:
    s, wave = _checked(_view(train="2"))
    other = frozenset({H, "/r/other.py"})
    assert [
        c for c in _examine(s, wave, {H: "d2", "/r/other.py": "x"}, other) if isinstance(c, Load)
    ]


def test_a_failed_check_or_one_overtaken_by_an_edit_is_not_reused() -> None:
    s, wave = _checked(LoadError("SyntaxError", "helpers.py", 1))
    assert s.checked is None
    s, wave = _running(_view())
    s, _ = step(s, Batch(frozenset({H}), 1))
    s, _ = step(s, Batch(frozenset({"/r/b.py"}), 1))  # while the check loads
    s, cmds = step(s, RunningCodeChecked(wave, _view(train="2"), {}, {H: "d2"}, {H: "d2"}))
    assert s.checked is None and _checks(cmds) != []  # the next check's load counts


def test_changed_code_names_the_stages_whose_fingerprint_changed_or_that_went() -> None:
    then = {"a": "1", "b": "1", "c": "1"}
    assert changed_code(["c", "a", "b"], then, {"a": "2", "b": "1"}) == ("a", "c")
    assert changed_code([], then, {}) == ()


def test_stale_runs_keep_the_first_reason_of_each_stage() -> None:
    marks = StaleRuns()
    marks.mark(["a"], "first")
    marks.mark(["a", "b"], "second")
    assert marks.marked() == {"a": "first", "b": "second"}


def test_a_runs_reason_is_its_first_changed_dep_else_its_mark() -> None:
    marks = StaleRuns()
    assert marks.reason("train", ()) is None
    marks.mark(["train"], CODE_STALE_REASON)
    assert marks.reason("train", ()) == CODE_STALE_REASON
    assert "(a.csv)" in (marks.reason("train", ["a.csv", "b.csv"]) or "")
    assert marks.reason("prep", ()) is None
