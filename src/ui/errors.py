"""Bad requests as 4xx JSON naming the field; nothing a user sends ends in a 500.

Every error body is ``{"error": message, "field": name or null}``. Handlers
raise :class:`ApiError`; the mistakes of the shared watcher code
(:class:`~pivot.jobs.definition.DefinitionError`, ``ManageError``,
``ConfigError``) are turned into one by :func:`from_user_error`. A bug still
answers 500 with a one-line message (and the traceback goes to the server's
log, never to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pivot.ui.jsonenc import JSONResponse

__all__ = [
    "EXCEPTION_HANDLERS",
    "ApiError",
    "from_user_error",
    "int_param",
    "str_param",
]

log = logging.getLogger("pivot.ui")


class ApiError(Exception):
    """A request the API refuses: HTTP status, message, and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def from_user_error(exc: Exception, default_field: str | None = None) -> ApiError:
    """The 4xx for a mistake the shared watcher code reported."""
    from pivot.jobs.definition import DefinitionError

    if isinstance(exc, DefinitionError):
        return ApiError(422, exc.message, exc.field or default_field)
    text = str(exc)
    if text.startswith("unknown watcher"):
        return ApiError(404, text, "id")
    return ApiError(422 if default_field else 409, text, default_field)


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    """The JSON body every error has."""
    return JSONResponse({"error": message, "field": field}, status_code=status)


def int_param(
    query: Mapping[str, str], name: str, default: int, low: int = 1, high: int = 100_000
) -> int:
    """An integer query parameter within bounds (400 naming it otherwise)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.strip().isdigit()):
        raise ApiError(400, f"{name} must be a whole number, not {raw[:40]!r}", name)
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, not {value}", name)
    return value


def str_param(query: Mapping[str, str], name: str, allowed: tuple[str, ...] = ()) -> str:
    """A string query parameter, optionally one of ``allowed`` ("" when absent)."""
    raw = query.get(name, "")
    if raw and allowed and raw not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}, not {raw[:40]!r}", name)
    return raw


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.field)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: f"no such path: {request.url.path}",
                405: f"{request.method} is not allowed on {request.url.path}"}  # fmt: skip
    return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)))


async def _bug(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__} (see the server's log)")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: _api_error,
    HTTPException: _http_error,
    Exception: _bug,
}
