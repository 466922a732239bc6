"""Scheduling the tailing: poll cycles per host, reads of grown local files, the log.

:class:`Tailer` is what the JobTailer actor runs (:mod:`pivot.actors.job_tailer`).
A poll of a host has two halves that never wait for each other:

- the output: :meth:`Tailer.poll_outputs` stats the files of the watchers
  due (one batched command over SSH) and reads what grew, at once, with the
  :class:`~pivot.jobs.output_reader.OutputReader`;
- the jobs: :meth:`Tailer.polls` says which hosts to ask Slurm about, the
  query (:func:`pivot.jobs.job_lookup.query_jobs`: one ``squeue`` for all
  the host's watched jobs, ``scontrol`` for a job seen for the first time or
  no longer listed, ``sacct`` where accounting exists) runs on the event
  loop, off the actor, and its result comes back as a message;
  :meth:`Tailer.jobs_answered` then records job states and ends, makes the
  final read of an ended job's output and the first read of a job just seen.

So a slow ``squeue`` delays neither the reads of a poll nor, between polls,
:meth:`Tailer.read_grown`, which reads local files the moment inotify
reports them (:mod:`pivot.jobs.output_watch`); the poll stays, as the
fallback for what inotify cannot see (SSH hosts, NFS). Decisions are the
pure functions of :mod:`pivot.jobs.decide`, :mod:`pivot.jobs.job_lookup`
and :mod:`pivot.jobs.schedule`; the tailer folds the log into a
:class:`~pivot.jobs.book.Book` and appends what they return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from pivot.events.base import Event
from pivot.events.jobs import JobEnded, JobSeen, JobStateChanged
from pivot.events.store import EventStore
from pivot.jobs.batch import ActionBatch, batch_for, batches_for
from pivot.jobs.book import Book, WatcherState, fold
from pivot.jobs.config import Config
from pivot.jobs.decide import on_job_end, on_restart, on_timer, timer_due
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.job_lookup import JobQuery, query_jobs
from pivot.jobs.lookup_health import on_lookup_failure, on_lookup_success
from pivot.jobs.lookup_runner import lookup_runner
from pivot.jobs.output_reader import OutputReader
from pivot.jobs.schedule import host_interval, watcher_due
from pivot.jobs.tail import job_has_output
from pivot.jobs.transport import Transport

__all__ = ["HostPoll", "Tailer"]

STOPPED_STATES = ("removed", "disabled")


@dataclass(frozen=True)
class HostPoll:
    """A host due for a Slurm query: its watched jobs, those the log has seen, has seen end."""

    host: str
    transport: Transport
    job_ids: tuple[str, ...]
    seen: frozenset[str]
    sacct_ok: bool
    timeout: float
    ended: frozenset[str] = frozenset()


class Tailer:
    """Polls hosts and turns what it finds into events and action batches."""

    def __init__(
        self,
        store: EventStore,
        config: Config,
        transports: dict[str, Transport],
        io: IoLoop,
        *,
        clock: Callable[[], float] = time.time,
        hand_off: Callable[[ActionBatch], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.transports = transports
        self.io = io
        self.clock = clock
        self.book = Book()
        self._own: set[int] = set()
        self.reader = OutputReader(self, config, io)
        # Receives the batches of a file's read once they are durable; without
        # it they are returned with the rest.
        self.hand_off = hand_off
        self._host_due: dict[str, float] = {}
        self._between_due: dict[str, float] = {}  # halfway to a remote host's next poll
        self._sacct_ok: dict[str, bool] = {}
        self.cycles = 0

    @property
    def hand_off(self) -> Callable[[ActionBatch], None] | None:
        """Where durable batches go as soon as their read commits (None: returned)."""
        return self.reader.hand_off

    @hand_off.setter
    def hand_off(self, value: Callable[[ActionBatch], None] | None) -> None:
        self.reader.hand_off = value

    @property
    def lines_scanned(self) -> int:
        """Lines scanned since start (for benchmarks and ``watchers run -v``)."""
        return self.reader.lines_scanned

    # -- the log --------------------------------------------------------------

    def catch_up(self) -> None:
        """Fold events appended since the last look (by anyone but this tailer).

        The position moves to the last event this look *read*, never to the
        log's end asked for separately: an event another process committed
        between the read and that question (a watcher ``pivot jobs submit``
        added) would be passed over for good.
        """
        records = list(self.store.read(after=self.book.seq))
        fold([r for r in records if r.seq not in self._own], self.book)
        if records:
            self.book.seq = max(self.book.seq, records[-1].seq)
        self._own = {s for s in self._own if s > self.book.seq}

    def append(self, events: Sequence[Event], *, folded: bool = False) -> None:
        """Append ``events`` durably (folding them into the book first unless ``folded``)."""
        if not events:
            return
        if not folded:
            self.book.apply_all(events)
        seqs = self.store.append(list(events))
        if seqs and seqs[0] == self.book.seq + 1:
            self.book.seq = seqs[-1]  # nobody appended in between: nothing to read back
        else:
            self._own.update(seqs)

    def lookup_failed(self, host: str, what: str, error: str) -> None:
        """A failed query or read (``what``: squeue, stat, read...) on ``host``: recorded
        when that kind starts failing, counted while it keeps failing
        (:mod:`pivot.jobs.lookup_health`)."""
        key = (host, what)
        health, events = on_lookup_failure(
            self.book.lookups.get(key), host, what, error, self.clock()
        )
        self.book.lookups[key] = health
        self.append(events, folded=True)

    def lookup_ok(self, host: str, what: str) -> None:
        """A query or read that worked: its recovery is recorded, with the count, if it
        was failing."""
        events = on_lookup_success(self.book.lookups.get((host, what)), host, what, self.clock())
        if events:
            self.book.lookups.pop((host, what), None)
            self.append(events, folded=True)

    def flush(self) -> None:
        """Record every read position not recorded yet (before stopping)."""
        self.reader.flush(self.clock())

    def start(self) -> list[ActionBatch]:
        """Load the log; report interrupted intents; return idempotent ones to run again."""
        from pivot.projections.book_snapshot import stored_book  # the stored snapshot + the rest

        self.book = stored_book(self.store)
        events, rerun = on_restart(self.book, self.clock())
        self.append(events)
        return [batch_for(self.book, self.book.watchers[r.watcher_id], [r]) for r in rerun]

    def resume(self) -> None:
        """Load the log after a crash of the tailer alone (the executor still runs its
        intents: none is reported interrupted)."""
        from pivot.projections.book_snapshot import stored_book

        self.book = stored_book(self.store)
        self._own.clear()

    def stopped_watchers(self) -> frozenset[str]:
        """Watchers whose actions must not run any more (removed or disabled)."""
        return frozenset(
            w.watcher_id for w in self.book.watchers.values() if w.state in STOPPED_STATES
        )

    # -- a poll cycle -----------------------------------------------------------

    def polls(self, *, force: bool = False) -> list[HostPoll]:
        """The hosts due now (all of them with ``force``), marked polled; what to ask Slurm.

        Call :meth:`poll_outputs` with the result, and :meth:`jobs_answered`
        with each host's :class:`~pivot.jobs.job_lookup.JobQuery`.
        """
        self.catch_up()
        now = self.clock()
        self.cycles += 1
        due: list[HostPoll] = []
        for host, watchers in self._live_by_host().items():
            if now < self._host_due.get(host, 0.0) and not force:
                continue
            interval = host_interval(
                (w.definition.interval_seconds for w in watchers), self.config.poll_seconds
            )
            self._host_due[host] = now + interval
            self._between_due[host] = now + interval / 2
            transport = self.transports.get(host)
            if transport is None:
                self.lookup_failed(host, "host", f"unknown host {host!r}")
                continue
            job_ids = tuple(sorted({w.job_id for w in watchers}))
            seen = frozenset(j for j in job_ids if self.book.job(host, j).seen)
            ended = frozenset(j for j in seen if self.book.job(host, j).ended)
            timeout = self.config.host(host).command_timeout if host in self.config.hosts else 60.0
            ok = self._sacct_ok.get(host, True)
            due.append(HostPoll(host, transport, job_ids, seen, ok, timeout, ended))
        return due

    def query(self, poll: HostPoll) -> Coroutine[Any, Any, JobQuery]:
        """The Slurm query of ``poll``, to run on the event loop (it appends nothing)."""
        transport, timeout = poll.transport, poll.timeout
        run = lookup_runner(lambda argv: transport.run(argv, timeout=timeout))
        # A job squeue lists as ended is asked of scontrol too: squeue gives no exit code
        # (once: an ended job leaves the watched set with its watchers, or is in poll.ended).
        return query_jobs(poll.host, run, poll.job_ids, poll.seen, sacct_ok=poll.sacct_ok,
                          ask_ended=True, ended=poll.ended)  # fmt: skip

    def poll_outputs(self, polls: Sequence[HostPoll], *, force: bool = False) -> list[ActionBatch]:
        """Read the grown output files of the due watchers of ``polls``' hosts; fire timers."""
        now = self.clock()
        batches: list[ActionBatch] = []
        by_host = self._live_by_host()
        for poll in polls:
            watchers = by_host.get(poll.host, [])
            due = [w for w in watchers if watcher_due(self.reader.next_due.get(w.watcher_id),
                                                      now, force=force)]  # fmt: skip
            batches.extend(self._read(poll.host, poll.transport, due, set(), now))
        for ws in list(self.book.watchers.values()):
            if timer_due(ws, now):
                evs = on_timer(ws, self.reader.context(ws, now))
                self.append(evs)
                batches.extend(batches_for(self.book, ws, evs))
        return batches

    def read_between(self) -> list[ActionBatch]:
        """Halfway between two polls of a remote host, read on its files being written
        (:meth:`OutputReader.read_between`: no command). On ticks, not forced polls."""
        now, batches = self.clock(), list[ActionBatch]()
        for host, watchers in self._live_by_host().items():
            transport = self.transports.get(host)
            if now < self._between_due.get(host, float("inf")) or transport is None:
                continue
            del self._between_due[host]
            self.reader.read_between(host, transport, watchers, now)
            batches.extend(b for ws in watchers for b in self.reader.take_pending(ws.watcher_id))
        return batches

    def jobs_answered(self, answer: JobQuery) -> list[ActionBatch]:
        """Record what Slurm said of a host's jobs: states, ends; final and first reads."""
        self.catch_up()
        host = answer.host
        for what, failure in answer.lookups:
            if failure:
                self.lookup_failed(host, what, failure)
            else:
                self.lookup_ok(host, what)
        if answer.sacct_unavailable:
            self._sacct_ok[host] = False
        transport = self.transports.get(host)
        if transport is None:
            return []
        self.append(self._first_seen(answer))
        waiting = {j for j in answer.job_ids if not job_has_output(self.book.job(host, j).state)}
        ended = self._states(answer)
        # A job whose end the log has (a watcher added after it): its watchers end now.
        known = {j: r.state for j in answer.job_ids if (r := self.book.job(host, j)).ended}
        started = {j for j in waiting if job_has_output(self.book.job(host, j).state)}
        watchers = self._live_by_host().get(host, [])
        # The last bytes of an ended job's output, the first of a job just seen or started.
        due = [w for w in watchers if w.job_id in ended or w.job_id in answer.details
               or w.job_id in started or w.job_id in known]  # fmt: skip
        now = self.clock()
        if due:
            self.reader.read(host, transport, due, set(ended) | set(known), now)
        batches: list[ActionBatch] = []
        self.append(list(ended.values()))
        for job_id, state in {**known, **{j: e.state for j, e in ended.items()}}.items():
            for ws in [w for w in watchers if w.job_id == job_id]:
                evs = on_job_end(ws, self.reader.context(ws, now, state))
                self.append(evs)
                batches.extend(batches_for(self.book, ws, evs))
        # A final read's batches wait behind the job-end decisions (OutputReader._deliver).
        for ws in due:
            batches.extend(self.reader.take_pending(ws.watcher_id))
        return batches

    def _first_seen(self, answer: JobQuery) -> list[Event]:
        """``job.seen`` for the jobs of ``answer`` the log meets for the first time."""
        host = answer.host
        return [
            JobSeen(
                host=host,
                job_id=job_id,
                name=d.name,
                state=d.state,
                stdout=d.stdout,
                stderr=d.stderr,
                script=d.command,
                workdir=d.workdir,
                user=d.user,
                actor="JobTailer",
            )
            for job_id, d in answer.details.items()
            if not self.book.job(host, job_id).seen
        ]

    def _states(self, answer: JobQuery) -> dict[str, JobEnded]:
        """Append the state changes of ``answer``'s jobs; the ends, to append after the
        final read."""
        host = answer.host
        ended: dict[str, JobEnded] = {}
        for job_id in answer.job_ids:
            info = answer.infos.get(job_id)
            if info is None:
                continue
            rec = self.book.job(host, job_id)
            if info.state and info.state != rec.state and rec.seen:
                self.append(
                    [JobStateChanged(host=host, job_id=job_id, old=rec.state, new=info.state,
                                     actor="JobTailer")]
                )  # fmt: skip
            if info.ended and not rec.ended:
                ended[job_id] = JobEnded(host=host, job_id=job_id, state=info.state,
                                         exit_code=info.exit_code, actor="JobTailer")  # fmt: skip
        return ended

    def cycle(self, *, force: bool = False) -> list[ActionBatch]:
        """A whole poll cycle on the calling thread, waiting for Slurm (tests, tools).

        The actor does the same in steps, never waiting for the query.
        """
        polls = self.polls(force=force)
        answers = [self.io.submit(self.query(p)) for p in polls]
        batches = self.poll_outputs(polls, force=force)
        for poll, answer in zip(polls, answers, strict=True):
            batches.extend(self.jobs_answered(answer.result(poll.timeout * 4 + 10)))
        return batches

    def _read(
        self,
        host: str,
        transport: Transport,
        due: Sequence[WatcherState],
        ended: set[str],
        now: float,
    ) -> list[ActionBatch]:
        if not due:
            return []
        self.reader.read(host, transport, due, ended, now)
        return [b for ws in due for b in self.reader.take_pending(ws.watcher_id)]

    def _live_by_host(self) -> dict[str, list[WatcherState]]:
        by_host: dict[str, list[WatcherState]] = {}
        for ws in self.book.watchers.values():
            if ws.live:
                by_host.setdefault(ws.host, []).append(ws)
        return by_host

    def _is_local(self, host: str) -> bool:
        cfg = self.config.hosts.get(host)
        return cfg is not None and cfg.is_local and host in self.transports

    def local_paths(self) -> set[str]:
        """The output files of live watchers on this machine (what inotify should watch)."""
        return {
            path
            for host, watchers in self._live_by_host().items()
            if self._is_local(host)
            for ws in watchers
            for path in self.reader.paths(ws)
        }

    def read_grown(self, paths: Collection[str]) -> list[ActionBatch]:
        """Read these local files now (inotify saw them change): no Slurm query, no wait.

        Job states and the job-end read stay with the poll; this only reads
        what the watchers of these files have not read yet.
        """
        if not paths:
            return []
        self.catch_up()
        now = self.clock()
        batches: list[ActionBatch] = []
        for host, watchers in self._live_by_host().items():
            if not self._is_local(host):
                continue
            due = [w for w in watchers if any(p in paths for p in self.reader.paths(w))]
            batches.extend(self._read(host, self.transports[host], due, set(), now))
        return batches
