"""An asyncio event loop in a thread of its own, and the bridge to it.

asyncssh is asyncio; pykka actors are threads. The JobTailer owns one
:class:`IoLoop`; actors call :meth:`IoLoop.call` to run a coroutine there and
wait (with a timeout) for its result. Nothing else touches the loop.

:meth:`IoLoop.stop` cancels the coroutines it was given first and waits for
them, so that each cleans up what it started (a local command kills and
reaps its child: :mod:`pivot.jobs.child_process`) while the loop still runs;
only then is what is left cancelled and the loop closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["IoLoop"]

T = TypeVar("T")


class IoLoop:
    """A running event loop and a thread-safe way to use it."""

    def __init__(self, name: str = "pivot-io") -> None:
        self.loop = asyncio.new_event_loop()
        self._submitted: set[asyncio.Task[Any]] = set()  # touched on the loop's thread only
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop; its result arrives in the returned future."""
        return asyncio.run_coroutine_threadsafe(self._tracked(coro), self.loop)

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._submitted.add(task)
        try:
            return await coro
        finally:
            self._submitted.discard(task)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and return its result (raising what it raises)."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout}s") from None

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what is left, stop the loop and join its thread."""
        if not self.loop.is_running():
            return

        async def _cancel_all() -> None:
            me = asyncio.current_task()

            async def cancel(tasks: set[asyncio.Task[Any]]) -> None:
                left = [t for t in tasks if t is not me]
                for t in left:
                    t.cancel()
                await asyncio.gather(*left, return_exceptions=True)

            await cancel(set(self._submitted))  # each cleans up what it started
            await cancel(asyncio.all_tasks())  # then whatever is left over

        try:
            self.call(_cancel_all(), timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.loop.close()
