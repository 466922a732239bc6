"""Pure decision logic of pivot watch: exact, no threads, no clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot.events import pipeline as ev
from pivot.watch.affected import (
    affected_stages,
    diff_stages,
    downstream,
    drop_own_writes,
    symlink_aliases,
    unalias,
    upstream,
)
from pivot.watch.board import Board, json_line, plain_line
from pivot.watch.classify import classify
from pivot.watch.debounce import Debounce
from pivot.watch.ignore import IgnoreRules, parse_rules
from pivot.watch.paths import PathFilter, dirs_to_watch
from pivot.watch.pending import Pending
from pivot.watch.supervision import RestartBudget
from pivot.watch.watched_pipeline import PipelineView, StageInfo

# -- debounce -----------------------------------------------------------------


def test_quiet_period_closes_only_after_silence() -> None:
    d = Debounce(quiet=0.1, max_wait=2.0)
    for i in range(5):  # scenario 1: 5 writes 20 ms apart -> one batch
        d.add(["/p/a"], now=i * 0.02)
        assert not d.ready(i * 0.02 + 0.05)
    assert d.deadline() == pytest.approx(0.08 + 0.1)
    assert not d.ready(0.17)
    assert d.ready(0.18)
    batch = d.take()
    assert batch.paths == {"/p/a"} and batch.count == 5 and not batch.overflow
    assert not d.pending and d.deadline() is None


def test_max_wait_closes_a_never_ending_stream() -> None:
    d = Debounce(quiet=0.1, max_wait=2.0)
    t = 0.0
    while not d.ready(t):  # scenario 2: writes every 50 ms never go quiet
        d.add([f"/p/{t:.2f}"], now=t)
        t += 0.05
    assert t == pytest.approx(2.0, abs=0.06)


def test_burst_larger_than_memory_becomes_overflow() -> None:
    d = Debounce(max_paths=100)
    d.add((f"/p/{i}" for i in range(100_000)), now=0.0)
    batch = d.take()
    assert batch.overflow and batch.count == 100_000
    assert len(batch.paths) <= 20


def test_overflow_from_source_is_kept() -> None:
    d = Debounce()
    d.add([], now=1.0, overflow=True)
    assert d.pending and d.take().overflow


def test_pending_merges_waves_and_bounds_memory() -> None:
    from pivot.watch.debounce import Batch

    p = Pending(max_paths=3)
    assert p.empty
    p = p.add(Batch(frozenset({"a"}), 1)).add(Batch(frozenset({"b"}), 2))
    t, p = p.take()
    assert t.paths == {"a", "b"} and t.count == 3 and not t.overflow and p.empty
    t, p = p.add(Batch(frozenset({"a", "b", "c", "d"}), 4)).take()
    assert t.overflow and p.empty and p.max_paths == 3
    assert p.force().take()[0].force
    assert (
        p.add(Batch(frozenset(), 1, overflow=True)).add(Batch(frozenset({"x"}), 1)).paths == set()
    )


# -- ignore rules --------------------------------------------------------------


def test_gitignore_syntax(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text(
        "# comment\n*.log\n!keep.log\nbuild/\n/top.txt\ndocs/**/*.tmp\n\\#hash\n"
    )
    rules = IgnoreRules(tmp_path)
    (tmp_path / "build").mkdir()
    assert rules.is_ignored("a.log")
    assert rules.is_ignored("sub/dir/b.log")
    assert not rules.is_ignored("keep.log")
    assert rules.is_ignored("build", is_dir=True)
    assert rules.is_ignored("build/x.txt")
    assert not rules.is_ignored("build.txt")
    assert rules.is_ignored("top.txt")
    assert not rules.is_ignored("sub/top.txt")
    assert rules.is_ignored("docs/a/b/c.tmp") and rules.is_ignored("docs/c.tmp")
    assert rules.is_ignored("#hash")


def test_builtin_and_always_ignored(tmp_path: Path) -> None:
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored(".pivot/state.db")
    assert rules.is_ignored(".git/index")
    assert rules.is_ignored("pkg/__pycache__/m.cpython-311.pyc")
    assert rules.is_ignored("m.pyc")
    assert rules.is_ignored(".stages.py.swp")
    assert not rules.is_ignored("stages.py")


def test_pivotignore_negation_overrides_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("data/\n*.csv\n")
    (tmp_path / ".pivotignore").write_text("!*.csv\nscratch.py\n")
    rules = IgnoreRules(tmp_path)
    assert not rules.is_ignored("raw.csv")
    assert rules.is_ignored("data/raw.csv")  # inside an ignored folder: stays ignored (git rule)
    assert rules.is_ignored("scratch.py")


def test_nested_gitignore(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("local.txt\n/anchored.txt\n")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("sub/local.txt")
    assert rules.is_ignored("sub/deeper/local.txt")
    assert rules.is_ignored("sub/anchored.txt")
    assert not rules.is_ignored("sub/deeper/anchored.txt")
    assert not rules.is_ignored("local.txt")


def test_parse_rules_records_source_and_line() -> None:
    rules = parse_rules("\n# c\n!x/\n", "f")
    assert len(rules) == 1 and rules[0].negated and rules[0].dir_only and rules[0].line == 3


def test_declared_paths_win_over_gitignore_but_not_pivotignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("data/\n")
    (tmp_path / ".pivotignore").write_text("data/secret.csv\n")
    (tmp_path / "data").mkdir()
    f = PathFilter(tmp_path, [Path("data")])
    root = tmp_path.resolve()
    assert f.accept(str(root / "data" / "raw.csv"))
    assert not f.accept(str(root / "data" / "secret.csv"))
    assert not f.accept(str(root / ".pivot" / "events.db"))
    f.set_declared([])
    assert not f.accept(str(root / "data" / "raw.csv"))


def test_dirs_to_watch_skips_ignored_trees_and_adds_outside_deps(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    for d in ("src", ".venv", ".git", ".pivot", "data", "big"):
        (proj / d).mkdir(parents=True)
    (proj / ".gitignore").write_text(".venv/\ndata/\nbig/\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f.csv").write_text("x")
    (tmp_path / "shared").mkdir()
    rules = IgnoreRules(proj)
    dirs = dirs_to_watch(
        proj,
        rules,
        [proj / "data", tmp_path / "elsewhere" / "f.csv", tmp_path / "shared"],
    )
    root = proj.resolve()
    assert root / "src" in dirs.deep and root / "data" in dirs.deep
    assert all(p.name not in {".venv", ".git", ".pivot", "big"} for p in dirs.deep)
    assert root in dirs.flat and tmp_path / "elsewhere" in dirs.flat
    assert tmp_path / "shared" in dirs.deep


# -- classification and affected stages ---------------------------------------


def test_classify(tmp_path: Path) -> None:
    root = tmp_path
    c = classify(
        [str(root / "lib/u.py"), str(root / "data/x.csv"), str(root / "params.yaml")], root
    )
    assert c.kind == "code"
    assert c.code == {str(root / "lib/u.py"), str(root / "params.yaml")}
    assert c.data == {str(root / "data/x.csv")}
    assert classify([str(root / "a/.pivotignore")], root).ignore_changed
    assert classify([str(root / "a.csv")], root).kind == "data"
    assert classify(["/elsewhere/x.py"], root).kind == "data"


def _view(*stages: StageInfo) -> PipelineView:
    return PipelineView({s.name: s for s in stages})


R = Path("/r")
LINEAR = _view(
    StageInfo("a", (R / "in.csv",), (R / "a.out",)),
    StageInfo("b", (R / "a.out",), (R / "b.out",)),
    StageInfo("c", (R / "b.out",), (R / "c.out",)),
)
DIAMOND = _view(
    StageInfo("a", (R / "a.in",), (R / "a.out",)),
    StageInfo("b", (R / "b.in",), (R / "b.out",)),
    StageInfo("c", (R / "c.in",), (R / "c.out",)),
    StageInfo("d", (R / "a.out", R / "b.out", R / "c.out"), (R / "d.out",)),
    StageInfo("dirs", (R / "folder",), (R / "outdir",)),
    StageInfo("after_dir", (R / "outdir" / "part.txt",), ()),
)


def test_linear_affected() -> None:  # scenario 7
    assert affected_stages(LINEAR, ["/r/in.csv"]) == {"a", "b", "c"}
    assert affected_stages(LINEAR, ["/r/b.out"]) == {"b", "c"}  # producer restores, then c
    assert affected_stages(LINEAR, ["/r/unused.txt"]) == set()  # scenario 4
    assert upstream(LINEAR, ["c"]) == {"a", "b", "c"}
    assert downstream(LINEAR, ["b"]) == {"b", "c"}


def test_fan_in_and_directory_deps() -> None:  # scenarios 8 and 9
    assert affected_stages(DIAMOND, ["/r/b.in"]) == {"b", "d"}
    assert affected_stages(DIAMOND, ["/r/folder/new.txt"]) == {"dirs", "after_dir"}
    assert affected_stages(DIAMOND, ["/r/outdir/part.txt"]) == {"dirs", "after_dir"}


def test_own_writes_are_dropped_external_edits_kept() -> None:
    recorded = {("a", R / "a.out"): True, ("b", R / "b.out"): False}
    kept = drop_own_writes(
        LINEAR, ["/r/a.out", "/r/b.out", "/r/in.csv"], lambda s, o: recorded[(s, o)]
    )
    assert kept == {"/r/b.out", "/r/in.csv"}


def test_diff_stages() -> None:
    new = _view(
        StageInfo("a", (R / "in.csv",), (R / "a.out",), "changed"),
        StageInfo("b", (R / "a.out",), (R / "b.out",)),
        StageInfo("z"),
    )
    assert diff_stages(LINEAR, new) == (("z",), ("c",), ("a",))
    assert diff_stages(None, new)[0] == ("a", "b", "z")


# -- supervision and display ---------------------------------------------------


def test_restart_budget() -> None:
    b = RestartBudget(max_restarts=3, window=10)
    assert b.allow(0) and b.allow(1) and b.allow(2)
    assert not b.allow(3)
    assert b.allow(12.5)  # the window moved on


def test_board_and_lines() -> None:
    board = Board()
    events = [
        ev.PipelineReloaded(added=("a", "b")),
        ev.WaveStarted(wave_id="w1234567890", trigger="initial", stages=("a",)),
        ev.StageStarted(stage="a"),
        ev.StageFailed(stage="a", error="Traceback...\nValueError: boom"),
        ev.WaveFinished(wave_id="w1234567890", failed=1),
        ev.PipelineInvalid(error="syntax error", file="pipeline.py", line=3),
    ]
    for e in events:
        board.apply(e)
    assert board.stages["a"].state == "failed" and board.stages["b"].state == "up to date"
    assert board.wave_count == 1 and not board.wave_running
    assert "pipeline.py:3" in board.error
    assert plain_line(events[3]) == "stage a failed: ValueError: boom"  # no pid: none shown
    assert board.stages["a"].pid == 0
    done = ev.StageSucceeded(stage="b", duration=0.5, pid=4242)
    board.apply(done)
    assert board.stages["b"].state == "succeeded" and board.stages["b"].pid == 4242
    assert plain_line(done) == "stage b succeeded (0.50s, worker pid 4242)"
    assert (
        plain_line(ev.StageFailed(stage="c", error="x", pid=7))
        == "stage c failed (worker pid 7): x"
    )
    assert '"type":"stage.failed"' in json_line(events[3])


def test_bulk_change_is_waited_out_but_a_busy_log_is_not() -> None:
    d = Debounce(quiet=0.1, max_wait=2.0, bulk_paths=100, bulk_quiet=0.5, bulk_max_wait=30.0)
    t = 0.0
    for i in range(500):  # a checkout: a new path every 10 ms for 5 s...
        t = i * 0.01 + (0.3 if i > 300 else 0.0)  # ...and the disk pauses once, 300 ms
        if i == 301:
            assert not d.ready(t - 0.01)
        d.add([f"/p/f{i}"], now=t)
        assert not d.ready(t), t
    assert d.bulk and not d.ready(t + 0.4) and d.ready(t + 0.5)
    assert len(d.take().paths) == 500
    log = Debounce(quiet=0.1, max_wait=2.0, bulk_paths=100, bulk_max_wait=30.0)
    for i in range(1000):  # one file appended to, forever: batches every 2 s
        log.add(["/p/log"], now=i * 0.01)
    assert not log.bulk and log.ready(2.0)


def test_symlinked_dep_events_map_back_to_the_declared_path(tmp_path: Path) -> None:
    target = tmp_path / "store" / "raw.csv"
    target.parent.mkdir()
    target.write_text("x")
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw.csv").symlink_to(target)
    (root / "shared").symlink_to(target.parent, target_is_directory=True)
    view = _view(
        StageInfo("a", (root / "data" / "raw.csv",), (root / "a.out",)),
        StageInfo("b", (root / "shared",), (root / "b.out",)),
    )
    aliases = symlink_aliases(view)
    assert aliases == {
        target.resolve(): root / "data" / "raw.csv",
        target.parent.resolve(): root / "shared",
    }
    mapped = unalias([str(target.resolve()), str(root / "notes.txt")], aliases)
    assert str(root / "data" / "raw.csv") in mapped and str(root / "notes.txt") in mapped
    assert str(root / "shared" / "raw.csv") in mapped  # reached through both links
    assert affected_stages(view, mapped) == {"a", "b"}
    assert unalias([str(target.parent.resolve() / "new.csv")], aliases) == {
        str(root / "shared" / "new.csv")
    }
