"""pivot's side of a warm parent: start it, fork workers from it, run stages on them.

:class:`WarmParent` starts the process of :mod:`pivot.pipeline.warm_parent`
(through :func:`pivot.pipeline.lifeline.spawn`, in a session of its own, its
stderr in ``.pivot/logs/warm-parent.log``) and waits for its answer to the
preload. :meth:`WarmParent.executor` asks it to fork ``jobs`` workers, each
with a socket of its own to this process, and returns a
:class:`ForkedExecutor` over them: ``submit(fn, *args)`` gives a ``Future``,
like loky's executor, so the pipeline core runs on it unchanged. Each forked
pid is :func:`~pivot.pipeline.lifeline.adopt`-ed, so the run lock lists it
like a loky worker.

A worker that dies fails its stage with ``BrokenProcessPool`` naming how it
died (the warm parent reaps it and reports its wait status), which the
executor treats like a dead loky worker. Killing kills each worker's whole
tree (:func:`pivot.pipeline.proctree.kill_tree`); closing the parent kills its
tree, workers included.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from pivot.pipeline import lifeline, proctree
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.loader import spec_from_answer
from pivot.pipeline.spec import PipelineSpec
from pivot.pipeline.state import STATE_DIR
from pivot.pipeline.warm_parent import receive, send

__all__ = ["ForkedExecutor", "Stale", "WarmParent", "WarmParentError", "describe_status"]

T = TypeVar("T")

_SCRIPT = "import sys\nfrom pivot.pipeline import warm_parent\nwarm_parent.main(int(sys.argv[1]))\n"
REPLY_TIMEOUT = 30.0


class WarmParentError(Exception):
    """The warm parent cannot serve: it is unsafe to fork, gone, or did not answer."""

    def __init__(self, message: str, module: str = "") -> None:
        super().__init__(message)
        self.module = module  # the import that made it unsafe, when one did


class Stale(WarmParentError):
    """A file the warm parent imported (or a ``sys.path`` folder) changed on disk."""


def describe_status(status: int | None) -> str:
    """How a process ended, from its wait status ("killed by SIGSEGV", "exited with status 3")."""
    if status is None:
        return "died"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"was killed by {name}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return "died"


class WarmParent:
    """One warm parent process and the thread reading what it says."""

    def __init__(self, root: Path, preload: list[str], python: str | None = None) -> None:
        self.root = root
        self.preload = list(preload)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        log = root / STATE_DIR / "logs" / "warm-parent.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as err:
            self.proc: subprocess.Popen[bytes] = lifeline.spawn(
                subprocess.Popen,
                [
                    *lifeline.exec_prefix(),
                    python or sys.executable,
                    "-c",
                    _SCRIPT,
                    str(theirs.fileno()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a terminal's Ctrl-C is pivot's to handle
                env={**os.environ, **lifeline.child_env()},
            )
        theirs.close()
        self._replies: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._exits: dict[int, int] = {}
        self._cond = threading.Condition()
        self._request = threading.Lock()
        self.info: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, name="pivot-warm-parent", daemon=True)
        self._reader.start()
        send(self._sock, {"root": str(root), "preload": self.preload})

    def _read(self) -> None:
        while True:
            try:
                message, fds = receive(self._sock)
            except (OSError, ValueError):
                message, fds = None, []
            for fd in fds:
                os.close(fd)
            if message is None:
                self._replies.put(None)
                with self._cond:
                    self._cond.notify_all()
                return
            if "exit" in message:
                with self._cond:
                    self._exits[int(message["exit"])] = int(message["status"])
                    self._cond.notify_all()
            else:
                self._replies.put(message)

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            answer = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise WarmParentError(
                f"the warm parent did not answer within {timeout:.0f} s"
            ) from None
        if answer is None:
            self._replies.put(None)  # every later caller learns it too
            raise WarmParentError(f"the warm parent exited ({describe_status(self._status())})")
        return answer

    def _status(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(1.0)
        code = self.proc.returncode
        if code is None:
            return None
        return (-code) & 0x7F if code < 0 else code << 8  # back to a wait status

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Wait for the preload's outcome; raises :class:`WarmParentError` if unusable."""
        answer = self._reply(timeout)
        if "unsafe" in answer:
            raise WarmParentError(str(answer["unsafe"]), str(answer.get("module", "")))
        if "stale" in answer:
            raise Stale(f"{answer['stale']} changed while it was imported")
        self.info = dict(answer["ready"])
        return self.info

    def check(self) -> str | None:
        """The file that changed since the preload, or None while the parent is current."""
        with self._request:
            send(self._sock, {"check": True})
            answer = self._reply(REPLY_TIMEOUT)
        return None if "fresh" in answer else str(answer.get("stale", "?"))

    def executor(self, jobs: int) -> ForkedExecutor:
        """``jobs`` freshly forked workers; :class:`Stale` if the parent's code is out of date."""
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(jobs)]
        try:
            with self._request:
                try:
                    send(self._sock, {"fork": jobs}, [theirs.fileno() for _, theirs in pairs])
                except OSError as exc:
                    raise WarmParentError(f"the warm parent is gone ({exc})") from None
                for _, theirs in pairs:
                    theirs.close()
                answer = self._reply(REPLY_TIMEOUT)
        except BaseException:
            for ours, theirs in pairs:
                ours.close()
                theirs.close()
            raise
        if "stale" in answer:
            for ours, _ in pairs:
                ours.close()
            raise Stale(f"{answer['stale']} changed")
        pids = [int(p) for p in answer["forked"]]
        for pid in pids:
            lifeline.adopt(pid)  # listed in the run lock like a loky worker
        conns = [Connection(ours.detach()) for ours, _ in pairs]
        return ForkedExecutor(self, list(zip(pids, conns, strict=True)))

    def load(self, pipeline_file: Path, timeout: float) -> PipelineSpec:
        """The pipeline's spec, loaded in a child forked from the parent (fresh project
        code, preloaded third-party modules): what a standby loader gives, sooner.

        :class:`PipelineError` for the user's mistakes, :class:`Stale` if the parent's code
        is out of date, ``TimeoutError`` (the child killed) past ``timeout``.
        """
        r, w = os.pipe()
        try:
            with self._request:
                try:
                    send(self._sock, {"load": str(pipeline_file)}, [w])
                except OSError as exc:
                    raise WarmParentError(f"the warm parent is gone ({exc})") from None
                os.close(w)
                w = -1
                answer = self._reply(REPLY_TIMEOUT)
            if "stale" in answer:
                raise Stale(f"{answer['stale']} changed")
            pid = int(answer["forked"][0])
            lifeline.adopt(pid)
            out = _read_all(r, timeout, pid)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        try:
            return spec_from_answer(out, "", "?")
        except PipelineError:
            if out.strip():
                raise  # the user's mistake, as the loader reported it
        # No answer: how the child ended says why (waited for only then: it costs a
        # round trip through the parent, which a loaded machine makes long).
        status = describe_status(self.exit_status(pid, timeout=5.0))
        return spec_from_answer(out, "see .pivot/logs/warm-parent.log", status)

    def exit_status(self, pid: int, timeout: float) -> int | None:
        """The wait status of worker ``pid`` once the parent reaped it (None if not in time)."""
        with self._cond:
            self._cond.wait_for(
                lambda: pid in self._exits or not self._reader.is_alive(), timeout=timeout
            )
            return self._exits.pop(pid, None)

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def close(self) -> None:
        """Kill the parent and everything below it (its workers included); wait for it."""
        proctree.kill_tree(self.proc.pid)
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self.proc.wait()
        self._reader.join(5)
        self._sock.close()


