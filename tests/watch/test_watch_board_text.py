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
