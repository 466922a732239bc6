"""The loaded pipeline as plain data: what every other part of pivot works on.

A :class:`PipelineSpec` holds no functions and no modules, only strings,
numbers and mappings, so it pickles, crosses process boundaries and
round-trips through JSON (``python -m pivot.pipeline.loader`` prints one).
Planning, execution, status and watch mode all take a spec, never a module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

__all__ = ["PipelineSpec", "StageSpec"]

T = TypeVar("T")


class _computed_once(Generic[T]):
    """``functools.cached_property`` without its lock: Python 3.11 takes an RLock on
    each first read, five times the cost of the read (40,000 of them load 10,000
    stages). The value goes in the instance's ``__dict__``, which later reads find
    first; two threads racing on a first read compute the same value twice."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _computed_once[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._compute(instance)
        return value


@dataclass(frozen=True)
class StageSpec:
    """One stage after ``params.yaml``: where its code is, what it reads and writes.

    ``code`` maps every piece of project code the stage reaches (its function,
    helpers, classes, module-level constants) to the hash of its normalised
    AST, keyed ``file:qualname`` as shown in ``code changed: ...`` reasons;
    ``fingerprint`` hashes that whole mapping. ``code_files`` are the project
    source files those pieces live in. ``slurm`` is None for a stage that runs
    in a local worker, else what it asks of SLURM (its ``Slurm(...)`` over the
    ``[slurm]`` defaults of ``pivot.toml``; ``host`` always set): resources
    are not part of the fingerprint, a change of them alone reruns nothing.
    """

    name: str
    module: str  # import name of the module defining the function, e.g. "stages"
    file: str  # that module's file, relative to the root
    qualname: str
    line: int
    dep_args: Mapping[str, str]  # argument name -> project-relative path
    out_args: Mapping[str, str]
    params: Mapping[str, Any]  # argument name -> value (params.yaml applied)
    fingerprint: str
    code: Mapping[str, str] = field(default_factory=dict)
    code_files: tuple[str, ...] = ()
    slurm: Mapping[str, Any] | None = None
    watchers: tuple[str, ...] = ()  # job watcher files attached to its SLURM jobs

    # Cached: planning, hashing and graph building ask them for every stage.
    @_computed_once
    def deps(self) -> tuple[str, ...]:
        """Distinct dep paths in declaration order."""
        return tuple(dict.fromkeys(self.dep_args.values()))

    @_computed_once
    def outs(self) -> tuple[str, ...]:
        """Distinct output paths in declaration order."""
        return tuple(dict.fromkeys(self.out_args.values()))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data."""
        return {
            "name": self.name,
            "module": self.module,
            "file": self.file,
            "qualname": self.qualname,
            "line": self.line,
            "dep_args": dict(self.dep_args),
            "out_args": dict(self.out_args),
            "params": dict(self.params),
            "fingerprint": self.fingerprint,
            "code": dict(self.code),
            "code_files": list(self.code_files),
            "slurm": None if self.slurm is None else dict(self.slurm),
            "watchers": list(self.watchers),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=data["name"],
            module=data["module"],
            file=data["file"],
            qualname=data["qualname"],
            line=int(data["line"]),
            dep_args=dict(data["dep_args"]),
            out_args=dict(data["out_args"]),
            params=dict(data["params"]),
            fingerprint=data["fingerprint"],
            code=dict(data.get("code", {})),
            code_files=tuple(data.get("code_files", ())),
            slurm=None if data.get("slurm") is None else dict(data["slurm"]),
            watchers=tuple(data.get("watchers", ())),
        )


@dataclass(frozen=True)
class PipelineSpec:
    """A whole pipeline: its root, its stages (declaration order), its sources.

    ``source_files`` are every project Python file imported while loading
    (``pipeline.py`` included), relative to ``root``: an edit to any of them
    may change the pipeline, so watch mode reloads on them.
    """

    root: str  # absolute path of the project root
    pipeline_file: str  # relative to root
    stages: tuple[StageSpec, ...]
    source_files: tuple[str, ...] = ()
    params_file: str = ""  # "params.yaml" when one was read

    def stage(self, name: str) -> StageSpec:
        """The stage called ``name`` (KeyError when there is none)."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Stage names in declaration order."""
        return tuple(s.name for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data."""
        return {
            "root": self.root,
            "pipeline_file": self.pipeline_file,
            "params_file": self.params_file,
            "source_files": list(self.source_files),
            "stages": [s.to_dict() for s in self.stages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            root=data["root"],
            pipeline_file=data["pipeline_file"],
            stages=tuple(StageSpec.from_dict(s) for s in data["stages"]),
            source_files=tuple(data.get("source_files", ())),
            params_file=data.get("params_file", ""),
        )

    def to_json(self) -> str:
        """The spec as one JSON document."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PipelineSpec:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))
