"""The watchers API, with ssync's paths and shapes.

Reads come from the feed's in-memory read models (no fold of the log per
request); changes go through :mod:`pivot.jobs.manage` and the definition
parser that ``pivot watchers add`` uses, so the limits, defaults and error
messages are the same as the CLI's. After a change the handler folds what
it appended before answering, so the answer and the next read show it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pivot.jobs.slurm import is_job_id
from pivot.ui.context import UiContext
from pivot.ui.errors import ApiError, from_user_error, int_param, str_param
from pivot.ui.jsonenc import JSONResponse
from pivot.ui.messages import event_json
from pivot.ui.shapes import stats_json, watcher_json

__all__ = ["WATCHER_STATES", "parse_new_watcher", "read_body", "routes"]

WATCHER_STATES = ("active", "paused", "triggered", "completed", "disabled", "removed")
# ssync's API names for keys the YAML format calls otherwise.
_ALIASES = {"trigger_job_states": "job_end_states"}
_NOT_DEFINITION = ("job_id", "hostname")


def parse_new_watcher(body: Any) -> tuple[str, str, dict[str, Any]]:
    """``(job_id, hostname, definition data)`` of a create request, or a 4xx naming the field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    job = body.get("job_id")
    if job is None or job == "":
        raise ApiError(422, "job_id is required (the Slurm job to watch)", "job_id")
    if isinstance(job, bool) or not isinstance(job, str | int):
        raise ApiError(422, "job_id must be a string such as '1234' or '1234_5'", "job_id")
    job_id = str(job)
    if not is_job_id(job_id):
        raise ApiError(422, f"job_id must be a Slurm job id such as 1234, not {job_id!r}", "job_id")
    host = body.get("hostname", "local")
    if not isinstance(host, str) or not host:
        raise ApiError(422, "hostname must be a host name from pivot.toml, or 'local'", "hostname")
    data: dict[str, Any] = {
        _ALIASES.get(str(k), str(k)): v for k, v in body.items() if k not in _NOT_DEFINITION
    }
    return job_id, host, data


async def read_body(request: Request) -> Any:
    """The request's JSON body ({} when empty), or a 400 naming the body."""
    raw = await request.body()
    if not raw:
        return {}
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        # A form or text/plain body is what a page of another site can send
        # without asking first: only JSON is accepted.
        raise ApiError(415, f"the body must be application/json, not {kind or 'untyped'}",
                       "content-type")  # fmt: skip
    import json

    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", "body") from None


def _ctx(request: Request) -> UiContext:
    ctx: UiContext = request.app.state.ctx
    return ctx


def _watcher(ctx: UiContext, watcher_id: str) -> dict[str, Any]:
    from pivot.jobs.manage import ManageError, find

    feed = ctx.feed
    with feed.lock:
        try:
            ws = find(feed.book, watcher_id)
        except ManageError as exc:
            raise ApiError(404, str(exc), "id") from None
        history = feed.states["watcher_recent"]["watchers"].get(ws.watcher_id)
        return watcher_json(ws, history, feed.last_read.get(ws.watcher_id))


def _listing(ctx: UiContext, query: Mapping[str, str], job_id: str = "") -> Response:
    state = str_param(query, "state", WATCHER_STATES)
    limit = int_param(query, "limit", 100_000, 1, 100_000)
    with ctx.feed.lock:
        body = ctx.feed.listing.body(state, job_id, limit)
    return Response(body, media_type="application/json")


async def list_watchers(request: Request) -> Response:
    """GET /api/watchers?state=&limit=: ``{"watchers": [...], "count": n}``, newest first."""
    return _listing(_ctx(request), request.query_params)


async def job_watchers(request: Request) -> Response:
    """GET /api/jobs/{job_id}/watchers: ``{"job_id", "watchers", "count"}``."""
    return _listing(_ctx(request), request.query_params, request.path_params["job_id"])


async def get_watcher(request: Request) -> JSONResponse:
    """GET /api/watchers/{id}."""
    return JSONResponse(_watcher(_ctx(request), request.path_params["watcher_id"]))


def _create(ctx: UiContext, body: Any) -> dict[str, Any]:
    from pivot.jobs.manage import ManageError, add_watchers
    from pivot.ui.api_templates import validated, warnings_for

    job_id, host, definition = validated(ctx, body)
    try:
        [wid] = add_watchers(ctx.store, [definition], job_id, host, actor="ui")
    except ManageError as exc:
        raise ApiError(422, str(exc), "job_id") from None
    ctx.feed.poll()
    return {**_watcher(ctx, wid), "warnings": warnings_for(ctx, definition, job_id, host)}


async def create_watcher(request: Request) -> JSONResponse:
    """POST /api/watchers: validate like ``pivot watchers add``, attach; the watcher + warnings."""
    body = await read_body(request)
    created = await run_in_threadpool(_create, _ctx(request), body)
    return JSONResponse(created, status_code=201)


