"""Importing a project's ``pipeline.py`` in this process, and naming where it failed.

The project's own modules are dropped from ``sys.modules`` first, so every
load imports them afresh; any exception while importing becomes a
:class:`PipelineError` naming the project file and line it came from.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from pivot.pipeline.declare import Pipeline
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.fingerprint import Fingerprinter

__all__ = ["exec_pipeline", "find_instance", "project_sources", "relative"]

_loaded_roots: set[Path] = set()


@functools.lru_cache(maxsize=4096)
def relative(root: Path, filename: str | None) -> str:
    """``filename`` relative to the project root (as given when outside it)."""
    if not filename:
        return ""
    try:
        return Path(filename).resolve().relative_to(root).as_posix()
    except ValueError:
        return filename


def _forget_projects(root: Path) -> None:
    """Drop modules of previously loaded projects so this load imports afresh."""
    roots = {*_loaded_roots, root}
    # Roots are resolved and go on sys.path as such, so their modules' files
    # start with them: a string test, where resolving each path costs stats.
    prefixes = tuple(f"{r}{os.sep}" for r in roots)
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if isinstance(filename, str) and filename.startswith(prefixes):
            if ".venv" in Path(filename).parts or "site-packages" in Path(filename).parts:
                continue
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in roots]
    sys.path.insert(0, str(root))
    _loaded_roots.add(root)


def exec_pipeline(path: Path, root: Path) -> Any:
    """Import the pipeline file ``path`` of the project at ``root`` afresh: its module."""
    import importlib.util

    _forget_projects(root)
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PipelineError("cannot import this file", relative(root, str(path)))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except PipelineError as exc:
        message = exc.message.replace(f"{root}{os.sep}", "")
        raise PipelineError(message, relative(root, exc.file), exc.line) from None
    except SyntaxError as exc:
        raise PipelineError(
            f"syntax error: {exc.msg}", relative(root, exc.filename), exc.lineno or 0
        ) from None
    except (Exception, SystemExit) as exc:
        file, line = relative(root, str(path)), 0
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename).resolve().is_relative_to(root):
                file, line = relative(root, frame.filename), frame.lineno or 0
        raise PipelineError(
            f"error while loading the pipeline: {type(exc).__name__}: {exc}", file, line
        ) from None
    return module


def find_instance(module: Any, rel: str) -> Pipeline:
    """The module's ``pipeline`` (or its only :class:`Pipeline`)."""
    found = getattr(module, "pipeline", None)
    if isinstance(found, Pipeline):
        return found
    instances = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if len(instances) == 1:
        return instances[0]
    if not instances:
        raise PipelineError("defines no Pipeline (expected `pipeline = Pipeline()`)", rel)
    raise PipelineError("defines several Pipeline objects; name the one to use `pipeline`", rel)


def project_sources(root: Path, fp: Fingerprinter) -> tuple[str, ...]:
    """Every project source file imported so far, relative to the root, sorted."""
    files = set()
    for module in list(sys.modules.values()):
        rel = fp.project_file(getattr(module, "__file__", None))
        if rel is not None:
            files.add(rel)
    return tuple(sorted(files))
