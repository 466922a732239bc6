"""Child processes that die with the pivot process that started them, however it dies.

A `kill -9` of `pivot run` or `pivot watch` leaves pivot no chance to clean
up, and its workers live in sessions of their own (:mod:`pivot.pipeline.spawn`),
so no signal to pivot's group reaches them: they must notice on their own.
Every process pivot starts for its own work goes through this module, and
any new way of starting one (a warm fork server, another executor) must too.

In the parent (the *coordinator*):

* :func:`spawn` calls the function that forks (loky's ``fork_exec``,
  ``subprocess.Popen``) on the *lifeline thread*, one thread that lives as
  long as the process. Linux sends a child its parent-death signal when the
  **thread** that forked it exits, not the process: loky forks from whichever
  thread submits or restarts, and watch mode warms spare workers on threads
  that end right after, so a child forked there would be killed (or frozen)
  while pivot lives on.
* :func:`child_env` is what the child's environment must carry
  (``PIVOT_LIFELINE=<coordinator pid>``); :func:`spawned` lists the children
  started so far that still run (the run lock records them).

In the child, first thing (:func:`arm`):

* plain (the standby and reload interpreters): the parent-death signal is
  SIGKILL; if the coordinator died before that was set (the child's parent is
  no longer the pid it was given), the child exits at once.
* ``tree=True`` (stage workers): the worker becomes a *child subreaper*, so
  every process a stage starts stays in the worker's tree, even one that
  left for a session of its own and whose parent exited (orphans are
  re-parented to the nearest subreaper ancestor, not to init). A *guard*
  (``python -I -m pivot.pipeline.lifeline``, a child of the worker) waits for
  the coordinator to die (a pidfd, else polling the worker's parent pid). The
  worker's parent-death signal is SIGSTOP: the instant the coordinator dies,
  the kernel freezes the worker, whatever it is doing (even inside C code
  holding the GIL, where a watchdog thread could not run), with its tree
  intact; the guard then freezes and kills that whole tree, worker included
  (:func:`kill_tree`). A worker whose guard cannot start falls back to
  SIGKILL (its own process group is then all that is reached).

:func:`kill_tree` is also how the parent kills a worker (Ctrl-C, restart,
shutdown) and how a worker ends what a stage left running when the stage
returns (:func:`end_stage_processes`): nothing a stage started outlives it.

Limits: Linux only (``prctl``); elsewhere :func:`arm` does nothing and
process groups are all there is. What a stage hands to another service
(``systemd-run``, ``at``, an ssh to this host, a SLURM job) is not a
descendant and is not tracked. loky's resource trackers are not armed: they
exit when the last worker holding their pipe is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ENV",
    "arm",
    "child_env",
    "end_stage_processes",
    "kill_tree",
    "process_start",
    "spawn",
    "spawned",
]

ENV = "PIVOT_LIFELINE"
T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_POLL = 0.1  # seconds between checks where no pidfd can be had

# -- parent side ---------------------------------------------------------------


@dataclass
class _Here:
    """This process's side of the lifeline (module state, set once)."""

    thread: threading.Thread | None = None  # the lifeline thread (parent side)
    guard: subprocess.Popen[bytes] | None = None  # this worker's guard (child side)
    worker: bool = False  # armed with tree=True: owns what its stages start


_here = _Here()
_jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
_thread_lock = threading.Lock()
_children: dict[int, int] = {}  # pid -> start time, of children spawned here
_listeners: list[Callable[[int], None]] = []


def _serve() -> None:
    while True:
        fn, future = _jobs.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, never kills this thread
                future.set_exception(exc)


