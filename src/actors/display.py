"""Display: shows the watch system's events and the stages' output (rich Live, plain lines, JSON).

Modes:

- ``tui``: a rich Live view of :class:`pivot.watch.board.Board` (stage table
  in pipeline order, a log pane with one stage's output, recent events, an
  error panel, the keys);
- ``plain``: one line per transition, and ``stage | line`` for what stages
  print (logs, CI; the default when stdout is not a terminal);
- ``json``: one JSON object per event, and a ``stage.output`` record per line
  a stage printed.

Stage output comes from the stages' log files, followed by a
:class:`pivot.pipeline.run_output.LogTail` (the one `pivot run` uses) from each
``stage.started`` to the stage's end. When stdin is a terminal, a key reader
thread turns keys into actions (:mod:`pivot.watch.keys`): ``f`` force-runs
every stage and ``q`` quits in every mode; the others move the log pane.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pivot.actors.base import ActorContext, Shell
from pivot.actors.watch_messages import DisplayKey, ForceAll
from pivot.events.base import Event
from pivot.events.pipeline import StageCancelled, StageFailed, StageStarted, StageSucceeded
from pivot.events.store import Recorded
from pivot.pipeline.run_output import LogTail
from pivot.pipeline.stage_log import log_path
from pivot.terminal import plain, printable
from pivot.watch.board import UP_TO_DATE, Board, json_line, output_json, plain_line
from pivot.watch.keys import HINT, parse_keys

__all__ = ["Display", "KeyReader", "render_board"]

STATE_STYLE = {
    "running": "bold yellow",
    "queued": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "skipped": "dim",
    UP_TO_DATE: "dim",
}
_ENDS = (StageSucceeded, StageFailed, StageCancelled)
# Rows the screen keeps for the log pane and the recent events, at least.
MIN_LOG, MIN_RECENT, DEFAULT_HEIGHT = 3, 3, 40


def _status(board: Board) -> str:
    if board.waiting_for:
        return f"waiting for pivot run (pid {board.waiting_for})"
    if board.wave_running:
        return "running"
    if board.error:
        return "error (see below), watching for a fix"
    if all(r.state in (UP_TO_DATE, "succeeded") for r in board.stages.values()):
        return "up to date, watching"
    return "watching"


def render_board(board: Board, now: float | None = None, height: int | None = None) -> Group:
    """The rich renderable of a board, fitted to ``height`` terminal rows."""
    now = time.time() if now is None else now
    table = Table(title="stages", expand=True)
    table.add_column("stage")
    table.add_column("state")
    table.add_column("duration", justify="right")
    table.add_column("last reason", overflow="fold")
    for row in board.stages.values():
        if row.state == "running" and row.started_at is not None:
            duration = f"{now - row.started_at:.1f}s"
        else:
            duration = "" if row.duration is None else f"{row.duration:.2f}s"
        table.add_row(
            plain(row.name),
            Text(row.shown_state, STATE_STYLE.get(row.state, "")),
            duration,
            plain(row.reason),
            style="reverse" if row.name == board.selected else None,
        )
    wave = (
        f"wave #{board.wave_count} {board.wave} ({board.wave_trigger})"
        if board.wave
        else "no wave yet"
    )
    parts: list[Any] = [plain(f"pivot watch: {_status(board)}; {wave}"), table]
    error_lines = board.error.count("\n") + 1 if board.error else 0
    # What is left for the two panels once the fixed parts are drawn (borders: 2 each).
    left = (
        (height or DEFAULT_HEIGHT)
        - (len(board.stages) + 5)
        - 2
        - (error_lines + 2 if error_lines else 0)
    )
    recent_rows = max(
        MIN_RECENT, min(len(board.recent) or 1, left // 3 if board.show_log else left - 2)
    )
    if board.show_log:
        log_rows = max(MIN_LOG, left - recent_rows - 4)
        stage = board.log_stage
        lines = board.log_window(log_rows)
        title = f"output: {stage}" if stage else "output"
        if board.selected:
            title += " (selected; Esc follows the running stage)"
        if board.scroll:
            title += f" [{board.scroll} line(s) up]"
        body = "\n".join(lines) if lines else ("(no output)" if stage else "(no stage ran yet)")
        parts.append(Panel(plain(body), title=plain(title), height=log_rows + 2))
    recent = list(board.recent)[-recent_rows:]
    parts.append(Panel(plain("\n".join(recent) or "(none yet)"), title="recent events"))
    if board.error:
        parts.append(Panel(plain(board.error, "red"), title="error", border_style="red"))
    parts.append(Text(HINT, style="dim"))
    return Group(*parts)


class KeyReader:
    """Reads single keys from a terminal stdin in cbreak mode; restores it on stop."""

    def __init__(self, ctx: ActorContext, stream: IO[str] | None = None) -> None:
        self.ctx = ctx
        self.stream = stream if stream is not None else sys.stdin
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self._saved: Any = None

    def start(self) -> bool:
        """Start reading when stdin is a terminal; False otherwise."""
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return False
        if not os.isatty(fd):
            return False
        import termios
        import tty

        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self.thread = threading.Thread(
            target=self._loop, args=(fd,), name="pivot-keys", daemon=True
        )
        self.thread.start()
        return True

    def _loop(self, fd: int) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(fd, 32)
            if not data:
                return
            for action in parse_keys(data.decode(errors="ignore")):
                if action == "force":
                    self.ctx.registry.tell("coordinator", ForceAll())
                elif action == "quit":
                    self.ctx.shutdown.request(code=0)
                else:
                    self.ctx.registry.tell("display", DisplayKey(action))

    def close(self) -> None:
        """Stop reading and restore the terminal."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(1)
        if self._saved is not None:
            import termios

            with contextlib.suppress(OSError, ValueError):
                termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None