def _edit(ctx: UiContext, watcher_id: str, body: Any) -> dict[str, Any]:
    """``pivot watchers edit``: the same watcher (id, read position, counts), a new definition.

    Not a new watcher plus a removal: a new one would read the job's output
    from the start and run its actions again on lines already handled.
    """
    from pivot.jobs.manage import ManageError, edit_watcher, find
    from pivot.ui.api_templates import validated, warnings_for

    with ctx.feed.lock:
        try:
            ws = find(ctx.feed.book, watcher_id)
        except ManageError as exc:
            raise from_user_error(exc) from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    body = {"job_id": ws.job_id, "hostname": ws.host, **body}
    job_id, host, definition = validated(ctx, body)
    if (job_id, host) != (ws.job_id, ws.host):
        field = "job_id" if job_id != ws.job_id else "hostname"
        raise ApiError(422, f"an edit keeps the watcher on job {ws.job_id} of {ws.host}; "
                       "copy it to watch another job", field)  # fmt: skip
    with ctx.feed.lock:  # the check and the append see one state of the book
        try:
            changed = edit_watcher(ctx.store, ws.watcher_id, definition, ctx.feed.book,
                                   actor="ui")  # fmt: skip
        except ManageError as exc:
            raise from_user_error(exc) from None
    ctx.feed.poll()
    return {**_watcher(ctx, ws.watcher_id), "changed": changed,
            "warnings": warnings_for(ctx, definition, job_id, host)}  # fmt: skip


async def edit_watcher(request: Request) -> JSONResponse:
    """PUT /api/watchers/{id}: a new definition, same watcher (as ``pivot watchers edit``)."""
    body = await read_body(request)
    ctx, wid = _ctx(request), request.path_params["watcher_id"]
    return JSONResponse(await run_in_threadpool(_edit, ctx, wid, body))


def _change(ctx: UiContext, action: str, watcher_id: str) -> dict[str, Any]:
    from pivot.jobs import manage

    fn = {"pause": manage.pause, "resume": manage.resume, "delete": manage.remove}[action]
    with ctx.feed.lock:  # the check and the append see one state of the book
        try:
            wid = fn(ctx.store, watcher_id, ctx.feed.book, actor="ui")
        except manage.ManageError as exc:
            raise from_user_error(exc) from None
    ctx.feed.poll()
    if action == "delete":
        return {"id": wid, "state": "removed", "message": "watcher removed"}
    return _watcher(ctx, wid)


async def pause_watcher(request: Request) -> JSONResponse:
    """POST /api/watchers/{id}/pause."""
    ctx, wid = _ctx(request), request.path_params["watcher_id"]
    return JSONResponse(await run_in_threadpool(_change, ctx, "pause", wid))


async def resume_watcher(request: Request) -> JSONResponse:
    """POST /api/watchers/{id}/resume."""
    ctx, wid = _ctx(request), request.path_params["watcher_id"]
    return JSONResponse(await run_in_threadpool(_change, ctx, "resume", wid))


async def delete_watcher(request: Request) -> JSONResponse:
    """DELETE /api/watchers/{id}: removed (its history stays in the log)."""
    ctx, wid = _ctx(request), request.path_params["watcher_id"]
    return JSONResponse(await run_in_threadpool(_change, ctx, "delete", wid))


def _copy(ctx: UiContext, watcher_id: str, body: Any) -> dict[str, Any]:
    from pivot.jobs.config import ConfigError
    from pivot.jobs.manage import ManageError, copy_watcher
    from pivot.ui.api_templates import warnings_for

    job_id, host, rest = parse_new_watcher(body)
    if rest:
        raise ApiError(422, "a copy takes only job_id and hostname (edit it afterwards)",
                       sorted(rest)[0])  # fmt: skip
    try:
        ctx.config.host(host)
    except ConfigError as exc:
        raise ApiError(422, str(exc), "hostname") from None
    with ctx.feed.lock:
        try:
            new_id = copy_watcher(ctx.store, watcher_id, job_id, host, ctx.feed.book)
        except ManageError as exc:
            raise from_user_error(exc) from None
    ctx.feed.poll()
    with ctx.feed.lock:
        definition = ctx.feed.book.watchers[new_id].definition
    return {**_watcher(ctx, new_id), "warnings": warnings_for(ctx, definition, job_id, host)}


async def copy_to_job(request: Request) -> JSONResponse:
    """POST /api/watchers/{id}/copy {"job_id", "hostname"?}: the same watcher on another job."""
    body = await read_body(request)
    ctx, wid = _ctx(request), request.path_params["watcher_id"]
    return JSONResponse(await run_in_threadpool(_copy, ctx, wid, body), status_code=201)


