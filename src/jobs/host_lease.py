"""Which process hosts a project's job watchers: one at a time, by a lease in the store.

Every host of the job watchers (``pivot watchers run``, ``pivot watch``,
``pivot ui``, a program calling :func:`pivot.jobs.runtime.start_watchers`)
holds this lease while it polls jobs and runs actions; the others stand by
and say who holds it. The rules:

- The lease is one row, ``name = 'job_watchers'``, of the table
  ``pivot_leases`` in the event store's own database, SQLite or PostgreSQL
  alike: who holds it (a random id per holder), its pid, host name and
  command, since when (wall clock, for people), a *process token* (boot id,
  pid namespace, pid, start time: this exact process on this exact machine),
  a ``beat`` counter and the ``ttl``.
- The holder renews every ``ttl / 5`` seconds (``beat`` + 1). It trusts its
  lease only for ``ttl / 2`` after the start of its last successful renewal,
  measured on its own monotonic clock (:func:`holder_trusts`): past that it
  appends no decision and starts no action (a holder frozen by ``SIGSTOP``,
  a suspended laptop or a database that stopped answering fences itself).
- A candidate takes the lease (:func:`may_take`) when there is no row (free
  or released), when the holder is a process of this machine that no longer
  exists (``kill -9``: taken at the next look, within a second), or when the
  row's ``beat`` has not moved for ``ttl`` seconds on the *candidate's*
  monotonic clock (a holder on another machine that died, or froze). Expiry
  is measured by the observer, so clocks of different machines never need to
  agree; and since the observer's ``ttl`` starts after the holder's renewal,
  the holder stops trusting its lease (at ``ttl / 2``) well before anyone
  takes it.
- Every change is a compare-and-set on (holder, beat) inside one
  transaction, so of two candidates exactly one wins.

Why a row and not ``flock`` or a PostgreSQL advisory lock: both vanish the
instant their process dies, which is attractive, but ``flock`` is unreliable
on the NFS home directories clusters have, an advisory lock needs a
dedicated database session for the host's whole life (pooled connections
cannot keep one), and neither can tell a standby who holds it. One row in
the store's database works the same for both backends and for hosts on
several machines sharing a PostgreSQL store, and names the holder. The price
is that a holder on *another* machine that dies is replaced after ``ttl``
(default 10 s, ``[watchers] lease_seconds``), not at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivot.events.backends import Backend

__all__ = [
    "DEFAULT_TTL",
    "LEASE_NAME",
    "Attempt",
    "HostLease",
    "LeaseLost",
    "LeaseRow",
    "Sighting",
    "holder_trusts",
    "may_take",
    "observe",
    "process_gone",
    "process_token",
]

LEASE_NAME = "job_watchers"
DEFAULT_TTL = 10.0

_CREATE = (
    "CREATE TABLE IF NOT EXISTS pivot_leases ("
    "name TEXT PRIMARY KEY, holder TEXT NOT NULL, pid INTEGER NOT NULL, "
    "host TEXT NOT NULL, command TEXT NOT NULL, process TEXT NOT NULL, "
    "since DOUBLE PRECISION NOT NULL, beat BIGINT NOT NULL, ttl DOUBLE PRECISION NOT NULL)"
)
_COLUMNS = "holder, pid, host, command, process, since, beat, ttl"


class LeaseLost(RuntimeError):
    """This process no longer (knowingly) holds the lease: it must not decide or act."""


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """The lease as stored: who holds it and how recently it was renewed (``beat``)."""

    holder: str
    pid: int
    host: str
    command: str
    process: str
    since: float
    beat: int
    ttl: float

    def describe(self) -> str:
        """``pid 123 on host (pivot watch) since 02:40:11`` (local time)."""
        when = time.strftime("%H:%M:%S", time.localtime(self.since))
        what = f" ({self.command})" if self.command else ""
        return f"pid {self.pid} on {self.host}{what} since {when}"


@dataclass(frozen=True, slots=True)
class Sighting:
    """What a candidate saw of the row, and when it first saw it so (monotonic)."""

    holder: str
    beat: int
    first_seen: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of :meth:`HostLease.try_acquire`.

    ``acquired``: this process holds the lease now. ``other``: the holder
    that was there (still holding it if not acquired; the one replaced, if
    any, when acquired). ``reason`` says why it was taken: ``free``,
    ``holder gone``, ``expired``, or ``still held`` (it was this process's).
    """

    acquired: bool
    other: LeaseRow | None = None
    reason: str = ""


