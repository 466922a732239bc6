"""Watch mode's workers, forked from a warm parent after each code change.

:class:`WarmWorkers` is a :class:`pivot.pipeline.local_executor.LocalExecutor`
whose loky workers (what the base class does) are the *fallback*. Once
started it builds a warm parent (:class:`pivot.pipeline.warm_client.WarmParent`)
in the background, which
imports the third-party modules the project's files import
(:func:`pivot.pipeline.warm_preload.candidates`). From then on each
:meth:`restart` (a code change) forks ``jobs`` new workers from it in a few
milliseconds instead of starting interpreters that import numpy again.

When the parent cannot be used, the fallback's loky workers run the wave,
which is always correct, only slower:

* not ready yet (the first wave, or while it is rebuilt);
* stale: a file it imported or a ``sys.path`` folder changed (``pip install``,
  ``pip install -U``): it is closed and a new one built, and that change's
  wave runs on the fallback; the check is made by the parent before every
  fork, so no worker is ever forked from stale code;
* (the same parent also forks the interpreter that loads ``pipeline.py``
  after a code change, :meth:`load_pipeline`, so the load does not import
  numpy again either;)
* unsafe: an import started a thread (or imported project code): it is
  rebuilt without that module (at most :data:`MAX_EXCLUDED` times), or given
  up, said once (``say``);
* not worth it: the project imports nothing beyond the standard library
  and pivot, which standby workers import anyway (quietly off);
* turned off (``--no-warm-parent``, ``warm_parent = false`` in pivot.toml).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pivot.pipeline import warm_preload
from pivot.pipeline.local_executor import PRELOAD, LocalExecutor
from pivot.pipeline.spec import PipelineSpec
from pivot.pipeline.warm_client import ForkedExecutor, Stale, WarmParent, WarmParentError

__all__ = ["MAX_EXCLUDED", "WarmWorkers", "configured"]

MAX_EXCLUDED = 3  # rebuilds without a module that started a thread, before giving up
READY_TIMEOUT = 300.0  # seconds a preload may take (torch on a slow disk)


def configured(root: Path) -> bool:
    """``warm_parent`` from the project's ``pivot.toml`` (default true).

    Raises ``ValueError`` (one line naming the file) for a value that is not a boolean or
    a file that is not TOML.
    """
    import tomllib

    config = root / "pivot.toml"
    if not config.is_file():
        return True
    try:
        value = tomllib.loads(config.read_text(encoding="utf-8")).get("warm_parent", True)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{config}: cannot read it: {exc}") from None
    if not isinstance(value, bool):
        raise ValueError(f"{config}: warm_parent must be true or false, not {value!r}")  # noqa: TRY004 - a user mistake, one line
    return value


class WarmWorkers(LocalExecutor):
    """Forked workers when a warm parent is ready, else the fallback's; thread-safe."""

    def __init__(
        self,
        jobs: int,
        root: Path,
        standby: bool = True,
        say: Callable[[str], None] | None = None,
        python: str | None = None,
    ) -> None:
        super().__init__(jobs, standby=standby)
        self.root = root
        self.python = python
        self._say = say or (lambda _m: None)
        self._said: set[str] = set()
        self._warm_lock = threading.Lock()  # not the base class's: never held together
        self._parent: WarmParent | None = None  # ready to fork
        self._building = False
        self._built = threading.Event()  # no build in progress
        self._built.set()
        self._excluded: set[str] = set()
        self._imports: warm_preload.ImportCache = {}
        self._off = ""  # why the warm parent was given up
        self._forked: ForkedExecutor | None = None
        self._retired: list[WarmParent] = []  # replaced parents whose workers may still run
        self._warm_closed = False

    # -- the warm parent ---------------------------------------------------------

    def _note(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self._say(message)

    def _build(self) -> None:
        """Start building a warm parent in the background (if none is ready or coming)."""
        with self._warm_lock:
            if self._warm_closed or self._off or self._building or self._parent is not None:
                return
            self._building = True
            self._built.clear()
        threading.Thread(target=self._build_now, name="pivot-warm-build", daemon=True).start()

    def _build_now(self) -> None:
        parent: WarmParent | None = None
        try:
            for _attempt in range(MAX_EXCLUDED + 2):
                names = [
                    n
                    for n in warm_preload.candidates(self.root, cache=self._imports)
                    if n.split(".")[0] not in self._excluded
                ]
                # pivot's own modules a worker and a reload need (`from pivot import
                # Pipeline` imports the declaration API lazily): never project code.
                names += [*PRELOAD, "pivot.pipeline.loader"]
                candidate = WarmParent(self.root, names, self.python)
                try:
                    info = candidate.wait_ready(READY_TIMEOUT)
                    if not info.get("third_party"):
                        # Nothing but the standard library and pivot: a fresh standby
                        # worker is as quick (measured: forked children were slower).
                        candidate.close()
                        with self._warm_lock:
                            self._off = "nothing to preload beyond the standard library"
                        return
                except Stale:
                    candidate.close()
                    continue  # a package changed while it imported: again
                except WarmParentError as exc:
                    candidate.close()
                    if not exc.module or len(self._excluded) >= MAX_EXCLUDED:
                        self._give_up(str(exc))
                        return
                    self._excluded.add(exc.module)
                    self._note(f"warm parent: not preloading {exc.module} ({exc}; unsafe to fork)")
                    continue
                parent = candidate
                break
            with self._warm_lock:
                if self._warm_closed or parent is None:
                    keep = None
                else:
                    self._parent, keep = parent, parent
            if keep is None and parent is not None:
                parent.close()
        except Exception as exc:  # cannot start an interpreter, a full disk for its log
            self._give_up(f"{type(exc).__name__}: {exc}")
        finally:
            with self._warm_lock:
                self._building = False
            self._built.set()

    def _give_up(self, why: str) -> None:
        with self._warm_lock:
            self._off = why
        self._note(f"warm parent off: {why}; code changes start fresh workers")

    def _drop_parent(self, parent: WarmParent) -> None:
        """Close a parent that went stale or broke, then build the next one."""
        with self._warm_lock:
            if self._parent is parent:
                self._parent = None
        parent.close()
        self._build()

    def load_pipeline(self, pipeline_file: Path, timeout: float) -> PipelineSpec | None:
        """The pipeline loaded in a child of the warm parent; None when there is none ready
        (or it went stale: it is rebuilt), so the caller loads it its own way."""
        with self._warm_lock:
            parent = self._parent
        if parent is None:
            return None
        try:
            return parent.load(pipeline_file, timeout)
        except WarmParentError as exc:
            self._say(f"warm parent: {exc}; rebuilding it")
            self._drop_parent(parent)
            return None

    def wait_warm(self, timeout: float) -> bool:
        """Wait until a warm parent is ready (False if not within ``timeout``, or off)."""
        self._build()
        self._built.wait(timeout)
        with self._warm_lock:
            return self._parent is not None

    @property
    def warm(self) -> bool:
        """Whether the current workers were forked from a warm parent."""
        with self._warm_lock:
            return self._forked is not None

    # -- the local executor's -----------------------------------------------------

    def start(self) -> set[int]:
        """The first workers (the fallback's: the warm parent is only starting)."""
        pids = super().restart()
        self._build()
        return pids

    @property
    def started(self) -> bool:
        """Whether worker processes exist: forked ones, or the fallback's."""
        with self._warm_lock:
            forked = self._forked
        return forked is not None or super().started

    def restart(self) -> set[int]:
        """Replace every worker by a new process: forked when a warm parent is ready."""
        with self._warm_lock:
            if self._warm_closed:
                raise RuntimeError("worker pool is closed")
            old, self._forked = self._forked, None
            retired, self._retired = self._retired, []
            parent = self._parent
        # Kills go in the background, as the base class does (close() joins them).
        if old is not None:
            self._dropped.add(old)
            self._in_background(self._kill_and_end, old, "workers restarted")
        for done in retired:
            self._in_background(done.close)
        forked = self._fork(parent) if parent is not None else None
        if forked is None:
            return super().restart()
        self._retire_current("workers restarted")  # the fallback's
        pids = forked.pids
        if not self._adopt(forked):
            forked.kill()
            raise RuntimeError("worker pool is closed")
        return pids

    def _adopt(self, forked: ForkedExecutor) -> bool:
        """Make ``forked`` the current workers; False if the pool was closed meanwhile."""
        with self._warm_lock:
            if self._warm_closed:
                return False
            self._forked = forked
            self.generation += 1
            return True

    def _fork(self, parent: WarmParent) -> ForkedExecutor | None:
        try:
            return parent.executor(self.jobs)
        except Stale as exc:
            self._say(f"warm parent: {exc}; rebuilding it (this change runs on fresh workers)")
        except WarmParentError as exc:
            self._say(f"warm parent: {exc}; rebuilding it (this change runs on fresh workers)")
        self._drop_parent(parent)
        return None

    def prepare_spare(self) -> None:
        """When idle: check the warm parent is current (rebuild it if not), or warm a spare."""
        with self._warm_lock:
            parent = self._parent
        if parent is None:
            super().prepare_spare()
            self._build()
            return
        threading.Thread(
            target=self._check, args=(parent,), name="pivot-warm-check", daemon=True
        ).start()

    def _check(self, parent: WarmParent) -> None:
        try:
            changed = parent.check()
            why = None if changed is None else f"{changed} changed"
        except WarmParentError as exc:
            why = str(exc)
        if why is not None:
            with self._warm_lock:
                if self._parent is not parent:
                    return
                self._parent = None
                in_use = self._forked is not None and self._forked.parent is parent
                if in_use:
                    self._retired.append(parent)  # its workers run until the next restart
            if not in_use:
                parent.close()
            self._say(f"warm parent: {why}; rebuilding it")
            self._build()

    def _pool(self) -> Any:
        """What runs are submitted to: the forked workers, or the fallback's loky pool.

        After a crash (no workers at all) the next ones are forked again when a
        warm parent is ready.
        """
        with self._warm_lock:
            forked, parent = self._forked, self._parent
        if forked is not None:
            return forked
        if parent is not None and not super().started:
            new = self._fork(parent)
            if new is not None and self._adopt(new):
                return new
            if new is not None:
                new.kill()
        return super()._pool()

    def _kill_pool(self, pool: Any) -> None:
        if isinstance(pool, ForkedExecutor):
            pool.kill()
        else:
            super()._kill_pool(pool)

    def _crashed(self, pool: Any, error: str) -> None:
        with self._warm_lock:
            if self._forked is pool:
                self._forked = None  # the next submit forks (or falls back) anew
        super()._crashed(pool, error)

    def pids(self) -> set[int]:
        """Pids of the current worker processes."""
        with self._warm_lock:
            forked = self._forked
        return forked.pids if forked is not None else super().pids()

    def wait_spare(self, timeout: float) -> bool:
        """Wait until the next restart is warm: a ready parent, else the fallback's spare."""
        if self.wait_warm(timeout):
            return True
        return super().wait_spare(timeout)

    def cancel(self, reason: str = "cancelled") -> None:
        """Kill the running workers (and their children) now; the next wave needs a restart."""
        with self._warm_lock:
            forked, self._forked = self._forked, None
        if forked is not None:
            self._dropped.add(forked)
            forked.kill()
        super().cancel(reason)

    def close(self) -> None:
        """Kill every worker and the warm parent, and wait for it."""
        with self._warm_lock:
            self._warm_closed = True
            forked, self._forked = self._forked, None
            parents = [p for p in (self._parent, *self._retired) if p is not None]
            self._parent, self._retired = None, []
        if forked is not None:
            self._dropped.add(forked)
            forked.kill()
        for parent in parents:
            parent.close()
        self._built.wait(30)  # a build still running closes what it made (closed is set)
        super().close()
