"""The first reads of a remote poll, all requested at once, each handled as it arrives.

One read costs a round trip over SSH. Issued together on the one connection
(SFTP requests are pipelined) they overlap, so a cycle over 200 grown files
costs about one round trip instead of 200-400. Each file's read completes in
a future of its own, so the reader handles a file as soon as its bytes are
here instead of waiting for the slowest. The batched stat before them is one
command (:meth:`pivot.jobs.transport.SshTransport.stat_many`); neither waits
for the host's Slurm query, which runs beside them (:mod:`pivot.jobs.tailer`).

A file being written (:func:`being_written`) has its next bytes requested
*beside* the stat, not after it. The stat is a command through the remote
shell, about 100 ms of a quiet machine; an SFTP read on a handle kept open is
one request. When those bytes came through the handle kept on the file the
watcher reads and its first bytes are unchanged, they are used as they
arrive, before the stat (:func:`stat_from_ahead`): the stat then only tells
whether another file took the path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pivot.jobs.file_tail import CHUNK_BYTES, FileTail
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.tail import HEAD_BYTES, FileStat, Position, chunk_length, head_matches, plan_read
from pivot.jobs.transport import KeepsHandles, LocalTransport, SshTransport, Transport

__all__ = [
    "AHEAD_BYTES",
    "STAT_TIMEOUT",
    "FirstRead",
    "Key",
    "Wanted",
    "ahead_wanted",
    "arrival",
    "being_written",
    "drainer",
    "fetcher",
    "prefetch_wanted",
    "request_first_reads",
    "stat_from_ahead",
]

STAT_TIMEOUT = 120.0
# Read ahead of the stat, of a file being written (being_written): one SFTP request
# (asyncssh splits a read at the server's limit, 255 KiB with OpenSSH).
AHEAD_BYTES = 64 * 1024

Key = tuple[str, str]  # (watcher id, path)
# (key, path, start, length, with the head?, inode of the file read: 0 when not known)
Wanted = tuple[Key, str, int, int, bool, int]


@dataclass
class FirstRead:
    """Bytes read ahead for one (watcher, file): a chunk from ``start``, maybe the head."""

    start: int
    length: int  # asked for (the chunk may be shorter)
    chunk: bytes | None  # None: the read failed (the reader reads again, and reports it)
    head: bytes | None
    # Every read came through a handle kept open on the file of the inode asked for.
    kept: bool = False


def being_written(grown_reads: int) -> bool:
    """Whether a file whose last ``grown_reads`` reads in a row found new bytes is read
    ahead of the next stat.

    One read that grew is not enough: a job's first line, or a line now and
    then, is followed by quiet polls, and a read ahead at each of them would
    be two requests for nothing (the stat alone says nothing grew). A file
    that grew at two reads in a row is being written: reading ahead saves the
    round trip after the stat, and costs one wasted read once it stops.
    """
    return grown_reads >= 2


def ahead_wanted(tails: Iterable[tuple[Key, FileTail]]) -> list[Wanted]:
    """The reads ahead of the stat: the next bytes and the head of each file being written,
    through the handle kept on the file the watcher reads."""
    return [
        (key, key[1], tail.pos.offset + len(tail.partial), AHEAD_BYTES, True, tail.pos.inode)
        for key, tail in tails
        if being_written(tail.grown_reads)
    ]


def prefetch_wanted(
    tails: Iterable[tuple[Key, FileTail, FileStat]], ahead: dict[Key, int]
) -> tuple[list[Wanted], list[Key]]:
    """The first chunk (and head) of every file its stat shows grown, and which of them
    were read ahead from the right place already (``ahead``: where each read started)."""
    wanted: list[Wanted] = []
    kept: list[Key] = []
    for key, tail, st in tails:
        plan = plan_read(tail.pos, st)
        if plan is None:
            continue
        start = 0 if plan.reset_reason else tail.pos.offset + len(tail.partial)
        if ahead.get(key) == start:
            kept.append(key)
            continue
        need_head = plan.check_head or (start > 0 and tail.pos.head_len < HEAD_BYTES)
        wanted.append((key, key[1], start, chunk_length(start, st.size, CHUNK_BYTES), need_head, 0))
    return wanted, kept


def stat_from_ahead(pos: Position, partial: bytes, pre: FirstRead) -> FileStat | None:
    """What bytes read ahead say of their file, when they can be used before the stat.

    They can when they are new bytes from where the watcher stopped, read
    through the handle kept on the file it reads (``pre.kept``: a file that
    took the path since is not the one read), and that file still starts with
    the bytes it was first read from (not truncated and rewritten in place).
    The stat that comes later says the rest: a new inode there is read from
    its start. None: wait for the stat.
    """
    if not (pre.kept and pre.chunk and pre.head is not None and pos.inode and pos.head_len):
        return None
    if pre.start != pos.offset + len(partial) or not head_matches(pos, pre.head):
        return None
    return FileStat(inode=pos.inode, size=pre.start + len(pre.chunk), mtime=pos.mtime)


def request_first_reads(
    io: IoLoop, transport: Transport, wanted: list[Wanted]
) -> dict[tuple[str, str], concurrent.futures.Future[FirstRead]]:
    """Start every read of ``wanted`` on the loop."""

    async def nothing() -> tuple[bytes, bool]:
        return b"", True

    def reader(path: str, inode: int) -> Callable[[int, int], Awaitable[tuple[bytes, bool]]]:
        if inode and isinstance(transport, KeepsHandles):
            keeper = transport

            async def kept(at: int, length: int) -> tuple[bytes, bool]:
                return await keeper.read_kept(path, at, length, inode)

            return kept

        async def plain(at: int, length: int) -> tuple[bytes, bool]:
            return await transport.read(path, at, length), False

        return plain

    async def one(path: str, start: int, length: int, need_head: bool, inode: int) -> FirstRead:
        read = reader(path, inode)
        reads = [read(start, length) if length else nothing()]
        if need_head:
            reads.append(read(0, HEAD_BYTES))
        got = await asyncio.gather(*reads, return_exceptions=True)
        chunk = got[0][0] if isinstance(got[0], tuple) else None
        head = got[1][0] if need_head and isinstance(got[1], tuple) else None
        kept = all(isinstance(g, tuple) and g[1] for g in got)
        return FirstRead(start=start, length=length, chunk=chunk, head=head, kept=kept)

    return {
        key: io.submit(one(path, start, length, head, inode))
        for key, path, start, length, head, inode in wanted
    }


def arrival(
    arrived: queue.SimpleQueue[Key], key: Key
) -> Callable[[concurrent.futures.Future[FirstRead]], None]:
    """A done-callback putting ``key`` in ``arrived`` (runs on the loop's thread)."""

    def done(_future: concurrent.futures.Future[FirstRead]) -> None:
        arrived.put(key)

    return done


def fetcher(
    io: IoLoop, transport: Transport, path: str, pre: FirstRead | None
) -> Callable[[int, int], tuple[bytes, bool]]:
    """Reads of ``path`` for :func:`pivot.jobs.file_tail.tail_file`: from what was read
    ahead when it covers them, else now; with whether they reached the end of the file
    as it was then."""

    def fetch(at: int, length: int) -> tuple[bytes, bool]:
        if pre is not None:
            if at == 0 and length == HEAD_BYTES and pre.head is not None:
                return pre.head, len(pre.head) < length
            if at == pre.start and pre.chunk is not None:  # maybe not ``length`` long
                data, pre.chunk = pre.chunk, None  # used once
                return data, len(data) < pre.length
        if isinstance(transport, LocalTransport):
            data = transport.read_now(path, at, length)
        else:
            data = io.call(transport.read(path, at, length), 120.0)
        return data, len(data) < length

    return fetch


def drainer(io: IoLoop, transport: Transport, path: str) -> Callable[[int, int, int], bytes | None]:
    """Reads of the file another file replaced at ``path`` (inode, offset, length), for
    the end of it :func:`pivot.jobs.file_tail.tail_file` reads first; None: not held."""

    def drain(inode: int, at: int, length: int) -> bytes | None:
        if isinstance(transport, LocalTransport):
            return transport.read_replaced_now(path, inode, at, length)
        if isinstance(transport, SshTransport):
            return io.call(transport.read_replaced(path, inode, at, length), 120.0)
        return None

    return drain
