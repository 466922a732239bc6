"""Which stages a batch of changed paths affects, and how a reload changed the stages.

Over the view's :class:`pivot.pipeline.dag.StageGraph` (``view.graph``,
built once per loaded pipeline): the same graph and the same relation
between paths (equal, inside, or containing) as `pivot run` and `pivot
status`.

Policy for a hand-edited output (the same as `pivot run`, see
docs/watch.md): an output that differs from what its stage recorded
makes that stage stale, so its producer re-runs and restores it, and the
stages downstream follow. A stage's own writes match what it recorded and
are dropped before any wave starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from pivot.watch.watched_pipeline import PipelineView

__all__ = [
    "affected_stages",
    "consumers_of",
    "declared_paths",
    "diff_stages",
    "downstream",
    "drop_own_writes",
    "drop_vanished",
    "is_own_write",
    "producers_of",
    "symlink_aliases",
    "unalias",
    "upstream",
]


def _key(path: str | Path) -> str:
    return str(Path(path))  # the graph's form: absolute, normalised


def consumers_of(view: PipelineView, path: Path) -> set[str]:
    """Stages with a dep at, inside or containing ``path``."""
    return set(view.graph.consumers.owners(_key(path)))


def producers_of(view: PipelineView, path: Path) -> set[str]:
    """Stages with an output at, inside or containing ``path``."""
    return set(view.graph.producers.owners(_key(path)))


def _known(view: PipelineView, stages: Iterable[str]) -> set[str]:
    return {s for s in stages if s in view.stages}


def downstream(view: PipelineView, stages: Iterable[str]) -> set[str]:
    """``stages`` and every stage that (transitively) consumes their outputs."""
    start = _known(view, stages)
    return start | view.graph.descendants(start)


def upstream(view: PipelineView, stages: Iterable[str]) -> set[str]:
    """``stages`` and every stage they (transitively) depend on."""
    start = _known(view, stages)
    return start | view.graph.ancestors(start)


def affected_stages(view: PipelineView, paths: Iterable[str | Path]) -> frozenset[str]:
    """Consumers and producers of the changed paths, plus everything downstream
    (:meth:`pivot.pipeline.dag.StageGraph.affected`)."""
    return frozenset(view.graph.affected(_key(p) for p in paths))


def drop_own_writes(
    view: PipelineView,
    paths: Iterable[str],
    is_recorded: Callable[[str, Path], bool],
    is_dir: Callable[[Path], bool] = lambda _: False,
) -> frozenset[str]:
    """The paths left once writes that match what their stage recorded are dropped.

    A path at or inside an output counts as the stage's own write when that
    output is exactly what the stage recorded (``is_recorded(stage, out)``).
    An existing folder (``is_dir``) that holds declared outputs only (no
    source dep), all of them as recorded, is a stage's own ``mkdir``.
    """
    kept: set[str] = set()
    verdicts: dict[tuple[str, Path], bool] = {}
    all_outs = [(s.name, o) for s in view.stages.values() for o in s.outs]

    def recorded(keys: list[tuple[str, Path]]) -> bool:
        for key in keys:
            if key not in verdicts:
                verdicts[key] = is_recorded(*key)
        return all(verdicts[key] for key in keys)

    for raw in paths:
        path = Path(raw)
        owners = [(n, o) for n, o in all_outs if o == path or o in path.parents]
        if owners:
            if not recorded(owners):
                kept.add(raw)
            continue
        inside = [(n, o) for n, o in all_outs if path in o.parents]
        if not inside or not is_dir(path):
            kept.add(raw)
            continue
        produced = [o for _, o in all_outs]
        sources = [
            d
            for s in view.stages.values()
            for d in s.deps
            if path in d.parents and not any(d == o or o in d.parents for o in produced)
        ]
        if sources or not recorded(inside):
            kept.add(raw)
    return frozenset(kept)


def drop_vanished(
    view: PipelineView, paths: Iterable[str], exists: Callable[[str], bool]
) -> frozenset[str]:
    """The data paths left once those gone by now that no stage declares are dropped.

    An editor's temporary file (``sed -i`` writes ``lib/sedXXXXXX`` and
    renames it over the file) is created and gone within one batch: it cannot
    affect a stage and is not worth listing as a change. A declared path that
    vanished (a dep deleted) is kept.
    """
    return frozenset(
        p for p in paths if exists(p) or consumers_of(view, Path(p)) or producers_of(view, Path(p))
    )


def diff_stages(
    old: PipelineView | None, new: PipelineView
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Stages added, removed and modified (code fingerprint, deps or outs) by a reload."""
    before = dict(old.stages) if old is not None else {}
    after = dict(new.stages)
    added = tuple(sorted(set(after) - set(before)))
    removed = tuple(sorted(set(before) - set(after)))
    modified = tuple(sorted(n for n in set(after) & set(before) if after[n] != before[n]))
    return added, removed, modified


def declared_paths(view: PipelineView) -> set[Path]:
    """Every dep and output path of every stage."""
    out: set[Path] = set()
    for s in view.stages.values():
        out.update(s.deps)
        out.update(s.outs)
    return out


def symlink_aliases(
    view: PipelineView, resolve: Callable[[Path], Path] = Path.resolve
) -> dict[Path, Path]:
    """Declared paths that are (or sit below) a symlink: resolved target -> declared path.

    The OS reports an edit of a symlinked dep under the target's real path;
    watch the target and map its events back with :func:`unalias`.
    """
    out: dict[Path, Path] = {}
    for p in declared_paths(view):
        try:
            real = resolve(p)
        except OSError:
            continue
        if real != p:
            out[real] = p
    return out


def unalias(paths: Iterable[str], aliases: Mapping[Path, Path]) -> frozenset[str]:
    """``paths`` with every path at or below a symlink target renamed to its declared
    path(s) (a file reached through two links counts for both)."""
    if not aliases:
        return frozenset(paths)
    out: set[str] = set()
    for raw in paths:
        path = Path(raw)
        hits = [
            str(declared / path.relative_to(real))
            for real, declared in aliases.items()
            if path == real or real in path.parents
        ]
        out.update(hits or [raw])
    return frozenset(out)


def is_own_write(
    rel: str,
    now: str | None,
    after_wave: Mapping[str, str | None],
    recorded: Callable[[], Mapping[str, str | None] | None],
) -> bool:
    """Whether output ``rel``, whose content hash is ``now``, holds its stage's own write:
    what the last wave that ran the stage left (``after_wave``; a failed run's writes are
    its own too), or what its last success recorded (``recorded()``: its outputs' hashes,
    None before any)."""
    if rel in after_wave and after_wave[rel] == now:
        return True
    outs = recorded()
    return outs is not None and rel in outs and outs[rel] == now
