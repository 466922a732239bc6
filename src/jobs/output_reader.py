"""Reading job output files: every new byte, matched once, position and decisions in one append.

:class:`OutputReader` is the file-reading half of the tailer. Given a host's
transport and the watchers due, it stats their output files in one batch and
reads what grew, each file with :func:`pivot.jobs.file_tail.tail_file`
(which splits complete lines and has :mod:`pivot.jobs.line_scan` decide on
them). A local file is read on the caller's thread; a remote one's first
chunk is requested with all the others at once and handled as soon as it
arrives (:mod:`pivot.jobs.first_reads`); a file being written has its next
bytes requested beside the stat, and used as they arrive, before the stat,
when they came through the handle kept on the watcher's file
(:meth:`OutputReader._read_early`).

The positions (``OutputRead``), matches and intents of the files read
together are appended in one transaction before any action runs, so a
restart neither repeats nor skips a line; the group is committed at 1 MiB
of output, or before waiting on the network, and its batches then leave
(``hand_off``) at once. A final read's (the job ended) wait for the job-end
decisions (:meth:`OutputReader.take_pending`). A read that decided nothing
records its position only every few seconds
(:func:`pivot.jobs.tail.record_position`), so a file read 20 times a second
does not write 20 events a second.
"""

from __future__ import annotations

import concurrent.futures
import queue
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from pivot.events.base import Event
from pivot.jobs.batch import ActionBatch
from pivot.jobs.book import Book, WatcherState
from pivot.jobs.config import Config
from pivot.jobs.decide import Context
from pivot.jobs.file_tail import CHUNK_BYTES, FileTail, output_read, tail_file
from pivot.jobs.first_reads import (
    STAT_TIMEOUT,
    FirstRead,
    Key,
    ahead_wanted,
    arrival,
    drainer,
    fetcher,
    prefetch_wanted,
    request_first_reads,
    stat_from_ahead,
)
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.line_scan import Scanner
from pivot.jobs.tail import (
    FileStat,
    Position,
    job_has_output,
    moved,
    output_paths,
)
from pivot.jobs.transport import KeepsHandles, LocalTransport, Transport, TransportError

__all__ = ["CHUNK_BYTES", "OutputReader", "TailLog"]

READ_TIMEOUT = 120.0  # for all the first reads of a cycle together


class TailLog(Protocol):
    """The tailer's hold on the event log, shared with the reader."""

    book: Book

    def append(self, events: Sequence[Event], *, folded: bool = False) -> None:
        """Append durably (folding into ``book`` first unless ``folded``)."""
        ...

    def lookup_failed(self, host: str, what: str, error: str) -> None:
        """Record that a query or read on ``host`` failed."""
        ...

    def lookup_ok(self, host: str, what: str) -> None:
        """Record that a query or read on ``host`` worked (after failures)."""
        ...


@dataclass
class _Group:
    """Reads not yet appended: one transaction for several files."""

    events: list[Event] = field(default_factory=list)
    batches: list[tuple[str, list[ActionBatch], bool]] = field(default_factory=list)
    size: int = 0


