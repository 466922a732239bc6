"""One poll cycle of every host: job states, new output, decisions, events.

:class:`Tailer` is what the JobTailer actor runs on each tick. Per host and
cycle it issues one ``squeue`` for all watched jobs (``scontrol`` only for a
job seen for the first time or no longer listed, ``sacct`` where accounting
exists) and one batched stat of the output files; then it reads every new
byte of every grown file, in bounded chunks. Decisions are the pure functions
of :mod:`pivot.jobs.decide` and :mod:`pivot.jobs.tail`; the events of a cycle
(positions, matches, intents) are appended in one transaction before any
action runs, so a restart neither repeats nor skips a line. A file's batches
are handed off (``hand_off``) as soon as its transaction commits, not at the
end of the cycle: a line's action does not wait for the other 199 files.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pivot.events.base import Event
from pivot.events.jobs import JobEnded, JobLookupFailed, JobSeen, JobStateChanged, OutputRead
from pivot.events.store import EventStore
from pivot.events.watchers import ActionRequested
from pivot.jobs import slurm
from pivot.jobs.actions import JobContext
from pivot.jobs.config import Config
from pivot.jobs.decide import Context, on_job_end, on_match, on_restart, on_timer, timer_due
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.patterns import CompiledPattern
from pivot.jobs.state import Book, WatcherState, fold
from pivot.jobs.tail import (
    HEAD_BYTES,
    FileStat,
    Position,
    head_matches,
    next_interval,
    plan_read,
    remember_head,
    restart,
    split_lines,
)
from pivot.jobs.transport import Transport, TransportError

__all__ = ["ActionBatch", "Tailer"]

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ActionBatch:
    """Intents of one watcher, in order, for the ActionExecutor."""

    requests: tuple[ActionRequested, ...]
    job: JobContext
    max_failures: int
    consecutive_failures: int
    record_first: bool = False  # a retry: the first intent is not in the log yet
    # The watcher's state once the decision was folded (a firing may have made it
    # `triggered`): the `old` of a later state change, such as `disabled`.
    watcher_state: str = "active"


@dataclass
class _Live:
    """In-memory tail state of one (watcher, file); the persisted part is ``pos``."""

    pos: Position
    partial: bytes = b""
    skipping: bool = False
    interval: float = 0.0
    next_due: float = 0.0


@dataclass
class _Prefetched:
    """Bytes read ahead, concurrently, for one (watcher, file) of a cycle."""

    start: int
    chunk: bytes | None
    head: bytes | None


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
        # Receives the batches of a file's read once they are durable; without
        # it they are returned by cycle() with the rest.
        self.hand_off = hand_off
        self.book = Book()
        self._own: set[int] = set()
        self._live: dict[tuple[str, str], _Live] = {}
        self._host_due: dict[str, float] = {}
        self._patterns: dict[str, CompiledPattern] = {}
        self._sacct_ok: dict[str, bool] = {}
        self._pending_batches: dict[str, list[ActionBatch]] = {}
        self._next_due: dict[str, float] = {}
        self.lines_scanned = 0
        self.cycles = 0

    # -- the log --------------------------------------------------------------

    def catch_up(self) -> None:
        """Fold events appended since the last look (by anyone but this tailer)."""
        records = [r for r in self.store.read(after=self.book.seq) if r.seq not in self._own]
        fold(records, self.book)
        self.book.seq = max(self.book.seq, self.store.last_seq())
        self._own = {s for s in self._own if s > self.book.seq}

    def _append(self, events: Sequence[Event], *, folded: bool = False) -> None:
        if not events:
            return
        if not folded:
            self.book.apply_all(events)
        seqs = self.store.append(list(events))
        self._own.update(seqs)

    def start(self) -> list[ActionBatch]:
        """Load the log; report interrupted intents; return idempotent ones to run again."""
        self.book = fold(self.store.read())
        events, rerun = on_restart(self.book, self.clock())
        self._append(events)
        return [self._batch(self.book.watchers[r.watcher_id], [r]) for r in rerun]

    # -- a cycle --------------------------------------------------------------

    def cycle(self, *, force: bool = False) -> list[ActionBatch]:
        """Poll every host that has a watcher due (all of them with ``force``)."""
        self.catch_up()
        now = self.clock()
        self.cycles += 1
        out = _CycleOut()
        by_host: dict[str, list[WatcherState]] = {}
        for ws in self.book.watchers.values():
            if ws.live:
                by_host.setdefault(ws.host, []).append(ws)
        for host, watchers in by_host.items():
            if now < self._host_due.get(host, 0.0) and not force:
                continue
            if force:
                for w in watchers:
                    self._next_due[w.watcher_id] = 0.0
            self._poll_host(host, watchers, now, out)
            interval = min(w.definition.interval_seconds for w in watchers)
            if self.config.poll_seconds:
                interval = self.config.poll_seconds
            self._host_due[host] = now + interval
        for ws in list(self.book.watchers.values()):
            if timer_due(ws, now):
                evs = on_timer(ws, self._ctx(ws, now))
                self._append(evs)
                out.batches.extend(self._batches(ws, evs))
        return out.batches

    def _ctx(self, ws: WatcherState, now: float, job_state: str = "") -> Context:
        host = self.config.hosts.get(ws.host)
        hostname = host.hostname if host is not None and host.hostname else socket.gethostname()
        return Context(now=now, hostname=hostname, job_state=job_state)

    def _transport(self, host: str) -> Transport | None:
        return self.transports.get(host)

    def _poll_host(
        self, host: str, watchers: list[WatcherState], now: float, out: _CycleOut
    ) -> None:
        transport = self._transport(host)
        if transport is None:
            self._append(
                [JobLookupFailed(host=host, error=f"unknown host {host!r}", actor="JobTailer")]
            )
            return
        job_ids = sorted({w.job_id for w in watchers})
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
            self._append(events)
            if info.ended and not rec.ended:
                ended.append((job_id, info))
        ended_ids = {j for j, _ in ended}
        # Output: every due watcher, and every watcher of a job that just ended (final read).
        due = [w for w in watchers if w.job_id in ended_ids or self._due(w, now)]
        self._read_outputs(host, transport, due, ended_ids, now)
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
            self._append(events)
            for ws in [w for w in watchers if w.job_id == job_id]:
                evs = on_job_end(ws, self._ctx(ws, now, info.state))
                self._append(evs)
                out.batches.extend(self._batches(ws, evs))
        for ws in due:
            out.batches.extend(self._pending_batches.pop(ws.watcher_id, []))

    def _due(self, ws: WatcherState, now: float) -> bool:
        return now >= self._next_due.get(ws.watcher_id, 0.0)

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
            self._append([JobLookupFailed(host=host, error=f"squeue: {exc}", actor="JobTailer")])
            return {}
        if rc != 0 and not slurm.squeue_says_unknown(stderr):
            self._append(
                [
                    JobLookupFailed(
                        host=host,
                        error=f"squeue exited {rc}: {stderr.strip()[:300]}",
                        actor="JobTailer",
                    )
                ]
            )
            return {}
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
                self._append(
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
            self._append([JobLookupFailed(host=host, error=f"scontrol: {exc}", actor="JobTailer")])
            return None
        if rc != 0:
            if "Invalid job id" not in stderr:
                self._append(
                    [
                        JobLookupFailed(
                            host=host,
                            error=f"scontrol exited {rc}: {stderr.strip()[:300]}",
                            actor="JobTailer",
                        )
                    ]
                )
            return None
        return slurm.parse_scontrol(stdout)

    def _sacct(
        self, host: str, transport: Transport, job_ids: list[str]
    ) -> dict[str, slurm.JobInfo]:
        try:
            rc, stdout, stderr = self._run(transport, slurm.sacct_argv(job_ids))
        except (TransportError, TimeoutError) as exc:
            self._append([JobLookupFailed(host=host, error=f"sacct: {exc}", actor="JobTailer")])
            return {}
        if rc != 0 or slurm.sacct_unavailable(stderr):
            if slurm.sacct_unavailable(stderr):
                self._sacct_ok[host] = False
            self._append(
                [
                    JobLookupFailed(
                        host=host,
                        error=f"job(s) {','.join(job_ids)} unknown to "
                        "squeue and scontrol; no accounting",
                        actor="JobTailer",
                    )
                ]
            )
            return {}
        found = slurm.parse_sacct(stdout)
        return {j: i for j, i in found.items() if j in job_ids}

    # -- output ---------------------------------------------------------------

    def _paths(self, ws: WatcherState) -> list[str]:
        rec = self.book.job(ws.host, ws.job_id)
        kinds = {"stdout": [rec.stdout], "stderr": [rec.stderr], "both": [rec.stdout, rec.stderr]}
        paths: list[str] = []
        for p in kinds[ws.definition.output_type]:
            if p and p not in paths:
                paths.append(p)
        return paths

    def _read_outputs(
        self, host: str, transport: Transport, due: list[WatcherState], ended: set[str], now: float
    ) -> None:
        wanted = sorted({p for ws in due for p in self._paths(ws)})
        if not wanted:
            return
        try:
            stats = self.io.call(transport.stat_many(wanted), 120.0)
        except (TransportError, TimeoutError) as exc:
            self._append([JobLookupFailed(host=host, error=f"stat: {exc}", actor="JobTailer")])
            return
        todo = [(ws, path, stats[path]) for ws in due for path in self._paths(ws) if path in stats]
        prefetched = self._prefetch(transport, todo)
        for ws, path, st in todo:
            try:
                self._tail_one(
                    ws,
                    transport,
                    path,
                    st,
                    now=now,
                    final=ws.job_id in ended,
                    pre=prefetched.get((ws.watcher_id, path)),
                )
            except (TransportError, TimeoutError, OSError) as exc:
                # Nothing of this read was appended: forget the in-memory progress
                # and the decisions folded meanwhile; the next poll redoes it.
                self._live.pop((ws.watcher_id, path), None)
                self.book = fold(self.store.read())
                self._own.clear()
                self._append(
                    [JobLookupFailed(host=host, error=f"read {path}: {exc}", actor="JobTailer")]
                )
                return

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
    ) -> dict[tuple[str, str], _Prefetched]:
        """The first chunk (and head) of every grown file, read concurrently.

        Over SSH, one read costs a round trip; issued together on the one
        connection they overlap, so a cycle over 200 grown files costs about
        one round trip instead of 200-400.
        """
        wanted: list[tuple[tuple[str, str], str, int, bool]] = []
        for ws, path, st in todo:
            live = self._live_for(ws, path)
            plan = plan_read(live.pos, st)
            if plan is None:
                continue
            start = 0 if plan.reset_reason else live.pos.offset + len(live.partial)
            need_head = plan.check_head or (start > 0 and live.pos.head_len < HEAD_BYTES)
            wanted.append(((ws.watcher_id, path), path, start, need_head))
        if len(wanted) < 2:
            return {}

        async def read_all() -> list[object]:
            coros = []
            for _, path, start, need_head in wanted:
                coros.append(transport.read(path, start, CHUNK_BYTES))
                if need_head:
                    coros.append(transport.read(path, 0, HEAD_BYTES))
            return list(await asyncio.gather(*coros, return_exceptions=True))

        results = iter(self.io.call(read_all(), 120.0))
        out: dict[tuple[str, str], _Prefetched] = {}
        for key, _, start, need_head in wanted:
            chunk = next(results)
            head = next(results) if need_head else None
            out[key] = _Prefetched(
                start=start,
                chunk=chunk if isinstance(chunk, bytes) else None,
                head=head if isinstance(head, bytes) else None,
            )
        return out

    def _tail_one(  # noqa: PLR0915 - one read loop, kept whole for clarity
        self,
        ws: WatcherState,
        transport: Transport,
        path: str,
        st: FileStat,
        *,
        now: float,
        final: bool,
        pre: _Prefetched | None = None,
    ) -> None:
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
        old = ws.positions.get(path)
        if (
            reset
            or old is None
            or (old.offset, old.inode, old.head_hash) != (pos.offset, pos.inode, pos.head_hash)
        ):
            read = OutputRead(
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
            self.book.apply(read)
            events.insert(0, read)
        # Position, matches and intents in one transaction: exactly once across restarts.
        self._append(events, folded=True)
        live.pos = replace(pos, size=st.size, mtime=st.mtime)
        base = ws.definition.interval_seconds
        cap = max(base, min(self.config.max_backoff_seconds, base * 8))
        live.interval = next_interval(live.interval, base, cap, got > 0)
        live.next_due = now + live.interval
        self._next_due[ws.watcher_id] = live.next_due
        self._deliver(ws.watcher_id, batches, final=final)

    def _deliver(self, watcher_id: str, batches: list[ActionBatch], *, final: bool) -> None:
        """Hand durable batches off now (a final read's stay behind the job-end batches)."""
        pending = self._pending_batches.setdefault(watcher_id, [])
        if final or self.hand_off is None or pending:
            pending.extend(batches)
            return
        for batch in batches:
            self.hand_off(batch)

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
        ctx = self._ctx(ws, now)
        for m in pattern.scan(blob):
            if ws.state != "active":
                break
            evs = on_match(ws, m, ctx)
            # Fold now, so the next match sees the new counters; appended with the position.
            self.book.apply_all(evs)
            events.extend(evs)
            batches.extend(self._batches(ws, evs))

    def _batches(self, ws: WatcherState, events: Sequence[Event]) -> list[ActionBatch]:
        reqs = [e for e in events if isinstance(e, ActionRequested)]
        return [self._batch(ws, reqs)] if reqs else []

    def _batch(self, ws: WatcherState, reqs: Sequence[ActionRequested]) -> ActionBatch:
        rec = self.book.job(ws.host, ws.job_id)
        others = tuple(
            (w.name, w.definition.to_dict())
            for w in self.book.watchers.values()
            if w.job_id == ws.job_id and w.host == ws.host and w.state != "removed"
        )
        job = JobContext(
            host=ws.host,
            job_id=ws.job_id,
            script_text=rec.script_text,
            workdir=rec.workdir,
            watchers=others,
        )
        return ActionBatch(
            tuple(reqs),
            job,
            ws.definition.max_failures,
            ws.consecutive_failures,
            watcher_state=ws.state,
        )
