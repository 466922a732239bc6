"""What `pivot status` prints: a line (or a ``--json`` row) per stage, with its SLURM job.

Each stage's decision (up to date, or stale and why), where it runs, and
for a stage on SLURM the job of its current or last run, from the log.

Read from the ``pipeline_status`` projection (stored next to the log and
brought up to date here), so a job submitted by a `pivot run` or `pivot
watch` in another terminal shows while it is queued or running.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivot.pipeline.plan import Plan

__all__ = ["job_note", "stage_jobs", "status_lines", "status_rows"]


def stage_jobs(root: Path) -> dict[str, dict[str, Any]]:
    """Stage -> the SLURM job of its current or last run ({} when the log has none yet)."""
    from pivot.events.location import store_location
    from pivot.events.store import EventStore
    from pivot.projections import open_projection

    where = store_location(root)
    if "://" not in where and not Path(where).is_file():
        return {}
    store = EventStore.open(where)
    try:
        status = open_projection(store, "pipeline_status")
        status.catch_up()
        stages: dict[str, dict[str, Any]] = status.state["stages"]
        return {name: s["job"] for name, s in stages.items() if s.get("job")}
    finally:
        store.close()


def job_note(job: dict[str, Any] | None) -> str:
    """``SLURM job 12 on local: running`` for a job in flight; "" for none or one that ended."""
    if not job or job["ended"]:
        return ""
    return f"SLURM job {job['job_id']} on {job['host']}: {job['state']}"


def status_rows(plan: Plan, where: dict[str, str], jobs: dict[str, dict[str, Any]]) -> list[Any]:
    """The ``--json`` rows: each decision with ``runs_on`` and ``job`` (None: no SLURM job)."""
    found = [d.to_dict() for d in plan.decisions]
    for row in found:
        row["runs_on"] = where.get(row["stage"], "local")
        row["job"] = jobs.get(row["stage"])
    return found


def status_lines(plan: Plan, where: dict[str, str], jobs: dict[str, dict[str, Any]]) -> list[str]:
    """``train  slurm@local (16G)  stale: never run  [SLURM job 12 on local: running]``, ..."""
    width = max((len(d.stage) for d in plan.decisions), default=0)
    # A column saying where each stage runs, once any stage runs elsewhere.
    wide = max((len(w) for w in where.values()), default=0)
    lines = []
    for d in plan.decisions:
        runs = f"  {where.get(d.stage, 'local'):<{wide}}" if where else ""
        note = job_note(jobs.get(d.stage))
        note = f"  [{note}]" if note else ""
        if d.run:
            lines.append(f"{d.stage:<{width}}{runs}  stale: {'; '.join(d.reasons)}{note}")
        else:
            lines.append(f"{d.stage:<{width}}{runs}  up to date{note}")
    stale = len(plan.to_run)
    lines.append(
        f"{stale} of {len(plan.decisions)} stages stale" if stale else "everything up to date"
    )
    return lines
