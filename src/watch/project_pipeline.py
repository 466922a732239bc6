"""The real :class:`pivot.watch.watched_pipeline.WatchedPipeline`: a project's pipeline.py.

- ``load`` runs pivot's loader in a new interpreter (one started ahead of
  time, see :mod:`pivot.watch.standby_loader`, or
  :func:`pivot.pipeline.loader.load_fresh`), so an edited module is always
  read anew and a broken one never breaks this process;
- ``stages_to_run`` is `pivot run`'s own skip decision (:mod:`pivot.pipeline.plan`),
  over the same ``.pivot/state.db``: watch and run agree on what is stale;
- ``run`` is `pivot run`'s executor on the watch system's workers;
- ``output_is_recorded`` compares an output's content hash with the hash its
  stage recorded after its last successful run: that is how a stage's own
  writes are told apart from someone else's edit.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.events.base import Event
from pivot.pipeline import load_limits
from pivot.pipeline.cancel import CancelToken
from pivot.pipeline.dag import StageGraph, build_graph
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.execute import execute
from pivot.pipeline.executor import Executor, Router
from pivot.pipeline.hashing import FileHasher
from pivot.pipeline.loader import load_fresh
from pivot.pipeline.plan import Decision, Plan, paths_to_observe, plan, select
from pivot.pipeline.spec import PipelineSpec
from pivot.pipeline.stale_runs import StaleRuns
from pivot.pipeline.state import StateStore
from pivot.storage import StorageError
from pivot.watch.sink import EmitEvents
from pivot.watch.standby_loader import StandbyLoader
from pivot.watch.watched_pipeline import LoadError, PipelineView, PlannedStage, StageInfo

if TYPE_CHECKING:
    from pivot.events.store import EventStore
    from pivot.pipeline.slurm_executor import SlurmJobs

__all__ = ["ProjectPipeline"]

LOAD_TIMEOUT_MARGIN = 30.0


@dataclass(frozen=True)
class Loaded:
    """What a view carries for ProjectPipeline: the spec and its graph."""

    spec: PipelineSpec
    graph: StageGraph


def _stage_fingerprint(spec: PipelineSpec, name: str) -> str:
    s = spec.stage(name)
    blob = json.dumps([s.fingerprint, s.params, s.module, s.qualname], sort_keys=True)
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def to_view(spec: PipelineSpec, graph: StageGraph, now: float = 0.0) -> PipelineView:
    """The watch system's view of a loaded spec (absolute paths)."""
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
    return PipelineView(stages=stages, spec=Loaded(spec, graph), loaded_at=now)


class ProjectPipeline:
    """Loads, plans and runs the pipeline of one project for `pivot watch`."""

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
        # stages included: what a failing stage wrote is its own write too.
        self._after_wave: dict[str, str | None] = {}
        # The project's log, for SLURM stages (jobs to adopt, their watchers);
        # set by `pivot watch` once it opened it.
        self.store: EventStore | None = None

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
        import time

        return to_view(spec, graph, time.time())

    @staticmethod
    def _loaded(view: PipelineView) -> Loaded:
        loaded = view.spec
        if not isinstance(loaded, Loaded):
            raise TypeError("a view not made by ProjectPipeline")
        return loaded

    def stages_to_run(
        self, view: PipelineView, targets: frozenset[str] | None, force: bool
    ) -> list[PlannedStage]:
        """`pivot run`'s decision for ``targets`` (all when None) and their upstream."""
        loaded = self._loaded(view)
        state, hasher = self._open()
        names = sorted(targets) if targets is not None else []
        if targets is not None and not names:
            return []
        selected = select(loaded.spec, loaded.graph, names)
        observed = hasher.hashes(paths_to_observe(loaded.spec, selected))
        decided = plan(
            loaded.spec, loaded.graph, state.records(), observed, targets=names, force=force
        )
        state.save_file_cache(hasher.dirty)
        hasher.dirty.clear()
        return [PlannedStage(d.stage, d.reasons) for d in decided.decisions if d.run]

    def run(
        self,
        view: PipelineView,
        plan: list[PlannedStage],
        *,
        local: Executor,
        emit: EmitEvents,
        cancel: CancelToken,
        trigger: str,
        correlation_id: str,
        stale: StaleRuns | None = None,
    ) -> None:
        """Execute ``plan`` with `pivot run`'s wave: on ``local`` (the watch's workers), and
        its SLURM stages as SLURM jobs (cancelled when marked on ``stale``)."""
        loaded = self._loaded(view)
        state, hasher = self._open()

        def emit_all(events: Sequence[Event]) -> None:
            emit(*events)  # as one batch: one append to the store

        slurm, on_slurm = self._slurm(loaded.spec, plan)
        routes = dict.fromkeys(on_slurm, slurm) if slurm is not None else {}
        try:
            execute(
                loaded.spec,
                loaded.graph,
                Plan(tuple(Decision(p.name, True, p.reasons) for p in plan)),
                Router(local, routes),
                state=state,
                hasher=hasher,
                emit=emit_all,
                cancel=cancel,
                trigger=trigger,
                correlation_id=correlation_id,
                actor="pivot watch",
                stale_runs=stale if stale is not None else StaleRuns(),
            )
        finally:
            if slurm is not None:
                slurm.close()
        outs = [o for p in plan for o in loaded.spec.stage(p.name).outs]
        self._after_wave.update(hasher.hashes(outs))

    def _slurm(
        self, spec: PipelineSpec, plan: list[PlannedStage]
    ) -> tuple[SlurmJobs | None, dict[str, dict[str, Any]]]:
        """The wave's SLURM stages (as declared) and the executor for them, if any."""
        from pivot.pipeline.slurm_resources import placement

        wanted = {p.name for p in plan}
        on_slurm = placement({s.name: s.slurm for s in spec.stages if s.name in wanted}, None, {})
        if not on_slurm:
            return None, {}
        from pivot.jobs.config import load_config
        from pivot.pipeline import slurm_adopt
        from pivot.pipeline.slurm_executor import SlurmJobs

        adoptable = None
        if self.store is not None:  # the jobs a killed pivot left are taken over
            records = self.store.read(types=slurm_adopt.TYPES)
            adoptable = slurm_adopt.candidates(r.event for r in records)
        jobs = SlurmJobs(
            load_config(self.root), on_slurm, actor="pivot watch", adoptable=adoptable,
            store=self.store,
        )  # fmt: skip
        return jobs, on_slurm

    def output_is_recorded(self, view: PipelineView, stage: str, out: Path) -> bool:
        """Whether ``out`` (absolute) holds what ``stage`` recorded after its last success,
        or what it left behind in the last wave that ran it."""
        del view
        state, hasher = self._open()
        try:
            rel = out.relative_to(self.root).as_posix()
        except ValueError:
            return False
        now = hasher.hash(rel)
        if rel in self._after_wave and self._after_wave[rel] == now:
            return True
        record = state.records().get(stage)
        return record is not None and rel in record.outs and record.outs[rel] == now

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
