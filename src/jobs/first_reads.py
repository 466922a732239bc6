"""The first reads of a remote poll, all requested at once, each handled as it arrives.

One read costs a round trip over SSH. Issued together on the one connection
(SFTP requests are pipelined) they overlap, so a cycle over 200 grown files
costs about one round trip instead of 200-400. Each file's read completes in
a future of its own, so the reader handles a file as soon as its bytes are
here instead of waiting for the slowest. The batched stat before them is one
command (:meth:`pivot.jobs.transport.SshTransport.stat_many`); neither waits
for the host's Slurm query, which runs beside them (:mod:`pivot.jobs.tailer`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass

from pivot.jobs.ioloop import IoLoop
from pivot.jobs.tail import HEAD_BYTES
from pivot.jobs.transport import Transport

__all__ = ["STAT_TIMEOUT", "FirstRead", "request_first_reads"]

STAT_TIMEOUT = 120.0


@dataclass
class FirstRead:
    """Bytes read ahead for one (watcher, file): a chunk from ``start``, maybe the head."""

    start: int
    length: int  # asked for (the chunk may be shorter)
    chunk: bytes | None  # None: the read failed (the reader reads again, and reports it)
    head: bytes | None


def request_first_reads(
    io: IoLoop,
    transport: Transport,
    wanted: list[tuple[tuple[str, str], str, int, int, bool]],
) -> dict[tuple[str, str], concurrent.futures.Future[FirstRead]]:
    """Start every read of ``wanted`` (key, path, start, length, with the head?) on the loop."""

    async def nothing() -> bytes:
        return b""

    async def one(path: str, start: int, length: int, need_head: bool) -> FirstRead:
        reads = [transport.read(path, start, length) if length else nothing()]
        if need_head:
            reads.append(transport.read(path, 0, HEAD_BYTES))
        got = await asyncio.gather(*reads, return_exceptions=True)
        chunk = got[0] if isinstance(got[0], bytes) else None
        head = got[1] if need_head and isinstance(got[1], bytes) else None
        return FirstRead(start=start, length=length, chunk=chunk, head=head)

    return {
        key: io.submit(one(path, start, length, head)) for key, path, start, length, head in wanted
    }
