"""`pivot jobs list`: the jobs the log knows, with one live ``squeue`` per host."""

from __future__ import annotations

from typing import Any

from pivot.events.jobs import JobSubmitted
from pivot.events.store import EventStore
from pivot.jobs import slurm
from pivot.jobs.config import Config
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.manage import load_book, transport_for
from pivot.jobs.transport import TransportError

__all__ = ["job_rows"]


def job_rows(
    store: EventStore, config: Config, only_host: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows (host, job_id, name, state, watchers, resubmit_of) and per-host errors."""
    book = load_book(store)
    resubmit_of = {
        (e.host, e.job_id): e.resubmit_of
        for e in (r.event for r in store.read(types=[JobSubmitted.TYPE]))
        if isinstance(e, JobSubmitted)
    }
    keys = sorted(
        (k for k in book.jobs if only_host is None or k[0] == only_host),
        key=lambda k: (k[0], int(k[1].split("_")[0]) if k[1].split("_")[0].isdigit() else 0),
    )
    live: dict[tuple[str, str], slurm.JobInfo] = {}
    errors: dict[str, str] = {}
    hosts = sorted({h for h, _ in keys})
    if hosts:
        io = IoLoop("pivot-jobs-list")
        try:
            for host in hosts:
                ids = [j for h, j in keys if h == host]
                try:
                    t = transport_for(config, host)
                    result = io.call(
                        t.run(slurm.squeue_argv(ids), timeout=config.host(host).command_timeout),
                        config.host(host).command_timeout + 5,
                    )
                    io.call(t.close(), 10)
                except (TransportError, TimeoutError, ValueError) as exc:
                    errors[host] = str(exc)
                    continue
                if result.returncode != 0 and not slurm.squeue_says_unknown(result.stderr):
                    errors[host] = f"squeue: {result.stderr.strip()[:300]}"
                    continue
                for job_id, found in slurm.parse_squeue(result.stdout).items():
                    live[(host, job_id)] = found
        finally:
            io.stop()
    rows = []
    for key in keys:
        rec = book.jobs[key]
        info = live.get(key)
        if info is not None:
            state = info.state
        elif key[0] in errors:
            state = f"{rec.state or 'unknown'} (last known)"
        else:
            state = rec.state or "gone from squeue"
        rows.append(
            {
                "host": key[0],
                "job_id": key[1],
                "name": (info.name if info else "") or rec.name,
                "state": state,
                "watchers": sum(
                    1
                    for w in book.watchers.values()
                    if (w.host, w.job_id) == key and w.state != "removed"
                ),
                "resubmit_of": resubmit_of.get(key, ""),
            }
        )
    return rows, errors
