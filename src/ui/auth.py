"""Who may talk to ``pivot ui``: loopback by default, a bearer token otherwise.

:func:`check_bind` refuses a non-loopback address without a token (the page
can cancel jobs and run allow-listed programs). :class:`TokenAuth` makes
every ``/api/...`` request and every ``/ws/...`` handshake carry the token,
answering 401 otherwise; the page itself and the OpenAPI schema are public
(they hold no project data). A WebSocket may carry the token as the
subprotocol ``bearer.<token>``, since browsers cannot set its headers.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

__all__ = ["BindError", "TokenAuth", "check_bind", "is_loopback", "token_ok"]

_PROTECTED = ("/api/", "/ws/")


class BindError(ValueError):
    """An address ``pivot ui`` must not listen on as asked."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only reaches this machine."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str) -> None:
    """Refuse to listen beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise BindError(
            f"refusing to listen on {host} without a token: anyone who reaches it could "
            "cancel jobs; give --token T (or set PIVOT_UI_TOKEN), or bind to 127.0.0.1"
        )


def token_ok(expected: str, headers: dict[str, str], subprotocols: list[str]) -> bool:
    """Whether a request carries ``expected`` (header, or a ``bearer.`` subprotocol)."""
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), expected):
        return True
    for proto in subprotocols:
        if proto.startswith("bearer.") and hmac.compare_digest(proto[7:], expected):
            return True
    return False


class TokenAuth:
    """ASGI middleware: 401 for an API or WebSocket request without the token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        path: str = scope.get("path", "")
        if not self.token or kind not in ("http", "websocket") or not path.startswith(_PROTECTED):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}  # fmt: skip
        if token_ok(self.token, headers, list(scope.get("subprotocols") or [])):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"error": "this server needs a token: send 'Authorization: Bearer <token>'",
             "field": "authorization"}
        ).encode()  # fmt: skip
        start_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="pivot"'),
        ]
        if kind == "http":
            await send({"type": "http.response.start", "status": 401, "headers": start_headers})
            await send({"type": "http.response.body", "body": body})
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send(
                {"type": "websocket.http.response.start", "status": 401, "headers": start_headers}
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # the server cannot answer a handshake with a status: refuse it
            await send({"type": "websocket.close", "code": 1008})
