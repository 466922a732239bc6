"""What runs inside a worker process: import the stage's function, call it.

The function is imported from its module *file* in the worker, so a fresh
worker always runs the code as it is on disk. A stage that leaves an output
file untouched fails (see :func:`_signature`). Its stdout and stderr (file
descriptors 1 and 2, so subprocesses and C code are captured too) go to the
stage's log file. Every failure comes back as a :class:`StageOutcome`, never as
an exception: the parent decides what it means.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import signal
import stat
import sys
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pivot.pipeline import lifeline

__all__ = ["StageOutcome", "StageTask", "init_worker", "job_id_of", "run_stage"]

_THIS_FILE = os.path.realpath(__file__)


@dataclass(frozen=True)
class StageTask:
    """Everything a worker needs to run one stage (picklable)."""

    root: str
    stage: str
    module: str
    file: str  # relative to root
    qualname: str
    dep_args: Mapping[str, str] = field(default_factory=dict)
    out_args: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    log_path: str = ""


@dataclass(frozen=True)
class StageOutcome:
    """How a stage run ended: in a worker, or as a job (see :mod:`pivot.pipeline.executor`)."""

    stage: str
    ok: bool
    pid: int  # 0 when no process of ours reported (a job on another node, a cancelled run)
    duration: float
    error: str = ""  # one line: "ValueError: bad row 3"
    traceback: str = ""
    job_id: str = ""  # the scheduler's id of the job whose result counts, when there is one
    state: str = ""  # how the executor saw it end: "", "cancelled", a Slurm state ("failed")
    exit_code: str = ""  # the job's exit code as Slurm spells it ("3:0"), when it has one


def job_id_of(future: Future[StageOutcome]) -> str:
    """The job id in a finished run's outcome (SLURM); "" when it has none or did not finish."""
    if not future.done() or future.cancelled() or future.exception() is not None:
        return ""
    return future.result().job_id


def init_worker() -> None:
    """Worker initializer: die with the parent; Ctrl-C is the parent's to handle.

    :func:`pivot.pipeline.lifeline.arm` makes the worker, and every process
    its stages start, die with the pivot process that started it, however
    that one dies. The worker also leads a process group of its own (when it
    was not born in a session of its own, see :mod:`pivot.pipeline.spawn`).
    """
    lifeline.arm(tree=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.setpgrp()


def _import(task: StageTask) -> ModuleType:
    if task.root not in sys.path:
        sys.path.insert(0, task.root)
    expected = os.path.realpath(Path(task.root) / task.file)
    module = sys.modules.get(task.module)
    if module is None:
        try:
            module = importlib.import_module(task.module)
        except ImportError:
            module = None
    if module is None or os.path.realpath(getattr(module, "__file__", "") or "") != expected:
        spec = importlib.util.spec_from_file_location(task.module, expected)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {task.file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[task.module] = module
        spec.loader.exec_module(module)
    return module


def _call(task: StageTask) -> None:
    obj: Any = _import(task)
    for part in task.qualname.split("."):
        obj = getattr(obj, part)
    obj = getattr(obj, "__wrapped__", obj)
    root = Path(task.root)
    kwargs: dict[str, Any] = dict(task.params)
    for arg, rel in task.dep_args.items():
        kwargs[arg] = root / rel
    for arg, rel in task.out_args.items():
        out = root / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        kwargs[arg] = out
    before = {rel: _signature(root / rel) for rel in task.out_args.values()}
    obj(**kwargs)
    for rel, sig in before.items():
        if sig is not None and _signature(root / rel) == sig:
            raise _NotWritten(rel)


class _NotWritten(Exception):
    pass


def _signature(path: Path) -> tuple[int, int, int] | None:
    """Identity of an existing output *file* (inode, size, mtime); None otherwise.

    An output file the stage left exactly as an earlier run wrote it would
    otherwise pass for a fresh one and be recorded as good. Outputs are not
    deleted beforehand: watch mode and users may be reading them meanwhile.
    Directories are not checked (a stage may rightly update part of one).
    """
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def run_stage(task: StageTask) -> StageOutcome:
    """Run one stage with its output captured in its log; never raises."""
    start = time.perf_counter()
    pid = os.getpid()
    log_fd = -1
    saved: list[int] = []
    if task.log_path:
        Path(task.log_path).parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        log_fd = os.open(task.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        saved = [os.dup(1), os.dup(2)]
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
    cwd = Path.cwd()
    try:
        os.chdir(task.root)
        _call(task)
        ok, error, tb = True, "", ""
    except _NotWritten as exc:
        ok, error, tb = False, f"declared output not written: {exc} (left from before)", ""
    except BaseException as exc:  # a stage may raise anything, SystemExit included
        frames = traceback.TracebackException.from_exception(exc)
        # Drop pivot's own frames: the user wants to see their code.
        frames.stack = traceback.StackSummary.from_list(
            [f for f in frames.stack if os.path.realpath(f.filename) != _THIS_FILE]
        )
        tb = "".join(frames.format())
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
        ok = False
        sys.stderr.write(tb)
    finally:
        # Nothing the stage started outlives it (a no-op outside a worker).
        lifeline.end_stage_processes()
        with contextlib.suppress(OSError):
            os.chdir(cwd)
        sys.stdout.flush()
        sys.stderr.flush()
        if saved:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, log_fd):
                os.close(fd)
    return StageOutcome(task.stage, ok, pid, time.perf_counter() - start, error, tb)
