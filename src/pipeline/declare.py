"""Declaring stages: ``Pipeline``, ``Dep`` and ``Out``.

A stage is a plain Python function. Its parameters say what it reads, what it
writes and what it can be tuned with::

    @pipeline.stage
    def clean(raw: Annotated[Path, Dep("data/raw.csv")],
              out: Annotated[Path, Out("data/clean.csv")],
              threshold: float = 0.5) -> None: ...

Parameters annotated with :class:`Dep` / :class:`Out` receive absolute paths;
every other parameter is a *param* and needs a JSON-serialisable default
(``params.yaml`` may override it). The decorator returns the function
unchanged, so stages stay importable and callable like any function.

This module is imported by every ``pipeline.py``: keep it light.
"""

from __future__ import annotations

import inspect
import json
import posixpath
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from pivot.pipeline.errors import PipelineError

if typing.TYPE_CHECKING:
    from pivot.pipeline.slurm_resources import Slurm

__all__ = ["Dep", "Out", "Pipeline", "StageDecl", "normalise_path"]

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# A relative POSIX path that posixpath.normpath leaves as it is: components
# without "/" or "\\", none of them "." or "..", no empty one.
_PART = r"(?!\.\.?(?:/|$))[^/\\]+"
_NORMAL = re.compile(rf"{_PART}(?:/{_PART})*")


