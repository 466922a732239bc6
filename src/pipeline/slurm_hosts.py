"""Slurm commands on the hosts of SLURM stages: one event loop, one transport per host.

The transports are the job watchers' (:mod:`pivot.jobs.transport`: a local
subprocess, or asyncssh to a ``[hosts.NAME]``); every command is an argv
list from :mod:`pivot.jobs.slurm`, never a shell line. :class:`SlurmHosts`
also counts the commands it ran, by program (``bench/slurm_stages.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from pivot.jobs.config import Config
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.job_lookup import Runner
from pivot.jobs.lookup_runner import lookup_runner
from pivot.jobs.transport import CommandResult, Transport, TransportError

__all__ = ["SlurmHosts"]

T = TypeVar("T")


class SlurmHosts:
    """Run Slurm commands on hosts from any thread (``call``) or the loop (``run``)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.commands: dict[str, int] = {}
        self._io: IoLoop | None = None
        self._transports: dict[str, Transport] = {}

    @property
    def started(self) -> bool:
        """Whether a command ran (the loop exists)."""
        return self._io is not None

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Start ``coro`` on the loop; a concurrent future of its result."""
        return self._loop().submit(coro)

    async def run(
        self, host: str, argv: Sequence[str], input_text: str | None = None
    ) -> CommandResult:
        """Run one command on ``host`` (on the loop); TransportError when it cannot."""
        self.commands[argv[0]] = self.commands.get(argv[0], 0) + 1
        timeout = self.config.host(host).command_timeout
        return await self._transport(host).run(argv, input_text=input_text, timeout=timeout)

    def call(self, host: str, argv: Sequence[str]) -> CommandResult:
        """:meth:`run` from another thread, waiting for its result."""
        timeout = self.config.host(host).command_timeout
        return self._loop().call(self.run(host, argv), timeout + 5)

    def runner(self, host: str) -> Runner:
        """:meth:`run` on ``host`` as the job lookup's runner
        (:func:`pivot.jobs.job_lookup.query_jobs`): a failure to run is an outcome."""
        return lookup_runner(lambda argv: self.run(host, argv))

    def scancel(self, host: str, job_ids: Sequence[str]) -> None:
        """scancel ``job_ids`` on ``host`` from another thread; a failure is not an error
        (the poll goes on asking, and only Slurm saying a job ended ends it)."""
        with contextlib.suppress(TransportError, TimeoutError):
            self.call(host, ["scancel", *job_ids])

    def close(self) -> None:
        """Release the connections and stop the loop."""
        io, self._io = self._io, None
        if io is None:
            return
        for transport in self._transports.values():
            with contextlib.suppress(Exception):
                io.call(transport.close(), 10)
        io.stop()

    def _loop(self) -> IoLoop:
        if self._io is None:
            self._io = IoLoop("pivot-slurm")
        return self._io

    def _transport(self, host: str) -> Transport:
        if host not in self._transports:
            from pivot.jobs.manage import transport_for

            self._transports[host] = transport_for(self.config, host)
        return self._transports[host]
