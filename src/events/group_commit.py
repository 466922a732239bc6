"""Group commit: many threads' appends share one transaction.

There is no writer thread. The first caller to arrive while nobody is
writing becomes the *leader*: it takes every request queued so far (its own
and those of callers who arrived while the previous transaction was
committing), writes them in one transaction, hands each caller its result,
and steps down; a waiting caller whose request is still queued takes over.
A caller returns only when the transaction holding its request committed
(or with the exception that transaction raised), so "acknowledged" always
means "durable". Under load, batches grow by themselves; alone, a caller
pays one transaction and no thread hand-off.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

T = TypeVar("T")
R = TypeVar("R")


class _Request(Generic[T, R]):
    __slots__ = ("done", "error", "items", "results")

    def __init__(self, items: Sequence[T]) -> None:
        self.items = items
        self.results: list[R] = []
        self.error: BaseException | None = None
        self.done = False


class GroupCommitter(Generic[T, R]):
    """Serialise ``write`` calls, merging concurrent submissions into one.

    ``write(items)`` must return one result per item, in order, or raise;
    it is called by one thread at a time.
    """

    def __init__(self, write: Callable[[list[T]], Sequence[R]], max_batch: int = 50_000) -> None:
        self._write = write
        self._max_batch = max_batch
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Request[T, R]] = deque()
        self._leader = False
        self.transactions = 0  # how many transactions were written (for tests and benches)

    def submit(self, items: Sequence[T]) -> list[R]:
        """Write ``items`` (in one transaction, maybe with others'); their results."""
        request: _Request[T, R] = _Request(items)
        with self._cond:
            self._queue.append(request)
        while True:
            with self._cond:
                while not request.done and self._leader:
                    self._cond.wait()
                if request.done:
                    return self._outcome(request)
                self._leader = True
                batch = self._take_batch()
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._leader = False
                    self._cond.notify_all()

    def _take_batch(self) -> list[_Request[T, R]]:
        # Called with the lock held. Always takes at least one request.
        taken: list[_Request[T, R]] = []
        count = 0
        while self._queue and (not taken or count + len(self._queue[0].items) <= self._max_batch):
            request = self._queue.popleft()
            taken.append(request)
            count += len(request.items)
        return taken

    def _run(self, batch: list[_Request[T, R]]) -> None:
        items = [item for request in batch for item in request.items]
        try:
            results = self._checked(self._write(items), len(items))
        except BaseException as exc:  # every caller in the batch gets the error
            with self._cond:
                for request in batch:
                    request.error = exc
                    request.done = True
            return
        with self._cond:
            self.transactions += 1
            start = 0
            for request in batch:
                request.results = results[start : start + len(request.items)]
                start += len(request.items)
                request.done = True

    @staticmethod
    def _checked(results: Sequence[R], expected: int) -> list[R]:
        if len(results) != expected:
            raise RuntimeError(f"writer returned {len(results)} results for {expected} items")
        return list(results)

    @staticmethod
    def _outcome(request: _Request[T, R]) -> list[R]:
        if request.error is not None:
            raise request.error
        return request.results
