"""Skip decisions: which stages run, and why. Pure functions over plain data.

:func:`plan` compares each selected stage (the targets and everything
upstream of them) with what its last successful run recorded, given the
current hashes of its deps and outputs, and returns the reasons it must run::

    never run
    last run failed
    forced
    code changed: lib/utils.py:normalize
    param changed: threshold 0.5 -> 0.7
    dep changed: data/raw.csv
    output missing: models/model.txt
    output changed: data/clean.csv
    upstream will run: clean

A stage with no reason is up to date. An output edited by hand since its stage
wrote it (``output changed``) makes that stage stale: the next run rewrites
it, and its consumers run after it.

The reasons are recorded one per cause (``pivot why`` follows each
``upstream will run: X``); :func:`describe_reasons` is how people read them:
``upstream stats, histogram will run``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pivot.names import unknown_name
from pivot.pipeline.dag import StageGraph
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.hashing import recorded_params
from pivot.pipeline.spec import PipelineSpec, StageSpec
from pivot.pipeline.state import StageRecord

__all__ = [
    "UPSTREAM",
    "Decision",
    "Plan",
    "describe_reasons",
    "paths_to_observe",
    "plan",
    "select",
    "stage_reasons",
]

UPSTREAM = "upstream will run: "


@dataclass(frozen=True)
class Decision:
    """Whether one stage runs, and every reason it must (empty: up to date)."""

    stage: str
    run: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"stage": self.stage, "stale": self.run, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Plan:
    """Decisions for the selected stages, in a topological order."""

    decisions: tuple[Decision, ...]

    @property
    def to_run(self) -> tuple[str, ...]:
        """Stages that run, in an order that respects dependencies."""
        return tuple(d.stage for d in self.decisions if d.run)

    @property
    def up_to_date(self) -> tuple[str, ...]:
        """Selected stages that do not need to run."""
        return tuple(d.stage for d in self.decisions if not d.run)

    def decision(self, stage: str) -> Decision:
        """The decision about ``stage`` (KeyError when it was not selected)."""
        for d in self.decisions:
            if d.stage == stage:
                return d
        raise KeyError(stage)


def select(spec: PipelineSpec, graph: StageGraph, targets: Iterable[str] = ()) -> list[str]:
    """The targets and everything upstream of them (all stages when no target).

    PipelineError for an unknown stage name, listing the known ones.
    """
    wanted = list(targets)
    if not wanted:
        return list(graph.order)
    known = set(spec.names)
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise PipelineError(unknown_name("stage", unknown[0], spec.names))
    keep = set(wanted) | graph.ancestors(wanted)
    return [n for n in graph.order if n in keep]


def paths_to_observe(spec: PipelineSpec, stages: Iterable[str]) -> list[str]:
    """Every dep and output path of ``stages`` (what :func:`plan` needs hashed)."""
    by_name = {s.name: s for s in spec.stages}
    paths: dict[str, None] = {}
    for name in stages:
        s = by_name[name]
        for path in s.deps:
            paths[path] = None
        for path in s.outs:
            paths[path] = None
    return list(paths)


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def stage_reasons(
    stage: StageSpec, record: StageRecord | None, observed: Mapping[str, str | None]
) -> list[str]:
    """Why ``stage`` must run judging by its own record (upstream not considered)."""
    if record is None:
        return ["never run"]
    reasons: list[str] = []
    if record.failed:
        reasons.append("last run failed")
    if record.fingerprint != stage.fingerprint:
        changed = [
            k
            for k in sorted(set(record.code) | set(stage.code))
            if record.code.get(k) != stage.code.get(k)
        ]
        reasons += [f"code changed: {k}" for k in changed] or ["code changed"]
    # Compared as recorded: a large value by its digest (either side).
    if record.params or stage.params:
        reasons += _param_reasons(recorded_params(record.params), recorded_params(stage.params))
    recorded_deps = record.deps
    for dep in stage.deps:
        if recorded_deps.get(dep, _ABSENT) != observed.get(dep):
            reasons.append(f"dep changed: {dep}")
    for out in stage.outs:
        now = observed.get(out)
        if now is None:
            reasons.append(f"output missing: {out}")
        elif record.outs.get(out) != now:
            reasons.append(f"output changed: {out}")
    return reasons


_ABSENT = object()  # a dep the record lacks: unequal to any hash and to None


def _param_reasons(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    reasons = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            reasons.append(f"param removed: {name}")
        elif name not in before:
            reasons.append(f"param changed: {name} (unset) -> {_show(after[name])}")
        elif before[name] != after[name]:
            reasons.append(f"param changed: {name} {_show(before[name])} -> {_show(after[name])}")
    return reasons


def plan(
    spec: PipelineSpec,
    graph: StageGraph,
    records: Mapping[str, StageRecord],
    observed: Mapping[str, str | None],
    *,
    targets: Sequence[str] = (),
    force: bool = False,
) -> Plan:
    """Decide which of the targets (and their upstream) run.

    ``records`` are the last successful runs by stage, ``observed`` the current
    hash (None: missing) of every path in :func:`paths_to_observe`. With
    ``force`` the targets (every stage when there are none) run regardless;
    their upstream still runs only when stale.
    """
    selected = select(spec, graph, targets)
    forced = set(targets or selected) if force else set()
    by_name = {s.name: s for s in spec.stages}
    runs: set[str] = set()
    decisions = []
    for name in selected:
        reasons = ["forced"] if name in forced else []
        reasons += stage_reasons(by_name[name], records.get(name), observed)
        reasons += [f"{UPSTREAM}{u}" for u in graph.upstream[name] if u in runs]
        if reasons:
            runs.add(name)
        decisions.append(Decision(name, bool(reasons), tuple(reasons)))
    return Plan(tuple(decisions))


def describe_reasons(reasons: Sequence[str], ran: bool = False) -> str:
    """The reasons of one stage as a sentence, for people (the records keep one per cause).

    Every ``upstream will run: X`` becomes one clause where the first was:
    ``dep changed: a.csv; upstream stats, histogram will run``. With ``ran``
    (the stage has run since) that clause is in the past: ``upstream stats,
    histogram ran``.
    """
    parts: list[str] = []
    ups = [r.removeprefix(UPSTREAM) for r in reasons if r.startswith(UPSTREAM)]
    for r in reasons:
        if not r.startswith(UPSTREAM):
            parts.append(r)
        elif r.removeprefix(UPSTREAM) == ups[0]:
            parts.append(f"upstream {', '.join(ups)} {'ran' if ran else 'will run'}")
    return "; ".join(parts)
