"""Running ``pivot ui``: the store, the feed, the job watchers, uvicorn.

:func:`serve` blocks until Ctrl-C or SIGTERM. It opens the project's event
store, folds it into the feed, starts the project's job watchers (unless
``host_watchers`` is false), and serves the app on ``host:port``. Everything
is stopped in reverse order on the way out.
"""

from __future__ import annotations

import logging
import socket
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ServeOptions", "serve"]

log = logging.getLogger("pivot.ui")


@dataclass(frozen=True)
class ServeOptions:
    """What ``pivot ui`` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str = ""
    open_browser: bool = False
    host_watchers: bool = True
    store: str | None = None
    tick_seconds: float = 1.0


def page_url(options: ServeOptions, port: int) -> str:
    """The address to open (with the token in the fragment, which no server sees)."""
    host = options.host if options.host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{port}/"
    return f"{url}#token={options.token}" if options.token else url


def serve(options: ServeOptions, say: Callable[[str], None] = print) -> None:
    """Serve until interrupted (raises what the store or the bind raise)."""
    import uvicorn

    from pivot.events.location import resolve_store_location
    from pivot.events.store import EventStore
    from pivot.jobs.config import find_project_root, load_config
    from pivot.ui.app import create_app
    from pivot.ui.context import UiContext
    from pivot.ui.feed import Feed

    root = find_project_root()
    config = load_config(root)
    listening = _listen(options.host, options.port)
    try:
        store = EventStore.open(resolve_store_location(options.store))
    except BaseException:
        listening.close()
        raise
    feed = Feed(store)
    runtime = None
    try:
        feed.start()
        if options.host_watchers:
            from pivot.jobs.runtime import start_watchers

            runtime = start_watchers(
                store, config, tick_seconds=options.tick_seconds, command="pivot ui"
            )
        ctx = UiContext(store=store, config=config, feed=feed, root=root, token=options.token,
                        runtime=runtime, bind=options.host)  # fmt: skip
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(ctx),
                host=options.host,
                port=options.port,
                log_level="warning",
                ws="websockets-sansio",
                lifespan="off",
                server_header=False,
            )
        )
        _announce(server, options, say)
        server.run(sockets=[listening])
    finally:
        if runtime is not None:
            runtime.stop()
        feed.stop()
        store.close()
        listening.close()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn.

    A port in use or a host name that does not resolve then raises
    ``OSError`` to the caller (one line, exit 1) before the store is opened
    or the watchers' lease taken; uvicorn would log it and ``sys.exit(3)``.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def _announce(server: object, options: ServeOptions, say: Callable[[str], None]) -> None:
    """Print the address once uvicorn listens (and open it if asked)."""

    def wait() -> None:
        import time

        for _ in range(600):
            if getattr(server, "started", False):
                break
            time.sleep(0.05)
        else:
            return
        port = options.port
        servers = getattr(server, "servers", [])
        for s in servers:
            for sock in getattr(s, "sockets", []):
                port = sock.getsockname()[1]
        url = page_url(options, port)
        say(f"pivot ui on {url} (Ctrl-C to stop)")
        if options.open_browser:
            webbrowser.open(url)

    threading.Thread(target=wait, name="pivot-ui-announce", daemon=True).start()
