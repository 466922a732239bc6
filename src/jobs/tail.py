"""Tailing decisions, as pure functions over plain data.

A :class:`Position` says how far a watcher has consumed one output file:
``offset`` is always at a line boundary (the start of the partial line, if
any), so persisting it and resuming there after a restart neither repeats nor
skips a line. ``inode`` and ``head`` identify the file: a different inode, a
file shorter than the offset, or a different first bytes (same-size or larger
replacement, ``cat new > log``) mean "read the new file from the start".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

__all__ = [
    "HEAD_BYTES",
    "MAX_LINE_BYTES",
    "POSITION_EVERY_SECONDS",
    "FileStat",
    "Position",
    "ReadPlan",
    "Split",
    "chunk_length",
    "head_digest",
    "job_has_output",
    "moved",
    "output_paths",
    "parse_stats",
    "plan_read",
    "record_position",
    "split_lines",
]

HEAD_BYTES = 1024
POSITION_EVERY_SECONDS = 5.0  # a read that decided nothing records its position this often
MAX_LINE_BYTES = 1 << 20  # a longer line is cut here (and its rest skipped): bounded memory


@dataclass(frozen=True, slots=True)
class FileStat:
    """What a stat of an output file says."""

    inode: int
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Position:
    """How far one watcher has consumed one file (persisted as ``OutputRead``)."""

    path: str
    offset: int = 0
    inode: int = 0
    head_len: int = 0
    head_hash: str = ""
    size: int = -1  # last size seen (not persisted)
    mtime: float = 0.0  # last mtime seen (not persisted)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What to do on this poll: maybe check the head, then read from ``start``."""

    check_head: bool
    start: int
    reset_reason: str = ""  # non-empty when the file must be read from the start


def head_digest(head: bytes) -> str:
    """Hash of a file's first bytes."""
    return hashlib.blake2b(head, digest_size=12).hexdigest()


def plan_read(pos: Position, stat: FileStat) -> ReadPlan | None:
    """Decide what a poll does, given the file's stat. None: nothing to do."""
    if pos.inode and stat.inode != pos.inode:
        return ReadPlan(check_head=False, start=0, reset_reason="replaced (new inode)")
    if stat.size < pos.offset:
        return ReadPlan(check_head=False, start=0, reset_reason="truncated")
    changed = stat.size != pos.size or stat.mtime != pos.mtime
    if not changed:
        return None
    # Same inode, not shorter, but touched: the first bytes tell a rewrite apart.
    return ReadPlan(check_head=pos.head_len > 0, start=pos.offset)


def head_matches(pos: Position, head: bytes) -> bool:
    """Whether the file still starts with the bytes ``pos`` was read from."""
    return len(head) >= pos.head_len and head_digest(head[: pos.head_len]) == pos.head_hash


def restart(pos: Position, stat: FileStat) -> Position:
    """A position at the start of a new or rewritten file."""
    return Position(path=pos.path, inode=stat.inode)


# Slurm states of a job that has not started: no step of it has opened its files.
NOT_STARTED_STATES = frozenset({"pending", "configuring"})


def job_has_output(state: str) -> bool:
    """Whether a job in ``state`` (as the log last saw it) has output files of its own yet.

    Not while it waits to start: Slurm opens the job's ``--output`` and
    ``--error`` (truncating them, by default) when the job starts, so until
    then those paths hold what an earlier job with the same ``--output``
    wrote (the job a ``resubmit`` replaced, the last run of the same
    script), which the job's watchers must not match. An unknown state
    (empty) counts as started, as before the log knew it.
    """
    return state.lower() not in NOT_STARTED_STATES


def output_paths(stdout: str, stderr: str, output_type: str) -> list[str]:
    """The files a watcher of ``output_type`` reads (each once; unknown ones left out)."""
    kinds = {"stdout": [stdout], "stderr": [stderr], "both": [stdout, stderr]}
    return list(dict.fromkeys(p for p in kinds[output_type] if p))


def moved(old: Position | None, pos: Position) -> bool:
    """Whether ``pos`` says something the recorded ``old`` does not (None: nothing recorded)."""
    return old is None or (old.offset, old.inode, old.head_hash) != (
        pos.offset,
        pos.inode,
        pos.head_hash,
    )


def record_position(
    old: Position | None,
    pos: Position,
    *,
    reset: bool,
    decided: bool,
    active: bool,
    quiet_for: float,
) -> bool:
    """Whether a read's new position goes into the log with it.

    Lines that decided nothing (``decided``: the read matched a line, or was
    the job's last) may be scanned again after a restart at no cost: their
    position is recorded every :data:`POSITION_EVERY_SECONDS` (``quiet_for``:
    since the last time). Anything else is recorded at once: a reset, the
    first read of a file, a watcher that is not active (it skips lines that a
    restart, active by then, would match).
    """
    if not (reset or moved(old, pos)):
        return False  # nothing new to say
    return reset or decided or old is None or not active or quiet_for >= POSITION_EVERY_SECONDS