# -- the rules (pure) ----------------------------------------------------------


def observe(row: LeaseRow | None, seen: Sighting | None, now: float) -> Sighting | None:
    """The sighting after looking at ``row`` at ``now``: kept while the row has not moved."""
    if row is None:
        return None
    if seen is not None and (seen.holder, seen.beat) == (row.holder, row.beat):
        return seen
    return Sighting(row.holder, row.beat, now)


def may_take(
    row: LeaseRow | None, seen: Sighting | None, now: float, *, holder_gone: bool
) -> tuple[bool, str]:
    """Whether a candidate may take the lease now, and why.

    ``seen`` is the candidate's sighting of this same row (from
    :func:`observe`); ``holder_gone`` says the holder is a process of this
    machine that no longer exists (:func:`process_gone`).
    """
    if row is None:
        return True, "free"
    if holder_gone:
        return True, "holder gone"
    if seen is None or (seen.holder, seen.beat) != (row.holder, row.beat):
        return False, ""  # it moved since we last looked: alive
    if now - seen.first_seen >= row.ttl:
        return True, "expired"
    return False, ""


def holder_trusts(last_renewed: float | None, now: float, ttl: float) -> bool:
    """Whether a holder may still act: its last renewal began less than ``ttl / 2`` ago."""
    return last_renewed is not None and now - last_renewed < ttl / 2


# -- processes -------------------------------------------------------------------


