"""`pivot watch` end to end: the real CLI, real files, real worker processes.

Every wait is on something the command printed (a JSON event or a plain
line), with a generous timeout. "Nothing happened" is shown by ordering: a
later change that does run something proves the earlier one was handled and
ran nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pivot.events.store import EventStore

from testkit.require import require
from testkit.watch_e2e import (
    HELPERS,
    PIVOT,
    Watch,
    alive,
    atomic_write,
    descendants,
    group_members,
    wait_path,
    watches,  # noqa: F401 - pytest fixture
    write_project,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path.resolve())


def _start(watches: list[Watch], root: Path, *args: str, display: str = "json") -> Watch:
    w = Watch(root, *args, display=display)
    watches.append(w)
    return w


def _ran(w: Watch, since: int) -> list[str]:
    return sorted(w.stage_events("stage.started", since))


def _change_then_nothing(w: Watch, path: Path, text: str) -> None:
    """Write ``path``; wait until its change is handled; check no wave came of it."""
    rel = path.relative_to(w.root).as_posix()
    m = w.mark()
    path.write_text(text)
    w.wait_for(lambda _: any(rel in e["paths"] for e in w.events("changes.detected", m)))
    # Handled: the decision follows the event in the same step. Now a change
    # that does run proves that nothing else was started in between.
    probe = w.root / "data" / "other.csv"
    probe.write_text(probe.read_text() + "+\n")
    starts = w.wave_done(m)
    assert [s["stages"] for s in starts] == [["other"]]


def test_initial_run_then_only_what_changes_affect(project: Path, watches: list[Watch]) -> None:
    w = _start(watches, project, "-j", "2")
    first = w.wave_done(0)
    assert first[0]["trigger"] == "initial"
    assert sorted(first[0]["stages"]) == ["clean", "listing", "other", "slow", "stats"]
    assert (project / "reports" / "stats.txt").read_text() == "rows=2\n"
    # The project's job watchers are hosted in the same process, same log.
    assert {"JobTailer", "ActionExecutor"} <= {e["name"] for e in w.events("actor.started")}

    # A data change runs its consumers and downstream only.
    m = w.mark()
    (project / "data" / "raw.csv").write_text("a\nb\nc\n")
    assert [s["stages"] for s in w.wave_done(m)] == [["clean", "stats"]]
    assert (project / "reports" / "stats.txt").read_text() == "rows=3\n"

    # A file no stage uses, and an ignored one: nothing runs.
    _change_then_nothing(w, project / "notes.txt", "still nobody\n")
    m = w.mark()
    (project / "ignored").mkdir(exist_ok=True)
    (project / "ignored" / "x.txt").write_text("x\n")
    (project / "data" / "other.csv").write_text("y\n")
    assert [s["stages"] for s in w.wave_done(m)] == [["other"]]
    assert not any("ignored/x.txt" in e["paths"] for e in w.events("changes.detected", m))

    # A new file inside a folder dep, then a rename inside it.
    m = w.mark()
    (project / "data" / "dir" / "b.txt").write_text("b\n")
    assert [s["stages"] for s in w.wave_done(m)] == [["listing"]]
    assert (project / "reports" / "listing.txt").read_text() == "a.txt\nb.txt\n"
    m = w.mark()
    os.rename(project / "data" / "dir" / "a.txt", project / "data" / "dir" / "c.txt")
    w.wave_done(m)
    w.wait_for(lambda _: "c.txt" in (project / "reports" / "listing.txt").read_text())
    assert (project / "reports" / "listing.txt").read_text() == "b.txt\nc.txt\n"

    # Atomic save (temp file renamed over the dep), then an in-place edit.
    m = w.mark()
    atomic_write(project / "data" / "raw.csv", "q\n")
    assert [s["stages"] for s in w.wave_done(m)] == [["clean", "stats"]]
    assert (project / "data" / "clean.csv").read_text() == "Q\n"
    m = w.mark()
    with (project / "data" / "raw.csv").open("a") as fh:
        fh.write("r\n")
    assert [s["stages"] for s in w.wave_done(m)] == [["clean", "stats"]]
    assert (project / "data" / "clean.csv").read_text() == "Q\nR\n"

    # A deleted dep: the stage fails, watching goes on; restoring it re-runs it.
    m = w.mark()
    (project / "data" / "other.csv").unlink()
    w.wave_done(m)
    assert w.stage_events("stage.failed", m) == ["other"]
    m = w.mark()
    (project / "data" / "other.csv").write_text("back\n")
    w.wave_done(m)
    assert w.stage_events("stage.succeeded", m) == ["other"]
    assert (project / "reports" / "other.txt").read_text() == "v1:back\n"
    # Data changes never restart workers (the one start is the initial one).
    assert [e["reason"] for e in w.events("workers.restarted")] == ["start"]
    assert w.interrupt() == 130


def test_code_change_runs_new_code_in_fresh_workers(project: Path, watches: list[Watch]) -> None:
    w = _start(watches, project, "-j", "2", "--no-job-watchers")
    w.wave_done(0)
    assert "JobTailer" not in {e["name"] for e in w.events("actor.started")}
    pids = {_pid(project, "clean"), _pid(project, "other")}
    watch_pid = w.proc.pid
    assert watch_pid not in pids
    ran_in = _worker_pids(w, 0)
    assert {ran_in["clean"], ran_in["other"]} == pids  # the log names the real processes

    # Edit the helper module the stages import: both stages use new code,
    # each in a process that never ran a stage before.
    m = w.mark()
    helpers = project / "helpers.py"
    helpers.write_text(helpers.read_text().replace('"v1"', '"v2"').replace("upper", "lower"))
    starts = w.wave_done(m)
    # clean and other use the helper; stats follows clean, whose output changed.
    assert sorted(starts[0]["stages"]) == ["clean", "other", "stats"]
    assert w.events("workers.restarted", m)
    assert (project / "reports" / "other.txt").read_text() == "v2:x\n"
    assert (project / "ignored" / "clean").read_text().split()[1] == "v2"
    new_pids = {_pid(project, "clean"), _pid(project, "other")}
    assert not new_pids & pids, "a stage ran in a worker process from before the code change"
    # Per the log, every stage of the wave (stats too) ran in a new process.
    ran_after = _worker_pids(w, m)
    assert sorted(ran_after) == ["clean", "other", "stats"]
    assert (
        not set(ran_after.values()) & set(ran_in.values()) and watch_pid not in ran_after.values()
    )
    assert {ran_after["clean"], ran_after["other"]} == new_pids
    assert (project / "data" / "clean.csv").read_text() == "a\nb\n"

    # A data change now runs on the same workers: no restart.
    m = w.mark()
    (project / "data" / "other.csv").write_text("z\n")
    w.wave_done(m)
    assert not w.events("workers.restarted", m)
    assert _pid(project, "other") not in pids
    assert (project / "reports" / "other.txt").read_text() == "v2:z\n"
    assert w.interrupt() == 130


def _pid(root: Path, stage: str) -> int:
    return int((root / "ignored" / stage).read_text().split()[0])


def _worker_pids(w: Watch, since: int) -> dict[str, int]:
    """Stage -> the worker pid its ``stage.succeeded`` event names."""
    return {e["stage"]: e["pid"] for e in w.events("stage.succeeded", since)}


def test_jobs_1_still_runs_stages_in_a_fresh_worker(project: Path, watches: list[Watch]) -> None:
    # With .pyc files written (Python's default), an edit within the same
    # second and of the same size must not run the cached old bytecode.
    helpers = project / "helpers.py"
    second = int(time.time()) - 10
    os.utime(helpers, ns=(second * 10**9, second * 10**9 + 100_000_000))  # X.1 s
    w = Watch(project, "-j", "1", "clean", bytecode=True)
    watches.append(w)
    starts = w.wave_done(0)
    assert starts[0]["stages"] == ["clean"]  # a target and its upstream only
    first = _pid(project, "clean")
    assert first != w.proc.pid
    assert list((project / "__pycache__").glob("helpers.*.pyc"))
    m = w.mark()
    before = helpers.stat()
    helpers.write_text(helpers.read_text().replace('"v1"', '"v3"'))
    os.utime(helpers, ns=(second * 10**9, second * 10**9 + 500_000_000))  # X.5 s
    assert helpers.stat().st_size == before.st_size
    w.wave_done(m)
    assert (project / "ignored" / "clean").read_text().split()[1] == "v3"
    assert _pid(project, "clean") not in {first, w.proc.pid}
    assert w.interrupt() == 130


def test_broken_pipeline_is_reported_kept_and_fixing_resumes(
    project: Path, watches: list[Watch]
) -> None:
    w = _start(watches, project, "-j", "1", display="plain")
    w.wait_for(lambda lines: any("wave" in ln and "finished" in ln for ln in lines))
    pipeline = project / "pipeline.py"
    good = pipeline.read_text()

    # Syntax error: file and line shown, the last valid pipeline kept, nothing runs.
    m = w.mark()
    pipeline.write_text(good.replace("def stats(", "def stats(:", 1))
    line = w.wait_for(lambda lines: [ln for ln in lines[m:] if "pipeline error" in ln])[0]
    number = good.splitlines().index(next(ln for ln in good.splitlines() if "def stats(" in ln))
    assert f"pipeline.py:{number + 1}:" in line and "keeping the last valid pipeline" in line
    m = w.mark()
    (project / "data" / "raw.csv").write_text("edited\nwhile\nbroken\n")
    w.wait_for(lambda lines: any("changes (data): data/raw.csv" in ln for ln in lines[m:]))

    # An import error in a helper, then a cycle: each reported with its place.
    broken_at = m
    m = w.mark()
    (project / "helpers.py").write_text("import no_such_module_xyz\n" + HELPERS.lstrip())
    pipeline.write_text(good)
    line = w.wait_for(
        lambda lines: [ln for ln in lines[m:] if "pipeline error" in ln and "no_such_mod" in ln]
    )[0]
    assert "helpers.py:1:" in line
    m = w.mark()
    pipeline.write_text(good.replace('Dep("data/raw.csv")', 'Dep("reports/stats.txt")'))
    (project / "helpers.py").write_text(HELPERS.lstrip())
    w.wait_for(lambda lines: [ln for ln in lines[m:] if "pipeline error" in ln and "cycle" in ln])
    assert not any("wave" in ln and "started" in ln for ln in w.items[broken_at:])

    # The fix: the pipeline loads again and the edit made meanwhile runs.
    m = w.mark()
    pipeline.write_text(good)
    w.wait_for(lambda lines: any("finished" in ln for ln in lines[m:]))
    ran = [ln for ln in w.items[m:] if "stage" in ln and "started" in ln]
    assert any("clean" in ln for ln in ran) and any("stats" in ln for ln in ran)
    assert (project / "data" / "clean.csv").read_text() == "EDITED\nWHILE\nBROKEN\n"
    assert w.interrupt() == 130


def test_own_outputs_never_retrigger_and_hand_edits_are_restored(
    project: Path, watches: list[Watch]
) -> None:
    w = _start(watches, project, "-j", "2")
    w.wave_done(0)
    raw = project / "data" / "raw.csv"
    for i in range(20):
        m = w.mark()
        raw.write_text(f"row{i}\n")
        starts = w.wave_done(m)
        assert [s["stages"] for s in starts] == [["clean", "stats"]], f"edit {i}"
    # One more change: exactly one more wave, so the 20 waves' own writes
    # (outputs, a new reports/ folder) started nothing.
    m = w.mark()
    (project / "data" / "other.csv").write_text("last\n")
    w.wave_done(m)
    assert len(w.events("wave.started")) == 22
    assert all(e["stages"] for e in w.events("wave.started"))

    # Policy (shared with `pivot run`): a hand-edited intermediate output makes
    # its producer stale; it runs and restores it, and its consumers follow.
    m = w.mark()
    (project / "data" / "clean.csv").write_text("HAND EDIT\n")
    starts = w.wave_done(m)
    assert [s["stages"] for s in starts] == [["clean", "stats"]]
    assert (project / "data" / "clean.csv").read_text() == "ROW19\n"
    assert (project / "reports" / "stats.txt").read_text() == "rows=1\n"
    queued = {e["stage"]: e["reasons"] for e in w.events("stage.queued", m)}
    assert "output changed: data/clean.csv" in queued["clean"]
    # The same for an output nothing reads: its producer alone runs and restores it.
    m = w.mark()
    (project / "reports" / "stats.txt").write_text("HAND EDIT\n")
    starts = w.wave_done(m)
    assert [s["stages"] for s in starts] == [["stats"]]
    assert (project / "reports" / "stats.txt").read_text() == "rows=1\n"
    queued = {e["stage"]: e["reasons"] for e in w.events("stage.queued", m)}
    assert "output changed: reports/stats.txt" in queued["stats"]
    assert w.interrupt() == 130


def test_changes_during_a_wave_form_exactly_one_follow_up(
    project: Path, watches: list[Watch]
) -> None:
    w = _start(watches, project, "-j", "2", "--debounce", "50")
    w.wave_done(0)
    slow = project / "data" / "slow.csv"
    m = w.mark()
    slow.write_text("wait 1\n")
    wait_path(project / "ignored" / "slow-running")
    for i in range(3):  # three separate batches, each seen waiting
        p = w.mark()
        slow.write_text(f"go {i}\n")

        def pending(_: list[Any], since: int = p) -> list[dict[str, Any]]:
            return w.events("changes.pending", since)

        w.wait_for(pending)
    (project / "gate").write_text("open\n")
    starts = w.wave_done(m, n=2)
    assert [s["stages"] for s in starts] == [["slow"], ["slow"]]
    assert (project / "reports" / "slow.txt").read_text() == "go 2\n"
    m2 = w.mark()
    (project / "data" / "other.csv").write_text("after\n")
    assert [s["stages"] for s in w.wave_done(m2)] == [["other"]]
    assert len(w.events("wave.started", m)) == 3
    assert w.interrupt() == 130


def test_checkout_of_5000_files_gives_one_or_two_waves(project: Path, watches: list[Watch]) -> None:
    require(shutil.which("git") is not None, "git")
    many = project / "data" / "dir"

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.email=t@e", "-c", "user.name=t", *args],
            cwd=project,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "base")
    git("checkout", "-q", "-b", "big")
    for i in range(5000):
        (many / f"f{i:04d}.txt").write_text(f"{i}\n")
    git("add", "-A")
    git("commit", "-qm", "big")
    git("checkout", "-q", "main")
    w = _start(watches, project, "-j", "2")
    w.wave_done(0)
    m = w.mark()
    git("checkout", "-q", "big")
    w.wait_for(lambda _: "f4999.txt" in (project / "reports" / "listing.txt").read_text())
    # Equal counts of started and finished waves do not mean "quiet": a wave
    # of changes that came during the last one may not have started yet. The
    # probe's wave is the proof: it can only run after every earlier wave
    # (one at a time), or together with the one that was still pending.
    (project / "data" / "other.csv").write_text("probe\n")

    def probe_done(_: object) -> bool:
        done = {e["wave_id"] for e in w.events("wave.finished", m)}
        return any(
            "other" in s["stages"] and s["wave_id"] in done for s in w.events("wave.started", m)
        )

    w.wait_for(probe_done)
    waves = [sorted(s["stages"]) for s in w.events("wave.started", m)]
    assert all(stages == ["listing"] for stages in waves[:-1]), waves
    assert waves[-1] in (["other"], ["listing", "other"]), waves  # the probe's wave
    checkout_waves = [stages for stages in waves if "listing" in stages]
    batches = [
        (round(e["at"], 2), e["count"], e["kind"], e["overflow"])
        for e in w.events("changes.detected", m)
    ]
    timeline = [(e["type"], round(e["at"], 2)) for e in w.items[m:] if isinstance(e, dict)]
    assert 1 <= len(checkout_waves) <= 2, (waves, batches, timeline[-60:])
    assert w.interrupt() == 130


def test_ctrl_c_cancels_running_stage_and_leaves_no_process(
    project: Path, watches: list[Watch]
) -> None:
    (project / "data" / "slow.csv").write_text("wait\n")
    w = _start(watches, project, "-j", "2", display="plain")
    wait_path(project / "ignored" / "slow-running")
    child = int((project / "ignored" / "slow-running").read_text())
    below = descendants(w.proc.pid)
    assert child in below and len(below) >= 3  # 2 workers and the stage's child
    assert w.interrupt() == 130
    deadline = time.monotonic() + 30
    while alive(below) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table, with a deadline
    assert not alive(below), "processes left behind after Ctrl-C"
    assert not group_members(w.pgid)
    assert "Traceback" not in w.stderr
    store = EventStore.open(project / ".pivot" / "events.db")
    try:
        events = list(store.read())
        types = [r.event.TYPE for r in events]
        cancelled = [r.event for r in events if r.event.TYPE == "stage.cancelled"]
    finally:
        store.close()
    assert "watch.stopped" in types
    assert any(getattr(e, "stage", "") == "slow" for e in cancelled)
    assert not [r for r in types if r == "stage.failed"], (
        "a stage killed by shutdown is cancelled, not failed"
    )


def test_q_in_a_real_terminal_and_f_force_runs_all(project: Path, tmp_path: Path) -> None:
    require(shutil.which("tmux") is not None, "tmux")
    session = f"pivot-{os.getpid()}-{tmp_path.name}"[:60]
    sock = str(tmp_path / "tmux.sock")
    pivot = PIVOT[0]
    tmux = ["tmux", "-S", sock]
    script = f"{pivot} watch -j 1; echo EXITED:$?; sleep 60"
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "140",
            "-y",
            "45",
            "-c",
            str(project),
            script,
        ],
        check=True,
        env=_tmux_env(),
    )
    try:
        screen = _wait_screen(
            tmux, session, lambda s: "up to date, watching" in s and "succeeded" in s
        )
        assert "stage" in screen and "clean" in screen and "recent events" in screen
        subprocess.run([*tmux, "send-keys", "-t", session, "f"], check=True)
        _wait_screen(tmux, session, lambda s: "(force)" in s and "up to date, watching" in s)
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        screen = _wait_screen(tmux, session, lambda s: "EXITED:" in s)
        assert "EXITED:0" in screen
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


def _tmux_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TMUX", None)
    env["TERM"] = "xterm-256color"
    return env


def _wait_screen(tmux: list[str], session: str, pred: Any, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", session],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        if pred(screen):
            return screen
        time.sleep(0.1)  # polling the screen, with a deadline
    raise AssertionError(f"screen never matched; last screen:\n{screen}")


def test_unknown_stage_is_a_clear_error(project: Path) -> None:
    proc = subprocess.run(
        [PIVOT[0], "watch", "nope", "--display", "plain"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown stage 'nope'" in proc.stderr and "clean" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_force_first_wave_only_plain_by_default_and_symlinked_dep(
    project: Path, tmp_path: Path, watches: list[Watch]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "other.csv").write_text("linked\n")
    (project / "data" / "other.csv").unlink()
    (project / "data" / "other.csv").symlink_to(outside / "other.csv")
    first = subprocess.run(
        [PIVOT[0], "run"], cwd=project, capture_output=True, text=True, timeout=120, check=False
    )
    assert first.returncode == 0, first.stderr
    # Not a terminal, no --display: plain lines. --force: the first wave runs all.
    w = Watch(project, "-j", "2", "--force", display="")
    watches.append(w)
    w.wait_for(lambda lines: any("started (force)" in ln for ln in lines))
    w.wait_for(lambda lines: any("finished" in ln and "5 succeeded" in ln for ln in lines))
    # An edit of the symlink's target (outside the project): its consumer runs,
    # and only it: forcing was for the first wave only.
    m = w.mark()
    (outside / "other.csv").write_text("edited through the link\n")
    line = w.wait_for(lambda lines: [ln for ln in lines[m:] if "wave" in ln and "started" in ln])
    assert line[0].endswith("started (change): other")
    w.wait_for(lambda lines: any("finished" in ln for ln in lines[m:]))
    assert (project / "reports" / "other.txt").read_text() == "v1:edited through the link\n"
    assert w.interrupt() == 130
