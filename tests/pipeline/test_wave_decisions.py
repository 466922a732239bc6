"""The wave's pure decisions: the crash culprit, what may start beside what, stale runs, routing."""

from __future__ import annotations

from pivot.pipeline.crash_recovery import CrashVerdict, after_crash, may_start
from pivot.pipeline.executor import Router
from pivot.pipeline.local_executor import LocalExecutor
from pivot.pipeline.stale_runs import changed_deps, stale_reason


def test_a_stage_that_crashed_alone_is_the_culprit() -> None:
    assert after_crash(["a"], set()) == CrashVerdict(fail=("a",))


def test_stages_lost_together_are_each_run_again_alone() -> None:
    assert after_crash(["a", "b"], set()) == CrashVerdict(retry=("a", "b"))


def test_suspects_that_crash_again_fail() -> None:
    # Only suspects ran (each alone, or all of them again): no more retries.
    assert after_crash(["a", "b"], {"a", "b"}) == CrashVerdict(fail=("a", "b"))


def test_a_new_stage_lost_beside_a_suspect_is_retried_with_it() -> None:
    assert after_crash(["a", "c"], {"a"}) == CrashVerdict(retry=("a", "c"))


def test_a_suspect_runs_alone_and_nothing_starts_beside_one() -> None:
    assert may_start("a", [], {"a"})
    assert not may_start("a", ["b"], {"a"})
    assert not may_start("b", ["a"], {"a"})
    assert may_start("b", ["c"], {"a"})


def test_the_router_sends_named_stages_to_their_executor() -> None:
    local, other = LocalExecutor(1), LocalExecutor(1)  # never started: no process
    router = Router(local, {"train": other, "eval": other})
    assert router.executor_for("train") is other
    assert router.executor_for("prep") is local
    assert list(router) == [local, other]
    assert list(Router(local)) == [local]


def test_a_run_is_stale_when_a_dep_hash_changed_or_the_dep_went() -> None:
    then = {"a.csv": "h1", "b.csv": "h2"}
    assert changed_deps(["a.csv", "b.csv"], then, {"a.csv": "h1", "b.csv": "h2"}) == []
    assert changed_deps(["a.csv", "b.csv"], then, {"a.csv": "h9", "b.csv": "h2"}) == ["a.csv"]
    assert changed_deps(["a.csv", "b.csv"], then, {"a.csv": "h1", "b.csv": None}) == ["b.csv"]
    assert "a.csv" in stale_reason("a.csv") and "next wave" in stale_reason("a.csv")
