"""Running watchers: the API ``pivot watch`` and ``pivot watchers run`` host.

Usage::

    from pivot.events.store import EventStore
    from pivot.jobs.config import load_config
    from pivot.jobs.runtime import start_watchers

    store = EventStore.open(".pivot/events.db")
    handle = start_watchers(store, load_config(), command="my-tool")
    ...                      # watchers run in their own threads
    handle.poll_now()        # optional: one poll cycle now, waits for it
    handle.stop()            # stops both actors, closes SSH connections

One process at a time hosts a project's job watchers: :func:`start_watchers`
first takes the store's lease (:mod:`pivot.jobs.host_lease`). When another
process holds it, the handle *stands by* (``handle.hosting`` is false, a
``watchers.standing_by`` event says who holds it) and takes over within a
second of that process's death on this machine, or ``[watchers]
lease_seconds`` after it stopped renewing the lease elsewhere. Each time it
starts hosting, the log says so (``watchers.hosting_started``) and the
watchers resume from the log: read positions, counters, and the previous
holder's intents without a result, reported as interrupted (only idempotent
actions are run again). A host that cannot renew its lease stops appending
decisions and starting actions before anyone else may take over.

While hosting, two pykka actors run under a supervisor
(:mod:`pivot.actors.job_system`): a JobTailer (one poll cycle per tick
over every host: one ``squeue`` per host, run on the event loop and
answered as a message, batched stats, every new byte read; local output
files are also read the moment inotify sees them grow) and an
ActionExecutor (runs the actions the tailer decided, with retries). An
asyncio loop in its own thread carries the SSH connections and the Slurm
queries. A supervisor that gives up ends the term; a fresh one starts from
the log.
Everything they do is an event in ``store``: watcher definitions come from
``WatcherCreated`` events (``pivot watchers add`` appends them, from any
process), so a running runtime picks up new watchers, pauses, resumes and
removals on its next cycle. Display state comes from the projections
``watcher_history`` and ``watcher_stats`` (:mod:`pivot.projections`).

Threads: the handle's methods may be called from any thread. ``stop()`` is
idempotent, waits for the action being run to finish (each external call
has a timeout, ``[watchers] action_timeout_seconds``) and releases the lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from pivot.actors.job_messages import Drain, PollTick
from pivot.events.base import Event
from pivot.events.store import EventStore
from pivot.events.watchers import HostingStandby, HostingStarted, HostingStopped
from pivot.jobs.config import Config
from pivot.jobs.host_lease import Attempt, HostLease, LeaseRow
from pivot.jobs.hosting_term import Term, start_term
from pivot.jobs.tailer import Tailer

__all__ = ["WatcherRuntime", "start_watchers"]

log = logging.getLogger(__name__)


class WatcherRuntime:
    """A handle on this process's hosting of the job watchers (or its standing by)."""

    def __init__(
        self,
        store: EventStore,
        config: Config,
        lease: HostLease,
        *,
        tick_seconds: float,
        retry_delay: float,
        follow_local: bool = True,
    ) -> None:
        self.store = store
        self.lease = lease
        self._start: Callable[[], Term] = lambda: start_term(
            store,
            config,
            lease,
            tick_seconds=tick_seconds,
            retry_delay=retry_delay,
            follow_local=follow_local,
        )
        self._term: Term | None = None
        self._standing_behind = ""  # the holder last reported
        self._holding = False  # this process holds the lease (renewed by the keeper)
        self._stopping = threading.Event()  # no new term; the keeper still renews
        self._stopped = threading.Event()  # the keeper's end
        self._lock = threading.Lock()  # a term starts or stops under it
        self._keeper: threading.Thread | None = None

    # -- hosting --------------------------------------------------------------

    def start(self) -> None:
        """Try for the lease once now, then keep it (or keep trying) in a thread of its own."""
        self._step()
        self._keeper = threading.Thread(target=self._keep, name="watchers-lease", daemon=True)
        self._keeper.start()

    def _keep(self) -> None:
        while not self._stopped.wait(self._pause()):
            try:
                self._step()
            except Exception:
                # The database may fail for a while: the next look tries again
                # (and a host that cannot renew stops trusting its lease).
                log.exception("job watchers: lease step failed")

    def _pause(self) -> float:
        # A standby looks every second (a dead holder here is replaced within one).
        every = self.lease.renew_every
        return every if self._holding else min(1.0, every)

    def _step(self) -> None:
        if self._holding:
            # Renewed without the term lock: stop() holds it while the last
            # actions run, and they must not outlast the lease meanwhile.
            renewed = self.lease.renew()
            if self._stopping.is_set():
                return  # stop() ends the term and releases the lease
            lost = renewed is False or (renewed is None and not self.lease.trusted())
            with self._lock:
                term = self._term
                if self._stopping.is_set() or term is None:
                    return
                if lost:
                    self._holding = False
                    why = "taken by another process" if renewed is False else "could not renew it"
                    self._end_term(f"lease lost ({why})")
                    return
                if term.gave_up:
                    why = f"{term.gave_up}; starting again from the log"
                elif term.fence.tripped:
                    # Renewed, but too late for a decision or an action that the
                    # fence refused meanwhile: start again from the log.
                    why = "the lease lapsed for a moment; starting again from the log"
                else:
                    return
                self._end_term(why)
                attempt = self.lease.try_acquire()
                self._holding = attempt.acquired
                if attempt.acquired:
                    self._begin_term(attempt)
            return
        with self._lock:
            if self._stopping.is_set():
                return
            attempt = self.lease.try_acquire()
            if attempt.acquired:
                self._holding = True
                self._begin_term(attempt)
            elif attempt.other is not None:
                self._standby(attempt.other)

    def _begin_term(self, attempt: Attempt) -> None:
        me = self.lease.me
        previous = attempt.other.describe() if attempt.other is not None else ""
        self._journal(
            HostingStarted(
                holder=me.holder,
                pid=me.pid,
                host=me.host,
                command=me.command,
                reason=attempt.reason,
                previous=previous,
                actor="JobWatchers",
            )
        )
        self._standing_behind = ""
        try:
            self._term = self._start()
        except BaseException:
            # No term: give the lease back rather than hold it doing nothing.
            self._holding = False
            self.lease.release()
            raise

    def _end_term(self, reason: str, timeout: float = 150.0) -> None:
        term, self._term = self._term, None
        if term is None:
            return
        term.stop(timeout)
        me = self.lease.me
        self._journal(
            HostingStopped(holder=me.holder, pid=me.pid, host=me.host, reason=reason,
                           actor="JobWatchers")
        )  # fmt: skip

    def _standby(self, holder: LeaseRow) -> None:
        if holder.holder == self._standing_behind:
            return
        self._standing_behind = holder.holder
        me = self.lease.me
        self._journal(
            HostingStandby(
                pid=me.pid,
                host=me.host,
                holder_pid=holder.pid,
                holder_host=holder.host,
                holder_command=holder.command,
                holder_since=holder.since,
                actor="JobWatchers",
            )
        )

    def _journal(self, event: Event) -> None:
        with contextlib.suppress(Exception):  # a full disk must not stop the hosting itself
            self.store.append([event])

    # -- the handle -------------------------------------------------------------

    @property
    def hosting(self) -> bool:
        """Whether this process hosts the watchers now (false: standing by, or stopped)."""
        return self._term is not None

    @property
    def tailer(self) -> Tailer:
        """The tailer of the current hosting term (for benchmarks and tests)."""
        term = self._term
        if term is None:
            raise RuntimeError("not hosting the job watchers (standing by or stopped)")
        return term.actors.tailer

    def wait_hosting(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until this process hosts the watchers."""
        deadline = time.monotonic() + timeout
        while not self.hosting:
            if self._stopping.is_set() or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def poll_now(self, timeout: float = 120.0) -> bool:
        """Poll every host now and wait until the cycle (not its actions) is done.

        False when this process is not hosting the watchers.
        """
        term = self._term
        if term is None:
            return False
        done = threading.Event()
        if not term.actors.tell("JobTailer", PollTick(reply=done, force=True)):
            return False
        return done.wait(timeout)

    def drain(self, timeout: float = 120.0) -> bool:
        """Wait until the executor has run every batch handed to it so far."""
        term = self._term
        if term is None:
            return False
        done = threading.Event()
        if not term.actors.tell("ActionExecutor", Drain(done)):
            return False
        return done.wait(timeout)

    def counters(self) -> dict[str, Counter[str]]:
        """Per host: commands run, stats, reads (for benchmarks and `pivot watchers run -v`)."""
        term = self._term
        if term is None:
            return {}
        return {name: Counter(t.counters) for name, t in term.transports.items()}

    @property
    def running(self) -> bool:
        """Hosting with both actors alive."""
        term = self._term
        return term is not None and term.actors.alive

    def stop(self, timeout: float = 150.0) -> None:
        """Stop polling, let the running action finish, close connections, release the lease.

        The lease is renewed until the last action has run, then given up.
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._lock:
            self._end_term("stopped", timeout)
            if self._holding:
                self._holding = False
                self.lease.release()
        self._stopped.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join(timeout)


def start_watchers(
    store: EventStore,
    config: Config,
    *,
    tick_seconds: float = 1.0,
    retry_delay: float | None = None,
    follow_local: bool = True,
    command: str = "",
) -> WatcherRuntime:
    """Host the job watchers of ``store`` (or stand by); returns a handle to stop.

    Takes the lease at once when it is free (the watchers are running when
    this returns), else stands by in a thread and takes over when the holder
    is gone. ``tick_seconds`` is how often the tailer wakes up; each host is
    polled at its watchers' ``interval_seconds`` (or ``[watchers]
    poll_seconds``). ``command`` names this host to the others
    (``pivot watch``...).
    With ``follow_local`` (the default) local output files are also watched
    with inotify and read as soon as they grow; without it, only the poll reads.
    """
    lease = HostLease(store.backend, ttl=config.lease_seconds, command=command)
    delay = config.retry_seconds if retry_delay is None else retry_delay
    runtime = WatcherRuntime(
        store,
        config,
        lease,
        tick_seconds=tick_seconds,
        retry_delay=delay,
        follow_local=follow_local,
    )
    runtime.start()
    return runtime
