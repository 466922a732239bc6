"""Coordinator: decides what each wave runs, one wave at a time.

- code/config batch (or a batch too big to list): reload the pipeline in a
  fresh interpreter; on error report it (file, line), keep the last valid
  pipeline and run nothing; on success diff the stages, tell the FileWatcher
  the declared paths, and run whatever is stale on restarted workers;
- data batch: drop the stages' own writes, run the stale ones among the
  consumers/producers of the changed paths and their downstream stages,
  on the same workers;
- changes arriving during a wave wait in :class:`pivot.watch.pending.Pending`
  and form exactly one next wave.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pivot.actors.base import Context, Shell
from pivot.actors.messages import (
    Batch,
    Boot,
    DeclaredPaths,
    ForceAll,
    RunWave,
    WaveDone,
    WindowOpened,
)
from pivot.events.actors import ChangesPending
from pivot.events.pipeline import ChangesDetected, PipelineInvalid, PipelineReloaded
from pivot.names import USAGE_EXIT, unknown_name
from pivot.pipeline.bytecode import drop_bytecode
from pivot.watch.affected import (
    affected_stages,
    declared_paths,
    diff_stages,
    drop_own_writes,
    drop_vanished,
    symlink_aliases,
    unalias,
    upstream,
)
from pivot.watch.classify import Classified, classify, really_changed
from pivot.watch.debounce import SAMPLE_SIZE
from pivot.watch.engine import Engine, LoadError, PipelineView
from pivot.watch.pending import Pending

__all__ = ["Coordinator"]


class Coordinator(Shell):
    """Owns the current pipeline view and the wave in flight."""

    name = "coordinator"

    def __init__(
        self,
        ctx: Context,
        engine: Engine,
        targets: Sequence[str] = (),
        force_first: bool = False,
        restarted: bool = False,
    ) -> None:
        super().__init__(ctx)
        self.engine = engine
        self.targets = tuple(targets)
        self.force_first = force_first
        self.restarted = restarted
        self.view: PipelineView | None = None
        self.invalid = False
        self.pending = Pending()
        self.running: str | None = None
        self.restart_needed = restarted
        self.carry: set[str] = set()
        self.booted = False
        self.code_seen: dict[str, str | None] = {}
        self.aliases: dict[Path, Path] = {}
        # The debouncer has an open window: a batch is on its way. Pending
        # changes wait for it (a wave never starts mid-checkout); bounded by
        # the debouncer's maximum wait.
        self.incoming = False

    # -- start-up (on Boot, once the watcher runs): load, run what is stale ---
    def started(self) -> None:
        if self.restarted:
            self.actor_ref.tell(Boot())

    def _boot(self) -> None:
        self.booted = True
        self.pending.take()  # the initial staleness check covers anything seen so far
        batch_id = uuid.uuid4().hex
        if not self._reload(batch_id):
            return
        trigger = "initial"
        force = self.force_first and not self.restarted
        if force:
            trigger = "force"
        self._launch(None, force=force, trigger=trigger, correlation_id=batch_id)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Boot):
            self._boot()
        elif isinstance(message, WindowOpened):
            self.incoming = message.open
        elif isinstance(message, Batch):
            self.incoming = False
            self.pending.add(message)
            if self.running is not None:
                self.ctx.sink.emit(
                    ChangesPending(
                        count=self.pending.count,
                        paths=tuple(sorted(_rel(p, self.engine.root) for p in message.paths)[:5]),
                        actor=self.name,
                    )
                )
        elif isinstance(message, ForceAll):
            self.pending.force()
        elif isinstance(message, WaveDone):
            if message.wave_id == self.running:
                self.running = None
            if message.restart_failed:
                self.restart_needed = True
                self.carry.update(message.stages)
        self._next()
        return None

    # -- decisions -------------------------------------------------------------
    def _scope(self, view: PipelineView) -> frozenset[str] | None:
        if not self.targets:
            return None
        return frozenset(upstream(view, self.targets))

    def _reload(self, batch_id: str) -> bool:
        result = self.engine.load()
        if isinstance(result, LoadError):
            self.invalid = True
            self.ctx.sink.emit(
                PipelineInvalid(
                    error=result.message,
                    file=result.file,
                    line=result.line,
                    actor=self.name,
                    correlation_id=batch_id,
                )
            )
            return False
        missing = [t for t in self.targets if t not in result.stages]
        if missing:
            self.invalid = True
            error = unknown_name("stage", missing[0], list(result.stages))
            if self.view is None:
                # A typo on the command line: say so and stop, rather than wait.
                # Not a pipeline.invalid event: the pipeline is fine, the
                # command was not (replay would show it as broken until the
                # next reload).
                self.ctx.shutdown.request(error, code=USAGE_EXIT)
                return False
            self.ctx.sink.emit(  # a watched stage was renamed or removed meanwhile
                PipelineInvalid(
                    error=error,
                    file=_rel(str(self.engine.pipeline_file), self.engine.root),
                    actor=self.name,
                    correlation_id=batch_id,
                )
            )
            return False
        added, removed, modified = diff_stages(self.view, result)
        first = self.view is None
        self.view = result
        self.invalid = False
        scope = self._scope(result)
        self.ctx.sink.emit(
            PipelineReloaded(
                added=added,
                removed=removed,
                modified=modified,
                stages=tuple(n for n in result.stages if scope is None or n in scope),
                actor=self.name,
                correlation_id=batch_id,
            )
        )
        self.aliases = symlink_aliases(result)
        watched = {str(p) for p in declared_paths(result)} | {str(p) for p in self.aliases}
        self.ctx.registry.tell("file_watcher", DeclaredPaths(frozenset(watched), True))
        if not first:
            self.restart_needed = True
        return True

    def _next(self) -> None:
        if not self.booted or self.running is not None or self.pending.empty or self.incoming:
            return
        taken = self.pending.take()
        batch_id = uuid.uuid4().hex
        root = self.engine.root
        classified = classify(taken.paths, root, self.engine.pipeline_file)
        code = really_changed(classified.code, self.code_seen)
        if code != classified.code:
            classified = Classified(code, classified.data, classified.ignore_changed)
        reload = bool(classified.code) or taken.overflow or self.view is None or self.invalid
        data = unalias(classified.data, self.aliases)
        if self.view is not None:
            data = drop_vanished(self.view, data, os.path.lexists)
        if not reload and self.view is not None:
            data = drop_own_writes(self.view, data, self._is_recorded, Path.is_dir)
        if classified.code or taken.overflow or data:
            shown = sorted(classified.code | data)
            self.ctx.sink.emit(
                ChangesDetected(
                    batch_id=batch_id,
                    kind="code" if (classified.code or taken.overflow) else "data",
                    paths=tuple(_rel(p, root) for p in shown[:SAMPLE_SIZE]),
                    # Paths, not notifications (one save is several); a guess on overflow.
                    count=max(taken.count, len(shown)) if taken.overflow else len(shown),
                    overflow=taken.overflow,
                    actor=self.name,
                    correlation_id=batch_id,
                )
            )
        if reload:
            if self.invalid and not (classified.code or taken.overflow) and not taken.force:
                return  # the fix of the pipeline re-checks everything
            drop_bytecode(classified.code)  # a stale .pyc must not outlive its edit
            if classified.ignore_changed:
                self.ctx.registry.tell("file_watcher", DeclaredPaths(None, True))
            if not self._reload(batch_id):
                return
            self._launch(None, taken.force, "force" if taken.force else "change", batch_id)
            return
        if taken.force:
            self._launch(None, True, "force", batch_id)
            return
        assert self.view is not None
        targets = set(affected_stages(self.view, data)) | self.carry
        if not targets:
            return
        self._launch(frozenset(targets), False, "change", batch_id)

    def _is_recorded(self, stage: str, out: Path) -> bool:
        assert self.view is not None
        try:
            return self.engine.output_is_recorded(self.view, stage, out)
        except Exception:
            return False

    def _launch(
        self, targets: frozenset[str] | None, force: bool, trigger: str, correlation_id: str
    ) -> None:
        view = self.view
        if view is None:
            return
        scope = self._scope(view)
        if scope is not None:
            targets = scope if targets is None else targets & scope
        plan = self.engine.plan(view, targets, force)
        if not plan:
            return
        wave_id = uuid.uuid4().hex
        self.running = wave_id
        restart = self.restart_needed
        self.restart_needed = False
        self.carry = set()
        self.ctx.registry.tell(
            "worker_pool",
            RunWave(
                wave_id=wave_id,
                view=view,
                plan=tuple(plan),
                trigger=trigger,
                restart=restart,
                reason="code changed" if restart else "",
                correlation_id=correlation_id,
            ),
        )


def _rel(path: str, root: Path) -> str:
    p = Path(path)
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return path