class Display(Shell):
    """Receives every event (the store hands it on) and the stages' output, and shows them."""

    name = "display"

    def __init__(
        self, ctx: ActorContext, mode: str, out: IO[str] | None = None, root: Path | None = None
    ) -> None:
        super().__init__(ctx)
        if mode not in {"tui", "plain", "json"}:
            raise ValueError(f"unknown display {mode!r} (choose tui, plain or json)")
        self.mode = mode
        self.out = out if out is not None else sys.stdout
        self.root = root
        self.board = Board()
        self.lock = threading.Lock()  # the board, and writes to ``out``
        self.live: Live | None = None
        self.tail: LogTail | None = None

    def started(self) -> None:
        if self.root is not None:
            self.tail = LogTail(self._output)
        if self.mode == "tui":
            console = Console(file=self.out)
            self.live = Live(
                get_renderable=lambda: self._renderable(console),
                console=console,
                refresh_per_second=8,
                screen=False,
                transient=False,
            )
            self.live.start()

    def _renderable(self, console: Console) -> Group:
        with self.lock:
            return render_board(self.board, height=console.size.height)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Recorded):
            self.show(message.event, message.seq)
        elif isinstance(message, Event):
            self.show(message)
        elif isinstance(message, DisplayKey):
            self._key(message.action)
        return None

    def _key(self, action: str) -> None:
        with self.lock:
            b = self.board
            if action == "log":
                b.toggle_log()
            elif action in ("prev", "next"):
                b.select(-1 if action == "prev" else 1)
            elif action in ("page_up", "page_down"):
                b.scroll_by(10 if action == "page_up" else -10)
            elif action == "follow":
                b.follow()

    def show(self, e: Event, seq: int = 0) -> None:
        """Render one event (``seq`` in the log) in the chosen mode, with the output it ends."""
        # Never called with self.lock held: the tail's thread takes its own lock, then ours.
        if self.tail is not None and self.root is not None and isinstance(e, _ENDS):
            self.tail.finish(e.stage)  # its last lines come before its end
        if self.mode == "json":
            self._write(json_line(e, seq))
        elif self.mode == "plain":
            line = plain_line(e)
            if line is not None:
                self._write(_stamp(e.at) + printable(line))
        else:
            with self.lock:
                self.board.apply(e)
        if self.tail is not None and self.root is not None and isinstance(e, StageStarted):
            self.tail.follow(e.stage, log_path(self.root, e.stage))

    def _output(self, stage: str, line: str) -> None:
        """A line a stage printed (called from the tail's thread, or from :meth:`show`)."""
        if self.mode == "json":
            self._write(output_json(stage, line, time.time()))
        elif self.mode == "plain":
            self._write(_stamp(time.time()) + printable(f"{stage} | {line}"))
        else:
            with self.lock:
                self.board.output(stage, line)

    def _write(self, line: str) -> None:
        with self.lock, contextlib.suppress(BrokenPipeError, ValueError):
            self.out.write(line + "\n")
            self.out.flush()

    def on_stop(self) -> None:
        if self.tail is not None:
            self.tail.close()
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.refresh()
                self.live.stop()
        super().on_stop()


def _stamp(at: float) -> str:
    return time.strftime("%H:%M:%S ", time.localtime(at))