def _read_all(fd: int, timeout: float, pid: int) -> str:
    """What the child writes to ``fd`` until it closes it; kills its tree past ``timeout``."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            proctree.kill_tree(pid)
            raise TimeoutError(f"the pipeline loader did not answer within {timeout:.0f} s")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks).decode(errors="replace")
        chunks.append(chunk)


_STOP = object()


class ForkedExecutor:
    """Workers forked from a warm parent, each fed by a thread here; ``submit`` like loky's."""

    def __init__(self, parent: WarmParent, workers: list[tuple[int, Connection]]) -> None:
        self.parent = parent
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live = len(workers)
        self._broken = ""
        self._conns = dict(workers)
        self._threads = [
            threading.Thread(target=self._feed, args=(pid, conn), name=f"pivot-forked-{pid}")
            for pid, conn in workers
        ]
        for t in self._threads:
            t.daemon = True
            t.start()

    @property
    def pids(self) -> set[int]:
        """The worker processes' pids."""
        return set(self._conns)

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the next idle worker."""
        future: Future[T] = Future()
        with self._lock:
            if self._broken or not self._live:
                future.set_exception(BrokenProcessPool(self._broken or "no worker left"))
                return future
            self._tasks.put((future, fn, args))
        return future

    def _feed(self, pid: int, conn: Connection) -> None:
        try:
            self._serve(pid, conn)
        finally:
            conn.close()  # the worker sees the end of its socket and exits

    def _serve(self, pid: int, conn: Connection) -> None:
        while True:
            item = self._tasks.get()
            if item is _STOP:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                conn.send((fn, args))
                kind, value = conn.recv()
            except (EOFError, OSError) as exc:
                status = self.parent.exit_status(pid, timeout=2.0)
                how = describe_status(status) if status is not None else f"died ({exc})"
                why = f"a worker process (pid {pid}) {how}"
                self._lost(why)
                future.set_exception(BrokenProcessPool(why))
                return
            except Exception as exc:  # the task or its result could not be pickled
                future.set_exception(exc)
                continue
            if kind == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)

    def _lost(self, why: str) -> None:
        """One worker died: like loky, the pool is broken; queued tasks fail now."""
        with self._lock:
            self._live -= 1
            self._broken = self._broken or why
            pending = []
            while True:
                try:
                    pending.append(self._tasks.get_nowait())
                except queue.Empty:
                    break
            for _ in range(self._live):
                self._tasks.put(_STOP)
        for item in pending:
            if item is not _STOP:
                item[0].set_exception(BrokenProcessPool(why))

    def kill(self, timeout: float = 10.0) -> None:
        """Kill every worker with everything its stages started; returns once they are gone."""
        killed: set[int] = set()
        for pid in self._conns:
            killed |= proctree.kill_tree(pid)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        self.shutdown()
        deadline = time.monotonic() + timeout
        while any(proctree.process_start(p) is not None for p in killed):
            if time.monotonic() > deadline:
                break  # SIGKILL was sent; only a stuck kernel keeps them
            time.sleep(0.005)

    def shutdown(self) -> None:
        """Stop feeding the workers: each exits once its feeding thread closes its socket."""
        with self._lock:
            self._broken = self._broken or "shut down"
            for _ in self._threads:
                self._tasks.put(_STOP)