def _trigger(ctx: UiContext, watcher_id: str, body: Any) -> dict[str, Any]:
    from pivot.events.watchers import ActionFailed, ActionSucceeded, ActionSuppressed
    from pivot.events.watchers import WatcherMatched as Matched
    from pivot.jobs.manage import ManageError, find, trigger

    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise ApiError(422, "text must be a sample line (a string)", "text")
    try:
        book = ctx.job_book(watcher_id)
        ws = find(book, watcher_id)
        events = trigger(ctx.store, ctx.config, ws.watcher_id, text, book)
    except ManageError as exc:
        raise from_user_error(exc, "text" if "sample" in str(exc) else None) from None
    ctx.feed.poll()
    ran = [e for e in events if isinstance(e, ActionSucceeded | ActionFailed)]
    failed = [e for e in ran if isinstance(e, ActionFailed)]
    suppressed = [e for e in events if isinstance(e, ActionSuppressed)]
    parts = [f"{e.action_type} {'failed: ' + e.error if isinstance(e, ActionFailed) else 'ok'}"
             for e in ran]  # fmt: skip
    parts += [f"{e.action_type} suppressed ({e.reason})" for e in suppressed]
    matches = [e for e in events if isinstance(e, Matched)]
    if not ran and not suppressed:
        false = any(not m.condition_result for m in matches)
        message = "condition false: no action ran" if false else "no action ran"
    else:
        message = "; ".join(parts)
    answer: dict[str, Any] = {
        "timer_mode": ws.definition.timer_mode_enabled,
        "success": bool(ran) and not failed,
        "message": message,
    }
    if matches:
        answer["matches"] = [{"matched_text": m.line, "captures": dict(m.captures),
                              "condition": m.condition_result} for m in matches]  # fmt: skip
    return answer


async def trigger_watcher(request: Request) -> JSONResponse:
    """POST /api/watchers/{id}/trigger [{"text": sample line}]: fire now, run the actions."""
    body = await read_body(request)
    ctx, wid = _ctx(request), request.path_params["watcher_id"]
    return JSONResponse(await run_in_threadpool(_trigger, ctx, wid, body))


def _events(ctx: UiContext, query: Mapping[str, str]) -> list[dict[str, Any]]:
    from pivot.projections import get_projection

    limit = int_param(query, "limit", 100, 1, 10_000)
    job_id = str_param(query, "job_id")
    watcher_id = str_param(query, "watcher_id")
    feed = ctx.feed
    with feed.lock:
        watchers = {wid: (w.job_id, w.host) for wid, w in feed.book.watchers.items()}
        until = feed.seq
    if watcher_id and watcher_id not in watchers:
        raise ApiError(404, f"unknown watcher {watcher_id!r}", "watcher_id")
    wanted = {w for w, (j, _) in watchers.items() if not job_id or j == job_id}
    rows: list[dict[str, Any]] = []
    types = get_projection("watcher_stats").types
    for rec in ctx.store.read_backwards(until, types):
        seq, type_name, data = rec.seq, rec.event.TYPE, rec.event.to_dict()
        wid = data.get("watcher_id", "")
        if (watcher_id and wid != watcher_id) or wid not in wanted:
            continue
        job, host = watchers[wid]
        rows.append(event_json(seq, type_name, data, job, host))
        if len(rows) >= limit:
            break
    return rows


async def list_events(request: Request) -> JSONResponse:
    """GET /api/watchers/events?job_id=&watcher_id=&limit=: newest first."""
    rows = await run_in_threadpool(_events, _ctx(request), request.query_params)
    return JSONResponse({"events": rows, "count": len(rows)})


async def stats(request: Request) -> JSONResponse:
    """GET /api/watchers/stats."""
    return JSONResponse(stats_json(_ctx(request).feed.view("watcher_stats")))


def routes() -> list[Route]:
    """The watcher routes (fixed paths before ``{watcher_id}``)."""
    return [
        Route("/api/watchers", list_watchers, methods=["GET"]),
        Route("/api/watchers", create_watcher, methods=["POST"]),
        Route("/api/watchers/events", list_events, methods=["GET"]),
        Route("/api/watchers/stats", stats, methods=["GET"]),
        Route("/api/jobs/{job_id}/watchers", job_watchers, methods=["GET"]),
        Route("/api/watchers/{watcher_id}", get_watcher, methods=["GET"]),
        Route("/api/watchers/{watcher_id}", edit_watcher, methods=["PUT"]),
        Route("/api/watchers/{watcher_id}", delete_watcher, methods=["DELETE"]),
        Route("/api/watchers/{watcher_id}/copy", copy_to_job, methods=["POST"]),
        Route("/api/watchers/{watcher_id}/pause", pause_watcher, methods=["POST"]),
        Route("/api/watchers/{watcher_id}/resume", resume_watcher, methods=["POST"]),
        Route("/api/watchers/{watcher_id}/trigger", trigger_watcher, methods=["POST"]),
    ]
