"""The stage graph: who produces what, who consumes it, in which order to run.

An edge goes from the stage that writes a path to every stage that reads it:
the same path, a file inside a directory it writes, or a directory holding
something it writes. Building the graph rejects two stages writing one path
(or one inside the other's output directory) and cycles.

The graph itself is plain dicts (:class:`StageGraph`), so `pivot run` and
`pivot status` do not pay networkx's half-second import; :meth:`to_networkx`
gives the same graph as a ``networkx.DiGraph`` for rendering (`pivot dag`)
and for naming the cycle in an error.
"""

from __future__ import annotations

import bisect
import heapq
import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pivot.pipeline.errors import PipelineError
from pivot.pipeline.spec import PipelineSpec

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "DeclaredStage",
    "PathIndex",
    "StageGraph",
    "affected_stages",
    "build_graph",
    "graph_of",
    "missing_deps",
    "render",
    "to_plain",
]


class PathIndex:
    """Finds declared paths related to a path: equal, inside, or containing it."""

    def __init__(self, owners: Mapping[str, Iterable[str]]) -> None:
        self._owners = {p: tuple(dict.fromkeys(s)) for p, s in owners.items()}
        self._sorted = sorted(self._owners)
        # Every folder holding a declared path: only those have any inside them.
        self._holders: set[str] = set()
        for p in self._owners:
            cut = p.rfind("/")
            while cut >= 0 and p[:cut] not in self._holders:
                self._holders.add(p[:cut])
                cut = p.rfind("/", 0, cut)

    def related(self, path: str) -> list[str]:
        """Declared paths equal to ``path``, containing it, or inside it."""
        # Called for every dep and output of every load: string slicing, not
        # a generator of parents.
        owners = self._owners
        found = [path] if path in owners else []
        cut = path.rfind("/")
        while cut >= 0:
            parent = path[:cut]
            if parent in owners:
                found.append(parent)
            cut = path.rfind("/", 0, cut)
        if path not in self._holders:
            return found
        prefix = path + "/"
        ordered = self._sorted
        i = bisect.bisect_left(ordered, prefix)
        while i < len(ordered) and ordered[i].startswith(prefix):
            found.append(ordered[i])
            i += 1
        return found

    def has_related(self, path: str) -> bool:
        """Whether any declared path is equal to ``path``, contains it, or is inside it."""
        return path in self._owners or self.nests(path)

    def nests(self, path: str) -> bool:
        """Whether a declared path other than ``path`` contains it or is inside it."""
        if path in self._holders:
            return True
        owners = self._owners
        cut = path.rfind("/")
        while cut >= 0:
            if path[:cut] in owners:
                return True
            cut = path.rfind("/", 0, cut)
        return False

    def owners(self, path: str) -> list[str]:
        """Owners (stages) of every declared path related to ``path``."""
        related = self.related(path)
        if len(related) == 1:  # the usual case; each entry is already distinct
            return list(self._owners[related[0]])
        out: dict[str, None] = {}
        for p in related:
            out.update(dict.fromkeys(self._owners[p]))
        return list(out)


