"""A real `pivot ui` process on a loopback port, for the API and browser tests.

The server is the real CLI (`pivot ui --port 0`), in its own process, on a
real event store; tests talk to it over HTTP (httpx) and WebSockets
(websockets' client), as the page does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect
from websockets.sync.connection import Connection

PIVOT = [str(Path(sys.executable).with_name("pivot"))]
_URL = re.compile(r"pivot ui on (http://[^ ]+?)/?(#token=\S+)? ")


def pivot(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a pivot command in ``project`` (another process than the server)."""
    r = subprocess.run(
        [*PIVOT, *args], cwd=project, env=_env(project), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PIVOT_EVENT_STORE", "PIVOT_UI_TOKEN")}
    env["XDG_CONFIG_HOME"] = str(project / "no-user-config")
    return env


class UiServer:
    """A running `pivot ui`; ``url`` without a trailing slash."""

    def __init__(self, proc: subprocess.Popen[str], url: str, token: str, lines: list[str]):
        self.proc = proc
        self.url = url
        self.token = token
        self.lines = lines
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=60)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params=params)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        r = self.http.post(path, json=body)
        assert r.status_code == status, (r.status_code, r.text)
        return r.json()

    def ws(self, path: str, *, token: str | None = None, **kw: Any) -> ClientConnection:
        t = self.token if token is None else token
        headers = {"Authorization": f"Bearer {t}"} if t else {}
        return connect(self.ws_url + path, additional_headers=headers, open_timeout=30, **kw)

    def stop(self) -> str:
        """Stop with SIGTERM-like Ctrl-C; returns what it printed."""
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return "".join(self.lines)


def start_ui(project: Path, *args: str, token: str = "") -> UiServer:
    """Start `pivot ui --port 0 ARGS` in ``project`` and wait until it listens."""
    argv = [*PIVOT, "ui", "--port", "0", *args]
    if token:
        argv += ["--token", token]
    proc = subprocess.Popen(
        argv, cwd=project, env=_env(project), text=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if _URL.search(line + " "):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 60
    while not found.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("pivot ui did not start:\n" + "".join(lines))
    m = next(_URL.search(line + " ") for line in lines if _URL.search(line + " "))
    assert m is not None
    return UiServer(proc, m.group(1).rstrip("/"), token, lines)


@contextlib.contextmanager
def running_ui(project: Path, *args: str, token: str = "") -> Iterator[UiServer]:
    server = start_ui(project, *args, token=token)
    try:
        yield server
    finally:
        out = server.stop()
        assert "Traceback" not in out, out


def wait_for(cond: Callable[[], Any], timeout: float = 90.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def receive_until(
    conn: Connection, cond: Callable[[dict[str, Any]], bool], timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Messages received until one satisfies ``cond`` (included)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no such message within {timeout}s; got {got[-20:]}")
        msg = json.loads(conn.recv(timeout=left))
        got.append(msg)
        if cond(msg):
            return got
