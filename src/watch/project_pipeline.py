"""The real :class:`pivot.watch.watched_pipeline.WatchedPipeline`: loads a project's pipeline.py.

``load`` runs pivot's loader in a new interpreter (one started ahead of
time, see :mod:`pivot.watch.standby_loader`, a child of the warm parent, or
:func:`pivot.pipeline.loader.load_fresh`), so an edited module is always
read anew and a broken one never breaks this process. The view it returns
carries a :class:`pivot.pipeline.project.Project` over the project's
``.pivot/state.db``: the Coordinator plans on it (`pivot run`'s own skip
decision) and tells the stages' own writes from its records, the WorkerPool
runs `pivot run`'s wave on it. Only a code change comes here; a data
change's path does not.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pivot.pipeline import load_limits
from pivot.pipeline.dag import build_graph
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.hashing import FileHasher
from pivot.pipeline.loader import load_fresh
from pivot.pipeline.project import Project
from pivot.pipeline.spec import PipelineSpec
from pivot.pipeline.state import StateStore
from pivot.storage import StorageError
from pivot.watch.standby_loader import StandbyLoader
from pivot.watch.watched_pipeline import LoadError, PipelineView, StageInfo

__all__ = ["ProjectPipeline"]

LOAD_TIMEOUT_MARGIN = 30.0


def _stage_fingerprint(spec: PipelineSpec, name: str) -> str:
    s = spec.stage(name)
    blob = json.dumps([s.fingerprint, s.params, s.module, s.qualname], sort_keys=True)
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def to_view(project: Project, after_wave: dict[str, str | None], now: float = 0.0) -> PipelineView:
    """The watch system's view of a loaded project (absolute paths)."""
    spec, graph = project.spec, project.graph
    root = Path(spec.root)
    by_name = {s.name: s for s in spec.stages}
    # In the graph's topological order: the display lists stages as they run.
    stages = {
        s.name: StageInfo(
            name=s.name,
            deps=tuple(root / d for d in s.deps),
            outs=tuple(root / o for o in s.outs),
            fingerprint=_stage_fingerprint(spec, s.name),
            job=s.slurm is not None,
        )
        for s in (by_name[n] for n in graph.order)
    }
    return PipelineView(stages=stages, project=project, loaded_at=now, after_wave=after_wave)


class ProjectPipeline:
    """Loads the pipeline of one project for `pivot watch`, with its records."""

    def __init__(
        self,
        pipeline_file: Path,
        standby: bool = True,
        say: Callable[[str], None] | None = None,
        warm_load: Callable[[Path, float], PipelineSpec | None] | None = None,
    ) -> None:
        self.pipeline_file = pipeline_file.resolve()
        self._say = say  # "still loading pipeline.py (N s)" while a load takes long
        self.root = self.pipeline_file.parent
        # With standby, the fresh interpreter of the next reload is started ahead.
        self._loader = StandbyLoader(self.pipeline_file) if standby else None
        # A child of the warm parent, when one is ready: third-party imports paid already.
        self._warm_load = warm_load
        self._lock = threading.Lock()
        self._state: StateStore | None = None
        self._hasher: FileHasher | None = None
        # Output hashes right after the last wave that ran their stage, failed
        # stages included: what a failing stage wrote is its own write too. Every
        # view carries this one dict; the WorkerPool adds to it after each wave.
        self._after_wave: dict[str, str | None] = {}

    def _open(self) -> tuple[StateStore, FileHasher]:
        with self._lock:
            if self._state is None or self._hasher is None:
                self._state = StateStore.open(self.root)
                self._hasher = FileHasher(self.root, self._state.file_cache())
            return self._state, self._hasher

    def load(self) -> PipelineView | LoadError:
        """Load the pipeline in a new interpreter; a :class:`LoadError` for user mistakes."""
        rel = self.pipeline_file.name
        try:
            # The loader interpreter stops itself at load_timeout; ours is a backstop.
            timeout = load_limits.load_timeout(self.root) + LOAD_TIMEOUT_MARGIN
            with load_limits.notices(rel, self._say):
                warm = self._warm_load(self.pipeline_file, timeout) if self._warm_load else None
                if warm is not None:
                    spec = warm
                elif self._loader is not None:
                    spec = self._loader.load(timeout=timeout)
                else:
                    spec = load_fresh(self.pipeline_file, timeout=timeout)
            graph = build_graph(spec)
        except PipelineError as exc:
            return LoadError(exc.message, exc.file, exc.line)
        except (OSError, TimeoutError, subprocess.TimeoutExpired) as exc:
            return LoadError(f"could not load the pipeline: {type(exc).__name__}: {exc}")
        state, hasher = self._open()
        return to_view(Project(spec, graph, state, hasher), self._after_wave, time.time())

    def close(self) -> None:
        """Release the state database; stop the waiting loader."""
        if self._loader is not None:
            self._loader.close()
        with self._lock:
            if self._state is not None:
                try:
                    if self._hasher is not None:
                        self._state.save_file_cache(self._hasher.dirty)
                except StorageError:
                    pass  # a cache of hashes; the error that stopped the watch was said
                finally:
                    self._state.close()
            self._state = None
            self._hasher = None
