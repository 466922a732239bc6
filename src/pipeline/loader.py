"""Loading a project's ``pipeline.py`` into a :class:`PipelineSpec`.

Two ways, one result:

* :func:`load_pipeline` imports the project in this process (what `pivot run`
  does: it is a fresh process anyway);
* :func:`load_fresh` runs ``python -m pivot.pipeline.loader`` in a new
  interpreter and reads the spec it prints as JSON, so edited code is always
  read anew (what watch mode does after a ``.py`` change).

Every user mistake becomes a :class:`PipelineError` naming the file and line.
The steps live beside it: importing the project (:mod:`.project_import`),
``params.yaml`` (:mod:`.params_file`), fingerprinting its code
(:mod:`.fingerprint`, with :mod:`.code_cache`) and the stage graph (:mod:`.dag`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pivot.pipeline import lifeline, load_limits
from pivot.pipeline.bytecode import drop_racy_bytecode
from pivot.pipeline.code_cache import read_code_cache, write_code_cache
from pivot.pipeline.dag import StageGraph, build_graph, missing_deps
from pivot.pipeline.declare import StageDecl
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.fingerprint import Fingerprinter, combine
from pivot.pipeline.gc_pause import gc_paused
from pivot.pipeline.params_file import PARAMS_FILE, read_params
from pivot.pipeline.project_import import exec_pipeline, find_instance, project_sources, relative
from pivot.pipeline.spec import PipelineSpec, StageSpec

__all__ = [
    "PIPELINE_FILE",
    "find_pipeline",
    "load_fresh",
    "load_pipeline",
    "load_with_graph",
    "main",
    "spec_from_answer",
]

PIPELINE_FILE = "pipeline.py"


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
                relative(root, decl.file),
                decl.slurm_line or decl.line,
            )
        out[name] = resources
    return out


def _check_watchers(root: Path, decl: StageDecl) -> None:
    """Each watcher file of a stage exists and defines valid watchers (else the line)."""
    if not decl.watchers:
        return  # most stages: not even the import (this runs for each of 10,000)
    from pivot.jobs.definition import DefinitionError, parse_watchers

    for rel in decl.watchers:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except OSError as exc:
            raise PipelineError(
                f"stage {decl.name!r}: cannot read watcher file {rel}: {exc.strerror or exc}",
                relative(root, decl.file),
                decl.line,
            ) from None
        try:
            parse_watchers(text, rel)
        except DefinitionError as exc:
            raise PipelineError(
                f"stage {decl.name!r}: {exc}", relative(root, decl.file), decl.line
            ) from None


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
    with gc_paused():  # a million long-lived objects at 10,000 stages (see gc_pause)
        return _load_with_graph(path, check_deps)


def _load_with_graph(
    path: str | os.PathLike[str] | None, check_deps: bool
) -> tuple[PipelineSpec, StageGraph]:
    file = find_pipeline(path)
    root = file.parent
    rel_file = relative(root, str(file))
    # A .pyc written in the second of its source's last edit may hide a newer
    # same-size edit: drop such caches of the sources known from the last
    # load before importing, and of all imported sources before workers start.
    code_cache = read_code_cache(root)  # read once: 10,000 stages make it megabytes
    drop_racy_bytecode([file, *(root / rel for rel in code_cache)])
    with load_limits.guard(rel_file, root):
        module = exec_pipeline(file, root)
    decls = find_instance(module, rel_file).stages
    overrides = read_params(root, decls)
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
                relative(root, decl.file),
                decl.line,
            ) from None
        stages.append(
            StageSpec(
                name=decl.name,
                module=decl.func.__module__,
                file=relative(root, decl.func.__code__.co_filename),
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
        source_files=project_sources(root, fp),
        params_file=PARAMS_FILE if (root / PARAMS_FILE).is_file() else "",
    )
    write_code_cache(root, fp)
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
                relative(root, decl.file),
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
    return spec_from_answer(stdout, stderr, proc.returncode)


def spec_from_answer(stdout: str, stderr: str, status: object) -> PipelineSpec:
    """The spec in what :func:`main` printed; :class:`PipelineError` for its error, or for
    a loader that printed no answer (``status`` and the end of ``stderr`` say why)."""
    try:
        answer = json.loads(stdout)
    except ValueError:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise PipelineError(f"the pipeline loader exited with status {status}: {tail}") from None
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
