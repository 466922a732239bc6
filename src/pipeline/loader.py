"""Loading a project's ``pipeline.py`` into a :class:`PipelineSpec`.

Two ways, one result:

* :func:`load_pipeline` imports the project in this process (what `pivot run`
  does: it is a fresh process anyway);
* :func:`load_fresh` runs ``python -m pivot.pipeline.loader`` in a new
  interpreter and reads the spec it prints as JSON, so edited code is always
  read anew (what watch mode does after a ``.py`` change).

Every user mistake becomes a :class:`PipelineError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pivot.pipeline import lifeline, load_limits
from pivot.pipeline.bytecode import drop_racy_bytecode
from pivot.pipeline.dag import StageGraph, build_graph, missing_deps
from pivot.pipeline.declare import Pipeline, StageDecl
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.fingerprint import Fingerprinter, combine
from pivot.pipeline.spec import PipelineSpec, StageSpec
from pivot.pipeline.state import STATE_DIR

__all__ = [
    "PIPELINE_FILE",
    "find_pipeline",
    "load_fresh",
    "load_pipeline",
    "load_with_graph",
    "main",
]

PIPELINE_FILE = "pipeline.py"
PARAMS_FILE = "params.yaml"

_loaded_roots: set[Path] = set()


def find_pipeline(
    explicit: str | os.PathLike[str] | None = None, start: Path | None = None
) -> Path:
    """The pipeline file: ``explicit`` if given, else ``pipeline.py`` here or upwards."""
    if explicit is not None:
        path = Path(explicit).resolve()
        if not path.is_file():
            raise PipelineError(f"no such pipeline file: {explicit}")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PIPELINE_FILE
        if candidate.is_file():
            return candidate
    raise PipelineError(
        f"no {PIPELINE_FILE} in {here} or any parent directory (or pass --pipeline PATH)"
    )


@functools.lru_cache(maxsize=4096)
def _rel(root: Path, filename: str | None) -> str:
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


def _exec_pipeline(path: Path, root: Path) -> Any:
    import importlib.util

    _forget_projects(root)
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PipelineError("cannot import this file", _rel(root, str(path)))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except PipelineError as exc:
        message = exc.message.replace(f"{root}{os.sep}", "")
        raise PipelineError(message, _rel(root, exc.file), exc.line) from None
    except SyntaxError as exc:
        raise PipelineError(
            f"syntax error: {exc.msg}", _rel(root, exc.filename), exc.lineno or 0
        ) from None
    except (Exception, SystemExit) as exc:
        file, line = _rel(root, str(path)), 0
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename).resolve().is_relative_to(root):
                file, line = _rel(root, frame.filename), frame.lineno or 0
        raise PipelineError(
            f"error while loading the pipeline: {type(exc).__name__}: {exc}", file, line
        ) from None
    return module


def _find_instance(module: Any, rel: str) -> Pipeline:
    found = getattr(module, "pipeline", None)
    if isinstance(found, Pipeline):
        return found
    instances = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if len(instances) == 1:
        return instances[0]
    if not instances:
        raise PipelineError("defines no Pipeline (expected `pipeline = Pipeline()`)", rel)
    raise PipelineError("defines several Pipeline objects; name the one to use `pipeline`", rel)


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


def _read_params(root: Path, stages: Mapping[str, StageDecl]) -> dict[str, dict[str, Any]]:
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


def _slurm_resources(root: Path, decls: Mapping[str, StageDecl]) -> dict[str, dict[str, Any]]:
    """Each SLURM stage's ``Slurm(...)`` over the ``[slurm]`` defaults; its host must exist."""
    declared = {n: d for n, d in decls.items() if d.slurm is not None}
    if not declared:
        return {}  # pivot.toml is not read for a pipeline without SLURM stages
    from pivot.jobs.config import ConfigError, load_config
    from pivot.pipeline.slurm_resources import merge

    try:
        config = load_config(root)
    except ConfigError as exc:
        raise PipelineError(str(exc)) from None
    out: dict[str, dict[str, Any]] = {}
    for name, decl in declared.items():
        resources = merge(decl.slurm or {}, config.slurm)
        host = resources["host"]
        if host != "local" and host not in config.hosts:
            raise PipelineError(
                f"stage {name!r}: Slurm(host={host!r}): unknown host {host!r}: add a "
                f"[hosts.{host}] table to pivot.toml",
                _rel(root, decl.file),
                decl.slurm_line or decl.line,
            )
        out[name] = resources
    return out


def _check_watchers(root: Path, decl: StageDecl) -> None:
    """Each watcher file of a stage exists and defines valid watchers (else the line)."""
    from pivot.jobs.definition import DefinitionError, parse_watchers

    for rel in decl.watchers:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except OSError as exc:
            raise PipelineError(
                f"stage {decl.name!r}: cannot read watcher file {rel}: {exc.strerror or exc}",
                _rel(root, decl.file),
                decl.line,
            ) from None
        try:
            parse_watchers(text, rel)
        except DefinitionError as exc:
            raise PipelineError(
                f"stage {decl.name!r}: {exc}", _rel(root, decl.file), decl.line
            ) from None


def _project_sources(root: Path, fp: Fingerprinter) -> tuple[str, ...]:
    files = set()
    for module in list(sys.modules.values()):
        rel = fp.project_file(getattr(module, "__file__", None))
        if rel is not None:
            files.add(rel)
    return tuple(sorted(files))


def _code_cache_path(root: Path) -> Path:
    return root / STATE_DIR / "code-cache.json"


