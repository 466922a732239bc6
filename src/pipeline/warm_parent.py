"""The warm parent process: third-party modules imported once, a fresh worker forked per need.

Started by :class:`pivot.pipeline.warm_client.WarmParent` as ``python -c``
(in a session of its own, through :func:`pivot.pipeline.lifeline.spawn`, so
it dies with pivot). It talks over one ``SOCK_SEQPACKET`` socket: one JSON
message per packet, file descriptors alongside (``SCM_RIGHTS``).

1. It arms its lifeline, receives ``{"root", "preload"}`` and imports each
   module of ``preload`` in :func:`~pivot.pipeline.warm_preload.preload_order`,
   skipping names the project root could provide and never with the root (or
   the working directory) on ``sys.path``.
2. Fork safety: after each import it counts its threads (``/proc/self/task``).
   A thread started by anything but :data:`~pivot.pipeline.warm_preload.
   FORK_SAFE_THREADS`, or any module imported from the project root, makes it
   answer ``{"unsafe": why, "module": name}`` and exit: forking a process with
   a thread in the middle of something (holding a lock, talking to a GPU)
   gives a child that deadlocks or fails later.
3. It stamps every file it imported and every ``sys.path`` folder
   (:func:`~pivot.pipeline.warm_preload.stamp`) and answers ``{"ready": ...}``
   (or ``{"stale": path}`` if a file changed while it was being imported).
4. Then, single-threaded, it serves ``{"fork": n}`` (with n socket ends) and
   ``{"load": pipeline_file}`` (with a pipe: a forked child runs pivot's
   loader, :func:`pivot.pipeline.loader.main`, its answer on the pipe): if
   its stamp no longer matches the disk it answers ``{"stale": path}`` and
   forks nothing; otherwise it forks one worker per socket (or the loader)
   and answers ``{"forked": [pids]}``. It reaps its children and reports each
   ``{"exit": pid, "status": waitstatus}``. ``{"check": true}`` answers stale
   or ``{"fresh": true}``. When pivot closes the socket it exits.

A forked worker (:func:`_worker`) is armed like a loky worker
(:func:`pivot.pipeline.worker.init_worker`: subreaper, guard, parent-death
signal, own process group) with the warm parent as its coordinator, which
itself dies with pivot; then it runs ``fn(*args)`` for each task received on
its socket and sends back ``("ok", result)`` or ``("error", exception)``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import pickle
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from pivot.pipeline import lifeline, warm_preload

__all__ = ["Preloaded", "main", "thread_count"]

MAX_MESSAGE = 1 << 20


def thread_count() -> int:
    """Threads of this process, native ones included (1 where /proc cannot tell)."""
    try:
        return sum(1 for _ in Path("/proc/self/task").iterdir())
    except OSError:
        return threading.active_count()


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One JSON message (with ``fds``) in one packet."""
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


def receive(sock: socket.socket, max_fds: int = 64) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the descriptors that came with it; (None, []) at end of stream."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, max_fds)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    message: dict[str, Any] = json.loads(data)
    return message, list(fds)


class Preloaded:
    """Third-party modules imported into this process, and the stamp saying when they went stale.

    A thread started by an import makes it unsafe to fork (see the module docstring).
    """

    def __init__(self) -> None:
        self.files: warm_preload.Stamp = {}
        self.folders: warm_preload.Stamp = {}

    def load(self, root: str, names: list[str]) -> dict[str, Any]:
        """Import ``names``; the ready (or unsafe, or stale) message to send."""
        cwd = str(Path.cwd())
        excluded = {os.path.realpath(root), os.path.realpath(cwd)}
        # Neither the project root nor the working directory on sys.path while
        # importing: nothing of the project can be picked up by accident.
        saved_path = list(sys.path)
        sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) not in excluded]
        environment = _environment()
        folders = [
            p for p in sys.path if Path(p).is_dir() and not _project_file(p, excluded, environment)
        ]
        self.folders = warm_preload.stamp(folders)
        began = time.time_ns()
        threads = thread_count()
        done: list[str] = []
        failed: list[str] = []
        try:
            for name in warm_preload.preload_order(names):
                top = name.split(".")[0]
                if warm_preload.is_project_name(top, excluded):
                    continue
                try:
                    importlib.import_module(name)
                    done.append(name)
                except (Exception, SystemExit):  # not installed, or broken: the worker will say
                    failed.append(name)
                now = thread_count()
                if now > threads:
                    if top not in warm_preload.FORK_SAFE_THREADS or threading.active_count() > 1:
                        return {"unsafe": f"importing {name} started a thread", "module": top}
                    threads = now
        finally:
            sys.path[:] = saved_path
        if threading.active_count() > 1:
            return {"unsafe": "a preloaded module started a Python thread"}
        project = _project_module({os.path.realpath(root)})
        if project is not None:
            return {"unsafe": f"a preloaded module imported project code ({project})"}
        self.files = warm_preload.stamp(_module_files())
        changed = warm_preload.first_change(self.files, since_ns=began)
        changed = changed or warm_preload.first_change(self.folders)
        if changed is not None:
            return {"stale": changed}
        gc.freeze()  # forked children then leave these pages shared (no GC writes to them)
        return {
            "ready": {
                "pid": os.getpid(),
                "preloaded": done,
                # What a standby worker does not import anyway: the point of a warm parent.
                "third_party": [
                    n
                    for n in done
                    if n.split(".")[0] not in sys.stdlib_module_names and n.split(".")[0] != "pivot"
                ],
                "failed": failed,
                "threads": threads,
                "modules": len(sys.modules),
                "files": len(self.files),
            }
        }

    def stale(self) -> str | None:
        """The first imported file or ``sys.path`` folder changed since :meth:`load`."""
        return warm_preload.first_change(self.files) or warm_preload.first_change(self.folders)