def normalise_path(path: str) -> str:
    """A project-relative POSIX path; ValueError when it leaves the project or is
    inside ``.pivot/`` or ``.git/``."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("a path must be a non-empty string")
    if _NORMAL.fullmatch(path):
        norm = path  # already what normpath would return: not ".", "..", nor "../x"
    else:
        p = path.replace("\\", "/")
        if p.startswith("/"):
            raise ValueError(f"{path!r} is absolute; paths are relative to the project root")
        norm = posixpath.normpath(p)
        if norm in {".", ".."} or norm.startswith("../"):
            raise ValueError(f"{path!r} is outside the project")
    if norm[0] == ".":  # every reserved folder's name starts so (every path, every load)
        top = norm.split("/", 1)[0]
        if top in _RESERVED:
            # A stage writing .pivot/state.db would destroy the records that skip it.
            raise ValueError(
                f"{path!r} is inside {top}/, which holds {_RESERVED[top]}; "
                "deps and outputs must be elsewhere in the project"
            )
    return norm


# Top-level folders that are not the pipeline's to read or write.
_RESERVED = {".pivot": "pivot's own state", ".git": "git's repository"}


@dataclass(frozen=True)
class Dep:
    """A file or directory the stage reads, relative to the project root."""

    path: str


@dataclass(frozen=True)
class Out:
    """A file or directory the stage writes, relative to the project root."""

    path: str


@dataclass(frozen=True)
class StageDecl:
    """One declared stage, as the decorator saw it (before ``params.yaml``)."""

    name: str
    func: Callable[..., Any]
    deps: Mapping[str, str]  # argument name -> project-relative path
    outs: Mapping[str, str]
    params: Mapping[str, Any]  # argument name -> default value
    file: str
    line: int
    # argument name -> its annotation when it is a simple type params.yaml can
    # be checked against (int, float, str, bool, list, dict; ``list[int]`` -> list)
    param_types: Mapping[str, type] = field(default_factory=dict)
    # The checked fields of ``slurm=Slurm(...)`` (before ``[slurm]`` defaults),
    # None for a stage that runs locally; ``slurm_line`` is the Slurm(...) call's.
    slurm: Mapping[str, Any] | None = None
    slurm_line: int = 0
    watchers: tuple[str, ...] = ()  # watcher YAML files, project-relative


SIMPLE_PARAM_TYPES = (int, float, str, bool, list, dict)


def _simple_type(hint: Any) -> type | None:
    """``hint`` as one of :data:`SIMPLE_PARAM_TYPES`, or None (unions, Any, classes...)."""
    base = typing.get_origin(hint) or hint
    return base if base in SIMPLE_PARAM_TYPES else None


def _where(func: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(func, "__code__", None)
    if code is None:
        return "", 0
    return code.co_filename, code.co_firstlineno


def _marker(hint: Any) -> Dep | Out | None:
    if not isinstance(hint, _ANNOTATED):  # what typing.get_origin(hint) is Annotated means
        return None
    found = [m for m in hint.__metadata__ if isinstance(m, _MARKERS)]
    if len(found) > 1:
        raise TypeError("more than one Dep/Out on a parameter")
    return found[0] if found else None


_ANNOTATED: Any = type(typing.Annotated[int, "probe"])  # typing._AnnotatedAlias
_MARKERS = (Dep, Out)
_EMPTY = inspect.Parameter.empty
_VARIADIC = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def _plain_hint(hint: Any) -> bool:
    """Whether ``typing.get_type_hints`` would return ``hint`` as it is, for what
    :func:`_inspect` reads: a class, None, or ``Annotated[<class>, ...]`` (no string
    to evaluate, no forward reference inside)."""
    if type(hint) is _ANNOTATED:  # the usual case first: a Dep or an Out
        return isinstance(hint.__origin__, type)
    return hint is None or isinstance(hint, type)


def _hints(func: Callable[..., Any]) -> Mapping[str, Any]:
    """``typing.get_type_hints(func, include_extras=True)``, without its cost when the
    annotations are already objects (10,000 stages: a third of a second)."""
    raw = getattr(func, "__annotations__", None)
    if (
        isinstance(raw, dict)
        and not getattr(func, "__no_type_check__", False)
        and all(_plain_hint(h) for h in raw.values())
    ):
        return raw
    return typing.get_type_hints(func, include_extras=True)


def _parameters(func: Callable[..., Any]) -> list[tuple[str, bool, Any]]:
    """``(name, is *args/**kwargs, default or _EMPTY)`` of each parameter, in order.

    What ``inspect.signature`` says, read straight from the code object for a
    plain function without variadic parameters (the common case, ten times
    faster); anything else goes through ``inspect.signature``.
    """
    code = getattr(func, "__code__", None)
    if (
        type(func) is not types.FunctionType
        or code is None
        or code.co_flags & _VARIADIC
        or hasattr(func, "__signature__")
    ):
        return [
            (arg, p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD), p.default)
            for arg, p in inspect.signature(func).parameters.items()
        ]
    positional = code.co_varnames[: code.co_argcount]
    keyword = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    defaults = func.__defaults__ or ()
    kwdefaults = func.__kwdefaults__ or {}
    first_default = len(positional) - len(defaults)
    found = [
        (arg, False, defaults[i - first_default] if i >= first_default else _EMPTY)
        for i, arg in enumerate(positional)
    ]
    found += [(arg, False, kwdefaults.get(arg, _EMPTY)) for arg in keyword]
    return found


def _inspect(name: str, func: Callable[..., Any]) -> StageDecl:
    file, line = _where(func)
    if not _NAME.match(name):
        raise PipelineError(
            f"stage name {name!r} may only use letters, digits, '_', '.' and '-'", file, line
        )
    qualname = getattr(func, "__qualname__", "")
    if "<" in qualname:  # make.<locals>.stage, <lambda>
        # A worker process imports the stage function by module and name;
        # a closure or a lambda has none (AttributeError at run time).
        raise PipelineError(
            f"stage {name!r}: its function {qualname} is a closure or a lambda, which a "
            "worker process cannot import; define each stage function at module level "
            "(several stages may call one shared helper, and take what varies as params)",
            file,
            line,
        )
    try:
        hints = _hints(func)
    except Exception as exc:  # NameError from an unresolvable string annotation
        raise PipelineError(
            f"stage {name!r}: cannot read its annotations: {exc}", file, line
        ) from None
    deps: dict[str, str] = {}
    outs: dict[str, str] = {}
    params: dict[str, Any] = {}
    param_types: dict[str, type] = {}
    for arg, variadic, default in _parameters(func):
        if variadic:
            raise PipelineError(f"stage {name!r}: *args/**kwargs are not supported", file, line)
        try:
            marker = _marker(hints.get(arg))
            path = normalise_path(marker.path) if marker is not None else ""
        except (TypeError, ValueError) as exc:
            raise PipelineError(f"stage {name!r}, parameter {arg!r}: {exc}", file, line) from None
        if isinstance(marker, Dep):
            deps[arg] = path
        elif isinstance(marker, Out):
            outs[arg] = path
        elif default is _EMPTY:
            raise PipelineError(
                f"stage {name!r}: param {arg!r} has no default "
                "(give it one, or annotate it with Dep(...) / Out(...))",
                file,
                line,
            )
        else:
            try:
                json.dumps(default)
            except (TypeError, ValueError):
                raise PipelineError(
                    f"stage {name!r}: default of param {arg!r} is not JSON-serialisable "
                    f"({type(default).__name__})",
                    file,
                    line,
                ) from None
            params[arg] = default
            simple = _simple_type(hints.get(arg))
            if simple is not None:
                param_types[arg] = simple
    return StageDecl(name, func, deps, outs, params, file, line, param_types)


def _with_slurm(decl: StageDecl, slurm: object) -> StageDecl:
    """``decl`` with its checked ``Slurm(...)`` fields; a mistake names the stage and the call."""
    from dataclasses import replace

    from pivot.pipeline.slurm_resources import Slurm, check_fields

    if not isinstance(slurm, Slurm):
        raise PipelineError(
            f"stage {decl.name!r}: slurm= takes Slurm(...), not {type(slurm).__name__}",
            decl.file,
            decl.line,
        )
    try:
        if slurm.unknown:
            check_fields(slurm.unknown)
        fields = check_fields(slurm.fields)
    except ValueError as exc:
        raise PipelineError(
            f"stage {decl.name!r}: Slurm(...): {exc}", slurm.file, slurm.line
        ) from None
    return replace(decl, slurm=fields, slurm_line=slurm.line)


def _with_watchers(decl: StageDecl, watchers: object) -> StageDecl:
    """``decl`` with its watcher files (checked and parsed when the pipeline is loaded)."""
    from dataclasses import replace

    if isinstance(watchers, str) or not isinstance(watchers, Sequence):
        raise PipelineError(
            f"stage {decl.name!r}: watchers= takes a list of watcher files, "
            f"not {type(watchers).__name__}",
            decl.file,
            decl.line,
        )
    paths = []
    for w in watchers:
        try:
            paths.append(normalise_path(w))
        except ValueError as exc:
            raise PipelineError(
                f"stage {decl.name!r}, watchers: {exc}", decl.file, decl.line
            ) from None
    return replace(decl, watchers=tuple(paths))


class Pipeline:
    """A set of stages. ``pipeline.py`` creates one at module level."""

    def __init__(self) -> None:
        self._stages: dict[str, StageDecl] = {}

    @overload
    def stage(self, func: F, /) -> F: ...

    @overload
    def stage(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        slurm: Slurm | None = None,
        watchers: Sequence[str] = (),
    ) -> Callable[[F], F]: ...

    def stage(
        self,
        func: F | None = None,
        /,
        *,
        name: str | None = None,
        slurm: Slurm | None = None,
        watchers: Sequence[str] = (),
    ) -> F | Callable[[F], F]:
        """Register a function as a stage: ``@pipeline.stage`` or ``@pipeline.stage(name=...)``.

        Also usable as a plain call on a function defined elsewhere:
        ``pipeline.stage(clean)``. Returns the function unchanged.
        ``slurm=Slurm(...)`` runs the stage as a SLURM job (see
        :mod:`pivot.pipeline.slurm_resources`), and ``watchers=["w.yaml"]``
        attaches those job watchers to each job it submits.
        """

        def register(fn: F) -> F:
            # What inspect.unwrap follows; its frame per stage only when there is one.
            target = inspect.unwrap(fn) if hasattr(fn, "__wrapped__") else fn
            decl = _inspect(name or fn.__name__, target)
            if slurm is not None:
                decl = _with_slurm(decl, slurm)
            if watchers:
                decl = _with_watchers(decl, watchers)
            previous = self._stages.get(decl.name)
            if previous is not None:
                raise PipelineError(
                    f"two stages are named {decl.name!r} "
                    f"(the other one is at {previous.file}:{previous.line})",
                    decl.file,
                    decl.line,
                )
            self._stages[decl.name] = decl
            return fn

        if func is not None:
            return register(func)
        return register

    @property
    def stages(self) -> Mapping[str, StageDecl]:
        """Declared stages by name, in declaration order."""
        return dict(self._stages)
