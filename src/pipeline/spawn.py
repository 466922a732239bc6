"""Worker processes start in a session of their own, before any Python runs in them.

A terminal's Ctrl-C is a SIGINT to its whole foreground process group. loky
starts a worker by fork+exec of a fresh interpreter, and only the pool's
initializer, which runs after the interpreter and loky have imported, can
move the worker out of that group. A Ctrl-C inside that window (common on a
loaded machine) killed the half-started worker with a ``KeyboardInterrupt``
traceback on the user's terminal. loky has no option for the child's session,
and its spawn resets the child's signal mask, so blocking SIGINT around it
does not help (see docs/solutions/ctrl-c-reaches-starting-workers.md).

:func:`install` wraps the function loky spawns with (``loky.backend.fork_exec.
fork_exec``, looked up by loky at each spawn) so that the interpreter is
started through ``setsid(1)``: the worker is born as the leader of a new
session and process group, never in the terminal's foreground group, and
keeps its pid (``setsid`` only forks when its caller already leads a group,
which a freshly forked child never does). The parent still kills each
worker's whole group on shutdown. Without a ``setsid`` program (not Linux),
nothing is wrapped and the initializer's ``os.setpgrp()`` remains the only
protection.

The same wrapper hands each spawn to :func:`pivot.pipeline.lifeline.spawn`
(the lifeline thread, with ``PIVOT_LIFELINE`` in the child's environment),
so that every worker dies with this process however it dies.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["install"]

_lock = threading.Lock()
_MARK = "_pivot_new_session"


def install() -> bool:
    """Make loky start every later worker in a new session; True when it will."""
    try:
        from loky.backend import fork_exec as module
    except ImportError:  # loky reorganised: keep its own spawn, unwrapped
        return False

    from pivot.pipeline import lifeline

    with _lock:
        original: Callable[..., Any] | None = getattr(module, "fork_exec", None)
        if original is None:
            return False
        if hasattr(original, _MARK):  # already wrapped
            return bool(getattr(original, _MARK))
        setsid = _setsid_program()
        prefix = [setsid] if setsid is not None else []

        def fork_exec_in_new_session(
            cmd: Sequence[str], keep_fds: Sequence[int], env: dict[str, str] | None = None
        ) -> Any:
            env = {**(env or {}), **lifeline.child_env()}
            argv = [*prefix, *lifeline.exec_prefix(), *cmd]
            return lifeline.spawn(original, argv, keep_fds, env=env)

        # The mark says whether workers get a session of their own.
        setattr(fork_exec_in_new_session, _MARK, setsid is not None)
        module.fork_exec = fork_exec_in_new_session
        return setsid is not None


def _setsid_program() -> str | None:
    """An absolute path to ``setsid(1)``; never one relative to the project directory."""
    for candidate in ("/usr/bin/setsid", "/bin/setsid", shutil.which("setsid")):
        if candidate and Path(candidate).is_absolute() and os.access(candidate, os.X_OK):
            return candidate
    return None
