"""Scheduling the tailing: poll cycles per host, reads of grown local files, the log.

:class:`Tailer` is what the JobTailer actor runs. On each tick, per host due
(its watchers' ``interval_seconds``), :meth:`Tailer.cycle` issues one
``squeue`` for all watched jobs (``scontrol`` only for a job seen for the
first time or no longer listed, ``sacct`` where accounting exists), then has
the :class:`~pivot.jobs.output_reader.OutputReader` read every grown output
file, and makes the job-end and timer decisions. Between polls,
:meth:`Tailer.read_grown` reads local files the moment inotify reports them
(:mod:`pivot.jobs.output_watch`); the poll stays, as the fallback for what
inotify cannot see (SSH hosts, NFS). Decisions are the pure functions of
:mod:`pivot.jobs.decide`; the tailer folds the log into a
:class:`~pivot.jobs.book.Book` and appends what they return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from pivot.events.base import Event
from pivot.events.jobs import JobEnded, JobSeen, JobStateChanged
from pivot.events.store import EventStore
from pivot.jobs import slurm
from pivot.jobs.batch import ActionBatch, batch_for, batches_for
from pivot.jobs.book import Book, WatcherState, fold
from pivot.jobs.config import Config
from pivot.jobs.decide import on_job_end, on_restart, on_timer, timer_due
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.lookup_health import on_lookup_failure, on_lookup_success
from pivot.jobs.output_reader import OutputReader
from pivot.jobs.transport import Transport, TransportError

__all__ = ["ActionBatch", "Tailer"]


@dataclass
class _CycleOut:
    events: list[Event] = field(default_factory=list)
    batches: list[ActionBatch] = field(default_factory=list)


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
        # it they are returned by cycle() with the rest.
        self.hand_off = hand_off
        self._host_due: dict[str, float] = {}
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
        """Fold events appended since the last look (by anyone but this tailer)."""
        records = [r for r in self.store.read(after=self.book.seq) if r.seq not in self._own]
        fold(records, self.book)
        self.book.seq = max(self.book.seq, self.store.last_seq())
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

    def refold(self) -> None:
        """Rebuild the book from the log, forgetting decisions that were never appended."""
        self.book = fold(self.store.read())
        self._own.clear()

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
        self.book = fold(self.store.read())
        events, rerun = on_restart(self.book, self.clock())
        self.append(events)
        return [batch_for(self.book, self.book.watchers[r.watcher_id], [r]) for r in rerun]

    # -- a cycle --------------------------------------------------------------

    def cycle(self, *, force: bool = False) -> list[ActionBatch]:
        """Poll every host that has a watcher due (all of them with ``force``)."""
        self.catch_up()
        now = self.clock()
        self.cycles += 1
        out = _CycleOut()
        for host, watchers in self._live_by_host().items():
            if now < self._host_due.get(host, 0.0) and not force:
                continue
            if force:
                self.reader.next_due.update((w.watcher_id, 0.0) for w in watchers)
            self._poll_host(host, watchers, now, out)
            interval = min(w.definition.interval_seconds for w in watchers)
            if self.config.poll_seconds:
                interval = self.config.poll_seconds
            self._host_due[host] = now + interval
        for ws in list(self.book.watchers.values()):
            if timer_due(ws, now):
                evs = on_timer(ws, self.reader.context(ws, now))
                self.append(evs)
                out.batches.extend(batches_for(self.book, ws, evs))
        return out.batches

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
            if not due:
                continue
            self.reader.read(host, self.transports[host], due, set(), now)
            for ws in due:
                batches.extend(self.reader.take_pending(ws.watcher_id))
        return batches

    def _due(self, ws: WatcherState, now: float) -> bool:
        """Whether the poll reads ``ws``'s files now (its backed-off interval passed)."""
        return now >= self.reader.next_due.get(ws.watcher_id, 0.0)

    def _poll_host(
        self, host: str, watchers: list[WatcherState], now: float, out: _CycleOut
    ) -> None:
        transport = self.transports.get(host)
        if transport is None:
            self.lookup_failed(host, "host", f"unknown host {host!r}")
            return
        job_ids = sorted({w.job_id for w in watchers})
        # The output stat needs no job state: over SSH it runs beside squeue.
        early = self.reader.stat_early(transport, [w for w in watchers if self._due(w, now)])
        infos = self._query_jobs(host, transport, job_ids)
        ended: list[tuple[str, slurm.JobInfo]] = []
        for job_id in job_ids:
            info = infos.get(job_id)
            rec = self.book.job(host, job_id)
            if info is None:
                continue
            events: list[Event] = []
            if info.state and info.state != rec.state and rec.seen:
                events.append(
                    JobStateChanged(
                        host=host, job_id=job_id, old=rec.state, new=info.state, actor="JobTailer"
                    )
                )
            self.append(events)
            if info.ended and not rec.ended:
                ended.append((job_id, info))
        ended_ids = {j for j, _ in ended}
        # Output: every due watcher, and every watcher of a job that just ended (final read).
        due = [w for w in watchers if w.job_id in ended_ids or self._due(w, now)]
        self.reader.read(host, transport, due, ended_ids, now, early=early)
        for job_id, info in ended:
            events = [
                JobEnded(
                    host=host,
                    job_id=job_id,
                    state=info.state,
                    exit_code=info.exit_code,
                    actor="JobTailer",
                )
            ]
            self.append(events)
            for ws in [w for w in watchers if w.job_id == job_id]:
                evs = on_job_end(ws, self.reader.context(ws, now, info.state))
                self.append(evs)
                out.batches.extend(batches_for(self.book, ws, evs))
        for ws in due:
            out.batches.extend(self.reader.take_pending(ws.watcher_id))

    # -- Slurm ----------------------------------------------------------------

    def _run(self, transport: Transport, argv: list[str]) -> tuple[int, str, str]:
        timeout = (
            self.config.host(transport.name).command_timeout
            if transport.name in self.config.hosts
            else 60.0
        )
        result = self.io.call(transport.run(argv, timeout=timeout), timeout + 5)
        return result.returncode, result.stdout, result.stderr

    def _query_jobs(
        self, host: str, transport: Transport, job_ids: list[str]
    ) -> dict[str, slurm.JobInfo]:
        """One squeue for all jobs; scontrol for new or unlisted ones; never guesses an end."""
        infos: dict[str, slurm.JobInfo] = {}
        try:
            rc, stdout, stderr = self._run(transport, slurm.squeue_argv(job_ids))
        except (TransportError, TimeoutError) as exc:
            self.lookup_failed(host, "squeue", f"squeue: {exc}")
            return {}
        if rc != 0 and not slurm.squeue_says_unknown(stderr):
            self.lookup_failed(host, "squeue", f"squeue exited {rc}: {stderr.strip()[:300]}")
            return {}
        self.lookup_ok(host, "squeue")
        if rc == 0:
            infos.update(slurm.parse_squeue(stdout))
        missing: list[str] = []
        for job_id in job_ids:
            rec = self.book.job(host, job_id)
            if rec.seen and job_id in infos:
                continue
            detail = self._scontrol(host, transport, job_id)
            if detail is None:
                if job_id not in infos:
                    missing.append(job_id)
                continue
            if not rec.seen:
                self.append(
                    [
                        JobSeen(
                            host=host,
                            job_id=job_id,
                            name=detail.name,
                            state=detail.state,
                            stdout=detail.stdout,
                            stderr=detail.stderr,
                            script=detail.command,
                            workdir=detail.workdir,
                            user=detail.user,
                            actor="JobTailer",
                        )
                    ]
                )
            infos[job_id] = detail
        if missing and self._sacct_ok.get(host, True):
            infos.update(self._sacct(host, transport, missing))
        return infos

    def _scontrol(self, host: str, transport: Transport, job_id: str) -> slurm.JobInfo | None:
        try:
            rc, stdout, stderr = self._run(transport, slurm.scontrol_argv(job_id))
        except (TransportError, TimeoutError) as exc:
            self.lookup_failed(host, "scontrol", f"scontrol: {exc}")
            return None
        if rc != 0 and "Invalid job id" not in stderr:
            self.lookup_failed(host, "scontrol", f"scontrol exited {rc}: {stderr.strip()[:300]}")
            return None
        self.lookup_ok(host, "scontrol")
        return slurm.parse_scontrol(stdout) if rc == 0 else None

    def _sacct(
        self, host: str, transport: Transport, job_ids: list[str]
    ) -> dict[str, slurm.JobInfo]:
        try:
            rc, stdout, stderr = self._run(transport, slurm.sacct_argv(job_ids))
        except (TransportError, TimeoutError) as exc:
            self.lookup_failed(host, "sacct", f"sacct: {exc}")
            return {}
        if rc != 0 or slurm.sacct_unavailable(stderr):
            if slurm.sacct_unavailable(stderr):
                self._sacct_ok[host] = False
            self.lookup_failed(
                host,
                "sacct",
                f"job(s) {','.join(job_ids)} unknown to squeue and scontrol; no accounting",
            )
            return {}
        self.lookup_ok(host, "sacct")
        found = slurm.parse_sacct(stdout)
        return {j: i for j, i in found.items() if j in job_ids}