class OutputReader:
    """Reads the grown output files of due watchers and records what they say."""

    def __init__(self, log: TailLog, config: Config, io: IoLoop) -> None:
        self.log = log
        self.config = config
        self.io = io
        # Receives a read's batches once they are durable; without it they
        # wait in take_pending() with a final read's.
        self.hand_off: Callable[[ActionBatch], None] | None = None
        self._live: dict[tuple[str, str], FileTail] = {}
        self.scanner = Scanner(log, self.context)
        self._pending: dict[str, list[ActionBatch]] = {}
        # When each watcher's files are next due at the poll (pivot.jobs.schedule).
        self.next_due: dict[str, float] = {}
        self._here = socket.gethostname()  # once: a system call per scanned file otherwise

    @property
    def lines_scanned(self) -> int:
        """Lines scanned since start."""
        return self.scanner.lines_scanned

    # -- scheduling state -----------------------------------------------------

    def paths(self, ws: WatcherState) -> list[str]:
        """The output files ``ws`` reads: known once its job was seen, none before it
        starts (:func:`~pivot.jobs.tail.job_has_output`)."""
        rec = self.log.book.job(ws.host, ws.job_id)
        if not job_has_output(rec.state):
            return []
        return output_paths(rec.stdout, rec.stderr, ws.definition.output_type)

    def take_pending(self, watcher_id: str) -> list[ActionBatch]:
        """Batches held back (a final read's, or all of them without ``hand_off``)."""
        return self._pending.pop(watcher_id, [])

    def offset(self, watcher_id: str, path: str) -> int:
        """How far ``watcher_id`` has read ``path`` (recorded or not yet)."""
        live = self._live.get((watcher_id, path))
        return live.pos.offset if live is not None else -1

    def flush(self, now: float) -> None:
        """Record every position that moved since it was last recorded."""
        events: list[Event] = []
        for (watcher_id, path), live in self._live.items():
            ws = self.log.book.watchers.get(watcher_id)
            if ws is not None and moved(ws.positions.get(path), live.pos):
                read = output_read(ws, path, live.pos, "")
                self.log.book.apply(read)
                events.append(read)
                live.recorded_at = now
        self.log.append(events, folded=True)

    def context(self, ws: WatcherState, now: float, job_state: str = "") -> Context:
        """What a decision about ``ws`` may know besides its state."""
        host = self.config.hosts.get(ws.host)
        hostname = host.hostname if host is not None and host.hostname else self._here
        return Context(now=now, hostname=hostname, job_state=job_state)

    # -- reading --------------------------------------------------------------

    def read(
        self,
        host: str,
        transport: Transport,
        due: Sequence[WatcherState],
        ended: set[str],
        now: float,
    ) -> None:
        """Read every grown file of ``due`` (to the end: the last read of ``ended`` jobs)."""
        wanted = sorted({p for ws in due for p in self.paths(ws)})
        if not wanted:
            return
        local = transport if isinstance(transport, LocalTransport) else None
        ahead: dict[Key, tuple[int, concurrent.futures.Future[FirstRead]]] = {}
        early: set[Key] = set()
        failed: list[str] = []
        try:
            if local is not None:
                stats = local.stat_now(wanted)
            else:
                stat = self.io.submit(transport.stat_many(wanted))
                ahead = self._read_ahead(transport, due)
                early, failed = self._read_early(host, transport, due, ahead, ended=ended, now=now)
                stats = stat.result(STAT_TIMEOUT)
        except (TransportError, TimeoutError, concurrent.futures.TimeoutError) as exc:
            self.log.lookup_failed(host, "stat", f"stat: {exc}")
            return
        self.log.lookup_ok(host, "stat")
        for key in early:
            ahead.pop(key, None)  # used
        todo = [
            (ws, path, stats[path])
            for ws in due
            for path in self.paths(ws)
            if path in stats and not self._read_before_stat(ws, path, stats[path], early)
        ]
        futures = self._prefetch(transport, todo, ahead) if local is None else {}
        failed += self._read_as_they_come(host, transport, todo, futures, ended=ended, now=now)[1]
        self._report(host, failed, bool(todo or early))

    def read_between(
        self, host: str, transport: Transport, due: Sequence[WatcherState], now: float
    ) -> None:
        """Read on, between two polls, the files of ``due`` being written: through their
        kept handles only, no stat (what the bytes say is enough, else the next poll
        reads them); the watchers stay due at the next poll."""
        if not isinstance(transport, KeepsHandles):
            return
        ahead = self._read_ahead(transport, due)
        if not ahead:
            return
        saved = {ws.watcher_id: self.next_due.get(ws.watcher_id) for ws in due}
        failed = self._read_early(host, transport, due, ahead, ended=set(), now=now)[1]
        for watcher_id, at in saved.items():
            if at is None:
                self.next_due.pop(watcher_id, None)
            else:
                self.next_due[watcher_id] = at
        self._report(host, failed, read_any=False)

    def _read_early(
        self,
        host: str,
        transport: Transport,
        due: Sequence[WatcherState],
        ahead: dict[Key, tuple[int, concurrent.futures.Future[FirstRead]]],
        *,
        ended: set[str],
        now: float,
    ) -> tuple[set[Key], list[str]]:
        """Use what was read ahead as it arrives, where it can be before the stat
        (:func:`pivot.jobs.first_reads.stat_from_ahead`); not a job-end read, which
        reads to the stat's end. Returns the (watcher, file) read, and the failures."""
        futures = {key: future for key, (_, future) in ahead.items()}
        todo: list[tuple[WatcherState, str, FileStat | None]] = [
            (ws, path, None)
            for ws in due
            if ws.job_id not in ended
            for path in self.paths(ws)
            if (ws.watcher_id, path) in futures
        ]
        if not todo:
            return set(), []
        used, failed = self._read_as_they_come(host, transport, todo, futures, ended=set(), now=now)
        for key in used:
            live = self._live[key]  # its size came from no stat: the next stat's is news
            live.pos = replace(live.pos, size=-1)
        return used, failed

    def _read_before_stat(self, ws: WatcherState, path: str, st: FileStat, early: set[Key]) -> bool:
        """Whether ``path`` was read for ``ws`` before its stat came, from the file the stat
        shows (another inode there is read from its start now)."""
        key = (ws.watcher_id, path)
        return key in early and self._live[key].pos.inode == st.inode

    def _read_as_they_come(
        self,
        host: str,
        transport: Transport,
        todo: Sequence[tuple[WatcherState, str, FileStat | None]],
        futures: dict[Key, concurrent.futures.Future[FirstRead]],
        *,
        ended: set[str],
        now: float,
    ) -> tuple[set[Key], list[str]]:
        """Read ``todo``: files that need no bytes from afar first, then each as its read
        arrives (a slow file does not hold back the others, nor do they wait for it).
        A file without a stat is read only if its bytes read ahead say enough
        (:func:`~pivot.jobs.first_reads.stat_from_ahead`).
        Returns the (watcher, file) that read bytes, and the reads that failed."""
        ready = [t for t in todo if (t[0].watcher_id, t[1]) not in futures]
        waiting = {(t[0].watcher_id, t[1]): t for t in todo if (t[0].watcher_id, t[1]) in futures}
        # Each read says it arrived (from the loop's thread) in this queue: one
        # look per arrival, where waiting on all the futures left would cost
        # a pass over them per arrival (200 files: 40,000 looks a cycle).
        arrived: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        for key, future in futures.items():
            future.add_done_callback(arrival(arrived, key))
        deadline = time.monotonic() + READ_TIMEOUT
        group = _Group()
        failed: list[str] = []
        used: set[Key] = set()
        while ready or waiting:
            if not ready:
                if arrived.empty() and any(batches for _, batches, _ in group.batches):
                    # About to wait on the network: let the decided actions go first.
                    self._commit(group)
                    group = _Group()
                try:
                    key = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    for k in waiting:
                        futures[k].cancel()
                    failed.append(f"reads timed out after {READ_TIMEOUT:g}s")
                    break
                ready.append(waiting.pop(key))
            ws, path, st = ready.pop(0)
            key = (ws.watcher_id, path)
            pre = futures[key].result() if key in futures else None
            if st is None and pre is not None:
                st = stat_from_ahead(self._live_for(ws, path).pos, self._live[key].partial, pre)
            if st is None:
                continue  # for the stat to say
            got, error = self._tail_one(
                ws, transport, path, st, now=now, final=ws.job_id in ended, pre=pre, group=group
            )
            if error:
                failed.append(f"read {path}: {error}")
            if got:
                used.add(key)
            group.size += got
            if group.size >= CHUNK_BYTES:
                self._commit(group)
                group = _Group()
        self._commit(group)
        return used, failed

    def _report(self, host: str, failed: list[str], read_any: bool) -> None:
        """One lookup verdict for the reads of a poll: the first failure, or a success."""
        if failed:
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            self.log.lookup_failed(host, "read", failed[0] + more)
        elif read_any:
            self.log.lookup_ok(host, "read")

    def _commit(self, group: _Group) -> None:
        # Positions, matches and intents in one transaction: exactly once across restarts.
        self.log.append(group.events, folded=True)
        for watcher_id, batches, final in group.batches:
            self._deliver(watcher_id, batches, final=final)

    def _deliver(self, watcher_id: str, batches: list[ActionBatch], *, final: bool) -> None:
        """Hand durable batches off now (a final read's stay behind the job-end batches)."""
        pending = self._pending.setdefault(watcher_id, [])
        if final or self.hand_off is None or pending:
            pending.extend(batches)
            return
        for batch in batches:
            self.hand_off(batch)

    def _live_for(self, ws: WatcherState, path: str) -> FileTail:
        key = (ws.watcher_id, path)
        live = self._live.get(key)
        if live is None:
            live = self._live[key] = FileTail(pos=ws.positions.get(path, Position(path=path)))
        return live

    def _read_ahead(
        self, transport: Transport, due: Sequence[WatcherState]
    ) -> dict[Key, tuple[int, concurrent.futures.Future[FirstRead]]]:
        """Request, beside the stat, the next bytes (and the head) of the files being
        written: such a file is read in one round trip, not two."""
        tails = [(key, self._live.get(key)) for ws in due for key in self._keys(ws)]
        wanted = ahead_wanted([(key, live) for key, live in tails if live is not None])
        futures = request_first_reads(self.io, transport, wanted)
        return {key: (start, futures[key]) for key, _, start, _, _, _ in wanted}

    def _prefetch(
        self,
        transport: Transport,
        todo: list[tuple[WatcherState, str, FileStat]],
        ahead: dict[Key, tuple[int, concurrent.futures.Future[FirstRead]]],
    ) -> dict[Key, concurrent.futures.Future[FirstRead]]:
        """The first chunk (and head) of every grown file: read ahead, or requested now,
        all at once."""
        tails = [((ws.watcher_id, path), self._live_for(ws, path), st) for ws, path, st in todo]
        wanted, kept = prefetch_wanted(tails, {key: start for key, (start, _) in ahead.items()})
        return {**{k: ahead[k][1] for k in kept}, **request_first_reads(self.io, transport, wanted)}

    def _keys(self, ws: WatcherState) -> list[Key]:
        return [(ws.watcher_id, path) for path in self.paths(ws)]

    def _tail_one(
        self,
        ws: WatcherState,
        transport: Transport,
        path: str,
        st: FileStat,
        *,
        now: float,
        final: bool,
        pre: FirstRead | None,
        group: _Group,
    ) -> tuple[int, str]:
        """Read one file (:func:`pivot.jobs.file_tail.tail_file`); its events and batches
        join ``group``. Returns the bytes read and, when a read failed, why."""
        result = tail_file(
            self._live_for(ws, path),
            ws,
            path,
            st,
            fetch=fetcher(self.io, transport, path, pre),
            drain=drainer(self.io, transport, path),
            scan=self.scanner.scan,
            book=self.log.book,
            now=now,
            final=final,
            bounded=not isinstance(transport, LocalTransport),
        )
        group.events.extend(result.events)
        group.batches.append((ws.watcher_id, result.batches, final))
        self.next_due[ws.watcher_id] = now + ws.definition.interval_seconds
        return result.got, result.error
