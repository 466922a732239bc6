"""The watch display's logic, without a terminal: board, log pane, keys, sentences."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console

from pivot.actors.display import render_board
from pivot.events import pipeline as ev
from pivot.pipeline.plan import describe_reasons
from pivot.pipeline.run_output import LogTail
from pivot.watch.affected import drop_vanished
from pivot.watch.board import Board, output_json, plain_line
from pivot.watch.keys import HINT, parse_keys
from pivot.watch.watched_pipeline import PipelineView, StageInfo


def _screen(board: Board, width: int = 100, height: int = 40) -> str:
    console = Console(width=width, height=height, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(render_board(board, now=0.0, height=height))
    return cap.get()


# -- reasons as sentences --------------------------------------------------------


def test_reasons_read_as_one_sentence_in_the_right_tense() -> None:
    reasons = ("dep changed: a.csv", "upstream will run: stats", "upstream will run: histogram")
    assert describe_reasons(reasons) == "dep changed: a.csv; upstream stats, histogram will run"
    assert (
        describe_reasons(reasons, ran=True) == "dep changed: a.csv; upstream stats, histogram ran"
    )
    assert describe_reasons(("never run",)) == "never run"
    assert describe_reasons(()) == ""


def test_rows_that_ran_no_longer_say_will_run() -> None:
    board = Board()
    board.apply(ev.StageQueued(stage="report", reasons=("upstream will run: stats",)))
    assert board.stages["report"].reason == "upstream stats will run"
    board.apply(ev.StageStarted(stage="report"))
    assert board.stages["report"].reason == "upstream stats will run"
    board.apply(ev.StageSucceeded(stage="report", duration=0.1))
    assert board.stages["report"].reason == "upstream stats ran"
    assert plain_line(ev.StageQueued(stage="r", reasons=("upstream will run: a",) * 1)) == (
        "stage r queued: upstream a will run"
    )


def test_wave_counts_say_what_they_count() -> None:
    done = ev.WaveFinished(wave_id="abcdef1234", succeeded=1, skipped=2, duration=0.5)
    assert (
        plain_line(done) == "wave abcdef12 finished in 0.50s: 1 succeeded, 2 skipped or up to date"
    )
    empty = ev.WaveFinished(wave_id="abcdef1234")
    assert plain_line(empty) == "wave abcdef12 finished in 0.00s: nothing ran"


# -- the table --------------------------------------------------------------------


def test_stages_in_pipeline_order_and_up_to_date_at_start() -> None:
    board = Board()
    board.apply(ev.PipelineReloaded(added=("a", "m", "z"), stages=("z", "a", "m")))
    assert list(board.stages) == ["z", "a", "m"]
    assert {r.state for r in board.stages.values()} == {"up to date"}
    board.apply(ev.StageQueued(stage="a", reasons=("never run",)))
    board.apply(ev.StageSucceeded(stage="a", duration=0.1))
    # A reload reorders (a stage added in the middle) and keeps each row's state.
    board.apply(ev.PipelineReloaded(added=("b",), stages=("z", "b", "a", "m")))
    assert list(board.stages) == ["z", "b", "a", "m"]
    assert board.stages["a"].state == "succeeded" and board.stages["b"].state == "up to date"
    board.apply(ev.PipelineReloaded(removed=("z",), stages=("b", "a", "m")))
    assert list(board.stages) == ["b", "a", "m"]
    board.apply(ev.StageSkipped(stage="m", reason="up to date"))
    assert board.stages["m"].state == "up to date" and board.stages["m"].reason == ""
    # A log written before the order was recorded still shows its stages.
    old = Board()
    old.apply(ev.PipelineReloaded(added=("b", "a")))
    assert set(old.stages) == {"a", "b"}


def test_header_never_says_idle_and_says_so_when_an_error_is_shown() -> None:
    board = Board()
    board.apply(ev.PipelineReloaded(added=("a",), stages=("a",)))
    assert "pivot watch: up to date, watching" in _screen(board)
    board.apply(ev.WaveStarted(wave_id="w" * 12, trigger="change", stages=("a",)))
    board.apply(ev.StageStarted(stage="a"))
    assert "pivot watch: running" in _screen(board)
    board.apply(ev.StageFailed(stage="a", error="RuntimeError: boom"))
    board.apply(ev.WaveFinished(wave_id="w" * 12, failed=1))
    screen = _screen(board)
    assert "error (see below), watching for a fix" in screen and "idle" not in screen
    assert "RuntimeError: boom" in screen
    board.apply(ev.PipelineInvalid(error="syntax error", file="pipeline.py", line=3))
    assert "error (see below)" in _screen(board)


def test_key_hint_fits_80_columns_and_the_screen_fits_its_height() -> None:
    assert len(HINT) <= 80
    board = Board()
    names = tuple(f"stage{i}" for i in range(6))
    board.apply(ev.PipelineReloaded(added=names, stages=names))
    for i in range(30):
        board.apply(ev.StageQueued(stage=f"stage{i % 6}", reasons=("never run",)))
    board.apply(ev.StageStarted(stage="stage0"))
    for i in range(100):
        board.output("stage0", f"line {i}")
    screen = _screen(board, width=80, height=40)
    assert HINT in screen.splitlines()
    assert len(screen.splitlines()) <= 40
    shown = [line.strip("│ ") for line in screen.splitlines()]
    assert "line 99" in shown and "line 0" not in shown  # the newest lines that fit


# -- the log pane -----------------------------------------------------------------


def test_log_pane_follows_the_last_started_stage_and_shows_only_its_current_run() -> None:
    board = Board()
    board.apply(ev.PipelineReloaded(added=("a", "b"), stages=("a", "b")))
    board.apply(ev.StageStarted(stage="a"))
    board.output("a", "Traceback: old run")
    board.apply(ev.StageFailed(stage="a", error="RuntimeError: boom"))
    board.apply(ev.StageStarted(stage="a"))  # the same stage runs again
    board.output("a", "fresh line")
    assert board.log_stage == "a" and board.log_window(10) == ["fresh line"]
    board.apply(ev.StageStarted(stage="b"))
    board.output("b", "b says hi")
    assert board.log_stage == "b" and board.log_window(10) == ["b says hi"]
    screen = _screen(board)
    assert "output: b" in screen and "b says hi" in screen and "old run" not in screen


def test_selecting_scrolling_and_hiding_the_log_pane() -> None:
    board = Board()
    board.apply(ev.PipelineReloaded(added=("a", "b", "c"), stages=("a", "b", "c")))
    board.apply(ev.StageStarted(stage="b"))
    for i in range(50):
        board.output("b", f"b{i}")
    board.output("a", "only a")
    board.select(1)
    assert board.selected == "c"
    board.select(1)
    assert board.selected == "a"  # wraps around
    board.select(-1)
    assert board.selected == "c"
    board.select(-1)
    board.apply(ev.StageStarted(stage="c"))  # a selection is kept while others start
    assert board.log_stage == "b"
    assert board.log_window(5) == ["b45", "b46", "b47", "b48", "b49"]
    board.scroll_by(10)
    assert board.log_window(5) == ["b35", "b36", "b37", "b38", "b39"]
    board.scroll_by(1000)
    assert board.log_window(5) == ["b0", "b1", "b2", "b3", "b4"]  # clamped to the log
    assert board.scroll == 45
    board.scroll_by(-1000)
    assert board.scroll == 0
    assert "(selected; Esc follows the running stage)" in _screen(board)
    board.follow()
    assert board.log_stage == "c" and board.selected == ""
    board.toggle_log()
    assert "output:" not in _screen(board)
    board.toggle_log()
    assert "output: c" in _screen(board)


def test_keys_from_a_terminal() -> None:
    assert parse_keys("fq") == ["force", "quit"]
    assert parse_keys("Q") == ["quit"]
    assert parse_keys("\x1b[A\x1b[B\x1bOA") == ["prev", "next", "prev"]
    assert parse_keys("\x1b[5~\x1b[6~") == ["page_up", "page_down"]
    assert parse_keys("\x1b") == ["follow"]
    assert parse_keys("\x1b[15~l") == ["log"]  # F5 is skipped whole
    assert parse_keys("xyz jk") == ["next", "prev"]


def test_stage_output_in_json_is_a_record_of_its_own() -> None:
    assert output_json("stats", 'say "hi"\x1b', 1.5) == (
        '{"seq":null,"type":"stage.output","at":1.5,"actor":"","correlation_id":"",'
        '"data":{"stage":"stats","line":"say \\"hi\\"\\u001b"}}'
    )


# -- editor temporary files ---------------------------------------------------------


def test_vanished_paths_nobody_declares_are_not_changes() -> None:
    r = Path("/r")
    view = PipelineView({"a": StageInfo("a", (r / "data" / "in.csv",), (r / "a.out",))})
    paths = [str(r / "lib" / "sed94hNPK"), str(r / "data" / "in.csv"), str(r / "notes.txt")]
    present = {str(r / "notes.txt")}
    assert drop_vanished(view, paths, present.__contains__) == {
        str(r / "data" / "in.csv"),  # a dep deleted still counts
        str(r / "notes.txt"),
    }


# -- following logs -------------------------------------------------------------------


def test_log_tail_reads_a_log_started_again_from_its_beginning(tmp_path: Path) -> None:
    got: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_line(stage: str, line: str) -> None:
        with lock:
            got.append((stage, line))

    log = tmp_path / "s.log"
    log.write_text("")
    tail = LogTail(on_line, interval=0.01)
    try:
        tail.follow("s", log)
        log.write_text("first run, line one\nfirst run, line two\n")
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling what the tail's thread read, with a deadline
        log.write_text("a\n")  # shorter than what was read: the stage started again
        tail.finish("s")
    finally:
        tail.close()
    assert got == [
        ("s", "first run, line one"),
        ("s", "first run, line two"),
        ("s", "a"),
    ]
