"""``params.yaml``: per-stage overrides of param defaults, checked against the stages.

Every mistake is a :class:`PipelineError` naming the line of ``params.yaml``:
invalid YAML (line and column), a key given twice, an unknown stage or
param, a value that is not JSON-serialisable or not of the annotated type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot.pipeline.declare import StageDecl
from pivot.pipeline.errors import PipelineError

__all__ = ["PARAMS_FILE", "read_params"]

PARAMS_FILE = "params.yaml"


def _yaml_lines(node: Any) -> dict[tuple[str, ...], int]:
    """Line of each ``stage`` and ``(stage, param)`` key, for error messages.

    A key given twice in one mapping is an error (PyYAML would keep the last
    one silently, so an edit to the first would do nothing).
    """
    import yaml

    lines: dict[tuple[str, ...], int] = {}

    def key(path: tuple[str, ...], k: Any) -> None:
        at = k.start_mark.line + 1
        if path in lines:
            where = f"stage {path[0]!r}: param" if len(path) > 1 else "stage"
            raise PipelineError(
                f"{where} {path[-1]!r} is given twice (first at line {lines[path]})",
                PARAMS_FILE,
                at,
            )
        lines[path] = at

    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key((str(k.value),), k)
            if isinstance(v, yaml.MappingNode):
                for k2, _ in v.value:
                    key((str(k.value), str(k2.value)), k2)
    return lines


def _yaml_error(exc: Exception) -> PipelineError:
    """PyYAML's several-line report as one line: what is wrong, at which line and column."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return PipelineError(text, PARAMS_FILE)
    return PipelineError(f"{text}, at column {mark.column + 1}", PARAMS_FILE, mark.line + 1)


def _fits(value: Any, wanted: type) -> bool:
    """Whether a params.yaml value suits an annotation (an int is a float; a bool is not an int)."""
    if isinstance(value, bool):
        return wanted is bool
    if wanted is float:
        return isinstance(value, int | float)
    return isinstance(value, wanted)


def _parse_yaml(text: str, loader_class: Any) -> tuple[Any, Any]:
    """The node tree (for line numbers) and the data of ``text``, parsed once.

    libyaml's loader when PyYAML has it: the pure-Python one takes seconds
    per megabyte, and a params.yaml may hold a large value.
    """
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def read_params(root: Path, stages: Mapping[str, StageDecl]) -> dict[str, dict[str, Any]]:
    """The overrides in ``root/params.yaml`` by stage (empty without the file)."""
    path = root / PARAMS_FILE
    if not path.is_file():
        return {}
    import yaml

    text = path.read_text()
    try:
        node, data = _parse_yaml(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        try:  # the pure-Python parser's report names the problem more plainly
            _parse_yaml(text, yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc) from None
        raise
    if data is None:
        return {}
    lines = _yaml_lines(node)
    if not isinstance(data, dict):
        raise PipelineError("expected a mapping of stage name -> {param: value}", PARAMS_FILE, 1)
    result: dict[str, dict[str, Any]] = {}
    for stage, values in data.items():
        at = lines.get((str(stage),), 0)
        if stage not in stages:
            known = ", ".join(stages) or "none"
            raise PipelineError(f"no stage named {stage!r} (stages: {known})", PARAMS_FILE, at)
        if not isinstance(values, dict):
            raise PipelineError(
                f"stage {stage!r}: expected a mapping of param -> value", PARAMS_FILE, at
            )
        declared = stages[stage].params
        for param, value in values.items():
            at = lines.get((str(stage), str(param)), at)
            if param not in declared:
                known = ", ".join(declared) or "none"
                raise PipelineError(
                    f"stage {stage!r} has no param {param!r} (its params: {known})",
                    PARAMS_FILE,
                    at,
                )
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise PipelineError(
                    f"stage {stage!r}, param {param!r}: value is not JSON-serialisable",
                    PARAMS_FILE,
                    at,
                ) from None
            wanted = stages[stage].param_types.get(param)
            if wanted is not None and not _fits(value, wanted):
                raise PipelineError(
                    f"stage {stage!r}, param {param!r}: expected {wanted.__name__} "
                    f"(as the stage function annotates it), got {type(value).__name__} "
                    f"{json.dumps(value)}",
                    PARAMS_FILE,
                    at,
                )
        result[str(stage)] = dict(values)
    return result
