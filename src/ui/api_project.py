"""The rest of the page's API: hosts and their jobs, a job's output, metrics, the pipeline.

- ``GET /api/hosts``: the hosts of ``pivot.toml`` (and ``local``).
- ``GET /api/hosts/{hostname}/jobs``: the user's queued and running jobs
  there (one ``squeue``), to choose which job a new watcher watches.
- ``GET /api/hosts/{hostname}/jobs/{job_id}/output?bytes=``: the end of the
  job's stdout (for the pattern tester), as text.
- ``GET /api/watchers/{id}/metrics``: the series ``store_metric`` recorded.
- ``GET /api/pipeline``: the stages (pipeline-status projection), the
  current wave, the last pipeline error.
- ``GET /api/pipeline/stages/{stage}/log?bytes=``: the end of the stage's
  log (``.pivot/logs/<stage>.log``), as text.
- ``GET /api/status``: the server's own state (hosting watchers, last seq).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from pivot.ui.context import UiContext
from pivot.ui.errors import ApiError, int_param
from pivot.ui.jsonenc import JSONResponse

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pivot.jobs.ioloop import IoLoop
    from pivot.jobs.transport import Transport

__all__ = ["routes"]

_STAGE_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,200}")
_TAIL_DEFAULT = 64 * 1024
_TAIL_MAX = 1024 * 1024


def _ctx(request: Request) -> UiContext:
    ctx: UiContext = request.app.state.ctx
    return ctx


def _host(ctx: UiContext, name: str) -> None:
    from pivot.jobs.config import ConfigError

    try:
        ctx.config.host(name)
    except ConfigError as exc:
        raise ApiError(404, str(exc), "hostname") from None


async def hosts(request: Request) -> JSONResponse:
    """GET /api/hosts."""
    ctx = _ctx(request)
    names = sorted({"local", *ctx.config.hosts})
    rows = [{"name": n, "local": ctx.config.host(n).is_local} for n in names]
    return JSONResponse({"hosts": rows, "count": len(rows)})


@contextlib.contextmanager
def _on_host(
    ctx: UiContext, host: str, loop: str, failure: str
) -> Iterator[tuple[IoLoop, Transport]]:
    """A transport to ``host`` on an event loop of its own, both closed after the block.

    A host that cannot be reached (or fails mid-way) is a 502 saying ``failure``.
    """
    from pivot.jobs.ioloop import IoLoop
    from pivot.jobs.manage import transport_for
    from pivot.jobs.transport import TransportError

    io = IoLoop(loop)
    try:
        t = transport_for(ctx.config, host)
        try:
            yield io, t
        finally:
            io.call(t.close(), 10)
    except (TransportError, TimeoutError, OSError) as exc:
        raise ApiError(502, f"{failure}: {exc}", "hostname") from None
    finally:
        io.stop()


def _run_on(ctx: UiContext, host: str, argv: list[str]) -> Any:
    timeout = ctx.config.host(host).command_timeout
    with _on_host(ctx, host, "pivot-ui-query", f"cannot reach {host}") as (io, t):
        return io.call(t.run(argv, timeout=timeout), timeout + 5)


def _jobs(ctx: UiContext, host: str) -> list[dict[str, Any]]:
    from pivot.jobs import slurm

    _host(ctx, host)
    result = _run_on(ctx, host, slurm.squeue_mine_argv())
    if result.returncode != 0:
        raise ApiError(502, f"squeue on {host}: {result.stderr.strip()[:300]}", "hostname")
    with ctx.feed.lock:
        counts: dict[str, int] = {}
        for w in ctx.feed.book.watchers.values():
            if w.host == host and w.state != "removed":
                counts[w.job_id] = counts.get(w.job_id, 0) + 1
    rows: list[dict[str, Any]] = [
        {"job_id": j.job_id, "hostname": host, "name": j.name, "user": j.user, "state": j.state,
         "watchers": counts.get(j.job_id, 0)}
        for j in slurm.parse_squeue(result.stdout).values()
    ]  # fmt: skip
    rows.sort(key=lambda r: int(r["job_id"].split("_")[0]) if r["job_id"][:1].isdigit() else 0)
    return rows


async def host_jobs(request: Request) -> JSONResponse:
    """GET /api/hosts/{hostname}/jobs."""
    host = request.path_params["hostname"]
    rows = await run_in_threadpool(_jobs, _ctx(request), host)
    return JSONResponse({"hostname": host, "jobs": rows, "count": len(rows)})


def _output(ctx: UiContext, host: str, job_id: str, limit: int) -> dict[str, Any]:
    from pivot.jobs import slurm

    _host(ctx, host)
    if not slurm.is_job_id(job_id):
        raise ApiError(400, f"job_id must be a Slurm job id such as 1234, not {job_id!r}", "job_id")
    with ctx.feed.lock:
        known = ctx.feed.book.jobs.get((host, job_id))
        path = known.stdout if known is not None else ""
    if not path:
        result = _run_on(ctx, host, slurm.scontrol_argv(job_id))
        info = slurm.parse_scontrol(result.stdout) if result.returncode == 0 else None
        if info is None:
            raise ApiError(404, f"Slurm on {host} does not know job {job_id}", "job_id")
        path = info.stdout
    with _on_host(ctx, host, "pivot-ui-output", f"cannot read {path} on {host}") as (io, t):
        stats = io.call(t.stat_many([path]), 30)
        exists = path in stats  # no: the job has not started (Slurm makes the file then)
        size = stats[path].size if exists else 0
        start = max(0, size - limit)
        data = io.call(t.read(path, start, size - start), 30) if size else b""
    text = data.decode("utf-8", errors="replace")
    if start > 0:  # begin at a whole line
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return {"job_id": job_id, "hostname": host, "path": path, "size": size,
            "truncated": start > 0, "text": text, "exists": exists}  # fmt: skip


async def job_output(request: Request) -> JSONResponse:
    """GET /api/hosts/{hostname}/jobs/{job_id}/output?bytes=."""
    p = request.path_params
    limit = int_param(request.query_params, "bytes", _TAIL_DEFAULT, 1, _TAIL_MAX)
    body = await run_in_threadpool(_output, _ctx(request), p["hostname"], p["job_id"], limit)
    return JSONResponse(body)


async def metrics(request: Request) -> JSONResponse:
    """GET /api/watchers/{id}/metrics: {"id", "series": {name: [{"at", "value"}]}}."""
    from pivot.jobs.manage import ManageError, find

    ctx = _ctx(request)
    with ctx.feed.lock:
        try:
            ws = find(ctx.feed.book, request.path_params["watcher_id"])
        except ManageError as exc:
            raise ApiError(404, str(exc), "id") from None
        series = {name: [{"at": a, "value": v} for a, v in points]
                  for name, points in ctx.feed.metrics.get(ws.watcher_id, {}).items()}  # fmt: skip
    return JSONResponse({"id": ws.watcher_id, "name": ws.name, "job_id": ws.job_id,
                         "series": series})  # fmt: skip


async def pipeline(request: Request) -> JSONResponse:
    """GET /api/pipeline: {"stages": [{name, state, last_run, duration, reason, ...}], "wave"}."""
    import copy

    ctx = _ctx(request)
    with ctx.feed.lock:
        state = copy.deepcopy(ctx.feed.states["pipeline_status"])
    stages = [{"name": name, **entry} for name, entry in sorted(state["stages"].items())]
    return JSONResponse({"stages": stages, "count": len(stages), "wave": state["wave"],
                         "pipeline_error": state["pipeline_error"],
                         "plan_error": state["plan_error"]})  # fmt: skip


def _stage_log(ctx: UiContext, stage: str, limit: int) -> dict[str, Any]:
    from pivot.pipeline.state import STATE_DIR

    if not _STAGE_NAME.fullmatch(stage) or stage.startswith("."):
        raise ApiError(400, f"not a stage name: {stage[:80]!r}", "stage")
    with ctx.feed.lock:
        known = stage in ctx.feed.states["pipeline_status"]["stages"]
    logs = ctx.root / STATE_DIR / "logs"
    path = logs / f"{stage}.log"
    read = _read_end(path, limit) if path.is_file() else None  # a FIFO would block
    if read is None:
        if _names_a_job_file_not_made_yet(path, logs):
            return {"stage": stage, "path": str(path), "size": 0, "truncated": False,
                    "text": "", "waiting": True}  # fmt: skip
        what = "has no log yet" if known else "is not a stage the log knows"
        raise ApiError(404, f"stage {stage!r} {what}", "stage")
    size, start, text = read
    return {"stage": stage, "path": str(path), "size": size, "truncated": start > 0,
            "text": text, "waiting": False}  # fmt: skip


def _read_end(path: Path, limit: int) -> tuple[int, int, str] | None:
    """(size, start, text) of the last ``limit`` bytes; None if the file is gone."""
    try:
        with path.open("rb") as fh:  # the symlink may switch: size and bytes of one file
            size = os.fstat(fh.fileno()).st_size
            start = max(0, size - limit)
            fh.seek(start)
            return size, start, fh.read(limit).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _names_a_job_file_not_made_yet(path: Path, logs: Path) -> bool:
    """Whether ``path`` is a symlink to a file in the logs' folder that is not there
    (yet): a SLURM stage's job still in the queue (see pivot.pipeline.slurm_logs)."""
    if not path.is_symlink():
        return False
    target = Path(os.path.normpath(path.parent / path.readlink()))
    return target.is_relative_to(logs) and not target.exists()


