"""The live board shows stage names, reasons and errors literally."""

from __future__ import annotations

from rich.console import Console

from pivot.actors.display import render_board
from pivot.events.pipeline import StageFailed, StageQueued
from pivot.watch.board import Board


def test_board_renders_markup_and_escapes_literally() -> None:
    board = Board()
    board.apply(StageQueued(stage="a[/]", reasons=("dep changed: [red]x[/].csv",)))
    board.apply(StageFailed(stage="a[/]", error="RuntimeError: [/]\x1b]8;;http://e\x07"))
    console = Console(width=200, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(render_board(board, now=0.0))
    screen = cap.get()
    assert "a[/]" in screen
    assert "RuntimeError: [/]" in screen
    assert "\x1b" not in screen and "\\x1b]8;;http://e\\x07" in screen


def test_board_says_when_a_wave_waits_for_a_pivot_run() -> None:
    from pivot.events.actors import WaveWaiting
    from pivot.events.pipeline import WaveStarted
    from pivot.watch.board import plain_line

    waiting = WaveWaiting(wave_id="0123456789ab", holder="4242", stages=("train",))
    assert plain_line(waiting) == (
        "wave 01234567 waiting for another pivot run (pid 4242) to finish: train"
    )
    board = Board()
    board.apply(waiting)
    console = Console(width=200, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(render_board(board, now=0.0))
    assert "waiting for pivot run (pid 4242)" in cap.get()
    board.apply(WaveStarted(wave_id="0123456789ab", trigger="change", stages=("train",)))
    assert board.waiting_for == ""


def test_board_shows_a_plan_that_failed_until_a_wave_is_planned() -> None:
    from pivot.events.pipeline import WavePlanFailed, WaveStarted
    from pivot.watch.board import plain_line

    failed = WavePlanFailed(error="data/mid.txt is a named pipe (FIFO)")
    assert plain_line(failed) == (
        "wave not planned: data/mid.txt is a named pipe (FIFO) (nothing runs until the next change)"
    )
    board = Board()
    board.apply(failed)
    console = Console(width=200, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(render_board(board, now=0.0))
    screen = cap.get()
    assert "data/mid.txt is a named pipe (FIFO)" in screen
    assert "nothing ran; the next change plans again" in screen
    board.apply(WaveStarted(wave_id="0123456789ab", trigger="change", stages=("down",)))
    assert board.error == ""
    # A stage's failure is not cleared by the next wave's start.
    board.apply(StageFailed(stage="down", error="ValueError: no"))
    board.apply(WaveStarted(wave_id="0123456789ac", trigger="change", stages=("up",)))
    assert board.error.startswith("down failed")
