"""watchfiles' notifier, built directly: the one place pivot touches watchfiles' private API.

``watchfiles.watch()`` builds its ``RustNotify`` only at the generator's first
step, in whatever thread runs it, and says nothing when the watch is live:
a change made between "start watching" and that first step is lost. pivot
needs to know: the FileWatcher retires the old notifier of a re-planned
watch only once the new one is live (``actors/file_watcher.py``), and the
job-output watch (``jobs/output_watch.py``) must see a file that grows right
after it was asked to follow it. ``RustNotify``'s constructor returns once
the watch is established, so :func:`open_notify` builds it itself, with the
arguments ``watchfiles.watch()`` would pass.

``tests/test_private_apis.py`` fails, naming this module, if a watchfiles
release changes the constructor, ``watch()``'s arguments or its results, or
stops reporting a change made right after the constructor returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from watchfiles._rust_notify import RustNotify

__all__ = ["RustNotify", "force_polling", "open_notify"]


def force_polling(env: dict[str, str] | None = None) -> tuple[bool, int]:
    """watchfiles' ``WATCHFILES_FORCE_POLLING`` / ``WATCHFILES_POLL_DELAY_MS``, as it reads them.

    Polling (by stat) is what NFS home directories, WSL and some containers
    need: inotify sees nothing there.
    """
    env = dict(os.environ) if env is None else env
    value = env.get("WATCHFILES_FORCE_POLLING", "")
    forced = bool(value) and value.lower() not in ("false", "disable", "disabled")
    delay = env.get("WATCHFILES_POLL_DELAY_MS", "")
    return forced, int(delay) if delay.isdigit() else 300


def open_notify(paths: Iterable[str], *, recursive: bool) -> RustNotify:
    """A live notifier over ``paths`` (polling when the environment asks for it).

    Raises ``OSError`` (or watchfiles' own error) when a path cannot be watched.
    Permission-denied subdirectories are skipped, as ``watchfiles.watch()`` can.
    """
    forced, delay = force_polling()
    return RustNotify([str(p) for p in paths], False, forced, delay, recursive, True)
