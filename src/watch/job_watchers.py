"""Hosting the project's job watchers inside `pivot watch`.

The job-watchers component offers ``pivot.jobs.runtime.start_watchers(store,
config)``, returning a handle with ``stop()``. `pivot watch` starts it next
to its own actors, on the same event store: the store hands every event the
watchers append to its subscriber, the display, so one screen shows both. Like every host, it hosts
the watchers only while it holds the project's lease
(:mod:`pivot.jobs.host_lease`); otherwise it stands by, and the display
says who hosts them. It is the process's only runtime: it is registered
(:func:`pivot.pipeline.slurm_watchers.hosting_here`) before `pivot watch`
starts anything, so the waves' SLURM stages attach their watchers to it
rather than starting a second one that would stand by behind it. When that
module is not installed, or the project's configuration is invalid, watch
mode runs without job watchers and says why.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["job_watchers_starter"]


def job_watchers_starter(
    store: Any, root: Path, warn: Callable[[str], None]
) -> Callable[[], Callable[[], None]] | None:
    """A function starting the job watchers (returning their stop), or None if unavailable."""
    try:
        runtime = importlib.import_module("pivot.jobs.runtime")
        config_mod = importlib.import_module("pivot.jobs.config")
    except ImportError:
        return None
    start = getattr(runtime, "start_watchers", None)
    if start is None:
        return None
    try:
        config = config_mod.load_config(root)
    except ValueError as exc:  # ConfigError names the file and key
        warn(f"job watchers not started: {exc}")
        return None

    from pivot.pipeline.slurm_watchers import hosting_here

    # Now, not in starter: watch starts its runtime after its first wave began,
    # and that wave's jobs must not start a second one meanwhile.
    release = hosting_here(store.location)

    def starter() -> Callable[[], None]:
        try:
            handle = start(store, config, command="pivot watch")
        except BaseException:
            release()  # the waves host their jobs' watchers themselves, as `pivot run`
            raise

        def stop() -> None:
            try:
                handle.stop()
            finally:
                release()

        return stop

    return starter
