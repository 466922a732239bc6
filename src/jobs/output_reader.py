"""Reading job output files: every new byte, matched once, position and decisions in one append.

:class:`OutputReader` is the file-reading half of the tailer. Given a host's
transport and the watchers due, it stats their output files in one batch,
reads what grew (1 MiB chunks), splits complete lines
(:func:`pivot.jobs.tail.split_lines`), scans them (:mod:`pivot.jobs.patterns`)
and decides (:func:`pivot.jobs.decide.on_match`). A local file is read on the
caller's thread; a remote one's first chunk is requested with all the others
at once and handled as soon as it arrives (:mod:`pivot.jobs.first_reads`).

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
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from pivot.events.base import Event
from pivot.events.jobs import OutputRead
from pivot.jobs.batch import ActionBatch, batches_for
from pivot.jobs.book import Book, WatcherState
from pivot.jobs.config import Config
from pivot.jobs.decide import Context, on_match
from pivot.jobs.first_reads import (
    EarlyStat,
    FirstRead,
    finish_stat,
    request_first_reads,
    start_stat,
)
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.patterns import CompiledPattern
from pivot.jobs.tail import (
    HEAD_BYTES,
    FileStat,
    Position,
    head_matches,
    moved,
    next_interval,
    output_paths,
    plan_read,
    record_position,
    remember_head,
    restart,
    split_lines,
)
from pivot.jobs.transport import LocalTransport, Transport, TransportError

__all__ = ["CHUNK_BYTES", "OutputReader", "TailLog"]

CHUNK_BYTES = 1 << 20
READ_TIMEOUT = 120.0  # for all the first reads of a cycle together


class TailLog(Protocol):
    """The tailer's hold on the event log, shared with the reader."""

    book: Book

    def append(self, events: Sequence[Event], *, folded: bool = False) -> None:
        """Append durably (folding into ``book`` first unless ``folded``)."""
        ...

    def refold(self) -> None:
        """Rebuild ``book`` from the log: forget decisions that were not appended."""
        ...

    def lookup_failed(self, host: str, what: str, error: str) -> None:
        """Record that a query or read on ``host`` failed."""
        ...

    def lookup_ok(self, host: str, what: str) -> None:
        """Record that a query or read on ``host`` worked (after failures)."""
        ...