def _read_code_cache(root: Path) -> dict[str, Any]:
    """Per-file fingerprint pieces of earlier loads (``.pivot/code-cache.json``)."""
    try:
        data = json.loads(_code_cache_path(root).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_code_cache(root: Path, fp: Fingerprinter) -> None:
    if not fp.updated:
        return
    cache = _read_code_cache(root)
    cache.update(fp.updated)
    cache = {rel: v for rel, v in cache.items() if (root / rel).is_file()}
    path = _code_cache_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, separators=(",", ":")))
        tmp.replace(path)  # atomic: concurrent loaders never see half a file
    except OSError:
        pass  # a cache: a read-only project still loads, only slower


def load_pipeline(
    path: str | os.PathLike[str] | None = None, *, check_deps: bool = True
) -> PipelineSpec:
    """Import the project's pipeline in this process and return its checked spec.

    ``path`` is the pipeline file (default: found from the working directory).
    With ``check_deps`` a dep that no stage writes and that is not on disk is
    an error.
    """
    return load_with_graph(path, check_deps=check_deps)[0]


def load_with_graph(
    path: str | os.PathLike[str] | None = None, *, check_deps: bool = True
) -> tuple[PipelineSpec, StageGraph]:
    """:func:`load_pipeline`, also returning the stage graph it builds to check the spec."""
    file = find_pipeline(path)
    root = file.parent
    rel_file = _rel(root, str(file))
    # A .pyc written in the second of its source's last edit may hide a newer
    # same-size edit: drop such caches of the sources known from the last
    # load before importing, and of all imported sources before workers start.
    code_cache = _read_code_cache(root)  # read once: 10,000 stages make it megabytes
    drop_racy_bytecode([file, *(root / rel for rel in code_cache)])
    with load_limits.guard(rel_file, root):
        module = _exec_pipeline(file, root)
    decls = _find_instance(module, rel_file).stages
    overrides = _read_params(root, decls)
    slurm = _slurm_resources(root, decls)
    for decl in decls.values():
        _check_watchers(root, decl)
    fp = Fingerprinter(root, code_cache)
    stages = []
    for decl in decls.values():
        try:
            code, files = fp.stage(decl.func)
        except ValueError:
            raise PipelineError(
                f"stage {decl.name!r}: its function must be defined in the project",
                _rel(root, decl.file),
                decl.line,
            ) from None
        stages.append(
            StageSpec(
                name=decl.name,
                module=decl.func.__module__,
                file=_rel(root, decl.func.__code__.co_filename),
                qualname=decl.func.__qualname__,
                line=decl.line,
                dep_args=dict(decl.deps),
                out_args=dict(decl.outs),
                params={**decl.params, **overrides.get(decl.name, {})},
                fingerprint=combine(code),
                code=code,
                code_files=files,
                slurm=slurm.get(decl.name),
                watchers=decl.watchers,
            )
        )
    spec = PipelineSpec(
        root=str(root),
        pipeline_file=rel_file,
        stages=tuple(stages),
        source_files=_project_sources(root, fp),
        params_file=PARAMS_FILE if (root / PARAMS_FILE).is_file() else "",
    )
    _write_code_cache(root, fp)
    drop_racy_bytecode(root / rel for rel in spec.source_files)
    graph = build_graph(spec)
    if check_deps:
        missing = missing_deps(spec, graph)
        if missing:
            stage, dep = missing[0]
            decl = decls[stage]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise PipelineError(
                f"stage {stage!r} depends on {dep!r}, which no stage writes and which does "
                f"not exist{more}",
                _rel(root, decl.file),
                decl.line,
            )
    return spec, graph


def load_fresh(
    path: str | os.PathLike[str] | None = None,
    *,
    check_deps: bool = True,
    python: str | None = None,
    timeout: float | None = None,
) -> PipelineSpec:
    """:func:`load_pipeline` in a new interpreter, so no module is reused."""
    file = find_pipeline(path)
    cmd = [python or sys.executable, "-m", "pivot.pipeline.loader", str(file)]
    if not check_deps:
        cmd.append("--no-check-deps")
    # Through the lifeline, so a killed pivot does not leave it loading.
    proc = lifeline.spawn(
        subprocess.Popen,
        [*lifeline.exec_prefix(), *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **lifeline.child_env()},
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    try:
        answer = json.loads(stdout)
    except ValueError:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise PipelineError(
            f"the pipeline loader exited with status {proc.returncode}: {tail}"
        ) from None
    if not answer.get("ok"):
        err = answer["error"]
        raise PipelineError(err["message"], err.get("file", ""), int(err.get("line", 0)))
    return PipelineSpec.from_dict(answer["spec"])


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[int]:
    """Keep the JSON answer alone on stdout whatever user code prints."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield saved
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    """``python -m pivot.pipeline.loader [PIPELINE_FILE] [--no-check-deps]``.

    Prints ``{"ok": true, "spec": {...}}`` or ``{"ok": false, "error":
    {"message", "file", "line"}}`` on stdout; exit status 0 or 1.
    """
    lifeline.arm()
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--no-check-deps" not in args
    paths = [a for a in args if not a.startswith("--")]
    with _stdout_to_stderr():
        try:
            spec = load_pipeline(paths[0] if paths else None, check_deps=check)
            answer: dict[str, Any] = {"ok": True, "spec": spec.to_dict()}
        except PipelineError as exc:
            answer = {"ok": False, "error": exc.to_dict()}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0 if answer["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
