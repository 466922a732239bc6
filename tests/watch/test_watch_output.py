"""What stages print, shown by `pivot watch` (plain, json, the TUI in tmux) and `pivot run`.

The real CLI on a real project: every wait is on what the command printed
(or on the terminal's screen, read with ``tmux capture-pane``), with a
generous timeout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from testkit.require import require
from testkit.watch_e2e import (
    PIVOT,
    Watch,
    env,
    watches,  # noqa: F401 - pytest fixture
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# Declared consumer first: the display must list stages in pipeline order anyway.
PIPELINE = """
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def report(
    stats: Annotated[Path, Dep("stats.txt")],
    out: Annotated[Path, Out("report.txt")],
) -> None:
    print("report line")
    out.write_text("report of " + stats.read_text())


@pipeline.stage
def stats(
    raw: Annotated[Path, Dep("data/raw.csv")],
    out: Annotated[Path, Out("stats.txt")],
) -> None:
    text = raw.read_text()
    print(f"stats saw {len(text.splitlines())} rows")
    if "boom" in text:
        raise RuntimeError("boom")
    out.write_text(text)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path.resolve() / "proj"
    (root / "data").mkdir(parents=True)
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip())
    (root / "data" / "raw.csv").write_text("a\nb\n")
    return root


def _lines_after(w: Watch, since: int) -> list[str]:
    with w.cond:
        return [line for line in w.items[since:] if isinstance(line, str)]


def _until(w: Watch, since: int, text: str) -> list[str]:
    """Wait for a line containing ``text`` after ``since``; the lines up to it."""

    def seen(_: object) -> list[str] | None:
        lines = _lines_after(w, since)
        for i, line in enumerate(lines):
            if text in line:
                return lines[: i + 1]
        return None

    found: list[str] = w.wait_for(seen)
    return found


def test_plain_shows_each_stage_output_of_the_current_run_only(
    project: Path, watches: list[Watch]
) -> None:
    w = Watch(project, "-j", "1", display="plain")
    watches.append(w)
    first = _until(w, 0, "stage report succeeded")
    assert _body(first, "stats") == ["stats saw 2 rows"]
    assert _body(first, "report") == ["report line"]
    # Its output comes before its end.
    assert _index(first, "stats | stats saw 2 rows") < _index(first, "stage stats succeeded")

    m = w.mark()
    (project / "data" / "raw.csv").write_text("a\nb\nboom\n")
    failed = _until(w, m, "stage stats failed")
    body = _body(failed, "stats")
    assert body[0] == "stats saw 3 rows" and "RuntimeError: boom" in body[-1]
    assert "Traceback (most recent call last):" in body

    m = w.mark()
    (project / "data" / "raw.csv").write_text("a\n")
    fixed = _until(w, m, "stage report succeeded")
    # The failed run's traceback is not replayed as if it were this run's output.
    assert _body(fixed, "stats") == ["stats saw 1 rows"]
    assert not [line for line in fixed if "boom" in line or "Traceback" in line]

    # `sed -i` writes data/sedXXXXXX and renames it over the file: not a change of its own.
    m = w.mark()
    subprocess.run(["sed", "-i", "s/a/c/", "data/raw.csv"], cwd=project, check=True)
    edited = _until(w, m, "stage stats succeeded")
    changes = [line for line in edited if "changes (data):" in line]
    assert changes and changes[0].endswith("changes (data): data/raw.csv"), changes


def _body(lines: list[str], stage: str) -> list[str]:
    """What ``stage`` printed, from plain lines ``HH:MM:SS stage | text``."""
    prefix = f"{stage} | "
    return [line[9 + len(prefix) :] for line in lines if line[9:].startswith(prefix)]


def _index(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def test_json_has_a_stage_output_record_per_line(project: Path, watches: list[Watch]) -> None:
    w = Watch(project, "-j", "1", display="json")
    watches.append(w)
    w.wave_done(0)
    outputs = [(e["stage"], e["line"]) for e in w.events("stage.output")]
    assert ("stats", "stats saw 2 rows") in outputs and ("report", "report line") in outputs
    assert all(isinstance(e["at"], float) for e in w.events("stage.output"))


def test_json_display_prints_exactly_the_events_json_lines(
    project: Path, watches: list[Watch]
) -> None:
    w = Watch(project, "-j", "1", display="json")
    watches.append(w)
    w.wave_done(0)
    assert w.interrupt() == 130
    shown = [json.loads(line) for line in w.lines]
    events = subprocess.run(
        [*PIVOT, "events", "--json"], cwd=project, capture_output=True, text=True,
        timeout=120, check=True, env=env(),
    ).stdout  # fmt: skip
    logged = {r["seq"]: r for r in map(json.loads, events.splitlines())}
    keys = {"seq", "type", "at", "actor", "correlation_id", "data"}
    assert shown and all(set(r) == keys for r in shown)
    records = [r for r in shown if r["type"] != "stage.output"]
    assert {"wave.started", "stage.succeeded", "wave.finished"} <= {r["type"] for r in records}
    for record in records:
        assert record == logged[record["seq"]]
    outputs = [r for r in shown if r["type"] == "stage.output"]
    assert outputs
    assert all(r["seq"] is None and set(r["data"]) == {"stage", "line"} for r in outputs)


def test_pivot_run_after_a_failure_shows_only_the_new_run(project: Path) -> None:
    (project / "data" / "raw.csv").write_text("boom\n")
    bad = _run(project)
    assert bad.returncode == 1 and "stats | RuntimeError: boom" in bad.stdout
    (project / "data" / "raw.csv").write_text("ok\n")
    good = _run(project)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "stats | stats saw 1 rows" in good.stdout
    assert "boom" not in good.stdout and "Traceback" not in good.stdout


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIVOT, "run"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env(),
    )


