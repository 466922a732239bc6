"""Where Slurm commands run and output files are read: locally or over SSH.

Both transports are asyncio objects, used from the JobTailer's event loop
thread. They count what they do (``commands``, ``reads``) so the benchmark
can show that a poll cycle costs O(hosts) commands, not O(watchers).

Commands are argv lists. Locally they run without a shell. Over SSH the
remote side always has a shell, so every argument is quoted with
:func:`shlex.quote`; nothing from job output is ever part of a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pivot.jobs.child_process import run_child
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.kept_files import LocalFiles, Retired, close_later
from pivot.jobs.schedule import reconnect_delay
from pivot.jobs.tail import FileStat, parse_stats

__all__ = [
    "CommandResult",
    "KeepsHandles",
    "LocalTransport",
    "SshTransport",
    "Transport",
    "TransportError",
    "make_transports",
]


MAX_HANDLES = 512  # SFTP handles kept open per host (sftp-server has a file descriptor limit)


class TransportError(RuntimeError):
    """The host could not be reached, or a command timed out."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Exit status and output of one command."""

    returncode: int
    stdout: str
    stderr: str


class Transport(Protocol):
    """What the tailer and the action executor need from a host."""

    name: str
    counters: Counter[str]

    async def run(
        self, argv: Sequence[str], *, input_text: str | None = None, timeout: float = 120.0
    ) -> CommandResult:
        """Run a command to completion; raises TransportError on timeout or no connection."""
        ...

    async def stat_many(self, paths: Sequence[str]) -> dict[str, FileStat]:
        """Stat several files at once; missing files are absent from the result."""
        ...

    async def read(self, path: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of a file from ``offset``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class KeepsHandles(Protocol):
    """A transport that keeps files open across polls (SSH's SFTP handles)."""

    async def read_kept(
        self, path: str, offset: int, length: int, inode: int
    ) -> tuple[bytes, bool]:
        """Read a byte range; whether it came through a handle kept open on ``inode``."""
        ...


class LocalTransport:
    """The machine pivot runs on: subprocesses and direct file reads."""

    def __init__(self, name: str = "local", env: dict[str, str] | None = None) -> None:
        self.name = name
        self.counters: Counter[str] = Counter()
        self._env = {**os.environ, **(env or {})}
        self._files = LocalFiles()

    async def run(
        self, argv: Sequence[str], *, input_text: str | None = None, timeout: float = 120.0
    ) -> CommandResult:
        """Run ``argv`` (no shell), killing it after ``timeout`` seconds."""
        self.counters["commands"] += 1
        self.counters[f"cmd:{argv[0]}"] += 1
        data = input_text.encode() if input_text is not None else None
        try:
            code, out, err = await run_child(argv, data, timeout, self._env)
        except TimeoutError:
            raise TransportError(f"{argv[0]} timed out after {timeout:g}s") from None
        except OSError as exc:
            raise TransportError(f"cannot run {argv[0]}: {exc}") from None
        return CommandResult(
            code, out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace")
        )

    async def stat_many(self, paths: Sequence[str]) -> dict[str, FileStat]:
        """``os.stat`` each path."""
        return self.stat_now(paths)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        """Read a byte range."""
        return self.read_now(path, offset, length)

    # The same without the event loop: a local stat or read is a system call
    # that does not wait on a peer, and the tailer's thread can make it itself
    # (two thread hops per file cost more than the read).
    def stat_now(self, paths: Sequence[str]) -> dict[str, FileStat]:
        """``os.stat`` each path, on the calling thread."""
        out: dict[str, FileStat] = {}
        for p in paths:
            self.counters["stats"] += 1
            try:
                st = os.stat(p)  # noqa: PTH116 - hot path: no Path object per file
            except OSError:
                continue
            out[p] = FileStat(inode=st.st_ino, size=st.st_size, mtime=st.st_mtime_ns / 1e9)
        return out

    def read_now(self, path: str, offset: int, length: int) -> bytes:
        """Read a byte range, on the calling thread (the file is held open: kept_files)."""
        self.counters["reads"] += 1
        return self._files.read(path, offset, length)

    def read_replaced_now(self, path: str, inode: int, offset: int, length: int) -> bytes | None:
        """Read the file of ``inode`` that another file replaced at ``path``; None: not held."""
        return self._files.read_replaced(path, inode, offset, length)

    async def close(self) -> None:
        """Close the files held open."""
        self._files.close()


class SshTransport:
    """A host reached with asyncssh: one connection, reused, reconnected with backoff.

    Host keys are always verified (``known_hosts`` from the host config, else
    ``~/.ssh/known_hosts``); ``~/.ssh/config`` and the SSH agent are honoured.

    SFTP handles stay open across poll cycles (a read is then one request,
    not open + read + close). A handle belongs to the file that had the
    path when it was opened: once :meth:`stat_many` reports another inode
    there (rotated, replaced), the handle is retired (:meth:`read_replaced`
    reads the old file's end with it) and the next read opens the new file.
    """

    def __init__(
        self, host: HostConfig, *, backoff_cap: float = 60.0, keep_handles: bool = True
    ) -> None:
        self.name = host.name
        self.host = host
        self.counters: Counter[str] = Counter()
        self._conn: Any = None
        self._sftp: Any = None
        self._lock = asyncio.Lock()
        self._sftp_lock = asyncio.Lock()
        # Reads in flight at once on the connection (SFTP requests are pipelined).
        self._read_slots = asyncio.Semaphore(64)
        self._failures = 0
        self._retry_at = 0.0
        self._backoff_cap = backoff_cap
        self._handles: dict[str, tuple[Any, int]] = {}  # path -> (open handle, its inode)
        self._opening: dict[str, asyncio.Future[Any]] = {}
        self._inodes: dict[str, int] = {}  # path -> inode of the last stat
        self._retired: Retired[Any] = Retired(self._close_later)
        self._closing: set[asyncio.Task[None]] = set()
        self.keep_handles = keep_handles

    async def _connection(self) -> Any:
        import asyncssh

        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            now = time.monotonic()
            if now < self._retry_at:
                raise TransportError(
                    f"{self.name}: reconnecting in {self._retry_at - now:.0f}s after: "
                    f"{self._last_error}"
                )
            self._conn = self._sftp = None
            kwargs: dict[str, Any] = {"connect_timeout": self.host.connect_timeout}
            if self.host.port:
                kwargs["port"] = self.host.port
            if self.host.username:
                kwargs["username"] = self.host.username
            if self.host.known_hosts:
                kwargs["known_hosts"] = str(Path(self.host.known_hosts).expanduser())
            if self.host.identity_file:
                kwargs["client_keys"] = [str(Path(self.host.identity_file).expanduser())]
            try:
                self.counters["connects"] += 1
                self._conn = await asyncssh.connect(self.host.hostname or self.name, **kwargs)
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                self._failures += 1
                delay = reconnect_delay(self._failures, self._backoff_cap)
                self._retry_at = time.monotonic() + delay
                self._last_error = str(exc) or type(exc).__name__
                raise TransportError(f"{self.name}: cannot connect: {self._last_error}") from None
            self._failures = 0
            return self._conn

    _last_error = ""

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._sftp = None
        self._handles.clear()  # they lived on the SFTP session just closed
        self._retired = Retired(self._close_later)

    async def run(
        self, argv: Sequence[str], *, input_text: str | None = None, timeout: float = 120.0
    ) -> CommandResult:
        """Run ``argv`` remotely, every argument quoted for the remote shell."""
        import asyncssh

        conn = await self._connection()
        self.counters["commands"] += 1
        self.counters[f"cmd:{argv[0]}"] += 1
        command = shlex.join([*self.host.env_prefix(), *argv])
        try:
            result = await conn.run(command, input=input_text, timeout=timeout, check=False)
        except asyncssh.TimeoutError:
            raise TransportError(f"{self.name}: {argv[0]} timed out after {timeout:g}s") from None
        except (OSError, asyncssh.Error) as exc:
            self._drop()
            raise TransportError(f"{self.name}: {argv[0]} failed: {exc}") from None
        status = result.exit_status if result.exit_status is not None else 255
        return CommandResult(status, _text(result.stdout), _text(result.stderr))

    async def _sftp_client(self) -> Any:
        conn = await self._connection()
        async with self._sftp_lock:  # concurrent reads share one SFTP session
            if self._sftp is None:
                self._sftp = await conn.start_sftp_client()
        return self._sftp

    async def stat_many(self, paths: Sequence[str]) -> dict[str, FileStat]:
        """One ``stat`` command for all paths (inode, size, mtime).

        The mtime is asked to the nanosecond (``%.9Y``): with whole seconds, a
        file rewritten in place at the same size within the second of the
        previous write would look untouched, and the rewrite would be missed.
        """
        if not paths:
            return {}
        result = await self.run(
            ["stat", "-L", "--printf=%i %s %.9Y %n\\0", "--", *paths],
            timeout=self.host.command_timeout,
        )
        out = parse_stats(result.stdout)
        for path in paths:
            inode = out[path].inode if path in out else 0
            self._inodes[path] = inode
            held = self._handles.get(path)
            if held is not None and held[1] != inode:  # another file has the name now
                self._retired.add(path, held[1], self._handles.pop(path)[0])
        return out

    def _close_later(self, handle: Any) -> None:
        close_later(handle, self._closing)

    async def read_replaced(self, path: str, inode: int, offset: int, length: int) -> bytes | None:
        """Read the file of ``inode`` that another file replaced at ``path``; None: no
        handle on it is held (or it failed)."""
        import asyncssh

        held = self._handles.get(path)
        handle = held[0] if held is not None and held[1] == inode else None
        handle = handle or self._retired.get(path, inode)
        if handle is None:
            return None
        self.counters["reads"] += 1
        try:
            async with self._read_slots:
                return bytes(await handle.read(length, offset))
        except (OSError, asyncssh.Error):
            return None

    async def _close_handle(self, path: str) -> None:
        held = self._handles.pop(path, None)
        if held is not None:
            with contextlib.suppress(Exception):  # the server may have dropped it already
                await held[0].close()

    async def _handle(self, path: str) -> Any:
        """An open handle on ``path``: the one kept from before, or a new one."""
        held = self._handles.get(path)
        if held is not None:
            return held[0]
        pending = self._opening.get(path)
        if pending is not None:  # a concurrent read (head and chunk) opens it once
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._opening[path] = future
        try:
            sftp = await self._sftp_client()
            self.counters["opens"] += 1
            handle = await sftp.open(path, "rb")
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._opening.pop(path, None)
        while len(self._handles) >= MAX_HANDLES:
            await self._close_handle(next(iter(self._handles)))
        self._handles[path] = (handle, self._inodes.get(path, 0))
        future.set_result(handle)
        return handle

    async def read(self, path: str, offset: int, length: int) -> bytes:
        """Read a byte range over SFTP (the same connection)."""
        return (await self.read_kept(path, offset, length, 0))[0]

    async def read_kept(
        self, path: str, offset: int, length: int, inode: int
    ) -> tuple[bytes, bool]:
        """Read a byte range; also whether it came through a handle kept open since an
        earlier poll on the file whose stat said ``inode`` (so from that file, whatever
        the path names now), not one opened for this read."""
        import asyncssh

        self.counters["reads"] += 1
        kept = False
        try:
            async with self._read_slots:
                if self.keep_handles:
                    held = self._handles.get(path)
                    kept = held is not None and inode != 0 and held[1] == inode
                    handle = held[0] if held is not None else await self._handle(path)
                    data = await handle.read(length, offset)
                else:
                    sftp = await self._sftp_client()
                    async with sftp.open(path, "rb") as fh:
                        self.counters["opens"] += 1
                        data = await fh.read(length, offset)
        except (OSError, asyncssh.Error) as exc:
            if isinstance(exc, asyncssh.SFTPError):
                await self._close_handle(path)  # gone or unreadable: open afresh next time
                raise TransportError(f"{self.name}: cannot read {path}: {exc}") from None
            self._drop()
            raise TransportError(f"{self.name}: cannot read {path}: {exc}") from None
        return bytes(data), kept

    async def close(self) -> None:
        """Close the kept handles and the connection."""
        for path in list(self._handles):
            await self._close_handle(path)
        self._retired.close_all()
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await self._conn.wait_closed()
        self._conn = self._sftp = None


def make_transports(config: Config) -> dict[str, Transport]:
    """One transport per configured host (``local`` always exists)."""
    out: dict[str, Transport] = {}
    for name, host in config.hosts.items():
        out[name] = LocalTransport(name, host.env) if host.is_local else SshTransport(host)
    return out


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