def _machine() -> str:
    """This machine and pid namespace: pids mean the same thing only within both."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        return f"host:{socket.gethostname()}"
    return f"{boot}/{pidns}"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks after boot), or None if there is no
    such process or it is a zombie (killed, not yet reaped by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else ""


def process_token(pid: int | None = None) -> str:
    """``machine:pid:start``: one process, distinct from a later one given the same pid."""
    pid = os.getpid() if pid is None else pid
    return f"{_machine()}:{pid}:{_start_time(pid) or ''}"


def process_gone(token: str) -> bool:
    """True only when ``token`` names a process of this machine that no longer runs.

    A process of another machine (or pid namespace) is never known to be
    gone: its lease expires instead.
    """
    parts = token.rsplit(":", 2)
    if len(parts) != 3:
        return False
    machine, pid_text, start = parts
    if machine.startswith("host:") or machine != _machine():
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now = _start_time(pid)
    return now is None or (bool(start) and now != start)


# -- the row ------------------------------------------------------------------------


class HostLease:
    """This process's claim on the lease ``name`` of one store's database.

    Thread-safe enough for its use: one keeper thread calls
    :meth:`try_acquire`, :meth:`renew` and :meth:`release`; any thread may
    call :meth:`trusted`.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        name: str = LEASE_NAME,
        ttl: float = DEFAULT_TTL,
        command: str = "",
        clock: Callable[[], float] = time.monotonic,
        gone: Callable[[str], bool] = process_gone,
    ) -> None:
        self.backend = backend
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.gone = gone
        self.me = LeaseRow(
            holder=uuid.uuid4().hex,
            pid=os.getpid(),
            host=socket.gethostname(),
            command=command or Path(sys.argv[0]).name,
            process=process_token(),
            since=0.0,
            beat=0,
            ttl=ttl,
        )
        self._seen: Sighting | None = None
        self._renewed: float | None = None  # monotonic start of the last good renewal
        self._beat = 0
        backend.ensure_table("pivot_leases", _CREATE)

    @property
    def renew_every(self) -> float:
        """Seconds between renewals (and between a standby's looks, at most 1 s)."""
        return self.ttl / 5

    def read(self) -> LeaseRow | None:
        """The lease as stored now (None when nobody holds it)."""
        with self.backend.transaction(write=False) as cur:
            return self._select(cur)

    def _select(self, cur: Any) -> LeaseRow | None:
        cur.execute(
            self.backend.sql(f"SELECT {_COLUMNS} FROM pivot_leases WHERE name = ?"),  # noqa: S608
            (self.name,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        return LeaseRow(
            holder=str(row["holder"]),
            pid=int(row["pid"]),
            host=str(row["host"]),
            command=str(row["command"]),
            process=str(row["process"]),
            since=float(row["since"]),
            beat=int(row["beat"]),
            ttl=float(row["ttl"]),
        )

    def try_acquire(self) -> Attempt:
        """Take the lease if the rules allow it (see the module docstring).

        A look that finds the lease held is a read: standbys never wait for,
        or block, the holder's writes.
        """
        started = self.clock()
        row = self.read()
        if row is not None and row.holder == self.me.holder:
            self._renewed = started
            return Attempt(acquired=True, reason="still held")
        self._seen = observe(row, self._seen, started)
        gone = row is not None and self.gone(row.process)
        ok, reason = may_take(row, self._seen, started, holder_gone=gone)
        if not ok:
            return Attempt(acquired=False, other=row)
        mine = replace(self.me, since=time.time(), beat=1)
        values = (mine.holder, mine.pid, mine.host, mine.command, mine.process,
                  mine.since, mine.beat, mine.ttl)  # fmt: skip
        sql = self.backend.sql
        with self.backend.transaction() as cur:
            # Compare-and-set: only the row we judged is replaced.
            if row is None:
                cur.execute(
                    sql(f"INSERT INTO pivot_leases (name, {_COLUMNS}) "  # noqa: S608
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"),
                    (self.name, *values),
                )  # fmt: skip
            else:
                cur.execute(
                    sql("UPDATE pivot_leases SET holder = ?, pid = ?, host = ?, command = ?, "
                        "process = ?, since = ?, beat = ?, ttl = ? "
                        "WHERE name = ? AND holder = ? AND beat = ?"),
                    (*values, self.name, row.holder, row.beat),
                )  # fmt: skip
            now = self._select(cur)
        if now is None or now.holder != self.me.holder:
            return Attempt(acquired=False, other=now)
        self._beat, self._renewed, self._seen = 1, started, None
        return Attempt(acquired=True, other=row, reason=reason)

    def renew(self) -> bool | None:
        """Renew: True when renewed, False when someone else holds the lease now,
        None when the database could not be asked (the lease may still be ours)."""
        started = self.clock()
        try:
            with self.backend.transaction() as cur:
                cur.execute(
                    self.backend.sql(
                        "UPDATE pivot_leases SET beat = ? WHERE name = ? AND holder = ?"
                    ),
                    (self._beat + 1, self.name, self.me.holder),
                )
                row = self._select(cur)
        except Exception:
            return None
        if row is None or row.holder != self.me.holder:
            self._renewed = None
            return False
        self._beat, self._renewed = row.beat, started
        return True

    def trusted(self) -> bool:
        """Whether this process may act as the host now (see :func:`holder_trusts`)."""
        return holder_trusts(self._renewed, self.clock(), self.ttl)

    def release(self) -> None:
        """Give the lease up (a standby takes it at its next look). Never raises."""
        self._renewed = None
        with contextlib.suppress(Exception), self.backend.transaction() as cur:
            cur.execute(
                self.backend.sql("DELETE FROM pivot_leases WHERE name = ? AND holder = ?"),
                (self.name, self.me.holder),
            )