class _Parent:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: set[int] = set()
        self.held = Preloaded()
        self.wakeup_r, self.wakeup_w = os.pipe()

    def stale(self) -> str | None:
        return self.held.stale()

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        os.set_blocking(self.wakeup_w, False)
        signal.set_wakeup_fd(self.wakeup_w)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(self.wakeup_r, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is self.wakeup_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup_r, 4096)
                    continue
                message, fds = receive(self.sock)
                if message is None:
                    return
                self.handle(message, fds)
            self.reap()

    def handle(self, message: dict[str, Any], fds: list[int]) -> None:
        if "load" in message:
            self.fork_loader(str(message["load"]), fds)
            return
        if "check" in message:
            changed = self.stale()
            send(self.sock, {"stale": changed} if changed else {"fresh": True})
            return
        changed = self.stale()
        if changed is not None:
            for fd in fds:
                os.close(fd)
            send(self.sock, {"stale": changed})
            return
        pids = []
        for i, fd in enumerate(fds):
            pid = os.fork()
            if pid == 0:
                _worker(fd, self, fds[i + 1 :])  # never returns
            os.close(fd)
            self.children.add(pid)
            pids.append(pid)
        send(self.sock, {"forked": pids})

    def fork_loader(self, pipeline_file: str, fds: list[int]) -> None:
        """Fork a child that loads ``pipeline_file`` as the standby loader would, its
        answer on the pipe ``fds[0]``."""
        changed = self.stale()
        if changed is not None or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            send(self.sock, {"stale": changed or "?"})
            return
        pid = os.fork()
        if pid == 0:
            _loader(fds[0], self, pipeline_file)  # never returns
        os.close(fds[0])
        self.children.add(pid)
        send(self.sock, {"forked": [pid]})

    def reap(self) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                self.children.discard(pid)
                with contextlib.suppress(OSError):
                    send(self.sock, {"exit": pid, "status": status})


def _under(path: str, roots: set[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == r or real.startswith(r + os.sep) for r in roots)


def _environment() -> set[str]:
    """Where this interpreter's own files live (a ``.venv`` inside the project among them)."""
    import site
    import sysconfig

    places = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    places |= {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    with contextlib.suppress(AttributeError):
        places |= set(site.getsitepackages())
    return {os.path.realpath(p) for p in places if p}


def _project_file(path: str, project: set[str], environment: set[str]) -> bool:
    """Whether ``path`` is the project's: below its root (or the working directory), and
    not inside this interpreter's environment (a project's ``.venv`` is not its code)."""
    return _under(path, project) and not _under(path, environment)


def _module_files() -> list[str]:
    files = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str):
            files.append(name)
    return sorted(set(files))


def _project_module(project: set[str]) -> str | None:
    environment = _environment()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and _project_file(file, project, environment):
            return name
    return None


def _worker(fd: int, parent: _Parent, siblings: list[int]) -> None:
    """The forked child: a stage worker until its socket closes; always ``os._exit``."""
    code = 0
    try:
        _detach(parent, siblings)
        from pivot.pipeline.worker import init_worker

        init_worker()
        # As in a loky worker (``python -m``): the working directory first.
        sys.path.insert(0, str(Path.cwd()))
        _reseed()
        _serve_tasks(fd)
    except BaseException:  # never back into the parent's loop
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _detach(parent: _Parent, keep: list[int]) -> None:
    """In a forked child: drop the parent's signal wiring and descriptors."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Another worker's socket held here would hide that worker's death from pivot.
    for own in (parent.sock.fileno(), parent.wakeup_r, parent.wakeup_w, *keep):
        with contextlib.suppress(OSError):
            os.close(own)
    os.environ[lifeline.ENV] = str(os.getppid())  # the warm parent is its coordinator


def _loader(fd: int, parent: _Parent, pipeline_file: str) -> None:
    """The forked child that loads the pipeline, as the standby loader's interpreter does
    (``python -c`` in the pipeline's folder); always ``os._exit``."""
    code = 1
    try:
        _detach(parent, [])
        os.dup2(fd, 1)
        os.close(fd)
        os.chdir(Path(pipeline_file).parent)
        sys.path.insert(0, "")
        importlib.invalidate_caches()
        _reseed()
        from pivot.pipeline import loader

        code = loader.main([pipeline_file])  # arms its lifeline first
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reseed() -> None:
    # A fresh interpreter draws new seeds; a fork copies the parent's state.
    # `random` reseeds itself after fork (os.register_at_fork); numpy does not.
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        with contextlib.suppress(Exception):
            numpy_random.seed()


def _serve_tasks(fd: int) -> None:
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        try:
            # From pivot alone (its own socket); one that cannot be unpickled fails alone.
            fn, args = pickle.loads(data)  # noqa: S301
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def main(fd: int) -> None:
    """Entry point of the warm parent (``python -c``); ``fd`` is its end of the socket."""
    lifeline.arm()  # dies with pivot, before importing anything heavy
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    message, _ = receive(sock)
    if message is None:
        return
    parent = _Parent(sock)
    answer = parent.held.load(str(Path(message["root"])), list(message["preload"]))
    send(sock, answer)
    if "ready" in answer:
        parent.serve()
