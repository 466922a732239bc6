"""The JobTailer actor: a thin shell that moves the tailer's messages.

Every ``tick_seconds`` (a :class:`~pivot.actors.job_messages.PollTick`) it
asks the :class:`~pivot.jobs.tailer.Tailer` which hosts are due, starts
each due host's Slurm query on the event loop (:mod:`pivot.jobs.ioloop`) and
reads the grown outputs at once, without waiting for the query; the query's
answer comes back as a :class:`~pivot.actors.job_messages.JobsAnswered`
and is recorded then. A host is never asked twice at once: while its query
is out, later polls read its outputs and leave Slurm alone. Between polls,
the :class:`~pivot.jobs.output_watch.OutputWatch` thread tells it
``OutputsGrew`` when a local output changes and it reads those files at
once: nothing it does waits for ``squeue``.

Batches go to the ActionExecutor (by name, through the registry) as soon as
they are durable; at each tick it also tells the executor which watchers
were removed or disabled (:class:`~pivot.actors.job_messages.WatchersStopped`).

A handler stopped by :class:`~pivot.jobs.host_lease.LeaseLost` (this
process no longer holds the watchers' lease) ends the ticking: the runtime
ends the term. Anything else that escapes crashes the actor, and the
supervisor starts a fresh one, which folds the log again (so decisions
folded but never appended are forgotten) and ticks on.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import Any

import pykka

from pivot.actors.action_executor import tell_later
from pivot.actors.base import ActorContext, Shell
from pivot.actors.job_messages import JobsAnswered, OutputWatchFailed, PollTick, WatchersStopped
from pivot.events.actors import ActorCrashed
from pivot.jobs.batch import ActionBatch
from pivot.jobs.host_lease import LeaseLost
from pivot.jobs.output_watch import OutputsGrew, OutputWatch
from pivot.jobs.tailer import HostPoll, Tailer

__all__ = ["JobTailer"]

EXECUTOR = "ActionExecutor"


class JobTailer(Shell):
    """Polls on every tick, reads local outputs as inotify reports them, hands batches on."""

    name = "JobTailer"
    use_daemon_thread = True

    def __init__(
        self,
        ctx: ActorContext,
        tailer: Tailer,
        *,
        tick_seconds: float,
        follow_local: bool = True,
        resume: bool = False,
        started: threading.Event | None = None,
    ) -> None:
        super().__init__(ctx)
        self.tailer = tailer
        tailer.hand_off = self._hand_off  # a file's batches leave once committed
        self.tick_seconds = tick_seconds
        self.follow_local = follow_local
        self.resume = resume
        self.started_event = started
        self.watch: OutputWatch | None = None
        self._timer: threading.Timer | None = None
        self._lost = False
        self._generation: dict[str, int] = {}  # queries issued per host
        self._asking: set[str] = set()  # hosts whose query is out
        self._again: dict[str, HostPoll] = {}  # asked again by a forced poll meanwhile
        self._waiters: list[tuple[threading.Event, dict[str, int]]] = []

    # -- lifecycle ------------------------------------------------------------

    def started(self) -> None:
        if self.follow_local:
            ref = self.actor_ref

            def failed(error: str) -> None:  # from the watch thread: a message, no state
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.tell(OutputWatchFailed(error))

            self.watch = OutputWatch(ref.tell, on_error=failed)
        try:
            if self.resume:
                self.tailer.resume()
                batches: list[ActionBatch] = []
            else:
                batches = self.tailer.start()
        except LeaseLost:
            self._lost = True
            return  # no ticks: the runtime ends this term
        if self.started_event is not None:
            self.started_event.set()
        self._tell_stopped()
        self._hand_all(batches)
        self.actor_ref.tell(PollTick())

    def on_stop(self) -> None:
        self._stop_timer_and_watch()
        with contextlib.suppress(Exception):  # a store that fails now fails the next line too
            self.tailer.flush()
        self._release(everyone=True)
        super().on_stop()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback_: TracebackType | None,
    ) -> None:
        self._release(everyone=True)  # nobody waits on a poll this actor will not finish
        self._stop_timer_and_watch()
        super().on_failure(exception_type, exception_value, traceback_)

    def _stop_timer_and_watch(self) -> None:
        """No more ticks, no more inotify messages (on stop and on a crash alike)."""
        if self._timer is not None:
            self._timer.cancel()
        if self.watch is not None:
            self.watch.close()

    # -- messages ---------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        try:
            if isinstance(message, OutputsGrew):
                self._read_grown()
            elif isinstance(message, PollTick):
                self._tick(message)
            elif isinstance(message, JobsAnswered):
                self._answered(message)
            elif isinstance(message, OutputWatchFailed):
                error = f"output watch: {message.error}; polling every interval_seconds"
                self.ctx.store.emit(ActorCrashed(name=self.name, error=error, actor=self.name))
        except LeaseLost:
            self._lost = True  # no next tick: the runtime ends this term
            self._release(everyone=True)
        return None

    def _tick(self, message: PollTick) -> None:
        if self._lost:
            if message.reply is not None:
                message.reply.set()
            return
        needs: dict[str, int] = {}
        if message.reply is not None:
            # Waiting already: a LeaseLost from here on wakes it too.
            self._waiters.append((message.reply, needs))
        polls = self.tailer.polls(force=message.force)
        for poll in polls:
            if poll.host not in self._asking:
                needs[poll.host] = self._ask(poll)
            elif message.force:
                # The query out may predate what the caller waits for: ask once more after it.
                self._again[poll.host] = poll
                needs[poll.host] = self._generation[poll.host] + 1
        self._hand_all(self.tailer.poll_outputs(polls, force=message.force))
        if message.reply is None:  # a tick, not a poll asked for
            self._hand_all(self.tailer.read_between())
        self._tell_stopped()
        if self.watch is not None:
            # Jobs seen, watchers added or ended change what to follow.
            self.watch.follow(self.tailer.local_paths())
        if message.reply is not None:
            self._release()
            return  # a forced poll is extra: the timer's ticks go on as they were
        if self._timer is not None:
            self._timer.cancel()
        self._timer = tell_later(self.tick_seconds, self.actor_ref, PollTick())

    def _ask(self, poll: HostPoll) -> int:
        """Start ``poll``'s Slurm query on the event loop; its answer comes as a message."""
        generation = self._generation[poll.host] = self._generation.get(poll.host, 0) + 1
        self._asking.add(poll.host)
        ref, host = self.actor_ref, poll.host
        future = self.tailer.io.submit(self.tailer.query(poll))

        def done(f: Any) -> None:  # on the event loop's thread: a message, no state
            try:
                answer = JobsAnswered(host, generation, f.result())
            except BaseException as exc:
                answer = JobsAnswered(host, generation, None, repr(exc))
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(answer)

        future.add_done_callback(done)
        return generation

    def _answered(self, message: JobsAnswered) -> None:
        host = message.host
        again = self._again.pop(host, None)
        if again is not None:
            self._ask(again)
        else:
            self._asking.discard(host)
        for _, needs in self._waiters:
            if needs.get(host, 0) <= message.generation:
                needs.pop(host, None)
        try:
            if message.answer is None:
                raise RuntimeError(f"the Slurm query of {host} failed: {message.error}")
            self._hand_all(self.tailer.jobs_answered(message.answer))
        finally:
            self._release()

    def _read_grown(self) -> None:
        if self.watch is None or self._lost:
            return
        self._hand_all(self.tailer.read_grown(self.watch.take()))

    # -- helpers ----------------------------------------------------------------

    def _hand_off(self, batch: ActionBatch) -> None:
        self.ctx.registry.tell(EXECUTOR, batch)

    def _hand_all(self, batches: list[ActionBatch]) -> None:
        for batch in batches:
            self._hand_off(batch)

    def _tell_stopped(self) -> None:
        self.ctx.registry.tell(EXECUTOR, WatchersStopped(self.tailer.stopped_watchers()))

    def _release(self, *, everyone: bool = False) -> None:
        """Wake the callers of a forced poll whose answers are all in."""
        keep: list[tuple[threading.Event, dict[str, int]]] = []
        for event, needs in self._waiters:
            if everyone or not needs:
                event.set()
            else:
                keep.append((event, needs))
        self._waiters = keep
