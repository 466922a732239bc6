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

__all__ = [
    "BindError",
    "OriginGuard",
    "TokenAuth",
    "allowed_hosts_for",
    "check_bind",
    "check_token",
    "is_loopback",
    "same_origin",
    "token_ok",
]

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


# What a token may hold: the page sends it as a WebSocket subprotocol (an
# HTTP token: no '/', '=', space...) and reads it from the address's
# #fragment (no '&' or '%'); base64url and hex tokens fit.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+")


def check_token(token: str) -> None:
    """Refuse a token the page could not send (see :data:`_TOKEN_CHARS`)."""
    bad = next((c for c in token if c not in _TOKEN_CHARS), None)
    if bad is not None:
        raise BindError(
            f"the token may only hold letters, digits and - . _ ~ +, not {bad!r} (the page "
            "sends it as a WebSocket subprotocol); e.g. `openssl rand -hex 24`"
        )


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


def same_origin(headers: dict[str, str], allowed_hosts: frozenset[str]) -> str | None:
    """Why a request from a browser must be refused, or None.

    - ``Host`` must name this server when it listens on loopback (a DNS
      rebinding page reaches 127.0.0.1 under its own name);
    - an ``Origin`` (sent by browsers on cross-site requests and on every
      WebSocket handshake) must be this server's own, since WebSockets and
      "simple" POSTs are not stopped by the same-origin policy.
    """
    host = headers.get("host", "")
    name = _host_name(host)
    if allowed_hosts and name not in allowed_hosts:
        return f"Host {host[:80]!r} is not this server (it listens on loopback)"
    origin = headers.get("origin")
    if origin is None:
        return None
    bare = origin.split("://", 1)[-1].rstrip("/")
    if origin == "null" or bare.lower() != host.lower():
        return f"cross-origin request from {origin[:80]!r} refused"
    return None


def _host_name(host: str) -> str:
    """The name in a ``Host`` header: ``[::1]:80`` and ``[::1]`` give ``::1``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    return host.rsplit(":", 1)[0].lower()


class OriginGuard:
    """ASGI middleware: 403 for a request from another site, or under a name not this server's."""

    def __init__(self, app: Any, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}  # fmt: skip
        why = same_origin(headers, self.allowed_hosts)
        if why is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": why, "field": "origin"}).encode()
        start = [(b"content-type", b"application/json"),
                 (b"content-length", str(len(body)).encode())]  # fmt: skip
        kind = "http" if scope["type"] == "http" else "websocket.http"
        if kind == "websocket.http" and "websocket.http.response" not in (
            scope.get("extensions") or {}
        ):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": f"{kind}.response.start", "status": 403, "headers": start})
        await send({"type": f"{kind}.response.body", "body": body})


def allowed_hosts_for(bind: str) -> frozenset[str]:
    """The ``Host`` names a server bound to ``bind`` answers (empty: any, when not loopback)."""
    if not is_loopback(bind):
        return frozenset()
    return frozenset({"127.0.0.1", "localhost", "::1", bind.strip("[]").lower()})