@dataclass(frozen=True)
class StageGraph:
    """Stages and the paths linking them; ``order`` is a topological order."""

    order: tuple[str, ...]
    upstream: Mapping[str, tuple[str, ...]]  # direct producers of a stage's deps
    downstream: Mapping[str, tuple[str, ...]]
    edges: Mapping[tuple[str, str], tuple[str, ...]]  # (producer, consumer) -> dep paths
    producers: PathIndex  # output path -> stage
    consumers: PathIndex  # dep path -> stages

    def ancestors(self, names: Iterable[str]) -> set[str]:
        """Every stage upstream of ``names`` (not including them)."""
        return self._closure(names, self.upstream)

    def descendants(self, names: Iterable[str]) -> set[str]:
        """Every stage downstream of ``names`` (not including them)."""
        return self._closure(names, self.downstream)

    @staticmethod
    def _closure(names: Iterable[str], step: Mapping[str, tuple[str, ...]]) -> set[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            for nxt in step.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    def restricted(self, names: Iterable[str]) -> StageGraph:
        """The graph of ``names`` only: their order and the edges between them."""
        keep = set(names)
        return StageGraph(
            order=tuple(n for n in self.order if n in keep),
            upstream={n: tuple(u for u in self.upstream[n] if u in keep) for n in keep},
            downstream={n: tuple(d for d in self.downstream[n] if d in keep) for n in keep},
            edges={k: v for k, v in self.edges.items() if k[0] in keep and k[1] in keep},
            producers=self.producers,
            consumers=self.consumers,
        )

    def affected(self, paths: Iterable[str]) -> set[str]:
        """Stages reading or writing any of ``paths`` (directories included), plus
        everything downstream.

        ``paths`` are POSIX paths as the graph's (project-relative from
        :func:`build_graph`). The writer counts: an output edited by hand no
        longer matches what its stage recorded, so that stage is stale
        (``output changed``) and runs again to restore it, as `pivot run`
        would (docs/watch.md, "Hand-edited outputs"); the planner decides.
        """
        direct: set[str] = set()
        for p in paths:
            direct.update(self.consumers.owners(p))
            direct.update(self.producers.owners(p))
        return direct | self.descendants(direct)

    def to_networkx(self) -> nx.DiGraph[str]:
        """The same graph as a networkx ``DiGraph`` (edges carry ``paths``)."""
        import networkx as nx

        g: nx.DiGraph[str] = nx.DiGraph()
        g.add_nodes_from(self.order)
        for (a, b), paths in self.edges.items():
            g.add_edge(a, b, paths=paths)
        return g


class DeclaredStage(Protocol):
    """What the graph needs of a stage (a :class:`pivot.pipeline.spec.StageSpec` has it)."""

    @property
    def name(self) -> str: ...  # pragma: no cover
    @property
    def deps(self) -> tuple[str, ...]: ...  # pragma: no cover
    @property
    def outs(self) -> tuple[str, ...]: ...  # pragma: no cover
    @property
    def file(self) -> str: ...  # pragma: no cover
    @property
    def line(self) -> int: ...  # pragma: no cover


def build_graph(spec: PipelineSpec) -> StageGraph:
    """The graph of ``spec``; PipelineError for shared outputs and cycles."""
    return graph_of(spec.stages)


def graph_of(stages: Sequence[DeclaredStage]) -> StageGraph:
    """The graph of ``stages`` (in declaration order); PipelineError for shared outputs
    and cycles. Paths are compared as given (``pivot watch`` builds one of absolute paths)."""
    by_name = {s.name: s for s in stages}
    out_owner: dict[str, str] = {}
    for s in stages:
        for out in s.outs:
            if out in out_owner and out_owner[out] != s.name:
                first = by_name[out_owner[out]]
                raise PipelineError(
                    f"stages {first.name!r} ({first.file}:{first.line}) and {s.name!r} "
                    f"both write {out!r}",
                    s.file,
                    s.line,
                )
            out_owner[out] = s.name
    producers = PathIndex({p: [s] for p, s in out_owner.items()})
    for out, owner in out_owner.items():
        if not producers.nests(out):
            continue  # the usual case: no output inside another
        for other in producers.related(out):
            if other != out and out_owner[other] != owner:
                there = by_name[out_owner[other]]
                raise PipelineError(
                    f"outputs overlap: {out!r} of stage {owner!r} and {other!r} of stage "
                    f"{there.name!r} ({there.file}:{there.line}; one is inside the other)",
                    by_name[owner].file,
                    by_name[owner].line,
                )
    dep_owners: dict[str, list[str]] = {}
    edges: dict[tuple[str, str], list[str]] = {}
    for s in stages:
        name = s.name
        for dep in s.deps:
            dep_owners.setdefault(dep, []).append(name)
            if not producers.has_related(dep):
                continue  # a source file: no edge (half the deps of a usual pipeline)
            for producer in producers.owners(dep):
                edges.setdefault((producer, name), []).append(dep)
    up: dict[str, list[str]] = {s.name: [] for s in stages}
    down: dict[str, list[str]] = {s.name: [] for s in stages}
    for a, b in edges:
        up[b].append(a)
        down[a].append(b)
    graph = StageGraph(
        order=(),
        upstream={k: tuple(v) for k, v in up.items()},
        downstream={k: tuple(v) for k, v in down.items()},
        edges={k: tuple(v) for k, v in edges.items()},
        producers=producers,
        consumers=PathIndex(dep_owners),
    )
    names = tuple(s.name for s in stages)
    order = _toposort(names, graph, {s.name: (s.file, s.line) for s in stages})
    return StageGraph(
        order, graph.upstream, graph.downstream, graph.edges, producers, graph.consumers
    )


def _toposort(
    names: tuple[str, ...], graph: StageGraph, where: Mapping[str, tuple[str, int]]
) -> tuple[str, ...]:
    # Kahn's algorithm; ties broken by declaration order so output is stable.
    rank = {n: i for i, n in enumerate(names)}
    indegree = {n: len(graph.upstream[n]) for n in names}
    ready = [(rank[n], n) for n in names if indegree[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for d in graph.downstream[n]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, (rank[d], d))
    if len(order) == len(names):
        return tuple(order)
    import networkx as nx

    cycle = nx.find_cycle(graph.to_networkx())
    # Start the printed cycle at its earliest-declared stage, so it reads the same every time.
    first = min(range(len(cycle)), key=lambda i: rank[cycle[i][0]])
    cycle = cycle[first:] + cycle[:first]
    steps = [f"{a} -> {b} (via {', '.join(graph.edges[(a, b)])})" for a, b in cycle]
    places = ", ".join(f"{a} at {where[a][0]}:{where[a][1]}" for a, _ in cycle)
    file, line = where[cycle[0][0]]
    raise PipelineError(f"dependency cycle: {'; '.join(steps)} ({places})", file, line)


def affected_stages(
    spec: PipelineSpec, graph: StageGraph, paths: Iterable[str | os.PathLike[str]]
) -> set[str]:
    """Stages a batch of changed paths affects: consumers and producers (directories
    too) and downstream (:meth:`StageGraph.affected`).

    ``paths`` may be absolute or relative to the project root; paths outside
    the project are ignored. Pure (no file system access besides path maths):
    what watch mode calls for each debounced batch.
    """
    root = posixpath.normpath(spec.root)
    rels = []
    for p in paths:
        full = posixpath.normpath(posixpath.join(root, os.fspath(p)))
        if full.startswith(root + "/"):
            rels.append(full[len(root) + 1 :])
    return graph.affected(rels)


def missing_deps(spec: PipelineSpec, graph: StageGraph) -> list[tuple[str, str]]:
    """``(stage, dep)`` for deps no stage writes and that do not exist on disk."""
    missing = []
    produced = graph.producers.has_related
    root = os.path.join(spec.root, "")  # noqa: PTH118 - str, not Path: every dep of every load
    for s in spec.stages:
        for dep in s.deps:
            if not produced(dep) and not _exists(root + dep):
                missing.append((s.name, dep))
    return missing


def _exists(path: str) -> bool:
    """``os.path.exists`` without its Python frame (10,000 deps, each load)."""
    try:
        os.stat(path)  # noqa: PTH116
    except (OSError, ValueError):
        return False
    return True


def render(graph: StageGraph, fmt: str = "text", where: Mapping[str, str] | None = None) -> str:
    """The graph as ``text`` (stages by layer), ``mermaid`` or ``dot``.

    ``where`` names, for the stages that do not run locally, where they run
    (``slurm@local (02:00:00)``): shown beside the stage's name.
    """
    where = where or {}
    if fmt == "text":
        return _render_text(graph, where)
    lines: list[str] = []
    if fmt == "mermaid":
        lines.append("flowchart TD")
        ids = {n: f"s{i}" for i, n in enumerate(graph.order)}
        for n in graph.order:
            label = (f"{n}<br/>{where[n]}" if n in where else n).replace('"', "'")
            lines.append(f'    {ids[n]}["{label}"]')
        for (a, b), paths in graph.edges.items():
            label = ", ".join(paths).replace('"', "'")
            lines.append(f'    {ids[a]} -->|"{label}"| {ids[b]}')
        return "\n".join(lines)
    if fmt == "dot":
        lines.append("digraph pivot {")
        lines.append("    rankdir=LR;")
        for n in graph.order:
            extra = f" [label={_dot_id(f'{n} ({where[n]})')}]" if n in where else ""
            lines.append(f"    {_dot_id(n)}{extra};")
        for (a, b), paths in graph.edges.items():
            label = ", ".join(paths).replace('"', '\\"')
            lines.append(f'    {_dot_id(a)} -> {_dot_id(b)} [label="{label}"];')
        lines.append("}")
        return "\n".join(lines)
    raise ValueError(f"unknown format {fmt!r} (text, mermaid, dot)")


def _dot_id(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _render_text(graph: StageGraph, where: Mapping[str, str]) -> str:
    import networkx as nx

    g = graph.to_networkx()
    lines: list[str] = []
    for depth, layer in enumerate(nx.topological_generations(g)):
        for n in sorted(layer, key=graph.order.index):
            ups = graph.upstream[n]
            after = f"  <- {', '.join(ups)}" if ups else ""
            runs = f"  [{where[n]}]" if n in where else ""
            lines.append(f"{'  ' * depth}{n}{runs}{after}")
    return "\n".join(lines)


def to_plain(graph: StageGraph) -> dict[str, Any]:
    """The graph as JSON-serialisable data (``pivot dag --format json``)."""
    return {
        "stages": list(graph.order),
        "edges": [{"from": a, "to": b, "paths": list(p)} for (a, b), p in graph.edges.items()],
    }
