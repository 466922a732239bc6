"""The first reads of a poll cycle over a remote host: all requested at once, each on its own.

Over SSH, one read costs a round trip. Issued together on the one connection
(SFTP requests are pipelined) they overlap, so a cycle over 200 grown files
costs about one round trip instead of 200-400. Each file's read completes in
a future of its own, so the reader handles a file as soon as its bytes are
here instead of waiting for the slowest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass

from pivot.jobs.ioloop import IoLoop
from pivot.jobs.tail import HEAD_BYTES
from pivot.jobs.transport import Transport

__all__ = ["FirstRead", "request_first_reads"]


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
