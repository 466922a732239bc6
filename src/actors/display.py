"""Display: shows the engine's events (rich Live table, plain lines or JSON).

Modes:

- ``tui``: a rich Live view of :class:`pivot.watch.board.Board` (stage table,
  current wave, recent events, error panel);
- ``plain``: one line per transition (logs, CI; the default when stdout is
  not a terminal);
- ``json``: one JSON object per event.

When stdin is a terminal, a key reader thread turns ``f`` into a force-run
of every stage and ``q`` into a clean quit.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pivot.actors.base import Context, Shell
from pivot.actors.messages import ForceAll
from pivot.events.base import Event
from pivot.terminal import plain, printable
from pivot.watch.board import Board, json_line, plain_line

__all__ = ["Display", "KeyReader", "render_board"]

STATE_STYLE = {
    "running": "bold yellow",
    "queued": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "skipped": "dim",
    "idle": "dim",
}


def render_board(board: Board, now: float | None = None) -> Group:
    """The rich renderable of a board."""
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
            Text(row.state, STATE_STYLE.get(row.state, "")),
            duration,
            plain(row.reason),
        )
    status = "running" if board.wave_running else "idle, watching"
    if board.waiting_for:
        status = f"waiting for pivot run (pid {board.waiting_for})"
    wave = (
        f"wave #{board.wave_count} {board.wave} ({board.wave_trigger})"
        if board.wave
        else "no wave yet"
    )
    header = plain(f"pivot watch: {status}; {wave}   keys: f = force all, q = quit")
    parts: list[Any] = [header, table]
    parts.append(Panel(plain("\n".join(board.recent) or "(none yet)"), title="recent events"))
    if board.error:
        parts.append(Panel(plain(board.error, "red"), title="error", border_style="red"))
    return Group(*parts)


class KeyReader:
    """Reads single keys from a terminal stdin in cbreak mode; restores it on stop."""

    def __init__(self, ctx: Context, stream: IO[str] | None = None) -> None:
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
            for key in data.decode(errors="ignore").lower():
                if key == "f":
                    self.ctx.registry.tell("coordinator", ForceAll())
                elif key == "q":
                    self.ctx.shutdown.request(code=0)

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
    """Receives every event (from the sink) and shows it."""

    name = "display"

    def __init__(self, ctx: Context, mode: str, out: IO[str] | None = None) -> None:
        super().__init__(ctx)
        if mode not in {"tui", "plain", "json"}:
            raise ValueError(f"unknown display {mode!r} (choose tui, plain or json)")
        self.mode = mode
        self.out = out if out is not None else sys.stdout
        self.board = Board()
        self.lock = threading.Lock()
        self.live: Live | None = None

    def started(self) -> None:
        if self.mode == "tui":
            console = Console(file=self.out)
            self.live = Live(
                get_renderable=self._renderable,
                console=console,
                refresh_per_second=8,
                screen=False,
                transient=False,
            )
            self.live.start()

    def _renderable(self) -> Group:
        with self.lock:
            return render_board(self.board)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Event):
            self.show(message)
        return None

    def show(self, e: Event) -> None:
        """Render one event in the chosen mode."""
        if self.mode == "json":
            self._write(json_line(e))
        elif self.mode == "plain":
            line = plain_line(e)
            if line is not None:
                stamp = time.strftime("%H:%M:%S ", time.localtime(e.at))
                self._write(stamp + printable(line))
        else:
            with self.lock:
                self.board.apply(e)

    def _write(self, line: str) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.out.write(line + "\n")
            self.out.flush()

    def on_stop(self) -> None:
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.refresh()
                self.live.stop()
        super().on_stop()