# -- in a real terminal ------------------------------------------------------------------


class Tmux:
    """A detached tmux session running one command; its screen read with capture-pane."""

    def __init__(self, tmp: Path, cwd: Path, command: str, width: int, height: int) -> None:
        self.session = "pivot-out"
        self.base = ["tmux", "-S", str(tmp / "tmux.sock")]
        self.env = env()
        self.env.pop("TMUX", None)
        self.env["TERM"] = "xterm-256color"
        args = ["new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height)]
        subprocess.run(
            [*self.base, *args, "-c", str(cwd), command], check=True, env=self.env, timeout=30
        )

    def screen(self) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", self.session],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def wait(self, pred: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if pred(screen):
                return screen
            time.sleep(0.1)  # polling the screen, with a deadline
        raise AssertionError(f"screen never matched; last screen:\n{screen}")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.session, *keys], check=True, timeout=30)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)


def test_tui_in_80_columns_shows_stage_output_and_keys_move_the_pane(
    project: Path, tmp_path: Path
) -> None:
    require(shutil.which("tmux") is not None, "tmux")
    tmux = Tmux(tmp_path, project, f"{PIVOT[0]} watch -j 1; echo EXITED:$?; sleep 60", 80, 40)
    try:
        screen = tmux.wait(
            lambda s: "up to date, watching" in s and "output: report" in s and "report line" in s
        )
        lines = screen.splitlines()
        table = lines[: next(i for i, line in enumerate(lines) if "output: report" in line)]
        rows = [i for i, line in enumerate(table) if line.startswith(("│ stats", "│ report"))]
        assert [lines[i].split()[1] for i in rows] == ["stats", "report"]  # pipeline order
        assert "upstream stats ran" in lines[rows[1]] and "will run" not in lines[rows[1]]
        hint = "keys: ↑↓ stage  PgUp/PgDn scroll  Esc follow  l log  f force all  q quit"
        assert hint in lines and "idle" not in screen

        tmux.keys("Up")  # select the stage above the followed one
        tmux.wait(lambda s: "output: stats (selected" in s and "stats saw 2 rows" in s)
        tmux.keys("l")
        tmux.wait(lambda s: "output:" not in s)
        tmux.keys("l")
        tmux.wait(lambda s: "output: stats" in s)

        (project / "data" / "raw.csv").write_text("boom\n")
        screen = tmux.wait(lambda s: "error (see below), watching for a fix" in s)
        assert "RuntimeError: boom" in screen and "idle" not in screen

        (project / "data" / "raw.csv").write_text("x\ny\nz\n")
        screen = tmux.wait(lambda s: "stats saw 3 rows" in s and "up to date, watching" in s)
        panel = screen[screen.index("output: stats") : screen.index("recent events")]
        assert "boom" not in panel and "Traceback" not in panel  # this run's output only

        tmux.keys("Escape")
        tmux.wait(lambda s: "output: report" in s and "(selected" not in s)
        tmux.keys("q")
        assert "EXITED:0" in tmux.wait(lambda s: "EXITED:" in s)
    finally:
        tmux.close()


def test_plain_display_on_a_terminal_takes_f_and_q(project: Path, tmp_path: Path) -> None:
    require(shutil.which("tmux") is not None, "tmux")
    command = f"{PIVOT[0]} watch -j 1 --display plain; echo EXITED:$?; sleep 60"
    tmux = Tmux(tmp_path, project, command, 120, 40)
    try:
        tmux.wait(lambda s: "stage report succeeded" in s)
        tmux.keys("f")
        tmux.wait(lambda s: "started (force)" in s and s.count("stage report succeeded") == 2)
        tmux.keys("q")
        assert "EXITED:0" in tmux.wait(lambda s: "EXITED:" in s)
    finally:
        tmux.close()
