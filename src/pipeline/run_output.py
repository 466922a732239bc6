"""What `pivot run` prints: one line per transition, and stage output, live.

:func:`describe` turns an event into a line (pure, tested on its own);
:class:`LogTail` follows the log files of running stages and prints their new
lines prefixed with the stage name, so a stage's output shows while it runs
and its traceback appears exactly once (it is in the log).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pivot.events.base import Event
from pivot.events.pipeline import (
    StageAdopted,
    StageCancelled,
    StageFailed,
    StageJobState,
    StageQueued,
    StageSkipped,
    StageStarted,
    StageSubmitted,
    StageSucceeded,
    WaveFinished,
)
from pivot.pipeline.plan import Plan, describe_reasons
from pivot.pipeline.stage_log import log_path
from pivot.pipeline.wave_result import WaveResult

__all__ = ["LogTail", "RunDisplay", "describe", "summary", "wave_counts"]


def describe(ev: Event) -> str | None:  # noqa: PLR0911 - one case per event type
    """A one-line description of a pipeline event, or None to stay quiet."""
    if isinstance(ev, StageQueued):
        return f"{ev.stage}: queued ({describe_reasons(ev.reasons)})"
    if isinstance(ev, StageStarted):
        return f"{ev.stage}: running"
    if isinstance(ev, StageSubmitted):
        again = f", again for job {ev.resubmit_of}" if ev.resubmit_of else ""
        return f"{ev.stage}: submitted as SLURM job {ev.job_id} on {ev.host}{again}"
    if isinstance(ev, StageAdopted):
        return f"{ev.stage}: adopted SLURM job {ev.job_id} on {ev.host}, left by an earlier pivot"
    if isinstance(ev, StageJobState):
        return f"{ev.stage}: SLURM job {ev.job_id} {ev.state}" if ev.state == "running" else None
    if isinstance(ev, StageSucceeded):
        return f"{ev.stage}: succeeded in {ev.duration:.2f}s"
    if isinstance(ev, StageFailed):
        return f"{ev.stage}: FAILED after {ev.duration:.2f}s: {ev.error}"
    if isinstance(ev, StageCancelled):
        return f"{ev.stage}: cancelled ({ev.reason})"
    if isinstance(ev, StageSkipped):
        return None if ev.reason == "up to date" else f"{ev.stage}: skipped ({ev.reason})"
    if isinstance(ev, WaveFinished):
        if not (ev.succeeded or ev.failed or ev.cancelled):
            return f"everything up to date ({ev.skipped} stages)"
        return f"{wave_counts(ev)} in {ev.duration:.2f}s"
    return None


def wave_counts(ev: WaveFinished) -> str:
    """``2 succeeded, 1 skipped or up to date``: the non-zero counts of a wave."""
    parts = [
        f"{n} {label}"
        for n, label in (
            (ev.succeeded, "succeeded"),
            (ev.failed, "failed"),
            (ev.cancelled, "cancelled"),
            (ev.skipped, "skipped or up to date"),
        )
        if n
    ]
    return ", ".join(parts) or "nothing ran"


class LogTail:
    """Follow the logs of running stages; each new line goes to ``on_line(stage, line)``.

    `pivot run` prints them as ``stage | line``; `pivot watch` shows them in
    its display. A log that shrank was started again (a new run), and a log
    that is another file now (a SLURM stage's symlink switched to a watcher's
    resubmit of its job): either is read from its beginning.
    """

    def __init__(self, on_line: Callable[[str, str], None], interval: float = 0.1) -> None:
        self._on_line = on_line
        self._interval = interval
        # stage -> path, offset, partial line, the file read (device, inode)
        self._files: dict[str, tuple[Path, int, bytes, tuple[int, int] | None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pivot-logtail", daemon=True)
        self._thread.start()

    def follow(self, stage: str, path: Path) -> None:
        """Start printing ``stage``'s log (from its beginning)."""
        with self._lock:
            self._files[stage] = (path, 0, b"", None)

    def finish(self, stage: str) -> None:
        """Print what is left of ``stage``'s log and stop following it."""
        with self._lock:
            self._read(stage, final=True)
            self._files.pop(stage, None)

    def close(self) -> None:
        """Stop the follower thread."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                for stage in list(self._files):
                    self._read(stage, final=False)

    def _read(self, stage: str, final: bool) -> None:
        entry = self._files.get(stage)
        if entry is None:
            return
        path, offset, partial, known = entry
        try:
            with path.open("rb") as f:
                st = os.fstat(f.fileno())
                file = (st.st_dev, st.st_ino)
                if st.st_size < offset or (known is not None and file != known):
                    if partial:  # the old file's unfinished last line
                        self._on_line(stage, partial.decode(errors="replace"))
                    offset, partial = 0, b""
                f.seek(offset)
                data = f.read()
        except OSError:
            return
        data = partial + data
        offset += len(data) - len(partial)
        lines = data.split(b"\n")
        rest = lines.pop()
        if final and rest:
            lines.append(rest)
            rest = b""
        for line in lines:
            self._on_line(stage, line.decode(errors="replace"))
        self._files[stage] = (path, offset, rest, file)


class RunDisplay:
    """The ``emit`` of `pivot run`: append events, print transitions and stage output.

    ``write`` None keeps it silent (``--json``): events are still appended.
    """

    def __init__(
        self,
        root: str | Path,
        append: Callable[[Sequence[Event]], object],
        write: Callable[[str], None] | None,
    ) -> None:
        self._root = root
        self._append = append
        self._write = write
        self._tail = (
            LogTail(lambda stage, line: write(f"{stage} | {line}")) if write is not None else None
        )

    def emit(self, events: Sequence[Event]) -> None:
        """Record ``events``, then show them."""
        self._append(events)
        if self._write is None or self._tail is None:
            return
        for ev in events:
            if isinstance(ev, StageStarted):
                self._tail.follow(ev.stage, log_path(self._root, ev.stage))
            elif isinstance(ev, StageSucceeded | StageFailed | StageCancelled):
                self._tail.finish(ev.stage)
            line = describe(ev)
            if line is not None:
                self._write(line)

    def close(self) -> None:
        """Stop following logs."""
        if self._tail is not None:
            self._tail.close()


def summary(plan: Plan, result: WaveResult) -> dict[str, Any]:
    """`pivot run --json`: how the wave ended, stage by stage."""
    return {
        "ok": result.ok,
        "wave_id": result.wave_id,
        "cancelled": result.cancelled,
        "duration": result.duration,
        "stages": [
            {
                "stage": d.stage,
                "status": result.status.get(d.stage, "up to date"),
                "reasons": list(d.reasons),
                **({"error": result.errors[d.stage]} if d.stage in result.errors else {}),
            }
            for d in plan.decisions
        ],
    }
