"""Drive the real `pivot watch` CLI on a real project in a temporary folder.

:class:`Watch` starts the command in its own process group, reads what it
prints (JSON events or plain lines) in a thread, and lets a test wait for
what it expects with a generous timeout: never a sleep standing in for
synchronisation.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PIVOT = [str(Path(sys.executable).with_name("pivot"))]
TIMEOUT = 60.0

PIPELINE = """
import os
import subprocess
import time
from pathlib import Path
from typing import Annotated

import helpers
from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def clean(
    raw: Annotated[Path, Dep("data/raw.csv")],
    out: Annotated[Path, Out("data/clean.csv")],
) -> None:
    rows = [r.strip() for r in raw.read_text().splitlines() if r.strip()]
    out.write_text("".join(helpers.transform(r) + "\\n" for r in rows))
    Path("ignored").mkdir(exist_ok=True)
    Path("ignored/clean").write_text(f"{os.getpid()} {helpers.VALUE}\\n")


@pipeline.stage
def stats(
    clean: Annotated[Path, Dep("data/clean.csv")],
    out: Annotated[Path, Out("reports/stats.txt")],
) -> None:
    out.write_text(f"rows={len(clean.read_text().splitlines())}\\n")


@pipeline.stage
def other(
    src: Annotated[Path, Dep("data/other.csv")],
    out: Annotated[Path, Out("reports/other.txt")],
) -> None:
    out.write_text(f"{helpers.VALUE}:{src.read_text().strip()}\\n")
    Path("ignored").mkdir(exist_ok=True)
    Path("ignored/other").write_text(f"{os.getpid()} {helpers.VALUE}\\n")


@pipeline.stage
def listing(
    folder: Annotated[Path, Dep("data/dir")],
    out: Annotated[Path, Out("reports/listing.txt")],
) -> None:
    out.write_text("".join(p.name + "\\n" for p in sorted(folder.iterdir())))


@pipeline.stage
def slow(
    src: Annotated[Path, Dep("data/slow.csv")],
    out: Annotated[Path, Out("reports/slow.txt")],
) -> None:
    # Waits for the test to open the gate (the stage's own work, not the test's sync).
    gate = Path("gate")
    if src.read_text().startswith("wait"):
        # A child process too: shutdown must not leave it behind.
        child = subprocess.Popen(["sleep", "300"])
        Path("ignored").mkdir(exist_ok=True)
        # Written whole, then renamed: the test reads it as soon as it exists.
        Path("ignored/slow-running.tmp").write_text(str(child.pid))
        Path("ignored/slow-running.tmp").replace("ignored/slow-running")
        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        child.kill()
        child.wait()
    out.write_text(src.read_text())
"""

HELPERS = """
VALUE = "v1"


def transform(row: str) -> str:
    return row.upper()