def spawn(fork: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fork(*args, **kwargs)`` on the lifeline thread; records the child's pid.

    ``fork`` returns a pid or an object with a ``pid`` (``subprocess.Popen``).
    """
    with _thread_lock:
        if _here.thread is None:
            _here.thread = threading.Thread(target=_serve, name="pivot-lifeline", daemon=True)
            _here.thread.start()
        here = threading.current_thread() is _here.thread
    if here:
        result = fork(*args, **kwargs)
    else:
        future: Future[T] = Future()
        _jobs.put((lambda: fork(*args, **kwargs), future))
        result = future.result()
    pid = result if isinstance(result, int) else getattr(result, "pid", None)
    if isinstance(pid, int):
        _note(pid)
    return result


def _note(pid: int) -> None:
    start = process_start(pid)
    if start is None:
        return
    with _thread_lock:
        for old in [p for p in _children if process_start(p) != _children[p]]:
            del _children[old]
        _children[pid] = start
        listeners = list(_listeners)
    for listener in listeners:
        listener(pid)


def spawned() -> dict[int, int]:
    """Children started through :func:`spawn` that still run: pid -> start time."""
    with _thread_lock:
        items = list(_children.items())
    return {pid: start for pid, start in items if process_start(pid) == start}


def on_spawn(listener: Callable[[int], None]) -> Callable[[], None]:
    """Call ``listener(pid)`` after each later spawn; returns the function that stops it."""
    with _thread_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _thread_lock, contextlib.suppress(ValueError):
            _listeners.remove(listener)

    return remove


def child_env() -> dict[str, str]:
    """The environment entry a child needs for :func:`arm` to know its coordinator."""
    return {ENV: str(os.getpid())}


# -- child side ----------------------------------------------------------------


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def arm(*, tree: bool = False) -> None:
    """Die with the coordinator named in ``$PIVOT_LIFELINE`` (no-op without it).

    ``tree``: also take down every process this one starts (stage workers).
    Must be called from the main thread (the parent-death signal of a process
    this one forks follows the forking thread).
    """
    value = os.environ.pop(ENV, "")
    if not value.isdigit():
        return
    coordinator = int(value)
    _here.worker = tree
    if tree and _prctl(_PR_SET_CHILD_SUBREAPER, 1) and _start_guard(coordinator):
        _prctl(_PR_SET_PDEATHSIG, signal.SIGSTOP)
    else:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != coordinator:  # it died before the signal was set
        end_stage_processes()
        os._exit(1)


def _start_guard(coordinator: int) -> bool:
    try:
        _here.guard = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-m",
                "pivot.pipeline.lifeline",
                str(coordinator),
                str(os.getpid()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
    except OSError:
        return False
    return True


def _guard_main(coordinator: int, worker: int) -> None:
    """The guard: wait for the coordinator's death, then kill the worker's whole tree."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # a worker gone normally takes its guard
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
        if _parent(worker) != coordinator:
            return
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while not poller.poll():
                pass
            return
        while _parent(worker) == coordinator:
            time.sleep(_POLL)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


# -- process trees -------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state is [0]); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


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
    for entry in Path("/proc").iterdir():
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
        pid = _parent(pid)
    return found


def end_stage_processes(timeout: float = 5.0) -> set[int]:
    """In a worker: kill what the last stage left running below it, and reap it.

    The guard is spared. Processes re-parented here (this worker is a
    subreaper) are reaped too, so no zombie piles up between stages.
    """
    if not _here.worker:
        return set()
    guard = _here.guard.pid if _here.guard is not None else None
    children = _children_of_self()
    if children is not None and not children - {guard}:  # the common case: no /proc walk
        return set()
    killed = kill_tree(os.getpid(), include_root=False, spare=() if guard is None else (guard,))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(guard)
        if not any(process_start(pid) is not None for pid in killed):
            break
        time.sleep(0.005)
    _reap(guard)
    return killed


def _children_of_self() -> set[int | None] | None:
    """This process's children (None when the kernel cannot tell)."""
    found: set[int | None] = set()
    try:
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            found.update(int(p) for p in (task / "children").read_text().split())
    except (OSError, ValueError):
        return None
    return found


def _reap(keep: int | None) -> None:
    """Collect exited children (never the guard's status: its Popen keeps that)."""
    me = os.getpid()
    for pid, (state, ppid) in _table().items():
        if ppid == me and state == "Z" and pid != keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


if __name__ == "__main__":
    _guard_main(int(sys.argv[1]), int(sys.argv[2]))
