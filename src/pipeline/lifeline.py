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
  (``PIVOT_LIFELINE=<coordinator pid>``) and :func:`exec_prefix` what goes
  before its command (``setpriv --pdeathsig KILL``: it dies with us even
  while its interpreter is still starting); :func:`spawned` lists the
  children started so far that still run (the run lock records them).

In the child, first thing (:func:`arm`):

* plain (the standby and reload interpreters): the parent-death signal is
  SIGKILL; if the coordinator died before that was set (the child's parent is
  no longer the pid it was given), the child exits at once.
* ``tree=True`` (stage workers): the worker becomes a *child subreaper*, so
  every process a stage starts stays in the worker's tree, even one that
  left for a session of its own and whose parent exited (orphans are
  re-parented to the nearest subreaper ancestor, not to init). A *guard*
  (:mod:`pivot.pipeline.proctree` run as a script by ``python -I -S``, a
  child of the worker, about 12 MB and 30 ms of CPU to start) waits for the coordinator to die (a
  pidfd, else polling the worker's parent pid). The worker's parent-death
  signal is SIGSTOP: the instant the coordinator dies, the kernel freezes the
  worker, whatever it is doing (even inside C code holding the GIL, where a
  watchdog thread could not run), with its tree intact; the guard then
  freezes and kills that whole tree, worker included (``kill_tree``). A
  worker whose guard cannot start falls back to SIGKILL (its own process
  group is then all that is reached).

:func:`pivot.pipeline.proctree.kill_tree` is also how the parent kills a
worker (Ctrl-C, restart, shutdown) and how a worker ends what a stage left
running when the stage returns (:func:`end_stage_processes`): nothing a
stage started outlives it.

Limits: Linux only (``prctl``); elsewhere :func:`arm` does nothing and
process groups are all there is. What a stage hands to another service
(``systemd-run``, ``at``, an ssh to this host, a SLURM job) is not a
descendant and is not tracked. loky's resource trackers are not armed: they
exit when the last worker holding their pipe is gone. A guard that is itself
killed leaves its worker frozen once the coordinator dies; the run lock
(:mod:`pivot.pipeline.lock`) lists workers so the next run kills it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from pivot.pipeline import proctree

__all__ = [
    "ENV",
    "adopt",
    "arm",
    "child_env",
    "end_stage_processes",
    "on_spawn",
    "spawn",
    "spawned",
]

ENV = "PIVOT_LIFELINE"
T = TypeVar("T")


# -- parent side ---------------------------------------------------------------


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
    start = proctree.process_start(pid)
    if start is None:
        return
    with _thread_lock:
        for old in [p for p in _children if proctree.process_start(p) != _children[p]]:
            del _children[old]
        _children[pid] = start
        listeners = list(_listeners)
    for listener in listeners:
        listener(pid)


def adopt(pid: int) -> None:
    """Record ``pid`` as one of ours though a child of ours started it (the warm parent's
    forked workers, :mod:`pivot.pipeline.warm_parent`): :func:`spawned` lists it, so the
    run lock names it and the next run kills it if it outlived us."""
    _note(pid)


def spawned() -> dict[int, int]:
    """Children started through :func:`spawn` that still run: pid -> start time."""
    with _thread_lock:
        items = list(_children.items())
    return {pid: start for pid, start in items if proctree.process_start(pid) == start}


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


@functools.cache
def exec_prefix() -> tuple[str, ...]:
    """What to put before a child's command so it dies with us from its first instruction.

    ``setpriv --pdeathsig KILL`` (util-linux) sets the parent-death signal
    before Python even starts, where an interpreter still importing (a second
    or more on a loaded machine) would otherwise live on until :func:`arm`.
    Empty where there is no ``setpriv``; :func:`arm` still covers it then.
    """
    for candidate in ("/usr/bin/setpriv", "/bin/setpriv"):
        if os.access(candidate, os.X_OK):
            return (candidate, "--pdeathsig", "KILL")
    return ()


# -- child side ----------------------------------------------------------------


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
    if tree and proctree.prctl(proctree.PR_SET_CHILD_SUBREAPER, 1) and _start_guard(coordinator):
        proctree.prctl(proctree.PR_SET_PDEATHSIG, signal.SIGSTOP)
    else:
        proctree.prctl(proctree.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != coordinator:  # it died before the signal was set
        end_stage_processes()
        os._exit(1)


def _start_guard(coordinator: int) -> bool:
    # proctree.py run as a script without site: a guard starts in a fraction
    # of the time and memory an interpreter importing pivot takes.
    try:
        _here.guard = subprocess.Popen(
            [
                *exec_prefix(),
                sys.executable,
                "-I",
                "-S",
                proctree.__file__,  # absolute, as for any module imported from sys.path
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


def end_stage_processes(timeout: float = 5.0) -> set[int]:
    """In a worker: kill what the last stage left running below it, and reap it.

    The guard is spared. Processes re-parented here (this worker is a
    subreaper) are reaped too, so no zombie piles up between stages.
    """
    if not _here.worker:
        return set()
    guard = _here.guard.pid if _here.guard is not None else None
    children = proctree.children_of_self()
    if children is not None and not children - {guard}:  # the common case: no /proc walk
        return set()
    killed = proctree.kill_tree(
        os.getpid(), include_root=False, spare=() if guard is None else (guard,)
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proctree.reap(guard)
        if not any(proctree.process_start(pid) is not None for pid in killed):
            break
        time.sleep(0.005)
    proctree.reap(guard)
    return killed