@dataclass
class _Live:
    """In-memory tail state of one (watcher, file); the persisted part is ``pos``."""

    pos: Position
    partial: bytes = b""
    skipping: bool = False
    interval: float = 0.0
    recorded_at: float = 0.0  # when ``pos`` was last appended as an OutputRead


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
        self.lines_scanned = 0
        self._live: dict[tuple[str, str], _Live] = {}
        self._patterns: dict[str, CompiledPattern] = {}
        self._pending: dict[str, list[ActionBatch]] = {}
        # When each watcher's files are next due at the poll (backed off while quiet).
        self.next_due: dict[str, float] = {}
        self._here = socket.gethostname()  # once: a system call per scanned file otherwise

    # -- scheduling state -----------------------------------------------------

    def paths(self, ws: WatcherState) -> list[str]:
        """The output files ``ws`` reads (known once its job was seen)."""
        rec = self.log.book.job(ws.host, ws.job_id)
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
                read = _output_read(ws, path, live.pos, "")
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

    def stat_early(
        self, transport: Transport, watchers: Sequence[WatcherState]
    ) -> EarlyStat | None:
        """Over SSH, start the batched stat of these watchers' files now (beside ``squeue``)."""
        if isinstance(transport, LocalTransport):
            return None  # a local stat costs no round trip
        return start_stat(self.io, transport, {p for ws in watchers for p in self.paths(ws)})

    def read(
        self,
        host: str,
        transport: Transport,
        due: Sequence[WatcherState],
        ended: set[str],
        now: float,
        *,
        early: EarlyStat | None = None,
    ) -> None:
        """Read every grown file of ``due`` (to the end: the last read of ``ended`` jobs)."""
        wanted = sorted({p for ws in due for p in self.paths(ws)})
        if not wanted:
            return
        local = transport if isinstance(transport, LocalTransport) else None
        try:
            if local is not None:
                stats = local.stat_now(wanted)
            else:
                last = {p for ws in due if ws.job_id in ended for p in self.paths(ws)}
                stats = finish_stat(self.io, transport, early, wanted, last)
        except (TransportError, TimeoutError, concurrent.futures.TimeoutError) as exc:
            self.log.lookup_failed(host, "stat", f"stat: {exc}")
            return
        self.log.lookup_ok(host, "stat")
        todo = [(ws, path, stats[path]) for ws in due for path in self.paths(ws) if path in stats]
        futures = self._prefetch(transport, todo) if local is None else {}
        # Files that need no bytes from afar first, then each as its read arrives:
        # a slow file does not hold back the others, nor do they wait for it.
        ready = [t for t in todo if (t[0].watcher_id, t[1]) not in futures]
        waiting = {(t[0].watcher_id, t[1]): t for t in todo if (t[0].watcher_id, t[1]) in futures}
        deadline = time.monotonic() + READ_TIMEOUT
        group = _Group()
        while ready or waiting:
            if not ready:
                if any(batches for _, batches, _ in group.batches):
                    # About to wait on the network: let the decided actions go first.
                    self._commit(group)
                    group = _Group()
                left = max(0.0, deadline - time.monotonic())
                concurrent.futures.wait(
                    [futures[k] for k in waiting], left, concurrent.futures.FIRST_COMPLETED
                )
                ready = [waiting.pop(k) for k in list(waiting) if futures[k].done()]
                if not ready:
                    for k in waiting:
                        futures[k].cancel()
                    self.log.lookup_failed(host, "read", f"reads timed out after {READ_TIMEOUT:g}s")
                    return
            ws, path, st = ready.pop(0)
            final = ws.job_id in ended
            key = (ws.watcher_id, path)
            try:
                got = self._tail_one(
                    ws,
                    transport,
                    path,
                    st,
                    now=now,
                    final=final,
                    pre=futures[key].result() if key in futures else None,
                    group=group,
                )
            except (TransportError, TimeoutError, OSError) as exc:
                # Nothing of this file's read is in the group: keep the others',
                # forget this one's in-memory progress and the decisions folded
                # meanwhile (refold); the next poll redoes it.
                self._commit(group)
                self._live.pop((ws.watcher_id, path), None)
                self.log.refold()
                self.log.lookup_failed(host, "read", f"read {path}: {exc}")
                return
            group.size += got
            if group.size >= CHUNK_BYTES:
                self._commit(group)
                group = _Group()
        self._commit(group)
        if todo:
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

    def _live_for(self, ws: WatcherState, path: str) -> _Live:
        key = (ws.watcher_id, path)
        live = self._live.get(key)
        if live is None:
            live = self._live[key] = _Live(
                pos=ws.positions.get(path, Position(path=path)),
                interval=ws.definition.interval_seconds,
            )
        return live

    def _prefetch(
        self, transport: Transport, todo: list[tuple[WatcherState, str, FileStat]]
    ) -> dict[tuple[str, str], concurrent.futures.Future[FirstRead]]:
        """Request the first chunk (and head) of every grown file at once."""
        wanted: list[tuple[tuple[str, str], str, int, bool]] = []
        for ws, path, st in todo:
            live = self._live_for(ws, path)
            plan = plan_read(live.pos, st)
            if plan is None:
                continue
            start = 0 if plan.reset_reason else live.pos.offset + len(live.partial)
            need_head = plan.check_head or (start > 0 and live.pos.head_len < HEAD_BYTES)
            wanted.append(((ws.watcher_id, path), path, start, need_head))
        return request_first_reads(self.io, transport, wanted, CHUNK_BYTES)

    def _tail_one(  # noqa: PLR0915 - one read loop, kept whole for clarity
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
    ) -> int:
        """Read one file from its position; its events and batches join ``group``."""
        live = self._live_for(ws, path)
        pos = live.pos
        plan = plan_read(pos, st)
        reset = ""

        def fetch(at: int, length: int) -> bytes:
            if pre is not None:
                if at == 0 and length == HEAD_BYTES and pre.head is not None:
                    return pre.head
                if at == pre.start and length == CHUNK_BYTES and pre.chunk is not None:
                    data, pre.chunk = pre.chunk, None  # used once
                    return data
            if isinstance(transport, LocalTransport):
                return transport.read_now(path, at, length)
            return self.io.call(transport.read(path, at, length), 120.0)

        if plan is not None and plan.check_head:
            head = fetch(0, HEAD_BYTES)
            if not head_matches(pos, head):
                plan = replace(plan, start=0, reset_reason="replaced (different first bytes)")
        if plan is not None and plan.reset_reason:
            reset = plan.reset_reason
            pos = restart(pos, st)
            live.partial, live.skipping = b"", False
        if not pos.inode:
            pos = replace(pos, inode=st.inode)
        got = 0
        events: list[Event] = []
        batches: list[ActionBatch] = []
        if plan is not None:
            read_at = pos.offset + len(live.partial)
            while True:
                chunk = fetch(read_at, CHUNK_BYTES)
                if not chunk:
                    break
                got += len(chunk)
                if read_at == 0 or pos.head_len < HEAD_BYTES:
                    head = chunk if read_at == 0 else fetch(0, HEAD_BYTES)
                    pos = remember_head(pos, head)
                read_at += len(chunk)
                split = split_lines(live.partial, chunk, skipping=live.skipping)
                pos = replace(pos, offset=pos.offset + split.consumed)
                live.partial, live.skipping = split.partial, split.skipping
                if split.has_lines:
                    self._scan(ws, split.lines_blob, split.line_count, now, (events, batches))
                if len(chunk) < CHUNK_BYTES:
                    break
        if final and live.partial:
            # The job ended: a last line without a newline is still a line.
            self._scan(ws, live.partial, 1, now, (events, batches))
            pos = replace(pos, offset=pos.offset + len(live.partial))
            live.partial = b""
        if record_position(
            ws.positions.get(path),
            pos,
            reset=bool(reset),
            decided=bool(events or final),
            active=ws.state == "active",
            quiet_for=now - live.recorded_at,
        ):
            read = _output_read(ws, path, pos, reset)
            self.log.book.apply(read)
            events.insert(0, read)
            live.recorded_at = now
        group.events.extend(events)
        group.batches.append((ws.watcher_id, batches, final))
        live.pos = replace(pos, size=st.size, mtime=st.mtime)
        base = ws.definition.interval_seconds
        cap = max(base, min(self.config.max_backoff_seconds, base * 8))
        live.interval = next_interval(live.interval, base, cap, got > 0)
        self.next_due[ws.watcher_id] = now + live.interval
        return got

    def _scan(
        self,
        ws: WatcherState,
        blob: bytes,
        count: int,
        now: float,
        out: tuple[list[Event], list[ActionBatch]],
    ) -> None:
        events, batches = out
        self.lines_scanned += count
        if ws.state != "active":
            return
        pattern = self._patterns.get(ws.watcher_id)
        if pattern is None or pattern.source != ws.definition.pattern:  # new, or edited
            pattern = self._patterns[ws.watcher_id] = ws.definition.compiled()
        ctx = self.context(ws, now)
        for m in pattern.scan(blob):
            if ws.state != "active":
                break
            evs = on_match(ws, m, ctx)
            # Fold now, so the next match sees the new counters; appended with the position.
            self.log.book.apply_all(evs)
            events.extend(evs)
            batches.extend(batches_for(self.log.book, ws, evs))


def _output_read(ws: WatcherState, path: str, pos: Position, reset: str) -> OutputRead:
    return OutputRead(
        host=ws.host,
        job_id=ws.job_id,
        path=path,
        offset=pos.offset,
        inode=pos.inode,
        head_hash=pos.head_hash,
        head_len=pos.head_len,
        watcher_id=ws.watcher_id,
        reset_reason=reset,
        actor="JobTailer",
    )
