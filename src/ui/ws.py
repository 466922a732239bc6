"""WebSockets: the log's new events, pushed as they are appended, resumable by seq.

Paths: ``/ws/watchers`` (every watcher), ``/ws/watchers/{job_id}`` (one
job's), ``/ws/pipeline`` (stages and waves). Messages are those of
:mod:`pivot.ui.messages`, one JSON text frame each, in log order.

Resuming: connect with ``?after=SEQ`` (the last ``seq`` the client saw).
The server subscribes first, at position S, then sends the stored events
``SEQ < seq <= S`` from the log and then the live ones (``seq > S``): none
lost, none twice. The first frame is ``{"type": "hello", "seq": S}``; a
client that has fallen more than :data:`REPLAY_LIMIT` events behind gets
``{"type": "reset", "seq": S}`` instead of the replay and reloads over REST.
A client too slow to keep up is closed with code 1013 and resumes the same
way.

Auth: with a token, the handshake must carry ``Authorization: Bearer T``
or, since browsers cannot set headers on a WebSocket, the subprotocol
``bearer.T`` next to ``pivot`` (checked by :mod:`pivot.ui.auth`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pivot.ui.context import UiContext
from pivot.ui.jsonenc import encode
from pivot.ui.messages import Message

__all__ = ["REPLAY_LIMIT", "routes"]

REPLAY_LIMIT = 50_000


def _after(ws: WebSocket) -> int | None:
    raw = ws.query_params.get("after")
    if raw is None or raw == "":
        return None
    return int(raw) if raw.isascii() and raw.isdigit() else -1


async def _serve(ws: WebSocket, accept: Callable[[Message], bool], channel: str) -> None:
    ctx: UiContext = ws.app.state.ctx
    after = _after(ws)
    protocols = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="pivot" if "pivot" in protocols else None)
    if after == -1:
        await ws.close(code=1008, reason="after must be a seq (a whole number)")
        return
    feed = ctx.feed
    sub, start = feed.subscribe(accept)
    try:
        if after is None or after >= start:
            await ws.send_text(encode({"type": "hello", "channel": channel, "seq": start}))
        elif start - after > REPLAY_LIMIT:
            await ws.send_text(encode({"type": "reset", "channel": channel, "seq": start}))
        else:
            await ws.send_text(encode({"type": "hello", "channel": channel, "seq": start,
                                        "replay_after": after}))  # fmt: skip
            for m in await run_in_threadpool(feed.replay, after, start):
                if accept(m):
                    await ws.send_text(encode(m))
        pump = asyncio.create_task(_pump(ws, sub))
        listen = asyncio.create_task(_listen(ws))
        done, pending = await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                task.result()
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left
    finally:
        feed.unsubscribe(sub)


async def _pump(ws: WebSocket, sub: object) -> None:
    from pivot.ui.feed import Subscription

    assert isinstance(sub, Subscription)
    while True:
        batch = await sub.queue.get()
        if sub.overflowed:
            await ws.close(code=1013, reason="too far behind: reconnect with ?after=<last seq>")
            return
        sub.taken(len(batch))
        for m in batch:
            await ws.send_text(encode(m))


async def _listen(ws: WebSocket) -> None:
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
        text = msg.get("text") or ""
        if text == '{"type":"ping"}':
            await ws.send_text('{"type":"pong"}')


async def watchers_ws(ws: WebSocket) -> None:
    """``/ws/watchers`` and ``/ws/watchers/{job_id}``."""
    job_id = ws.path_params.get("job_id", "")

    def accept(m: Message) -> bool:
        return m["channel"] == "watchers" and (not job_id or m.get("job_id") == job_id)

    await _serve(ws, accept, "watchers")


async def pipeline_ws(ws: WebSocket) -> None:
    """``/ws/pipeline``."""
    await _serve(ws, lambda m: m["channel"] == "pipeline", "pipeline")


def routes() -> list[WebSocketRoute]:
    """The WebSocket routes."""
    return [
        WebSocketRoute("/ws/watchers", watchers_ws),
        WebSocketRoute("/ws/watchers/{job_id}", watchers_ws),
        WebSocketRoute("/ws/pipeline", pipeline_ws),
    ]
