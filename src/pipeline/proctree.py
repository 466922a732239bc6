"""Process trees on Linux: walk them, kill them whole, and the guard that does it.

:func:`kill_tree` kills a process and everything below it, stopping each
one first so nothing forks while the tree is walked (``/proc``, parent
links). It refuses init, its caller and its caller's ancestors. Run as a
script (``python -I -S proctree.py COORDINATOR WORKER``) this file is the
*guard* of :mod:`pivot.pipeline.lifeline`: a child of a stage worker that
waits for the coordinator (the worker's parent) to die, then kills the
worker's whole tree. It imports only the standard library, and nothing
heavy, so that interpreter starts in a few tens of milliseconds.

A pid names a process only with its start time (:func:`process_start`), and
only a pid given by its owner: the guard takes its worker's pid from the
worker, never from its own ``getppid()`` (a worker that died first would
make that init; see docs/solutions/orphan-workers.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import select
import signal
import sys
import time
from collections.abc import Collection
from pathlib import Path

__all__ = [
    "PR_SET_CHILD_SUBREAPER",
    "PR_SET_PDEATHSIG",
    "children_of_self",
    "kill_tree",
    "prctl",
    "process_start",
    "reap",
]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_POLL = 0.1  # seconds between checks where no pidfd can be had


def prctl(option: int, value: int) -> bool:
    """``prctl(2)`` with one argument; False where it is not available or fails."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state is [0]); None if gone."""
    try:
        text = _read(f"/proc/{pid}/stat").decode(errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


@functools.cache
def boot_id() -> str:
    """The kernel's id of this boot ("" where /proc does not say): start times count from it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the pid, names one process.

    None if no such live process (zombies count as gone).
    """
    fields = _stat(pid)
    if fields is None or fields[0] in {"Z", "X"}:
        return None
    return int(fields[19])


def _table() -> dict[int, tuple[str, int]]:
    """pid -> (state, parent pid) of every process."""
    table: dict[int, tuple[str, int]] = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields is not None:
                    table[int(entry.name)] = (fields[0], int(fields[1]))
    return table


def _tree(root: int, spare: Collection[int]) -> set[int]:
    """``root`` and its live descendants, minus ``spare`` and what is below them."""
    children: dict[int, list[int]] = {}
    live = {pid: ppid for pid, (state, ppid) in _table().items() if state not in {"Z", "X"}}
    for pid, ppid in live.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = {root} if root in live and root not in spare else set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found and child not in spare:
                found.add(child)
                todo.append(child)
    return found


def kill_tree(root: int, *, include_root: bool = True, spare: Collection[int] = ()) -> set[int]:
    """SIGKILL ``root`` and every live process below it; returns the pids killed.

    Each round stops (SIGSTOP) the processes found so far, so none can fork
    while the tree is walked; once a walk finds nothing new, all of them get
    SIGKILL. ``spare`` pids, and everything below them, are left alone.
    Never init, this process or one of its ancestors: a ``root`` that is
    one of them kills nothing, except this process's own descendants with
    ``include_root=False``.
    """
    mine = _ancestors()
    if root <= 1 or (root in mine and (include_root or root != os.getpid())):
        return set()
    return _kill_tree(root, include_root=include_root, spare={*spare, *mine})


def _kill_tree(root: int, *, include_root: bool, spare: Collection[int]) -> set[int]:
    """:func:`kill_tree` without its safety check (the guard kills its own parent)."""
    if not sys.platform.startswith("linux"):  # no /proc: the root alone
        if include_root:
            with contextlib.suppress(OSError):
                os.kill(root, signal.SIGKILL)
        return {root} if include_root else set()
    skip = set(spare) if include_root else {*spare, root}
    stopped: set[int] = set()
    while True:
        new = _tree(root, spare) - skip - stopped
        if not new:
            break
        for pid in new:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= new
    # The root last: the guard, a child of the worker, dies with it.
    for pid in sorted(stopped, key=lambda p: p == root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return stopped


def _ancestors() -> set[int]:
    """This process and the processes above it."""
    found: set[int] = set()
    pid: int | None = os.getpid()
    while pid is not None and pid > 0 and pid not in found:
        found.add(pid)
        pid = parent(pid)
    return found


def children_of_self() -> set[int | None] | None:
    """This process's children (None when the kernel cannot tell)."""
    found: set[int | None] = set()
    tasks = f"/proc/{os.getpid()}/task"
    try:
        with os.scandir(tasks) as entries:
            for task in entries:
                found.update(int(p) for p in _read(f"{tasks}/{task.name}/children").split())
    except (OSError, ValueError):
        return None
    return found


def reap(keep: int | None) -> None:
    """Collect exited children (never the guard's status: its Popen keeps that)."""
    me = os.getpid()
    for pid, (state, ppid) in _table().items():
        if ppid == me and state == "Z" and pid != keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _guard_main(coordinator: int, worker: int) -> None:
    """The guard: wait for the coordinator's death, then kill the worker's whole tree."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a worker gone normally takes its guard
    # The worker's pid comes from the worker, never from getppid(): a worker
    # that died before this line would make that init (or a subreaper).
    if worker <= 1 or os.getppid() != worker:
        return
    _wait_until_gone(coordinator, worker)
    if os.getppid() != worker:  # the worker is gone too (and took nothing with it)
        return
    # Its parent is the worker (checked above), so kill_tree() would refuse it.
    _kill_tree(worker, include_root=True, spare={os.getpid(), 1})


def _wait_until_gone(coordinator: int, worker: int) -> None:
    """Return once ``coordinator`` (the worker's parent) has died."""
    pidfd = -1
    with contextlib.suppress(OSError, AttributeError):
        pidfd = os.pidfd_open(coordinator)
    try:
        # The pidfd is the coordinator's only if the worker's parent still is that pid.
        if parent(worker) != coordinator:
            return
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while not poller.poll():
                pass
            return
        while parent(worker) == coordinator:
            time.sleep(_POLL)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


if __name__ == "__main__":
    _guard_main(int(sys.argv[1]), int(sys.argv[2]))
