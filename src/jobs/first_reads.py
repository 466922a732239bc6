"""A poll cycle over a remote host: the stat beside ``squeue``, the first reads all at once.

Over SSH each command and each read costs a round trip. The batched stat of
the output files needs no job state, so it starts before ``squeue`` and runs
beside it (:func:`start_stat`); only the files it could not cover (a job
seen for the first time) and those of a job that just ended (its last bytes
may be newer than the stat) are stat'ed again after it (:func:`finish_stat`).

One read costs a round trip too. Issued together on the one connection
(SFTP requests are pipelined) they overlap, so a cycle over 200 grown files
costs about one round trip instead of 200-400. Each file's read completes in
a future of its own, so the reader handles a file as soon as its bytes are
here instead of waiting for the slowest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Collection, Set
from dataclasses import dataclass

from pivot.jobs.ioloop import IoLoop
from pivot.jobs.tail import HEAD_BYTES, FileStat
from pivot.jobs.transport import Transport

__all__ = ["EarlyStat", "FirstRead", "finish_stat", "request_first_reads", "start_stat"]

STAT_TIMEOUT = 120.0


@dataclass(frozen=True)
class EarlyStat:
    """A batched stat under way: the paths asked for, and the future of its result."""

    paths: frozenset[str]
    result: concurrent.futures.Future[dict[str, FileStat]]


def start_stat(io: IoLoop, transport: Transport, paths: Collection[str]) -> EarlyStat | None:
    """Start one batched stat of ``paths`` on the loop (None when there are none)."""
    if not paths:
        return None
    return EarlyStat(frozenset(paths), io.submit(transport.stat_many(sorted(paths))))


def finish_stat(
    io: IoLoop, transport: Transport, early: EarlyStat | None, wanted: list[str], last: Set[str]
) -> dict[str, FileStat]:
    """Stats of ``wanted``: the early stat's, and a fresh one for what it lacks or ``last``."""
    stats: dict[str, FileStat] = {}
    if early is not None:
        stats = dict(early.result.result(STAT_TIMEOUT))
        wanted = [p for p in wanted if p not in early.paths or p in last]
    if wanted:
        stats.update(io.call(transport.stat_many(wanted), STAT_TIMEOUT))
    return stats


@dataclass
class FirstRead:
    """Bytes read ahead for one (watcher, file): a chunk from ``start``, maybe the head."""

    start: int
    chunk: bytes | None  # None: the read failed (the reader reads again, and reports it)
    head: bytes | None


def request_first_reads(
    io: IoLoop,
    transport: Transport,
    wanted: list[tuple[tuple[str, str], str, int, bool]],
    chunk_bytes: int,
) -> dict[tuple[str, str], concurrent.futures.Future[FirstRead]]:
    """Start every read of ``wanted`` (key, path, start, with the head?) on the loop."""

    async def one(path: str, start: int, need_head: bool) -> FirstRead:
        reads = [transport.read(path, start, chunk_bytes)]
        if need_head:
            reads.append(transport.read(path, 0, HEAD_BYTES))
        got = await asyncio.gather(*reads, return_exceptions=True)
        chunk = got[0] if isinstance(got[0], bytes) else None
        head = got[1] if need_head and isinstance(got[1], bytes) else None
        return FirstRead(start=start, chunk=chunk, head=head)

    return {key: io.submit(one(path, start, head)) for key, path, start, head in wanted}
