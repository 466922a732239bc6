"""The live board names the SLURM job of a running stage (pure folds, rendered)."""

from __future__ import annotations

from rich.console import Console

from pivot.actors.display import render_board
from pivot.events import pipeline as ev
from pivot.watch.board import Board, plain_line


def _screen(board: Board) -> str:
    console = Console(width=200, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(render_board(board, now=0.0))
    return cap.get()


def test_a_running_slurm_stage_shows_its_job_and_state() -> None:
    board = Board()
    board.apply(ev.StageStarted(stage="train", executor="slurm"))
    submitted = ev.StageSubmitted(stage="train", job_id="12", host="gpu")
    board.apply(submitted)
    assert board.stages["train"].shown_state == "running: SLURM job 12 submitted"
    assert plain_line(submitted) == "train: submitted as SLURM job 12 on gpu"
    board.apply(ev.StageJobState(stage="train", job_id="12", host="gpu", state="pending"))
    board.apply(ev.StageJobState(stage="train", job_id="11", host="gpu", state="failed"))
    assert "running: SLURM job 12 pending" in _screen(board)
    board.apply(ev.StageSubmitted(stage="train", job_id="13", resubmit_of="12"))
    board.apply(ev.StageJobState(stage="train", job_id="13", state="running"))
    assert "running: SLURM job 13 running" in _screen(board)
    board.apply(ev.StageSucceeded(stage="train", duration=2.0))
    assert board.stages["train"].shown_state == "succeeded"
    board.apply(ev.StageStarted(stage="train", executor="local"))  # a new run, here
    assert board.stages["train"].shown_state == "running"


def test_an_adopted_job_shows_on_the_board() -> None:
    board = Board()
    board.apply(ev.StageStarted(stage="train", executor="slurm"))
    board.apply(ev.StageAdopted(stage="train", job_id="12", submitted_in="w1"))
    assert "running: SLURM job 12 adopted" in _screen(board)
    assert any("adopted SLURM job 12" in line for line in board.recent)
