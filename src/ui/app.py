"""The ASGI application of ``pivot ui``: the API, the WebSockets, the page.

Starlette rather than FastAPI: the request bodies are validated by the
watcher parser the CLI uses (:mod:`pivot.jobs.definition`), so pydantic
models would be a second definition of the same format; Starlette gives
routing, WebSockets and static files without it. The OpenAPI document is
:mod:`pivot.ui.openapi`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pivot.ui import api_project, api_templates, api_watchers, ws
from pivot.ui.auth import OriginGuard, TokenAuth, allowed_hosts_for
from pivot.ui.context import UiContext
from pivot.ui.errors import EXCEPTION_HANDLERS
from pivot.ui.openapi import openapi

__all__ = ["STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"

# The page only talks to its own origin; job output is rendered as text, and
# this keeps even a rendering mistake from running a script it did not ship.
_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]  # fmt: skip


class _SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi())


def routes() -> list[BaseRoute]:
    """Every route, the page last (it answers everything else)."""
    found: list[BaseRoute] = [
        Route("/openapi.json", _openapi, methods=["GET"]),
        *api_templates.routes(),
        *api_watchers.routes(),
        *api_project.routes(),
        *ws.routes(),
    ]
    if (STATIC / "index.html").is_file():
        found.append(Mount("/", StaticFiles(directory=STATIC, html=True), name="page"))
    else:  # a source checkout whose page was never built
        found.append(Route("/", _no_page, methods=["GET"]))
    return found


async def _no_page(request: Request) -> Response:
    return PlainTextResponse(
        "the page is not built: run `npm ci && npm run build` in src/ui/frontend", 503
    )


def create_app(ctx: UiContext) -> Any:
    """The app serving ``ctx``: wrapped in the origin and token checks, with security headers."""
    app = Starlette(routes=routes(), exception_handlers=EXCEPTION_HANDLERS)
    app.state.ctx = ctx
    guarded = OriginGuard(TokenAuth(app, ctx.token), allowed_hosts_for(ctx.bind))
    return _SecurityHeaders(guarded)
