"""Limits on importing ``pipeline.py``: a time limit, progress notices, no silent exit.

Importing the user's ``pipeline.py`` runs their code. Code that loops or
waits at import would hang `pivot run` without a word, and ``os._exit(3)``
would end pivot itself with no output. :func:`guard` wraps the import:

* after :data:`FIRST_NOTICE` seconds, and every :data:`NOTICE_EVERY` after,
  ``say("still loading pipeline.py (N s)")``;
* at ``load_timeout`` (``pivot.toml``, default :data:`DEFAULT_TIMEOUT` s) the
  import is interrupted (``SIGALRM`` in the main thread: a loop or a
  ``sleep`` ends at once) and becomes a :class:`PipelineError` naming the
  line it was on; code stuck in C for :data:`GRACE` s more ends the process
  with that message (exit 2);
* ``os._exit(N)`` called by the import (in this process) becomes a
  :class:`PipelineError` saying so.

:func:`notices` is the progress part alone, for a parent waiting on a loader
in another interpreter (which enforces the limit itself).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from pivot.pipeline.errors import PipelineError

__all__ = ["DEFAULT_TIMEOUT", "guard", "load_timeout", "notices"]

DEFAULT_TIMEOUT = 60.0
FIRST_NOTICE = 3.0
NOTICE_EVERY = 5.0
GRACE = 5.0
CONFIG_FILE = "pivot.toml"

Say = Callable[[str], None]


def load_timeout(root: Path) -> float:
    """``load_timeout`` from the project's ``pivot.toml`` (seconds), or the default."""
    config = root / CONFIG_FILE
    if not config.is_file():
        return DEFAULT_TIMEOUT
    import tomllib

    try:
        value = tomllib.loads(config.read_text(encoding="utf-8")).get("load_timeout")
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_TIMEOUT  # reported by whoever reads the rest of the file
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        line = next(
            (
                n
                for n, text in enumerate(config.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip().startswith("load_timeout")
            ),
            0,
        )
        raise PipelineError("load_timeout must be a positive number of seconds", CONFIG_FILE, line)
    return float(value)


class _TimedOut(BaseException):
    """Raised into the import at the limit (not an Exception: user code must not catch it)."""


class _ExitCalled(BaseException):
    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code


@contextlib.contextmanager
def notices(
    rel: str, say: Say | None, deadlines: Sequence[tuple[float, Callable[[], None]]] = ()
) -> Iterator[None]:
    """``say`` "still loading REL (N s)" while the block runs; each ``(t, fn)`` of
    ``deadlines`` calls ``fn()`` once if the block still runs ``t`` s after it began."""
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        due = FIRST_NOTICE
        pending = sorted(deadlines, key=lambda d: d[0])
        while not done.wait(0.25):
            elapsed = time.monotonic() - start
            if say is not None and elapsed >= due:
                say(f"still loading {rel} ({int(elapsed)} s)")
                due += NOTICE_EVERY
            while pending and elapsed >= pending[0][0] and not done.is_set():
                pending.pop(0)[1]()

    thread = threading.Thread(target=tick, name="pivot-load-notices", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _where(root: Path, tb: Any, default: str) -> tuple[str, int]:
    file, line = default, 0
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename)
        if path.is_absolute() and path.resolve().is_relative_to(root):
            file, line = path.resolve().relative_to(root).as_posix(), frame.lineno or 0
    return file, line


@contextlib.contextmanager
def guard(rel: str, root: Path, say: Say | None = None) -> Iterator[None]:
    """Run the import of ``rel`` (project ``root``) under the limits of the module docstring.

    Notices go to ``say``, by default stderr (in a loader interpreter, whose
    stderr its parent keeps, they are lost: the parent says them itself).
    """
    say = say or _to_stderr
    limit = load_timeout(root)
    pid = os.getpid()
    real_exit = os._exit
    in_main = threading.current_thread() is threading.main_thread()

    importer = threading.get_ident()

    def fake_exit(status: int) -> NoReturn:
        # Only the import itself is stopped: a child it forked, or another
        # thread of pivot's (a watchdog), really exits.
        if os.getpid() != pid or threading.get_ident() != importer:
            real_exit(status)
        raise _ExitCalled(status)

    finished = threading.Event()

    def interrupt() -> None:
        if in_main:
            os.kill(pid, signal.SIGALRM)

    def stuck() -> None:
        if finished.is_set():
            return
        # The alarm did not get through (code stuck in C): end the process.
        sys.stderr.write(f"error: {_timeout_message(rel, limit)}\n")
        sys.stderr.flush()
        real_exit(2)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        if not finished.is_set():  # an alarm sent as the import ended is moot
            raise _TimedOut

    previous = signal.signal(signal.SIGALRM, on_alarm) if in_main else None
    os._exit = fake_exit
    try:
        with notices(rel, say, [(limit, interrupt), (limit + GRACE, stuck)]):
            try:
                yield
            finally:
                finished.set()
    except _TimedOut as exc:
        file, line = _where(root, exc.__traceback__, rel)
        raise PipelineError(_timeout_message(rel, limit), file, line) from None
    except _ExitCalled as exc:
        file, line = _where(root, exc.__traceback__, rel)
        raise PipelineError(
            f"loading {rel} called os._exit({exc.code}): a pipeline file must only declare "
            "stages (put work in a stage, or under `if __name__ == '__main__':`)",
            file,
            line,
        ) from None
    finally:
        os._exit = real_exit
        if previous is not None:
            signal.signal(signal.SIGALRM, previous)


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _timeout_message(rel: str, limit: float) -> str:
    return (
        f"loading {rel} stopped after {limit:g} s (load_timeout in {CONFIG_FILE}): "
        "does it loop or wait for something at import?"
    )