"""


def write_project(root: Path) -> Path:
    """A small project: a chain, an independent stage, a folder dep, a gated stage."""
    (root / "data" / "dir").mkdir(parents=True)
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip())
    (root / "helpers.py").write_text(textwrap.dedent(HELPERS).lstrip())
    (root / "data" / "raw.csv").write_text("a\nb\n")
    (root / "data" / "other.csv").write_text("x\n")
    (root / "data" / "slow.csv").write_text("go\n")
    (root / "data" / "dir" / "a.txt").write_text("a\n")
    (root / "notes.txt").write_text("nobody reads this\n")
    (root / ".gitignore").write_text("ignored/\n")
    return root


def env(bytecode: bool = False) -> dict[str, str]:
    """The environment of `pivot watch`; ``bytecode``: Python writes .pyc files (its default)."""
    e = dict(os.environ)
    e["PYTHONUNBUFFERED"] = "1"
    if bytecode:
        e.pop("PYTHONDONTWRITEBYTECODE", None)
    return e


def flat(record: dict[str, Any]) -> dict[str, Any]:
    """A `--display json` record (the `pivot events --json` shape) with its data fields on top.

    Tests read ``e["stage"]`` rather than ``e["data"]["stage"]``; the shape
    itself is checked in test_watch_output.py.
    """
    data = record.get("data")
    if not isinstance(data, dict):
        return record
    return {**data, **{k: v for k, v in record.items() if k != "data"}}


class Watch:
    """A running `pivot watch`; ``items`` are parsed JSON events (or plain lines)."""

    def __init__(
        self, root: Path, *args: str, display: str = "json", bytecode: bool = False
    ) -> None:
        self.root = root
        self.display = display
        self.items: list[Any] = []
        self.lines: list[str] = []  # stdout as printed
        self.cond = threading.Condition()
        self.stderr = ""
        self.proc = subprocess.Popen(
            [*PIVOT, "watch", *(["--display", display] if display else []), *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env(bytecode),
            start_new_session=True,
        )
        self.pgid = self.proc.pid
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            item: Any = line.rstrip("\n")
            self.lines.append(item)
            if self.display == "json":  # "" (the default on a pipe) is plain
                try:
                    item = flat(json.loads(item))
                except ValueError:
                    item = {"type": "?", "line": item}
            with self.cond:
                self.items.append(item)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr += line

    # -- waiting ---------------------------------------------------------------
    def wait_for(self, pred: Callable[[list[Any]], Any], timeout: float = TIMEOUT) -> Any:
        """Wait until ``pred(items)`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred(self.items)
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._out.is_alive()):
                    tail = "\n".join(map(str, self.items[-40:]))
                    raise AssertionError(
                        f"timed out (exit={self.proc.poll()}); last output:\n{tail}\n"
                        f"stderr:\n{self.stderr[-3000:]}"
                    )
                self.cond.wait(min(left, 0.5))

    def mark(self) -> int:
        """Position in the output; pass to the helpers below to look only after it."""
        with self.cond:
            return len(self.items)

    def events(self, type_: str, since: int = 0) -> list[dict[str, Any]]:
        with self.cond:
            return [e for e in self.items[since:] if isinstance(e, dict) and e["type"] == type_]

    def wave_done(self, since: int, n: int = 1) -> list[dict[str, Any]]:
        """Wait for ``n`` finished waves after ``since``; returns their start events."""
        self.wait_for(lambda _: len(self.events("wave.finished", since)) >= n)
        return self.events("wave.started", since)

    def stage_events(self, type_: str, since: int = 0) -> list[str]:
        return [e["stage"] for e in self.events(type_, since)]

    # -- stopping --------------------------------------------------------------
    def interrupt(self) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole process group."""
        os.killpg(self.pgid, signal.SIGINT)
        return self.finish()

    def finish(self, timeout: float = TIMEOUT) -> int:
        code = self.proc.wait(timeout)
        self._out.join(10)
        self._err.join(10)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.pgid, signal.SIGINT)
                self.proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                kill_group(self.pgid)
                self.proc.wait(20)


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    """The :class:`Watch` processes a test starts (it appends them), closed after it."""
    started: list[Watch] = []
    yield started
    for w in started:
        w.close()


def _table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group) of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    return [p for p, (state, _, pgrp) in _table().items() if pgrp == pgid and state != "Z"]


def descendants(pid: int) -> set[int]:
    """Live processes below ``pid`` (children, their children...)."""
    table = _table()
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for p, (state, ppid, _) in table.items():
            if ppid == parent and p not in found and state != "Z":
                found.add(p)
                todo.append(p)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    table = _table()
    return {p for p in pids if p in table and table[p][0] != "Z"}


def wait_path(path: Path, timeout: float = TIMEOUT) -> None:
    """Poll until ``path`` exists (a stage says it is really running)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.01)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def atomic_write(path: Path, text: str) -> None:
    """An editor's save: write a temporary file next to it, rename it over."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
