"""A local command run to the end on an event loop, even when the caller is cancelled.

Cancelling a task that is inside asyncio's subprocess machinery leaves the
child running and its transport half open: the child is not killed, and when
it exits after the loop has closed, the waitpid thread drops the last
reference to the transport, whose ``__del__`` calls ``loop.call_soon`` on the
closed loop ("RuntimeError: Event loop is closed" on stderr at exit).
Cancelling it while the process is being created can hang the loop.

So :func:`run_child` never lets the cancellation reach that machinery: the
command runs in an inner task; a cancelled caller kills the child and waits
until the inner task has reaped it and closed its pipes, then re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

__all__ = ["run_child"]


class _Child:
    """The process once started, and whether its caller gave up on it."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.abandoned = False

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


async def run_child(
    argv: Sequence[str], data: bytes | None, timeout: float, env: dict[str, str]
) -> tuple[int, bytes, bytes]:
    """Exit status, stdout and stderr of ``argv`` (no shell).

    Raises ``OSError`` when it cannot start and ``TimeoutError`` (the child
    killed and reaped) after ``timeout`` seconds. When cancelled, the child is
    killed and reaped before the cancellation goes on.
    """
    child = _Child()
    work = asyncio.ensure_future(_run(argv, data, timeout, env, child))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        child.abandoned = True
        child.kill()
        while not work.done():  # cancelled again (a stopping loop): still wait for the reap
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(work)
        if not work.cancelled():
            work.exception()  # retrieved: its outcome no longer matters
        raise


async def _run(
    argv: Sequence[str], data: bytes | None, timeout: float, env: dict[str, str], child: _Child
) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    child.proc = proc
    if child.abandoned:
        child.kill()
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), timeout)
    except TimeoutError:
        child.kill()
        await proc.communicate()  # reaped, and its pipes closed, before the error
        raise
    return proc.returncode or 0, out, err
