"""Templates and add-time warnings for the page: the catalogue and checks the CLI uses.

- ``GET /api/templates``: every built-in template (:mod:`pivot.jobs.templates`)
  with its parameters and its YAML filled with the defaults, and every
  action type with its parameters (``actions``, the parser's own table), so
  the page's form offers what the server accepts.
- ``POST /api/templates/{name}/render`` ``{"values": {param: value}}``: the
  watcher definition the template gives (as ``pivot watchers add
  --template NAME --set ...`` would), for the create form to start from.
- ``POST /api/watchers/check``: a create request validated and checked, not
  added: ``{"definition", "warnings": [{field, message, fix}]}``
  (:mod:`pivot.jobs.advice`), so the page shows the warnings before the
  user submits. ``POST /api/watchers`` answers the same warnings with the
  watcher it created.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from pivot.jobs.definition import WatcherDefinition
from pivot.ui.context import UiContext
from pivot.ui.errors import ApiError, from_user_error
from pivot.ui.jsonenc import JSONResponse

__all__ = ["routes", "validated", "warnings_for"]


def _ctx(request: Request) -> UiContext:
    ctx: UiContext = request.app.state.ctx
    return ctx


async def list_templates(request: Request) -> JSONResponse:
    """GET /api/templates."""
    from pivot.jobs.templates import templates

    rows = [
        {
            "name": t.name,
            "title": t.title,
            "description": t.description,
            "params": [{"name": p.name, "description": p.description, "default": p.default,
                        "kind": p.kind, "required": p.default is None} for p in t.params],
            "example_yaml": t.example_yaml(),
        }
        for t in templates()
    ]  # fmt: skip
    return JSONResponse({"templates": rows, "count": len(rows), "actions": action_catalogue()})


def action_catalogue() -> list[dict[str, Any]]:
    """Every action type and its parameters, from the definition parser's own table."""
    from pivot.jobs.action_spec import ACTION_PARAMS

    def kind(types: type | tuple[type, ...]) -> str:
        kinds = types if isinstance(types, tuple) else (types,)
        if dict in kinds:
            return "object"
        return "number" if str not in kinds else "string"

    return [{"type": name, "params": [{"name": p, "required": required, "kind": kind(types)}
                                      for p, (types, required) in params.items()]}
            for name, params in ACTION_PARAMS.items()]  # fmt: skip


async def render_template(request: Request) -> JSONResponse:
    """POST /api/templates/{name}/render."""
    from pivot.jobs.templates import TemplateError, get_template
    from pivot.ui.api_watchers import read_body

    body = await read_body(request)
    values = body.get("values", {}) if isinstance(body, dict) else None
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ApiError(400, 'the body must be {"values": {parameter: value}}', "values")
    try:
        template = get_template(request.path_params["name"])
    except TemplateError as exc:
        raise ApiError(404, str(exc), "name") from None
    try:
        definition = template.render({k: str(v) for k, v in values.items()})
    except TemplateError as exc:
        text = str(exc)
        param = next((p.name for p in template.params if repr(p.name) in text), None)
        raise ApiError(422, text, f"values.{param}" if param else "values") from None
    return JSONResponse({"template": template.name, "definition": definition.to_dict()})


def validated(ctx: UiContext, body: Any) -> tuple[str, str, WatcherDefinition]:
    """A create request's job, host and definition, validated like ``pivot watchers add``."""
    from pivot.jobs.config import ConfigError
    from pivot.jobs.definition import DefinitionError, parse_watcher_data
    from pivot.ui.api_watchers import parse_new_watcher

    job_id, host, data = parse_new_watcher(body)
    try:
        ctx.config.host(host)
    except ConfigError as exc:
        raise ApiError(422, str(exc), "hostname") from None
    try:
        return job_id, host, parse_watcher_data(data)
    except DefinitionError as exc:
        raise from_user_error(exc) from None


def warnings_for(
    ctx: UiContext, definition: WatcherDefinition, job_id: str, host: str
) -> list[dict[str, str]]:
    """The add-time warnings (the host is asked about the job, within 10 s)."""
    from pivot.jobs.advice import check_definition

    found = check_definition(definition, ctx.config, job_id=job_id, host=host, timeout=10.0)
    return [w.to_json() for w in found]


def _check(ctx: UiContext, body: Any) -> dict[str, Any]:
    job_id, host, definition = validated(ctx, body)
    return {"job_id": job_id, "hostname": host, "definition": definition.to_dict(),
            "warnings": warnings_for(ctx, definition, job_id, host)}  # fmt: skip


async def check_watcher(request: Request) -> JSONResponse:
    """POST /api/watchers/check."""
    from pivot.ui.api_watchers import read_body

    body = await read_body(request)
    return JSONResponse(await run_in_threadpool(_check, _ctx(request), body))


def routes() -> list[Route]:
    """The template and check routes (before ``/api/watchers/{watcher_id}``)."""
    return [
        Route("/api/templates", list_templates, methods=["GET"]),
        Route("/api/templates/{name}/render", render_template, methods=["POST"]),
        Route("/api/watchers/check", check_watcher, methods=["POST"]),
    ]