def remember_head(pos: Position, head: bytes) -> Position:
    """Record (or extend, up to :data:`HEAD_BYTES`) the identifying first bytes."""
    head = head[:HEAD_BYTES]
    if len(head) <= pos.head_len:
        return pos
    return replace(pos, head_len=len(head), head_hash=head_digest(head))


@dataclass(frozen=True, slots=True)
class Split:
    """Complete lines found in a chunk, and what is left for later."""

    lines_blob: bytes  # complete lines joined by b"\n" (no trailing newline), or b""
    has_lines: bool  # at least one complete line (lines_blob may be one empty line)
    consumed: int  # bytes of input (partial + chunk) that ended in a newline
    partial: bytes  # an incomplete last line, kept until its newline arrives
    skipping: bool  # inside an over-long line whose head was already emitted

    @property
    def line_count(self) -> int:
        """How many complete lines (counted on demand: a pass over the blob)."""
        return self.lines_blob.count(b"\n") + 1 if self.has_lines else 0


def split_lines(
    partial: bytes, chunk: bytes, *, skipping: bool = False, max_line: int = MAX_LINE_BYTES
) -> Split:
    """Append ``chunk`` to the pending ``partial`` line; return the complete lines.

    A line longer than ``max_line`` is emitted cut at ``max_line`` bytes and
    the rest of it is skipped, so memory stays bounded whatever a job prints.
    """
    chunk_nl = chunk.rfind(b"\n")
    if chunk_nl < 0:
        last_nl = -1
        rest = partial + chunk if partial else chunk
        complete = b""
        consumed = 0
    else:
        # One copy of the chunk's complete lines (joined to the pending partial
        # through a memoryview), not two: this runs over every byte of output.
        last_nl = len(partial) + chunk_nl
        complete = (
            b"".join((partial, memoryview(chunk)[:chunk_nl])) if partial else chunk[:chunk_nl]
        )
        rest = chunk[chunk_nl + 1 :]
        consumed = last_nl + 1
    lines_blob = b""
    has_lines = False
    if last_nl >= 0:
        if not skipping and _no_line_longer(complete, max_line):
            lines_blob, has_lines = complete, True
        else:
            lines = complete.split(b"\n")
            if skipping:
                lines = lines[1:]  # the tail of an over-long line already emitted
                skipping = False
            lines = [line[:max_line] for line in lines]
            lines_blob, has_lines = b"\n".join(lines), bool(lines)
    if len(rest) > max_line:
        if not skipping:
            lines_blob = lines_blob + b"\n" + rest[:max_line] if has_lines else rest[:max_line]
            has_lines = True
        consumed += len(rest)
        rest = b""
        skipping = True
    elif skipping and rest and last_nl < 0:
        consumed += len(rest)
        rest = b""
    return Split(
        lines_blob=lines_blob,
        has_lines=has_lines,
        consumed=consumed,
        partial=rest,
        skipping=skipping,
    )


def _no_line_longer(blob: bytes, max_line: int) -> bool:
    """Whether every line of ``blob`` fits in ``max_line`` bytes.

    Jumps from line start to the last newline within reach, so a 1 MiB chunk
    costs a step or two, not a pass over its lines (the fast path of
    :func:`split_lines` must not depend on the chunk being under ``max_line``).
    """
    pos, end = 0, len(blob)
    while end - pos > max_line:
        nl = blob.rfind(b"\n", pos, pos + max_line + 1)
        if nl < 0:
            return False
        pos = nl + 1
    return True


def chunk_length(read_at: int, size: int, chunk: int) -> int:
    """How much of a remote file to ask for at ``read_at``: what its stat says is there.

    Never more than ``chunk``, and never past the stat's ``size``: asyncssh
    splits one SFTP read into parallel requests of the server's block size,
    so asking 1 MiB of a file that grew 3 KiB cost dozens of requests, all
    but one answered "end of file" (200 files: thousands a poll, most of a
    poll's time). Bytes written since the stat are read at the next poll.
    """
    return max(0, min(chunk, size - read_at))


def parse_stats(text: str) -> dict[str, FileStat]:
    """What ``stat -L --printf='%i %s %.9Y %n\\0'`` printed: path -> its stat."""
    out: dict[str, FileStat] = {}
    for record in text.split("\0"):
        parts = record.split(" ", 3)
        if len(parts) == 4 and parts[0].isdigit() and parts[1].isdigit():
            out[parts[3]] = FileStat(int(parts[0]), int(parts[1]), _seconds(parts[2]))
    return out


def _seconds(text: str) -> float:
    """``stat``'s mtime field: seconds with a fraction, or whole seconds from an old ``stat``.

    0.0 when unreadable (a ``stat`` that prints ``%.9Y`` some other way): the
    size still tells growth, and the file is never taken for absent.
    """
    try:
        return float(text)
    except ValueError:
        return 0.0
