"""A real PostgreSQL server on loopback, started once per test process.

Debian's server binaries live in /usr/lib/postgresql/<N>/bin. PostgreSQL
refuses to run as root, so as root the cluster is created and run as user
``postgres`` (data and socket directories in a temp dir it owns). The server
is stopped when the test process exits. :func:`fresh_database` gives each
test an empty database of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from testkit.require import require

__all__ = ["available", "fresh_database", "postgres_url", "server_url"]

_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
_state: dict[str, str] = {}


def available() -> bool:
    """Whether a PostgreSQL server can be started here."""
    if not _BIN:
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def server_url() -> str:
    """Start the server if needed; the URL of its ``postgres`` database."""
    if "url" in _state:
        return _state["url"]
    bindir = Path(_BIN[-1]).parent
    top = Path(tempfile.mkdtemp(prefix="pivot-pg-"))
    data, sock = top / "data", top / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        info = pwd.getpwnam("postgres")
        for p in (top, sock):
            os.chown(p, info.pw_uid, info.pw_gid)
    subprocess.run(
        _as_server_user(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(
        _as_server_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(top / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    atexit.register(_stop, bindir, data, top)
    _state["url"] = f"postgresql://postgres:secret@127.0.0.1:{port}/postgres"
    return _state["url"]


def _stop(bindir: Path, data: Path, top: Path) -> None:
    subprocess.run(
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
        check=False,
        capture_output=True,
    )
    shutil.rmtree(top, ignore_errors=True)


def fresh_database() -> str:
    """A new empty database on the server; its URL."""
    import psycopg

    url = server_url()
    name = f"t_{uuid.uuid4().hex[:12]}"
    with contextlib.closing(psycopg.connect(url, autocommit=True)) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def postgres_url() -> str:
    """Pytest fixture: a fresh database on the suite's PostgreSQL server."""
    require(available(), "PostgreSQL server (Debian package postgresql)")
    return fresh_database()
