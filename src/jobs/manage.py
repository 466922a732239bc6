"""Commands on watchers and jobs, as events: add, pause, resume, remove, trigger, submit.

Each function validates, then appends the events that say what happened; a
running runtime (``pivot watch`` or ``pivot watchers run``) picks them up on
its next cycle. Used by the CLI and by tests.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pivot.events.base import Event
from pivot.events.jobs import JobSubmitted
from pivot.events.store import EventStore
from pivot.events.watchers import (
    ActionRequested,
    WatcherCreated,
    WatcherEdited,
    WatcherPaused,
    WatcherRemoved,
    WatcherResumed,
)
from pivot.jobs import slurm
from pivot.jobs.action_run import execute_batch
from pivot.jobs.actions import ActionRunner, JobContext
from pivot.jobs.batch import ActionBatch
from pivot.jobs.book import Book, WatcherState
from pivot.jobs.config import Config
from pivot.jobs.decide import Context, on_manual
from pivot.jobs.definition import WatcherDefinition
from pivot.jobs.embedded import watcher_blocks
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.transport import LocalTransport, SshTransport, Transport, TransportError

__all__ = [
    "ManageError",
    "Submitted",
    "add_watchers",
    "copy_watcher",
    "edit_watcher",
    "load_book",
    "pause",
    "remove",
    "resume",
    "submit_job",
    "trigger",
]


class ManageError(ValueError):
    """A command that cannot be done (unknown watcher, wrong state, Slurm refused)."""


def load_book(store: EventStore) -> Book:
    """The watchers and jobs as the log says now (from ``pivot ui``'s stored book, if any)."""
    from pivot.projections.book_snapshot import stored_book

    return stored_book(store)


def find(book: Book, watcher_id: str) -> WatcherState:
    """A watcher by id (or unique id prefix)."""
    if not watcher_id.strip():
        # "" is a prefix of every id: with one watcher, `rm "$ID"` with an
        # unset ID would remove it.
        raise ManageError("no watcher id given; see `pivot watchers list`")
    ws = book.watchers.get(watcher_id)
    hits: list[WatcherState] = []
    if ws is None:
        hits = [w for wid, w in book.watchers.items() if wid.startswith(watcher_id)]
        if len(hits) == 1:
            ws = hits[0]
    if ws is None or ws.state == "removed":
        live = sorted(wid for wid, w in book.watchers.items() if w.state != "removed")
        if len(hits) > 1:
            ids = sorted(w.watcher_id for w in hits)
            what = f"{len(ids)} watchers start with it: " + ", ".join(ids[:10])
        elif live:
            what = "known watchers: " + ", ".join(live[:20]) + (" ..." if len(live) > 20 else "")
        else:
            what = "no watchers yet"
        raise ManageError(f"unknown watcher {watcher_id!r} ({what}); see `pivot watchers list`")
    return ws


def add_watchers(
    store: EventStore,
    definitions: Sequence[WatcherDefinition],
    job_id: str,
    host: str = "local",
    *,
    actor: str = "cli",
) -> list[str]:
    """Attach watchers to a job; returns their ids."""
    if not slurm.is_job_id(job_id):
        raise ManageError(f"job id must be a Slurm job id such as 1234 or 1234_5, not {job_id!r}")
    events: list[Event] = []
    ids: list[str] = []
    for d in definitions:
        wid = uuid.uuid4().hex[:12]
        ids.append(wid)
        events.append(
            WatcherCreated(
                watcher_id=wid,
                name=d.name,
                job_id=job_id,
                host=host,
                definition=d.to_dict(),
                actor=actor,
            )
        )
    store.append(events)
    return ids


def copy_watcher(
    store: EventStore, watcher_id: str, job_id: str, host: str = "local", book: Book | None = None
) -> str:
    """Attach a copy of a watcher's definition to another job (ssync's "copy to job").

    ``book``: the watchers as already folded (e.g. by ``pivot ui``); default: fold the log.
    """
    ws = _watcher(store, book, watcher_id)
    (new_id,) = add_watchers(store, [ws.definition], job_id, host)
    return new_id


def edit_watcher(
    store: EventStore,
    watcher_id: str,
    definition: WatcherDefinition,
    book: Book | None = None,
    *,
    actor: str = "cli",
) -> bool:
    """Replace a watcher's definition (same id, same read position); False if unchanged.

    ``book``: the watchers as already folded (e.g. by ``pivot ui``); default: fold the log.
    """
    ws = _watcher(store, book, watcher_id)
    if definition == ws.definition:
        return False
    store.append(
        [
            WatcherEdited(
                watcher_id=ws.watcher_id,
                name=definition.name,
                definition=definition.to_dict(),
                previous=ws.definition.to_dict(),
                actor=actor,
            )
        ]
    )
    return True


def pause(
    store: EventStore, watcher_id: str, book: Book | None = None, *, actor: str = "cli"
) -> str:
    """Pause an active watcher (it keeps its position; matches are not acted on).

    ``book``: the watchers as already folded (e.g. by ``pivot ui``); default: fold the log.
    """
    return _record(store, watcher_id, book, WatcherPaused, actor, when="active")


def resume(
    store: EventStore, watcher_id: str, book: Book | None = None, *, actor: str = "cli"
) -> str:
    """Resume a paused watcher.

    ``book``: the watchers as already folded (e.g. by ``pivot ui``); default: fold the log.
    """
    return _record(store, watcher_id, book, WatcherResumed, actor, when="paused")


def remove(
    store: EventStore, watcher_id: str, book: Book | None = None, *, actor: str = "cli"
) -> str:
    """Remove a watcher (its history stays in the log).

    ``book``: the watchers as already folded (e.g. by ``pivot ui``); default: fold the log.
    """
    return _record(store, watcher_id, book, WatcherRemoved, actor)


def _watcher(store: EventStore, book: Book | None, watcher_id: str) -> WatcherState:
    """:func:`find` in ``book``, or in the watchers folded from the log."""
    return find(book if book is not None else load_book(store), watcher_id)


def _record(
    store: EventStore,
    watcher_id: str,
    book: Book | None,
    event: type[WatcherPaused | WatcherResumed | WatcherRemoved],
    actor: str,
    *,
    when: str = "",
) -> str:
    """Append ``event`` for the watcher (only if its state is ``when``, if given); its id."""
    ws = _watcher(store, book, watcher_id)
    if when and ws.state != when:
        raise ManageError(f"watcher {ws.watcher_id} is {ws.state}, not {when}")
    store.append([event(watcher_id=ws.watcher_id, actor=actor)])
    return ws.watcher_id


def trigger(
    store: EventStore,
    config: Config,
    watcher_id: str,
    sample: str | None = None,
    book: Book | None = None,
) -> list[Event]:
    """Fire a watcher now, with a sample line's captures or the cached ones; run its actions.

    The decision is the usual one (condition, rate limit); the actions run
    here, recorded like any other (intent, then result). Returns every event
    appended. ``book``: the watchers as already folded (default: fold the log).
    """
    book = book if book is not None else load_book(store)
    ws = find(book, watcher_id)
    line = None
    if sample is not None:
        line = ws.definition.compiled().match_line(sample.encode())
        if line is None:
            raise ManageError(f"the sample does not match the pattern {ws.definition.pattern!r}")
    events = on_manual(ws, Context(now=time.time(), hostname=socket.gethostname()), line)
    store.append(events)
    log: list[Event] = list(events)
    requests = tuple(e for e in events if isinstance(e, ActionRequested))
    if not requests:
        return log
    rec = book.job(ws.host, ws.job_id)
    job = JobContext(
        host=ws.host,
        job_id=ws.job_id,
        script_text=rec.script_text,
        workdir=rec.workdir,
        watchers=tuple(
            (w.name, w.definition.to_dict())
            for w in book.watchers.values()
            if (w.host, w.job_id) == (ws.host, ws.job_id) and w.state != "removed"
        ),
    )
    io = IoLoop("pivot-trigger")
    transports = {ws.host: transport_for(config, ws.host)}
    runner = ActionRunner(config, transports, lambda _host, coro, t: io.call(coro, t))

    def append(new: Sequence[Event]) -> None:
        store.append(list(new))
        log.extend(new)

    try:
        # No retries from the command line: a failure is reported as such.
        execute_batch(
            ActionBatch(requests, job, ws.definition.max_failures, ws.consecutive_failures),
            runner,
            append,
            {},
        )
        for t in transports.values():
            io.call(t.close(), 10)
    finally:
        io.stop()
    return log


@dataclass(frozen=True)
class Submitted:
    """A job pivot submitted and the watchers attached to it."""

    job_id: str
    host: str
    watcher_ids: list[str]


def transport_for(config: Config, host: str) -> Transport:
    """A transport for one command-line operation."""
    hc = config.host(host)
    return LocalTransport(host, hc.env) if hc.is_local else SshTransport(hc)


def submit_job(
    store: EventStore,
    config: Config,
    script_path: str,
    script: str,
    host: str = "local",
    *,
    workdir: str = "",
) -> Submitted:
    """sbatch a script (from stdin, so it need not exist on the host) with its embedded watchers.

    ``workdir`` is the job's working directory (sbatch ``--chdir``); empty:
    where sbatch runs (the home directory over SSH).
    """
    definitions = watcher_blocks(script, script_path)
    io = IoLoop("pivot-submit")
    transport = transport_for(config, host)
    try:
        result = io.call(
            transport.run(
                slurm.sbatch_argv(workdir), input_text=script, timeout=config.action_timeout
            ),
            config.action_timeout + 5,
        )
        io.call(transport.close(), 10)
    except (TransportError, TimeoutError) as exc:
        raise ManageError(f"cannot submit on {host}: {exc}") from None
    finally:
        io.stop()
    if result.returncode != 0:
        raise ManageError(f"sbatch on {host} failed: {result.stderr.strip()}")
    job_id = slurm.parse_sbatch(result.stdout)
    store.append(
        [
            JobSubmitted(
                host=host, job_id=job_id, script=script_path, script_text=script, actor="cli"
            )
        ]
    )
    ids = add_watchers(store, definitions, job_id, host) if definitions else []
    return Submitted(job_id, host, ids)