async def stage_log(request: Request) -> JSONResponse:
    """GET /api/pipeline/stages/{stage}/log?bytes=."""
    limit = int_param(request.query_params, "bytes", _TAIL_DEFAULT, 1, _TAIL_MAX)
    body = await run_in_threadpool(_stage_log, _ctx(request), request.path_params["stage"], limit)
    return JSONResponse(body)


async def status(request: Request) -> JSONResponse:
    """GET /api/status: what this server is doing."""
    ctx = _ctx(request)
    return JSONResponse(
        {"seq": ctx.feed.seq, "hosting_watchers": ctx.hosting,
         "watchers_standby": ctx.runtime is not None and not ctx.hosting,
         "store": ctx.store.location,
         "store_kind": ctx.store.kind, "feed_error": ctx.feed.error or None,
         "auth": bool(ctx.token), "loaded": ctx.feed.loaded}
    )  # fmt: skip


def routes() -> list[Route]:
    """The project routes."""
    return [
        Route("/api/status", status, methods=["GET"]),
        Route("/api/hosts", hosts, methods=["GET"]),
        Route("/api/hosts/{hostname}/jobs", host_jobs, methods=["GET"]),
        Route("/api/hosts/{hostname}/jobs/{job_id}/output", job_output, methods=["GET"]),
        Route("/api/watchers/{watcher_id}/metrics", metrics, methods=["GET"]),
        Route("/api/pipeline", pipeline, methods=["GET"]),
        Route("/api/pipeline/stages/{stage}/log", stage_log, methods=["GET"]),
    ]
