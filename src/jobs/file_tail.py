"""Reading one output file from where a watcher left it: head check, chunks, lines, position.

:func:`tail_file` is the read of one (watcher, file) in a poll. The bytes
come through ``fetch`` (a local ``pread``, an SFTP read, or what was read
ahead for this poll: :mod:`pivot.jobs.first_reads`); the decisions about
them are pure (:mod:`pivot.jobs.tail`: whether the file was replaced or
truncated, where lines end, when a position is worth recording). The lines
are scanned as they come (:mod:`pivot.jobs.line_scan`), and the position
reached goes into the events with the decisions, so they commit together.

A read that fails (the host went away, the file vanished) keeps what was
read before it: its lines are scanned and its position is recorded like any
other read's, and the next poll goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pivot.events.base import Event
from pivot.events.jobs import OutputRead
from pivot.jobs.batch import ActionBatch
from pivot.jobs.book import Book, WatcherState
from pivot.jobs.tail import (
    HEAD_BYTES,
    FileStat,
    Position,
    ReadPlan,
    chunk_length,
    head_matches,
    plan_read,
    record_position,
    remember_head,
    restart,
    split_lines,
)
from pivot.jobs.transport import TransportError

__all__ = ["CHUNK_BYTES", "FileTail", "TailResult", "tail_file"]

CHUNK_BYTES = 1 << 20

# (offset, length) -> (bytes, whether they end at the end of the file as it was read)
Fetch = Callable[[int, int], tuple[bytes, bool]]
# (inode, offset, length) -> bytes of the file that path named before, None: not held
Drain = Callable[[int, int, int], bytes | None]
Scan = Callable[[WatcherState, bytes, int, float, tuple[list[Event], list[ActionBatch]]], None]


@dataclass
class FileTail:
    """In-memory tail state of one (watcher, file); the persisted part is ``pos``."""

    pos: Position
    partial: bytes = b""
    skipping: bool = False
    recorded_at: float = 0.0  # when ``pos`` was last appended as an OutputRead
    # Reads in a row that found new bytes: from 2 on, the file is being written and its
    # next bytes are read beside the next stat (pivot.jobs.output_reader.being_written).
    grown_reads: int = 0


@dataclass
class TailResult:
    """What one read gave: its events (position first), batches, bytes, and a failure."""

    events: list[Event] = field(default_factory=list)
    batches: list[ActionBatch] = field(default_factory=list)
    got: int = 0
    error: str = ""


def tail_file(
    tail: FileTail,
    ws: WatcherState,
    path: str,
    st: FileStat,
    *,
    fetch: Fetch,
    scan: Scan,
    book: Book,
    now: float,
    final: bool,
    bounded: bool,
    drain: Drain | None = None,
) -> TailResult:
    """Read ``path`` for ``ws`` from ``tail``'s position up to what ``st`` says is there.

    ``bounded``: ask no more than the stat's size (a remote file: see
    :func:`pivot.jobs.tail.chunk_length`); else read chunks until a short one.
    ``final``: the job ended, a last line without a newline is a line.
    ``drain``: reads the file another file replaced at ``path`` (new inode),
    whose end is read first (:mod:`pivot.jobs.kept_files`).
    """
    out = TailResult()
    pos = tail.pos
    try:
        plan = _plan(pos, st, fetch)
    except (TransportError, TimeoutError, OSError) as exc:
        out.error = str(exc) or type(exc).__name__
        return out  # nothing read, nothing decided
    reset = plan.reset_reason if plan is not None else ""
    if reset:
        out.got += _drain_old(tail, ws, pos, st, drain=drain, scan=scan, now=now, out=out)
        pos = restart(pos, st)
        tail.partial, tail.skipping = b"", False
    if not pos.inode:
        pos = replace(pos, inode=st.inode)
    read_at = pos.offset + len(tail.partial)
    while plan is not None:
        want = chunk_length(read_at, st.size, CHUNK_BYTES) if bounded else CHUNK_BYTES
        if want == 0:
            break
        try:
            chunk, at_end = fetch(read_at, want)
            if chunk and pos.head_len < HEAD_BYTES:
                pos = remember_head(pos, chunk if read_at == 0 else fetch(0, HEAD_BYTES)[0])
        except (TransportError, TimeoutError, OSError) as exc:
            out.error = str(exc) or type(exc).__name__
            break
        if not chunk:
            break
        out.got += len(chunk)
        read_at += len(chunk)
        split = split_lines(tail.partial, chunk, skipping=tail.skipping)
        pos = replace(pos, offset=pos.offset + split.consumed)
        tail.partial, tail.skipping = split.partial, split.skipping
        if split.has_lines:
            scan(ws, split.lines_blob, split.line_count, now, (out.events, out.batches))
        if at_end:
            break  # what was written since comes at the next poll
    if final and tail.partial and not out.error:
        scan(ws, tail.partial, 1, now, (out.events, out.batches))
        pos = replace(pos, offset=pos.offset + len(tail.partial))
        tail.partial = b""
    if record_position(
        ws.positions.get(path),
        pos,
        reset=bool(reset),
        decided=bool(out.events or final),
        active=ws.state == "active",
        quiet_for=now - tail.recorded_at,
    ):
        read = output_read(ws, path, pos, reset)
        book.apply(read)
        out.events.insert(0, read)
        tail.recorded_at = now
    # The stat's size counts as seen only once read to it. After a failure, or a read
    # ahead that ended before it (the job wrote between the read and the stat), the
    # size is unknown and the next poll reads on, though nothing is written after.
    reached = not out.error and read_at >= st.size
    tail.pos = replace(pos, size=st.size if reached else -1, mtime=st.mtime)
    tail.grown_reads = tail.grown_reads + 1 if out.got > 0 else 0
    return out


def _drain_old(
    tail: FileTail,
    ws: WatcherState,
    pos: Position,
    st: FileStat,
    *,
    drain: Drain | None,
    scan: Scan,
    now: float,
    out: TailResult,
) -> int:
    """When another file took the path (new inode), scan the replaced file's lines from
    where ``tail`` stopped to its end (a last line without a newline is a line: nothing
    more is written there). Returns the bytes read."""
    if drain is None or not pos.inode or st.inode == pos.inode:
        return 0
    at, got = pos.offset + len(tail.partial), 0
    while True:
        try:
            chunk = drain(pos.inode, at, CHUNK_BYTES)
        except (TransportError, TimeoutError, OSError):
            chunk = None
        if not chunk:
            break
        at, got = at + len(chunk), got + len(chunk)
        split = split_lines(tail.partial, chunk, skipping=tail.skipping)
        tail.partial, tail.skipping = split.partial, split.skipping
        if split.has_lines:
            scan(ws, split.lines_blob, split.line_count, now, (out.events, out.batches))
    if tail.partial and not tail.skipping:
        scan(ws, tail.partial, 1, now, (out.events, out.batches))
    return got


def _plan(pos: Position, st: FileStat, fetch: Fetch) -> ReadPlan | None:
    """What this read does; a file touched in place is checked by its first bytes."""
    plan = plan_read(pos, st)
    if plan is not None and plan.check_head and not head_matches(pos, fetch(0, HEAD_BYTES)[0]):
        plan = replace(plan, start=0, reset_reason="replaced (different first bytes)")
    return plan


def output_read(ws: WatcherState, path: str, pos: Position, reset: str) -> OutputRead:
    """The event recording ``ws``'s position in ``path``."""
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
